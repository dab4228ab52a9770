// The SVG view of a lab's network, drawn like the lessons' diagrams: nodes
// side by side on the underlay, pods on top, each pod's eth0 joined to its
// vethXXXX by a dashed veth pair, the ports on the bridge, tunnel devices with
// the link between nodes, each node's routing table, and the uplink to the
// underlay. Pure: a model in, one standalone SVG document out.
import { allAddresses, describeLink, layoutNodes, type Attachment, type NodeLayout, type PodEnd } from './layout.js';
import type { LinkView, NetModel } from './model.js';
import { servicesLines } from './services.js';
import { tunnelTables, underlays } from './render-text.js';

const PAD = 28;
const COL_GAP = 120;
const POD_W = 210;
const POD_H = 78;
const SLOT_GAP = 18;
const HOST_W = 180;
const HOST_H = 34;
const MIN_NODE_W = 560;
const LINE = 15;
const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const SANS = "system-ui, 'DejaVu Sans', Arial, sans-serif";

const C = {
  text: '#1f2328',
  muted: '#59636e',
  node: { fill: '#f6f8fa', stroke: '#8c959f' },
  pod: { fill: '#ddf4ff', stroke: '#218bff' },
  host: { fill: '#fff8c5', stroke: '#d4a72c' },
  bridge: { fill: '#dafbe1', stroke: '#2da44e' },
  routed: { fill: '#ffeff7', stroke: '#bf3989' },
  tunnel: { fill: '#fbefff', stroke: '#8250df' },
  uplink: { fill: '#eaeef2', stroke: '#57606a' },
  underlay: '#57606a',
};

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Shorten to what fits in `width` pixels at `size` (monospace glyphs are ~0.6em wide). */
function fit(s: string, width: number, size: number): string {
  const max = Math.floor(width / (size * 0.6));
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
}

class Svg {
  parts: string[] = [];
  rect(x: number, y: number, w: number, h: number, c: { fill: string; stroke: string }, rx = 8): void {
    this.parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${rx}" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.5"/>`);
  }
  text(x: number, y: number, s: string, o: { size?: number; weight?: number; mono?: boolean; color?: string; anchor?: 'start' | 'middle' | 'end'; width?: number; cls?: string } = {}): void {
    const size = o.size ?? 12;
    const body = o.width ? fit(s, o.width, size) : s;
    const attrs = [
      `x="${x}"`,
      `y="${y}"`,
      `font-size="${size}"`,
      `font-family="${o.mono ? MONO : SANS}"`,
      `fill="${o.color ?? C.text}"`,
      o.weight ? `font-weight="${o.weight}"` : '',
      o.anchor && o.anchor !== 'start' ? `text-anchor="${o.anchor}"` : '',
      o.cls ? `class="${o.cls}"` : '',
    ].filter(Boolean);
    this.parts.push(`<text ${attrs.join(' ')}>${esc(body)}</text>`);
  }
  line(x1: number, y1: number, x2: number, y2: number, color: string, o: { width?: number; dash?: string } = {}): void {
    this.parts.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${color}" stroke-width="${o.width ?? 1.5}"${o.dash ? ` stroke-dasharray="${o.dash}"` : ''}/>`);
  }
  path(d: string, color: string, o: { width?: number; dash?: string } = {}): void {
    this.parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${o.width ?? 1.5}"${o.dash ? ` stroke-dasharray="${o.dash}"` : ''}/>`);
  }
  group(id: string, fn: () => void, title?: string): void {
    this.parts.push(`<g id="${esc(id)}">${title ? `<title>${esc(title)}</title>` : ''}`);
    fn();
    this.parts.push('</g>');
  }
}

/** One column per pod that hangs off the node, in the order the node's devices list them. */
interface Slot {
  pod?: PodEnd;
  host?: LinkView;
  /** How the pod is attached: a port on a bridge, a veth the node routes, a macvlan on a parent link, or nothing seen. */
  via: 'bridge' | 'routed' | 'macvlan' | 'none';
  bridge?: string;
}

function slotsOf(n: NodeLayout): Slot[] {
  const fromAttachment = (a: Attachment, via: Slot['via'], bridge?: string): Slot => ({ pod: a.pod, host: a.host, via, bridge });
  return [
    ...n.bridges.flatMap((b) => b.ports.map((p) => fromAttachment(p, 'bridge', b.bridge.name))),
    ...n.routed.map((p) => fromAttachment(p, 'routed')),
    ...n.macvlanPods.map((m) => ({ pod: m.pod, host: m.parent, via: 'macvlan' as const })),
    ...n.loosePods.map((p) => ({ pod: p, via: 'none' as const })),
  ];
}

