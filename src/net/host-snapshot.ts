// A machine that is not the lab's own (the hosts backend's nodes) is given back
// as it was: its kernel state and the files a lab writes are read once before
// the lab (one round trip), again at teardown, and only what is new is removed:
// links, routes (blackhole ones too), rules, qdiscs, namespaces, mounts,
// iptables rules and chains, nftables tables, files. The sysctls a node sets are put back to their old values. Nothing that
// was there before is ever deleted: the host's addresses, routes and default
// route stay as they were.
import { shArgv, shQuote } from './node-scripts.js';

export interface HostSnapshot {
  links: string[];
  /** Each link's MTU and transmit queue length: a qdisc added and removed again can change the queue length (it did on veths). */
  linkSettings: Record<string, { mtu: number; txqlen: number }>;
  /** One line per route, as `ip route del` takes it back: "10.10.1.0/24 via 172.31.7.12 dev eth0 table main". */
  routes: string[];
  rules: number[];
  /** "dev kind parent": qdiscs on links, so one added to a link of the host's own is found. */
  qdiscs: string[];
  netns: string[];
  mounts: string[];
  /** iptables-save per table: chain names with policies, and rules. */
  iptables: Record<string, { chains: Record<string, string>; rules: string[] }>;
  /** nftables tables as "family name" (kube-proxy's `ip kube-proxy`); absent in snapshots taken before it was read. */
  nftTables?: string[];
  sysctls: Record<string, string>;
  files: string[];
}

/** Where labs write on a node, and how deep to look (`/var/log` holds the host's own logs too: only its top level). */
export const FILE_ROOTS: [string, number][] = [
  ['/etc/cni', 4],
  ['/var/lib/cni', 4],
  ['/etc/cilium', 2],
  ['/etc/calico', 4],
  ['/run/flannel', 2],
  ['/run/cilium', 2],
  ['/run/calico', 2],
  ['/run/wireguard', 2],
  ['/run/cnilab', 4],
  ['/run/cnilab-cnid', 2],
  ['/run/netns', 1],
  ['/var/lib/etcd', 1],
  ['/var/lib/cilium', 2],
  ['/var/lib/kube-proxy', 2],
  ['/run/kube-proxy', 2],
  ['/var/log', 1],
  ['/sys/fs/bpf', 3],
];

const SECTIONS = ['links', 'routes', 'rules', 'qdiscs', 'netns', 'mounts', 'iptables', 'nft', 'sysctls', 'files'] as const;

/** One script that prints every section, each after a `### name` line; $@ are the sysctls to read. */
export function snapshotArgv(sysctls: string[]): string[] {
  const find = FILE_ROOTS.map(([dir, depth]) => `[ -e ${dir} ] && find ${dir} -xdev -maxdepth ${depth} 2>/dev/null`).join('; ');
  const script = [
    'echo "### links"; ip -j link show',
    'echo "### routes"; ip -j -4 route show table all',
    'echo "### rules"; ip -j -4 rule show',
    'echo "### qdiscs"; tc -j qdisc show',
    'echo "### netns"; ip netns list 2>/dev/null',
    'echo "### mounts"; cut -d" " -f5 /proc/self/mountinfo',
    'echo "### iptables"; iptables-save 2>/dev/null',
    'echo "### nft"; nft list tables 2>/dev/null',
    'echo "### sysctls"; for k in "$@"; do echo "$k=$(sysctl -n "$k" 2>/dev/null)"; done',
    `echo "### files"; ${find}`,
    'true',
  ].join('\n');
  return shArgv(script, ...sysctls);
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  type?: string;
}

/** Route types a lab adds without a link to take them away (Calico's blackhole route per block). */
const LINKLESS_TYPES = new Set(['blackhole', 'unreachable', 'prohibit', 'throw']);

/** A route as `ip route del` takes it; local and broadcast routes belong to addresses, which go with their links. */
function routeLine(r: IpRoute): string | undefined {
  const type = r.type ?? 'unicast';
  if (type !== 'unicast' && !LINKLESS_TYPES.has(type)) return undefined;
  const table = r.table ?? 'main';
  if (table === 'local') return undefined;
  return [...(type === 'unicast' ? [] : [type]), r.dst, ...(r.gateway ? ['via', r.gateway] : []), ...(r.dev ? ['dev', r.dev] : []), 'table', table, ...(r.metric !== undefined ? ['metric', String(r.metric)] : [])].join(' ');
}

