// Every command (or file) cnilab needs, the Debian package that ships it, and
// where it runs: on the machine running cnilab (`host`), on each node (`node`),
// or both. Preflight, the benchmark and the docker node image all read this one
// table; a datapath names the tools it needs from it.

export type ToolPlace = 'host' | 'node';

export interface Tool {
  package: string;
  on: ToolPlace[];
}

const both: ToolPlace[] = ['host', 'node'];

export const TOOLS: Record<string, Tool> = {
  // What every lab uses.
  ip: { package: 'iproute2', on: both },
  bridge: { package: 'iproute2', on: both },
  tc: { package: 'iproute2', on: both },
  ss: { package: 'iproute2', on: both },
  nsenter: { package: 'util-linux', on: both },
  unshare: { package: 'util-linux', on: both },
  sysctl: { package: 'procps', on: both },
  iptables: { package: 'iptables', on: both },
  'iptables-restore': { package: 'iptables', on: both },
  ipset: { package: 'ipset', on: both },
  curl: { package: 'curl', on: both },
  getent: { package: 'libc-bin', on: both },
  ping: { package: 'iputils-ping', on: both },
  tcpdump: { package: 'tcpdump', on: both },
  nginx: { package: 'nginx', on: both },
  // The benchmark's measuring tools run beside the pods.
  iperf3: { package: 'iperf3', on: both },
  sockperf: { package: 'sockperf', on: both },
  ethtool: { package: 'ethtool', on: both },
  // Datapaths' control planes.
  etcd: { package: 'etcd-server', on: both },
  etcdctl: { package: 'etcd-client', on: both },
  bird: { package: 'bird2', on: both },
  birdc: { package: 'bird2', on: both },
  bpftool: { package: 'bpftool', on: both },
  wg: { package: 'wireguard-tools', on: both },
  'wireguard-go': { package: 'wireguard-go', on: both },
  // Services: kube-proxy's nftables mode and the cluster DNS.
  nft: { package: 'nftables', on: both },
  dnsmasq: { package: 'dnsmasq-base', on: both },
  // The hosts backend's tests reach node-image containers through Debian's sshd.
  '/usr/sbin/sshd': { package: 'openssh-server', on: ['node'] },
  // eBPF programs are compiled once, where cnilab runs, then loaded on every node.
  clang: { package: 'clang', on: ['host'] },
  '/usr/include/bpf/bpf_helpers.h': { package: 'libbpf-dev', on: ['host'] },
  '/usr/include/linux/bpf.h': { package: 'linux-libc-dev', on: ['host'] },
};

/** What every lab needs, whatever its datapath. */
export const LAB_TOOLS = ['ip', 'bridge', 'nsenter', 'unshare', 'sysctl', 'iptables', 'curl', 'ping', 'tcpdump', 'nginx'];
/** What a lab with services runs beside its datapath's tools. */
export const SERVICE_TOOLS = ['iptables-restore', 'nft', 'dnsmasq', 'getent'];
/** What `cnilab bench` runs. */
export const BENCH_TOOLS = ['iperf3', 'sockperf', 'ethtool', 'ss', 'ping'];

export function toolPackage(tool: string): string {
  const t = TOOLS[tool];
  if (!t) throw new Error(`tool "${tool}" is not in the tool table (src/lab/tools.ts)`);
  return t.package;
}

/** The Debian packages behind some tools, each once, sorted. */
export function packagesOf(tools: string[]): string[] {
  return [...new Set(tools.map(toolPackage))].sort();
}

/** Every package a node needs: each tool that runs on nodes. */
export function nodePackages(): string[] {
  return packagesOf(Object.keys(TOOLS).filter((t) => TOOLS[t].on.includes('node')));
}