interface Placed {
  layout: NodeLayout;
  x: number;
  y: number;
  w: number;
  h: number;
  slots: Slot[];
  /** Where each tunnel device was drawn, for the links between nodes. */
  tunnelBoxes: Map<string, { x: number; y: number; w: number; h: number }>;
  uplinkBox?: { x: number; y: number; w: number; h: number };
}

const ROW = {
  pods: 52,
  hosts: 52 + POD_H + 44,
};

function nodeWidth(slots: Slot[], n: NodeLayout): number {
  const longest = Math.max(0, ...[...n.routes, ...n.nat].map((r) => r.length));
  return Math.max(MIN_NODE_W, slots.length * (POD_W + SLOT_GAP) + SLOT_GAP, Math.min(760, longest * 6.3 + 2 * 24));
}

function drawNode(svg: Svg, p: Placed): void {
  const { layout: n, x, y, w } = p;
  svg.rect(x, y, w, p.h, C.node, 14);
  svg.text(x + 18, y + 30, `node ${n.node.name}`, { size: 18, weight: 700 });
  if (n.uplink) svg.text(x + w - 18, y + 30, allAddresses(n.uplink).join(' '), { size: 13, mono: true, anchor: 'end', color: C.muted });

  const slotX = (i: number) => x + SLOT_GAP + i * (POD_W + SLOT_GAP) + (w - (p.slots.length * (POD_W + SLOT_GAP) + SLOT_GAP)) / 2;
  let cursor = y + ROW.hosts + HOST_H;

  // Pods and the interface each one is joined to on the node.
  p.slots.forEach((s, i) => {
    const sx = slotX(i);
    if (s.pod) {
      svg.group(`pod-${s.pod.pod.name}`, () => {
        svg.rect(sx, y + ROW.pods, POD_W, POD_H, C.pod);
        svg.text(sx + 12, y + ROW.pods + 22, `pod ${s.pod!.pod.name}`, { size: 14, weight: 700, width: POD_W - 24 });
        const pod = s.pod!;
        const gw = [pod.gateway, pod.gateway6].filter(Boolean).join(' ');
        const foot = [gw ? `gw ${gw}` : '', `mtu ${pod.link.mtu}`].filter(Boolean).join(' · ');
        if (pod.link.addresses6?.length) {
          // Dual-stack: the interface beside the name, then one line per family.
          svg.text(sx + POD_W - 12, y + ROW.pods + 22, pod.link.label, { size: 11, mono: true, anchor: 'end' });
          svg.text(sx + 12, y + ROW.pods + 40, pod.link.addresses.join(' ') || 'no IPv4 address', { size: 12, mono: true, weight: 600, width: POD_W - 24 });
          svg.text(sx + 12, y + ROW.pods + 56, pod.link.addresses6.join(' '), { size: 12, mono: true, weight: 600, width: POD_W - 24 });
          svg.text(sx + 12, y + ROW.pods + 72, foot, { size: 10.5, mono: true, color: C.muted, width: POD_W - 24 });
        } else {
          svg.text(sx + 12, y + ROW.pods + 42, pod.link.label, { size: 12, mono: true, width: POD_W - 24 });
          svg.text(sx + 12, y + ROW.pods + 58, pod.link.addresses.join(' ') || 'no IPv4 address', { size: 12, mono: true, weight: 600, width: POD_W - 24 });
          svg.text(sx + 12, y + ROW.pods + 72, foot, { size: 10.5, mono: true, color: C.muted, width: POD_W - 24 });
        }
      }, `pod ${s.pod.pod.name} on ${n.node.name}`);
    }
    const cx = sx + POD_W / 2;
    if (s.via === 'bridge' || s.via === 'routed') {
      const hx = cx - HOST_W / 2;
      const hy = y + ROW.hosts;
      svg.group(`if-${n.node.name}-${s.host!.name}`, () => {
        svg.rect(hx, hy, HOST_W, HOST_H, C.host);
        svg.text(cx, hy + 22, s.host!.label, { size: 12, mono: true, anchor: 'middle', width: HOST_W - 12 });
        // A BPF program on the veth takes the packet before any bridge or route below.
        if (s.host!.bpf?.length) svg.text(cx + 6, hy + HOST_H + 16, `BPF ${bpfNames(s.host!)}`, { size: 10.5, weight: 700, mono: true, color: C.tunnel.stroke, width: POD_W / 2 + SLOT_GAP });
      });
      if (s.pod) {
        svg.line(cx, y + ROW.pods + POD_H, cx, hy, C.host.stroke, { dash: '5 4', width: 2 });
        svg.text(cx + 6, y + ROW.pods + POD_H + 26, 'veth pair', { size: 10.5, color: C.muted });
      }
    }
  });

  // Bridges (one bar under their ports) and the node's own routing for veths without a bridge.
  const bar = (label: string, c: { fill: string; stroke: string }, members: number[], id: string) => {
    if (!members.length) return;
    cursor += 30;
    // Under its ports, and wide enough to read (within the node).
    const left = Math.min(...members.map((i) => slotX(i))) - 4;
    const right = Math.max(...members.map((i) => slotX(i) + POD_W)) + 4;
    const grow = Math.max(0, 420 - (right - left)) / 2;
    const x1 = Math.max(x + 24, left - grow);
    const x2 = Math.min(x + w - 24, right + grow);
    svg.group(id, () => {
      svg.rect(x1, cursor, x2 - x1, 40, c);
      svg.text((x1 + x2) / 2, cursor + 25, label, { size: 13, mono: true, anchor: 'middle', weight: 600, width: x2 - x1 - 16 });
    });
    for (const i of members) svg.line(slotX(i) + POD_W / 2, y + ROW.hosts + HOST_H, slotX(i) + POD_W / 2, cursor, c.stroke, { width: 2 });
    cursor += 40;
  };
  for (const b of n.bridges) {
    const members = p.slots.map((s, i) => (s.bridge === b.bridge.name ? i : -1)).filter((i) => i >= 0);
    if (!members.length) {
      // A bridge with no pods yet still belongs in the picture.
      cursor += 30;
      svg.rect(x + 24, cursor, w - 48, 40, C.bridge);
      svg.text(x + w / 2, cursor + 25, `${b.bridge.name} · ${describeLink(b.bridge)}`, { size: 13, mono: true, anchor: 'middle', weight: 600, width: w - 64 });
      cursor += 40;
    } else bar(`${b.bridge.name} · ${describeLink(b.bridge)}`, C.bridge, members, `bridge-${n.node.name}-${b.bridge.name}`);
  }
  bar(`routed by ${n.node.name} (no bridge): one route per pod`, C.routed, p.slots.map((s, i) => (s.via === 'routed' ? i : -1)).filter((i) => i >= 0), `routed-${n.node.name}`);

  // Tunnel devices (with the neighbour and FDB entries that point at other nodes), then any other link.
  for (const d of [...n.tunnels, ...n.others]) {
    const tunnel = n.tunnels.includes(d);
    const tables = tunnel ? tunnelTables(n, d.name) : [];
    const dh = deviceHeight(tables.length);
    cursor += 26;
    const dx = x + 24;
    const dw = w - 48;
    svg.group(`dev-${n.node.name}-${d.name}`, () => {
      svg.rect(dx, cursor, dw, dh, tunnel ? C.tunnel : C.uplink);
      svg.text(dx + 12, cursor + 20, d.label, { size: 13, mono: true, weight: 700, width: dw - 24 });
      svg.text(dx + 12, cursor + 37, describeLink(d), { size: 11, mono: true, width: dw - 24 });
      tables.forEach((t, j) => svg.text(dx + 12, cursor + 54 + j * 14, t, { size: 10.5, mono: true, color: C.muted, width: dw - 24 }));
    });
    if (tunnel) p.tunnelBoxes.set(d.name, { x: dx, y: cursor, w: dw, h: dh });
    cursor += dh;
  }

  // The routing table, as `ip route` prints it (and the nat table's rewriting rules, where there are any).
  const behindRoutes = svg.parts.length;
  cursor += 26;
  const routesH = tableHeight(n);
  svg.group(`routes-${n.node.name}`, () => {
    svg.rect(x + 24, cursor, w - 48, routesH, { fill: '#ffffff', stroke: '#d0d7de' });
    svg.text(x + 36, cursor + 18, `ip route (${n.node.name})`, { size: 11, weight: 700, color: C.muted });
    n.routes.forEach((r, j) => svg.text(x + 36, cursor + 34 + j * LINE, r, { size: 10.5, mono: true, width: w - 72 }));
    if (n.nat.length) {
      const top = cursor + 26 + n.routes.length * LINE + 8;
      svg.text(x + 36, top + 10, `iptables -t nat (${n.node.name})`, { size: 11, weight: 700, color: C.muted });
      n.nat.forEach((r, j) => svg.text(x + 36, top + 26 + j * LINE, r, { size: 10.5, mono: true, width: w - 72 }));
    }
  });
  cursor += routesH;

  // The uplink to the underlay; macvlan pods hang off it (or off their own parent).
  cursor += 26;
  if (n.uplink) {
    const uw = 360;
    const ux = x + (w - uw) / 2;
    svg.group(`uplink-${n.node.name}`, () => {
      svg.rect(ux, cursor, uw, 40, C.uplink);
      svg.text(x + w / 2, cursor + 17, n.uplink!.label, { size: 13, mono: true, anchor: 'middle', weight: 700 });
      svg.text(x + w / 2, cursor + 33, `${allAddresses(n.uplink!).join(' ')} · mtu ${n.uplink!.mtu}${n.uplink!.bpf?.length ? ` · BPF ${bpfNames(n.uplink!)}` : ''}`, { size: 11, mono: true, anchor: 'middle', width: uw - 16 });
    });
    p.uplinkBox = { x: ux, y: cursor, w: uw, h: 40 };
    // macvlan pods hang off the uplink; their lines pass behind the routing table.
    const lines = new Svg();
    p.slots.forEach((s, i) => {
      if (s.via !== 'macvlan') return;
      const cx = slotX(i) + POD_W / 2;
      lines.path(`M ${cx} ${y + ROW.pods + POD_H} C ${cx} ${cursor - 30}, ${x + w / 2} ${cursor - 40}, ${x + w / 2} ${cursor}`, C.uplink.stroke, { dash: '5 4', width: 2 });
      lines.text(cx + 6, y + ROW.pods + POD_H + 26, `macvlan on ${s.host!.name}`, { size: 10.5, color: C.muted });
    });
    svg.parts.splice(behindRoutes, 0, ...lines.parts);
    cursor += 40;
  }
}

