// The terminal view of a lab's network: one tree per node, from the uplink
// down through bridges and veth pairs to each pod, then tunnel devices and the
// routes toward other nodes. Pure: a model in, lines out.
import { allAddresses, describeLink, describePod, layoutNodes, type Attachment, type NodeLayout } from './layout.js';
import type { NetModel } from './model.js';
import { servicesLines } from './services.js';
import { plain, type TextStyle } from './render-trace.js';

interface Tree {
  text: string;
  children?: Tree[];
}

function draw(t: Tree[], prefix = '', out: string[] = []): string[] {
  t.forEach((node, i) => {
    const last = i === t.length - 1;
    out.push(`${prefix}${last ? '└─ ' : '├─ '}${node.text}`);
    if (node.children?.length) draw(node.children, prefix + (last ? '   ' : '│  '), out);
  });
  return out;
}

function attachment(a: Attachment, s: TextStyle): Tree {
  const pod = a.pod ? ` ═ ${s.bold(`pod ${a.pod.pod.name}`)} ${describePod(a.pod)}` : ' ═ (other end not in the lab)';
  return { text: `${a.host.label}${a.host.bpf?.length ? ` [BPF: ${a.host.bpf.join(', ')}]` : ''}${pod}` };
}

function nodeTree(n: NodeLayout, s: TextStyle): Tree {
  const children: Tree[] = [];
  for (const b of n.bridges) children.push({ text: `${s.bold(b.bridge.name)} ${describeLink(b.bridge)}`, children: b.ports.map((p) => attachment(p, s)) });
  if (n.routed.length) children.push({ text: 'veths routed by the node (no bridge)', children: n.routed.map((p) => attachment(p, s)) });
  if (n.macvlanPods.length) children.push({ text: 'macvlan pods', children: n.macvlanPods.map((m) => ({ text: `on ${m.parent.name}: ${s.bold(`pod ${m.pod.pod.name}`)} ${describePod(m.pod)}` })) });
  for (const t of n.tunnels) children.push({ text: `${s.bold(t.label)} ${describeLink(t)}`, children: tunnelTables(n, t.name).map((text) => ({ text: s.dim(text) })) });
  for (const o of n.others) children.push({ text: `${o.label} ${describeLink(o)}` });
  for (const p of n.loosePods) children.push({ text: `${s.bold(`pod ${p.pod.name}`)} ${describePod(p)} (not attached to anything seen on ${n.node.name})` });
  children.push({ text: 'routes', children: n.routes.map((r) => ({ text: s.dim(r) })) });
  if (n.nat.length) children.push({ text: 'nat (iptables -t nat)', children: n.nat.map((r) => ({ text: s.dim(r) })) });
  if (n.toNodes.length) children.push({ text: 'to other nodes', children: n.toNodes.map((r) => ({ text: `${r.dst} ⇒ ${r.toNode ? s.bold(r.toNode) : 'any node'}: ${r.how}` })) });
  const up = n.uplink ? `${n.uplink.label} ${allAddresses(n.uplink).join(' ')}${n.uplink.bpf?.length ? ` [BPF: ${n.uplink.bpf.join(', ')}]` : ''}` : 'no uplink in the underlay';
  return { text: `${s.bold(`node ${n.node.name}`)}  ${up}`, children };
}

/** The neighbour and FDB entries a tunnel device uses to find the other nodes. */
export function tunnelTables(n: NodeLayout, dev: string): string[] {
  const neigh = n.node.neighbours.filter((e) => e.dev === dev && e.lladdr).map((e) => `neigh ${e.dst} lladdr ${e.lladdr} ${(e.state ?? []).join(' ')}`.trim());
  const fdb = n.node.fdb.filter((f) => f.ifname === dev && f.dst).map((f) => `fdb ${f.mac} dst ${f.dst} ${f.state ?? ''}`.trim());
  return [...neigh, ...fdb];
}

/** The underlay subnets, IPv4 then IPv6. */
export function underlays(model: NetModel): string {
  return [model.underlay, model.underlayV6].filter(Boolean).join(' ');
}

const endpointText = (style: TextStyle, t: string) => style.dim(`→ ${t}`);

export function renderText(model: NetModel, style: TextStyle = plain): string[] {
  const head = [style.bold(`${model.lab}`) + style.dim(` · ${model.backend} backend · read from the kernel at ${model.takenAt.slice(11, 19)} UTC`)];
  head.push(`underlay ${underlays(model) || '(no subnet shared by every node)'}`);
  const trees = layoutNodes(model).map((n) => nodeTree(n, style));
  if (model.services) {
    const v = servicesLines(model.services);
    trees.push({ text: style.bold(v.head), children: v.services.map((sv) => ({ text: sv.text, children: sv.endpoints.map((e) => ({ text: endpointText(style, e) })) })) });
  }
  return [...head, ...draw(trees)];
}
