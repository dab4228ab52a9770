// A lab's topology as SVG, drawn from what a result recorded from the kernel:
// nodes on the underlay, their devices with MTUs, the pods and their addresses.
import { isTunnel } from '../net/link-kinds.js';
import type { BenchResult } from '../bench/results.js';
import { line, rect, svg, text } from './svg.js';

const NODE_W = 300;
const GAP = 90;
const POD_H = 38;
const DEV_H = 34;

export function topologySvg(result: BenchResult): string {
  const { nodes, pods, underlay } = result.topology;
  const width = nodes.length * NODE_W + (nodes.length - 1) * GAP + 40;
  const nodeTop = 16;
  const podY = nodeTop + 34;
  const devY = podY + POD_H + 34;
  const ethY = devY + DEV_H + 28;
  const nodeH = ethY + DEV_H + 12 - nodeTop;
  const busY = nodeTop + nodeH + 28;
  const height = busY + 30;
  const parts: string[] = [];
  const tunnels: { x: number; y: number; kind: string }[] = [];

  parts.push(line(20, busY, width - 20, busY, { stroke: '#5b6578', 'stroke-width': 3 }));
  parts.push(text(24, busY + 20, `underlay ${underlay}`, { class: 'label' }));

  nodes.forEach((n, i) => {
    const x0 = 20 + i * (NODE_W + GAP);
    parts.push(rect(x0, nodeTop, NODE_W, nodeH, { fill: '#f5f7fb', stroke: '#9aa3b2', rx: 8 }));
    parts.push(text(x0 + 12, nodeTop + 20, `${n.name}`, { class: 'node' }));
    parts.push(text(x0 + NODE_W - 12, nodeTop + 20, n.address, { class: 'label', 'text-anchor': 'end' }));

    const eth = n.links.find((l) => l.ifname === 'eth0') ?? n.links.find((l) => l.kind !== 'bridge' && !isTunnel(l.kind));
    // Tunnel devices face the neighbour they tunnel to: on the right of the first node, on the left of the others.
    const others = n.links.filter((l) => l !== eth);
    const tunnelsHere = others.filter((l) => isTunnel(l.kind));
    const rest = others.filter((l) => !isTunnel(l.kind));
    const devices = i === 0 ? [...rest, ...tunnelsHere] : [...tunnelsHere, ...rest];
    const ethBox = { x: x0 + 40, y: ethY, w: NODE_W - 80 };
    const box = (bx: number, by: number, bw: number, bh: number, fill: string, l1: string, l2: string) => {
      parts.push(rect(bx, by, bw, bh, { fill, stroke: '#7d8799', rx: 5 }));
      parts.push(text(bx + bw / 2, by + 14, l1, { 'text-anchor': 'middle', class: 'dev' }));
      parts.push(text(bx + bw / 2, by + 27, l2, { 'text-anchor': 'middle', class: 'small' }));
    };

    // Devices: each one hangs off eth0 (routed or tunnelled out of the node).
    const devW = devices.length ? Math.min(130, (NODE_W - 24 - (devices.length - 1) * 10) / devices.length) : 0;
    const devX = (j: number) => x0 + (NODE_W - (devices.length * devW + (devices.length - 1) * 10)) / 2 + j * (devW + 10);
    devices.forEach((d, j) => {
      parts.push(line(devX(j) + devW / 2, devY + DEV_H, devX(j) + devW / 2, ethY, { stroke: '#7d8799' }));
      if (isTunnel(d.kind)) tunnels.push({ x: devX(j) + devW / 2, y: devY, kind: d.kind });
    });

    // Pods: wired to the node's bridge when it has one, else to the node itself (routed, as calico does).
    const mine = pods.filter((p) => p.node === n.name);
    const podW = mine.length ? Math.min(130, (NODE_W - 24 - (mine.length - 1) * 10) / mine.length) : 0;
    const bridgeIndex = devices.findIndex((d) => d.kind === 'bridge');
    mine.forEach((p, j) => {
      const px = x0 + (NODE_W - (mine.length * podW + (mine.length - 1) * 10)) / 2 + j * (podW + 10);
      const tx = bridgeIndex >= 0 ? devX(bridgeIndex) + devW / 2 : ethBox.x + ethBox.w / 2;
      const ty = bridgeIndex >= 0 ? devY : ethY;
      parts.push(line(px + podW / 2, podY + POD_H, tx, ty, { stroke: '#13a08f', 'stroke-width': 1.5 }));
      box(px, podY, podW, POD_H, '#e2f5f2', p.name, p.ip);
    });
    devices.forEach((d, j) => box(devX(j), devY, devW, DEV_H, d.kind === 'bridge' ? '#e8eefc' : isTunnel(d.kind) ? '#fff1dc' : '#eef0f4', d.ifname, `${d.kind} · MTU ${d.mtu}`));
    if (eth) {
      parts.push(line(ethBox.x + ethBox.w / 2, ethY + DEV_H, ethBox.x + ethBox.w / 2, busY, { stroke: '#5b6578', 'stroke-width': 2 }));
      box(ethBox.x, ethBox.y, ethBox.w, DEV_H, '#ffffff', `${eth.ifname} ${n.address}`, `${eth.kind} · MTU ${eth.mtu}`);
    }
  });

  // Tunnel devices of neighbouring nodes: the overlay, drawn as a dashed arc above them.
  for (let i = 0; i + 1 < tunnels.length; i++) {
    const [a, b] = [tunnels[i], tunnels[i + 1]];
    if (a.kind !== b.kind) continue;
    const midX = (a.x + b.x) / 2;
    parts.push(`<path d="M ${a.x} ${a.y} C ${a.x} ${a.y - 30}, ${b.x} ${b.y - 30}, ${b.x} ${b.y}" fill="none" stroke="#d9822b" stroke-width="2" stroke-dasharray="6 4"/>`);
    parts.push(text(midX, a.y - 26, `${a.kind} tunnel`, { 'text-anchor': 'middle', class: 'small', fill: '#b0621a' }));
  }
  return svg(width, height, `topology of ${result.lab}`, parts.join(''));
}