/** The programs on a link, by name: "from_container". */
const bpfNames = (l: LinkView) => (l.bpf ?? []).map((b) => b.split(' ').pop()).join(', ');

const tableHeight = (n: NodeLayout) => 26 + n.routes.length * LINE + (n.nat.length ? 26 + n.nat.length * LINE : 0);

const deviceHeight = (tableLines: number) => 46 + (tableLines ? tableLines * 14 + 4 : 0);

function nodeHeight(n: NodeLayout, slots: Slot[]): number {
  let h = ROW.hosts + HOST_H;
  h += n.bridges.length * 70 + (slots.some((s) => s.via === 'routed') ? 70 : 0);
  for (const d of [...n.tunnels, ...n.others]) h += 26 + deviceHeight(n.tunnels.includes(d) ? tunnelTables(n, d.name).length : 0);
  h += 26 + tableHeight(n);
  if (n.uplink) h += 26 + 40;
  return h + 24;
}

export function renderSvg(model: NetModel): string {
  const layouts = layoutNodes(model);
  const top = PAD + 64;
  let x = PAD;
  const placed: Placed[] = layouts.map((layout) => {
    const slots = slotsOf(layout);
    const w = nodeWidth(slots, layout);
    const p: Placed = { layout, x, y: top, w, h: nodeHeight(layout, slots), slots, tunnelBoxes: new Map() };
    x += w + COL_GAP;
    return p;
  });
  const maxH = Math.max(0, ...placed.map((p) => p.h));
  for (const p of placed) p.h = maxH;
  const width = Math.max(x - COL_GAP + PAD, 640);
  const busY = top + maxH + 48;
  const routeLines = model.nodeRoutes.map((r) => `${r.node} → ${r.toNode ?? 'any node'}   ${r.route}   (${r.how})`);
  const sv = model.services ? servicesLines(model.services) : undefined;
  const serviceLines = sv ? sv.services.flatMap((x) => [x.text, ...x.endpoints.map((e) => `    → ${e}`)]) : [];
  const routesH = routeLines.length ? 30 + routeLines.length * 18 : 0;
  const height = busY + 40 + routesH + (sv ? 30 + serviceLines.length * 18 : 0) + PAD;

  const svg = new Svg();
  svg.text(PAD, PAD + 22, `${model.lab}: the network as the kernel reports it`, { size: 22, weight: 700 });
  svg.text(PAD, PAD + 46, `${model.backend} backend · read at ${model.takenAt.slice(0, 19).replace('T', ' ')} UTC · underlay ${underlays(model) || '?'} · from ip -json link/addr/route, ip -6 route, ip neigh, bridge fdb`, { size: 12, color: C.muted });

  for (const p of placed) drawNode(svg, p);

  // The underlay: a bus under the nodes, each uplink dropping onto it.
  svg.group('underlay', () => {
    svg.line(PAD, busY, width - PAD, busY, C.underlay, { width: 5 });
    svg.text(PAD, busY + 24, `underlay ${underlays(model)}`, { size: 13, weight: 700, color: C.underlay });
    for (const p of placed) {
      if (!p.uplinkBox) continue;
      const cx = p.uplinkBox.x + p.uplinkBox.w / 2;
      svg.line(cx, p.uplinkBox.y + p.uplinkBox.h, cx, busY, C.underlay, { width: 3 });
    }
  });

  // Tunnels between nodes: a dashed link between the devices that carry a node's route to the other.
  const drawn = new Set<string>();
  // A route through a TUN device may serve every node (the process picks one per packet): join it to each node with one.
  const links = model.nodeRoutes.flatMap((r) => (r.toNode ? [{ r, to: r.toNode }] : placed.filter((p) => p.layout.node.name !== r.node && p.tunnelBoxes.size).map((p) => ({ r, to: p.layout.node.name }))));
  for (const { r, to } of links) {
    const a = placed.find((p) => p.layout.node.name === r.node);
    const b = placed.find((p) => p.layout.node.name === to);
    const boxA = a?.tunnelBoxes.get(r.dev);
    // The same device on the other node (flannel.1 to flannel.1, flannel-v6.1 to flannel-v6.1), one line per pair of nodes and family.
    const boxB = b && (b.tunnelBoxes.get(r.dev) ?? [...b.tunnelBoxes.values()][0]);
    const key = [r.node, to].sort().join('|') + (r.family ? `|v${r.family}` : '');
    if (!a || !b || !boxA || !boxB || drawn.has(key)) continue;
    drawn.add(key);
    const [left, right, lp] = a.x < b.x ? [boxA, boxB, a] : [boxB, boxA, b];
    const y1 = left.y + 22;
    const y2 = right.y + 22;
    const dev = a.layout.tunnels.find((t) => t.name === r.dev);
    const owner = dev?.tunOwners?.[0];
    const label = dev?.vxlan ? `VXLAN VNI ${dev.vxlan.vni} · UDP ${dev.vxlan.port}` : owner ? `${owner.comm}${owner.udpPorts.length ? ` · UDP ${owner.udpPorts.join(',')}` : ''}` : r.how.split(' → ')[0];
    const adjacent = Math.abs(placed.indexOf(a) - placed.indexOf(b)) === 1;
    svg.group(`tunnel-${key.replaceAll('|', '-')}`, () => {
      if (adjacent) {
        svg.path(`M ${left.x + left.w} ${y1} L ${lp.x + lp.w + COL_GAP / 2} ${y1} L ${lp.x + lp.w + COL_GAP / 2} ${y2} L ${right.x} ${y2}`, C.tunnel.stroke, { dash: '7 5', width: 2.5 });
      } else {
        const up = top - 14;
        svg.path(`M ${left.x + left.w / 2} ${left.y} C ${left.x + left.w / 2} ${up}, ${right.x + right.w / 2} ${up}, ${right.x + right.w / 2} ${right.y}`, C.tunnel.stroke, { dash: '7 5', width: 2.5 });
      }
      const [first, ...rest] = label.split(' · ');
      const mid = lp.x + lp.w + COL_GAP / 2;
      svg.text(mid, Math.min(y1, y2) - 22, first, { size: 11, weight: 700, anchor: 'middle', color: C.tunnel.stroke });
      if (rest.length) svg.text(mid, Math.min(y1, y2) - 8, rest.join(' · '), { size: 11, weight: 700, anchor: 'middle', color: C.tunnel.stroke });
    }, r.how);
  }

  if (routeLines.length) {
    svg.text(PAD, busY + 54, 'routes between nodes', { size: 12, weight: 700, color: C.muted });
    routeLines.forEach((l, i) => svg.text(PAD, busY + 72 + i * 18, l, { size: 11.5, mono: true, width: width - 2 * PAD }));
  }

  if (sv) {
    const y0 = busY + 40 + routesH;
    svg.group('services', () => {
      svg.text(PAD, y0 + 14, sv.head, { size: 12, weight: 700, color: C.muted, width: width - 2 * PAD });
      serviceLines.forEach((l, i) => svg.text(PAD, y0 + 32 + i * 18, l, { size: 11.5, mono: true, width: width - 2 * PAD, ...(l.startsWith(' ') ? { color: C.muted } : { weight: 700 }) }));
    });
  }

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(`${model.lab} network diagram`)}">`,
    `<title>${esc(`${model.lab}: nodes, pods, veth pairs, bridges, tunnels and routes, from the kernel`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...svg.parts,
    '</svg>',
    '',
  ].join('\n');
}