function parseIptables(text: string): HostSnapshot['iptables'] {
  const tables: HostSnapshot['iptables'] = {};
  let current: { chains: Record<string, string>; rules: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) tables[line.slice(1).trim()] = current = { chains: {}, rules: [] };
    else if (line.startsWith(':') && current) {
      const [name, policy] = line.slice(1).split(' ');
      current.chains[name] = policy;
    } else if (line.startsWith('-A ') && current) current.rules.push(line);
  }
  return tables;
}

export function parseSnapshot(stdout: string): HostSnapshot {
  const parts: Record<string, string> = {};
  let name = '';
  for (const line of stdout.split('\n')) {
    const m = /^### (\w+)$/.exec(line);
    if (m) parts[(name = m[1])] = '';
    else if (name) parts[name] = (parts[name] ?? '') + line + '\n';
  }
  for (const s of SECTIONS) if (!(s in parts)) throw new Error(`the host's state could not be read: no "${s}" section in ${JSON.stringify(stdout.slice(0, 200))}`);
  const json = <T>(s: string): T[] => (parts[s].trim() ? (JSON.parse(parts[s]) as T[]) : []);
  const lines = (s: string) => parts[s].split('\n').map((l) => l.trim()).filter(Boolean);
  return {
    links: json<{ ifname: string }>('links').map((l) => l.ifname),
    linkSettings: Object.fromEntries(json<{ ifname: string; mtu: number; txqlen?: number }>('links').map((l) => [l.ifname, { mtu: l.mtu, txqlen: l.txqlen ?? 0 }])),
    routes: json<IpRoute>('routes').map(routeLine).filter((r): r is string => r !== undefined),
    rules: json<{ priority: number }>('rules').map((r) => r.priority),
    qdiscs: json<{ dev: string; kind: string; parent?: string; root?: boolean }>('qdiscs').map((q) => `${q.dev} ${q.kind} ${q.root ? 'root' : (q.parent ?? '')}`),
    netns: lines('netns').map((l) => l.split(' ')[0]),
    mounts: lines('mounts'),
    iptables: parseIptables(parts.iptables),
    nftTables: lines('nft').map((l) => l.replace(/^table /, '')),
    sysctls: Object.fromEntries(lines('sysctls').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])),
    files: lines('files'),
  };
}

/** The words of an iptables-save rule line ("-A CHAIN ... --comment \"a b\""), as iptables takes them. */
export function ruleWords(line: string): string[] {
  return [...line.matchAll(/"((?:\\.|[^"\\])*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]));
}

/** Mount points where labs mount (bpffs, namespaces, pod hostnames): never one of the host's own elsewhere. */
function labMounts(mounts: string[]): string[] {
  return mounts.filter((m) => FILE_ROOTS.some(([dir]) => m === dir || m.startsWith(`${dir}/`)));
}

/** What `after` has that `before` had not (each entry counted, so a duplicated rule is found too). */
function added<T>(before: T[], after: T[]): T[] {
  const left = new Map<T, number>();
  for (const b of before) left.set(b, (left.get(b) ?? 0) + 1);
  return after.filter((a) => {
    const n = left.get(a) ?? 0;
    if (n > 0) left.set(a, n - 1);
    return n === 0;
  });
}

/** Only the topmost of new paths: removing a new directory takes what is in it. */
function topmost(paths: string[]): string[] {
  const set = new Set(paths);
  return paths.filter((p) => {
    for (let d = p.slice(0, p.lastIndexOf('/')); d.length > 0; d = d.slice(0, d.lastIndexOf('/'))) if (set.has(d)) return false;
    return true;
  });
}

/**
 * The commands that give the host back as `before` found it, from what `after`
 * shows now: namespaces and mounts first (they hold links), then links, routes,
 * rules, qdiscs, iptables, sysctls, files. Each may fail harmlessly (a route
 * went with its link); the caller reads the host again to see what is left.
 */
