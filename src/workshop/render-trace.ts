// A trace for people: one line per hop, the kernel command that answered it
// underneath (to type in `cnilab shell`), and with --capture the packets each
// interface saw. Pure: a TraceReport in, text out.
import type { TraceReport } from './trace-run.js';
import type { Hop } from './trace.js';

export interface TextStyle {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  red(s: string): string;
}

export const plain: TextStyle = { bold: (s) => s, dim: (s) => s, green: (s) => s, red: (s) => s };

const place = (at: string) => (at.startsWith('pod/') ? at.slice(4) : at);

export function formatTrace(r: TraceReport, style: TextStyle = plain): string[] {
  const lines: string[] = [];
  const end = (e: TraceReport['from']) => `${e.ns.startsWith('pod/') ? 'pod' : 'node'} ${place(e.ns)} (${e.ip})`;
  lines.push(style.bold(`trace ${end(r.from)} → ${end(r.to)} in ${r.lab}${r.family === 6 ? ' over IPv6' : ''}`));
  if (r.service) {
    const how = r.service.chosen === 'answered' ? `${r.service.endpoint} answered a request to it` : `traced to its first endpoint, ${r.service.endpoint} (the proxy picks per connection)`;
    lines.push(`service ${r.service.name} at ${r.service.frontend}, kube-proxy ${r.service.mode} mode: ${how}; step "nat" is the translation, the rest the pod-to-pod path`);
  }
  const whereW = Math.max(5, ...r.hops.map((h) => place(h.at).length));
  const kindW = Math.max(...r.hops.map((h) => h.kind.length), 4);
  const counted = r.hops.some((h) => h.packets !== undefined);
  const sent = r.capture?.sent;
  r.hops.forEach((h: Hop, i) => {
    const n = String(i + 1).padStart(2);
    const pk = counted ? `${packets(h, sent, style)} ` : '';
    lines.push(`${n} ${pk}${place(h.at).padEnd(whereW)}  ${style.bold(h.kind.padEnd(kindW))}  ${h.text}`);
    if (h.kernel) lines.push(`${' '.repeat(3 + (counted ? 6 : 0) + whereW + 2 + kindW + 2)}${style.dim(`$ ${h.kernel}`)}`);
  });
  const nat = r.nat ? `; source NAT on ${place(r.nat.at)}: ${place(r.to.ns)} sees ${r.nat.to}, not ${r.from.ip}` : '';
  if (r.delivered) lines.push(style.green(`✔ delivered in ${r.hops.length} steps${r.tunnels.length ? `, through ${r.tunnels.map((t) => (t.via === 'vxlan' ? `VXLAN${t.dst.includes(':') ? ' over IPv6' : ''} (VNI ${t.vni}, UDP ${t.port})` : `a TUN device and UDP${t.port ? ` ${t.port}` : ''}`)).join(', ')}` : ', no encapsulation'}${nat}`));
  else lines.push(style.red(`✘ ${r.problem ?? 'the walk stopped'}`));
  if (!r.reachable) lines.push(style.red('  note: the first ping got no answer; the path above is where the kernel would send it'));
  for (const d of r.policyDrops ?? []) {
    const who = d.pod ? `pod ${d.pod}` : 'the pod';
    lines.push(style.red(`✘ dropped by NetworkPolicy on node ${d.node}: ${d.direction} of ${who} is isolated by ${d.policies.join(', ') || 'a policy'} and no rule allows it (${d.counter} counted ${d.packets})`));
  }
  if (r.capture) {
    const c = r.capture;
    lines.push(
      c.allSeen
        ? style.green(`✔ capture: all ${c.sent} pings seen at every interface of the path (${c.received}/${c.sent} answered)`)
        : style.red(`✘ capture: not every interface saw all ${c.sent} pings (${c.received}/${c.sent} answered); the counts above show where they stopped`),
    );
    if (c.beyond) {
      lines.push(
        c.beyond.length
          ? `  beyond the walk, the pings were seen on: ${c.beyond.map((b) => `${place(b.at)} ${b.device} ${b.packets}/${c.sent}`).join(' · ')}`
          : '  beyond the walk, no other interface of the lab saw them',
      );
    }
  }
  return lines;
}

function packets(h: Hop, sent: number | undefined, style: TextStyle): string {
  if (h.packets === undefined) return '     ';
  const text = `${h.packets}/${sent ?? '?'}`.padStart(5);
  return h.packets === sent ? style.green(text) : style.red(text);
}