export function restoreCommands(before: HostSnapshot, after: HostSnapshot): string[][] {
  const cmds: { argv: string[] }[] = [];
  for (const ns of added(before.netns, after.netns)) {
    cmds.push({ argv: shArgv('for p in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; ip netns del "$1"', ns) });
  }
  for (const m of labMounts(added(before.mounts, after.mounts)).reverse()) cmds.push({ argv: ['umount', '-l', m] });
  const gone = new Set(added(before.links, after.links));
  for (const l of gone) cmds.push({ argv: ['ip', 'link', 'del', l] });
  for (const r of added(before.routes, after.routes)) {
    if (gone.has(/ dev (\S+)/.exec(r)?.[1] ?? '')) continue;
    cmds.push({ argv: ['ip', 'route', 'del', ...r.split(' ')] });
  }
  for (const p of added(before.rules, after.rules)) cmds.push({ argv: ['ip', 'rule', 'del', 'priority', String(p)] });
  for (const q of added(before.qdiscs, after.qdiscs)) {
    const [dev, kind, parent] = q.split(' ');
    if (gone.has(dev) || !before.links.includes(dev)) continue;
    if (kind === 'clsact' || kind === 'ingress') cmds.push({ argv: ['tc', 'qdisc', 'del', 'dev', dev, kind] });
    else if (parent === 'root') cmds.push({ argv: ['tc', 'qdisc', 'del', 'dev', dev, 'root'] });
  }
  for (const [dev, was] of Object.entries(before.linkSettings ?? {})) {
    const now = after.linkSettings?.[dev];
    if (now && now.mtu !== was.mtu) cmds.push({ argv: ['ip', 'link', 'set', 'dev', dev, 'mtu', String(was.mtu)] });
    if (now && now.txqlen !== was.txqlen) cmds.push({ argv: ['ip', 'link', 'set', 'dev', dev, 'txqueuelen', String(was.txqlen)] });
  }
  for (const [table, now] of Object.entries(after.iptables)) {
    const was = before.iptables[table] ?? { chains: {}, rules: [] };
    // One command per rule: iptables-restore would drop a whole table's changes for one rule already gone.
    for (const r of added(was.rules, now.rules)) cmds.push({ argv: ['iptables', '-t', table, '-D', ...ruleWords(r).slice(1)] });
    const newChains = Object.keys(now.chains).filter((c) => !(c in was.chains));
    for (const c of newChains) cmds.push({ argv: ['iptables', '-t', table, '-F', c] });
    for (const c of newChains) cmds.push({ argv: ['iptables', '-t', table, '-X', c] });
    for (const [c, p] of Object.entries(was.chains)) if (p !== '-' && now.chains[c] !== undefined && now.chains[c] !== p) cmds.push({ argv: ['iptables', '-t', table, '-P', c, p] });
    // iptables-nft makes a table on first use and keeps it: one the lab brought goes too (legacy tables cannot, and stay empty).
    if (!before.iptables[table]) cmds.push({ argv: ['nft', 'delete', 'table', 'ip', table] });
  }
  // Tables made in nftables itself (kube-proxy's nftables mode); a snapshot without them cannot say which are new.
  if (before.nftTables && after.nftTables) {
    const viaIptables = new Set(Object.keys(after.iptables).map((t) => `ip ${t}`));
    for (const t of added(before.nftTables, after.nftTables)) if (!viaIptables.has(t)) cmds.push({ argv: ['nft', 'delete', 'table', ...t.split(' ')] });
  }
  for (const [k, v] of Object.entries(before.sysctls)) if (v !== '' && after.sysctls[k] !== v) cmds.push({ argv: ['sysctl', '-qw', `${k}=${v}`] });
  const files = topmost(added(before.files, after.files));
  if (files.length) cmds.push({ argv: ['rm', '-rf', '--one-file-system', '--', ...files] });
  return cmds.map((c) => c.argv);
}

/** All of restoreCommands as one script (one round trip), each line allowed to fail. */
export function restoreArgv(cmds: string[][]): string[] {
  return shArgv([...cmds.map((c) => `${c.map(shQuote).join(' ')} 2>/dev/null`), 'true'].join('\n'));
}

/** What is still there of a lab after a restore, named, for the error that says the host was not given back whole. */
export function leftOver(before: HostSnapshot, after: HostSnapshot): string[] {
  return [
    ...added(before.netns, after.netns).map((n) => `namespace ${n}`),
    ...added(before.links, after.links).map((l) => `link ${l}`),
    ...added(before.routes, after.routes).map((r) => `route ${r}`),
    ...added(before.rules, after.rules).map((r) => `rule ${r}`),
    ...Object.entries(after.iptables).flatMap(([t, now]) => added(before.iptables[t]?.rules ?? [], now.rules).map((r) => `iptables -t ${t} ${r}`)),
    ...(before.nftTables && after.nftTables ? added(before.nftTables, after.nftTables).map((t) => `nftables table ${t}`) : []),
    ...topmost(added(before.files, after.files)).map((f) => `file ${f}`),
    ...labMounts(added(before.mounts, after.mounts)).map((m) => `mount ${m}`),
  ];
}
