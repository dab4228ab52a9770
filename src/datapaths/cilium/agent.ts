// A cilium-like node agent. It loads the eBPF datapath (bpf/lxc.c and
// bpf/node.c, compiled by the runner), pins programs and maps in the node's own
// BPF filesystem, attaches the node's programs with tc, and fills the maps: the
// pod CIDR of every other node, and each pod on this node as the CNI plugin
// registers it through the agent's API on a unix socket. Dual-stack: the IPv6
// pod CIDRs and pod addresses go in maps of their own (endpoints6,
// remote_nodes6), keyed by sixteen-byte addresses.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { Ip } from '../../net/ip.js';
import { attachIngress, deleteKeys, loadObject, updateMaps, type MapChange } from '../../net/bpf.js';
import { parseAddr, parseCidr, parseIp, parsePrefix } from '../../net/ipnet.js';
import {
  CONFIG_KEY,
  MAP_NAMES,
  ZERO_COUNTERS,
  ZERO_POLICY_VALUE,
  encodeEndpointInfo,
  encodeIdentity,
  encodeIpv4,
  encodeIpv6,
  encodeNodeConfig,
  encodePrefixKey,
  encodeRemoteKey6,
  encodeRemoteNode6,
  encodePolicyKey,
  encodePolicyState,
  encodeRemoteKey,
  encodeU32,
  type MapName,
} from './maps.js';
import { compileCilium, type CiliumView, type CompiledPolicy } from '../../policy/cilium.js';
import type { Endpoint, EndpointSpec } from './api.js';

export interface ClusterNode {
  name: string;
  address: string;
  podCIDR: string;
  /** Dual-stack: the node's IPv6 pod CIDR */
  podCIDRv6?: string;
  /** Its IPv6 underlay address: the next hop of its IPv6 pods in native routing */
  addressV6?: string;
}

export interface CiliumAgentConfig {
  node: string;
  /** This node's underlay address */
  nodeIp: string;
  mode: 'native' | 'vxlan';
  /** The underlay device: programs on it take in traffic for this node's pods */
  underlayDevice: string;
  /** Every node with its pod CIDR, this one included */
  nodes: ClusterNode[];
  /** This node's own BPF filesystem; the agent pins below <bpffs>/cilium */
  bpffs: string;
  /** Compiled objects */
  objects: { lxc: string; node: string };
  socket: string;
  /** Written once the datapath is up and the API answers */
  readyFile: string;
  /** Written after every policy change: identities, entries and isolated endpoints as programmed (optional). */
  policyFile?: string;
  vni: number;
  tunnelPort: number;
}

export const TUNNEL_DEVICE = 'cilium_vxlan';

/** Where a node's pinned objects live, below its BPF filesystem. */
export function pinLayout(bpffs: string) {
  const root = join(bpffs, 'cilium');
  return {
    root,
    maps: join(root, 'maps'),
    map: (name: MapName) => join(root, 'maps', name),
    program: (object: 'lxc' | 'node', name: string) => join(root, 'progs', object, name),
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    msg: string,
  ) {
    super(msg);
  }
}

export class CiliumAgent {
  readonly ip = new Ip();
  readonly endpoints = new Map<string, Endpoint>();
  readonly pins;
  private server?: Server;
  /** Changes to the datapath, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private log: (msg: string) => void;
  /** The cluster as last pushed (pods, namespaces, policies), and the map keys programmed from it. */
  private view?: CiliumView;
  private programmed = { ipcache: new Map<string, Uint8Array>(), policy: new Map<string, Uint8Array>(), state: new Map<string, Uint8Array>() };

  constructor(
    readonly cfg: CiliumAgentConfig,
    log?: (msg: string) => void,
  ) {
    this.pins = pinLayout(cfg.bpffs);
    this.log = log ?? ((m) => console.log(`${new Date().toISOString()} ${m}`));
  }

  async start(): Promise<void> {
    await this.loadDatapath();
    const tunnelIfindex = this.cfg.mode === 'vxlan' ? await this.setupTunnel() : 0;
    const remotes = this.cfg.nodes.filter((n) => n.address !== this.cfg.nodeIp);
    // IPv6 on every device made from now on (a container node may start with it off), and
    // forwarded: bpf_fib_lookup answers for IPv6 only where the node forwards IPv6.
    if (this.cfg.nodes.some((n) => n.podCIDRv6)) {
      await this.ip.sysctl({ 'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0, 'net.ipv6.conf.all.forwarding': 1 });
    }
    await updateMaps([
      { map: this.pins.map('config'), op: 'update', key: CONFIG_KEY, value: encodeNodeConfig({ mode: this.cfg.mode, tunnelIfindex, vni: this.cfg.vni }) },
      ...remotes.map((n): MapChange => ({ map: this.pins.map('remote_nodes'), op: 'update', key: encodeRemoteKey(n.podCIDR), value: encodeIpv4(n.address) })),
      ...remotes
        .filter((n) => n.podCIDRv6)
        .map((n): MapChange => ({ map: this.pins.map('remote_nodes6'), op: 'update', key: encodeRemoteKey6(n.podCIDRv6!), value: encodeRemoteNode6(n.address, n.addressV6) })),
    ]);
    const tunnel = this.cfg.mode === 'vxlan' ? ` (tunnel ${TUNNEL_DEVICE}, VNI ${this.cfg.vni})` : '';
    for (const n of remotes) {
      this.log(`remote node ${n.name}: ${n.podCIDR} via ${n.address}${tunnel}`);
      if (n.podCIDRv6) this.log(`remote node ${n.name}: ${n.podCIDRv6} via ${this.cfg.mode === 'vxlan' ? n.address : n.addressV6}${tunnel}`);
    }
    await attachIngress(undefined, this.cfg.underlayDevice, this.pins.program('node', 'from_netdev'));
    await this.listen();
    this.writeReady();
    this.log(`datapath ${this.cfg.mode} up; maps pinned in ${this.pins.maps}; API on ${this.cfg.socket}`);
  }

  /** Both objects loaded; the node object uses the maps the pod object created. */
  private async loadDatapath(): Promise<void> {
    // A restarted agent starts from a clean slate: the pods register again.
    rmSync(this.pins.root, { recursive: true, force: true });
    mkdirSync(join(this.pins.root, 'progs'), { recursive: true });
    await loadObject(this.cfg.objects.lxc, dirname(this.pins.program('lxc', '_')), { pinMaps: this.pins.maps });
    const reuseMaps = Object.fromEntries(MAP_NAMES.map((m) => [m, this.pins.map(m)]));
    await loadObject(this.cfg.objects.node, dirname(this.pins.program('node', '_')), { reuseMaps });
  }

  /** One metadata-mode VXLAN device for every remote node: the programs set the tunnel key per packet. */
  private async setupTunnel(): Promise<number> {
    await this.ip.deleteLink(TUNNEL_DEVICE);
    await this.ip.batch([
      ['link', 'add', TUNNEL_DEVICE, 'type', 'vxlan', 'external', 'dstport', String(this.cfg.tunnelPort), 'nolearning'],
      ['link', 'set', TUNNEL_DEVICE, 'up'],
    ]);
    await attachIngress(undefined, TUNNEL_DEVICE, this.pins.program('node', 'from_overlay'));
    const link = await this.ip.link(TUNNEL_DEVICE);
    return link!.ifindex;
  }

  private writeReady(): void {
    const ready = { node: this.cfg.node, mode: this.cfg.mode, pins: this.pins.root, maps: Object.fromEntries(MAP_NAMES.map((m) => [m, this.pins.map(m)])) };
    mkdirSync(dirname(this.cfg.readyFile), { recursive: true });
    writeFileSync(this.cfg.readyFile + '.tmp', JSON.stringify(ready, null, 2));
    renameSync(this.cfg.readyFile + '.tmp', this.cfg.readyFile);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** A pod on this node: its lxc device gets the program, the maps get its addresses and a zeroed counter. */
  async addEndpoint(id: string, spec: EndpointSpec): Promise<Endpoint> {
    const ep = { id, ...checkSpec(spec) };
    return this.serialize(async () => {
      await attachIngress(undefined, ep.ifname, this.pins.program('lxc', 'from_container'));
      const key = encodeIpv4(ep.ip);
      const info = encodeEndpointInfo(ep);
      // Counters first, so the first packet the pod sends is counted.
      await updateMaps([
        { map: this.pins.map('counters'), op: 'update', key, value: ZERO_COUNTERS },
        { map: this.pins.map('lxc_ifindex'), op: 'update', key: encodeU32(ep.ifindex), value: info },
        ...(ep.ip6 ? [{ map: this.pins.map('endpoints6'), op: 'update', key: encodeIpv6(ep.ip6), value: info } as MapChange] : []),
        { map: this.pins.map('endpoints'), op: 'update', key, value: info },
      ]);
      this.endpoints.set(id, ep);
      this.log(`endpoint ${id.slice(0, 12)} (${ep.pod ?? 'pod'}): ${[ep.ip, ep.ip6].filter(Boolean).join(' ')} on ${ep.ifname} (ifindex ${ep.ifindex})`);
      if (this.view) await this.programPolicy(this.view);
      return ep;
    });
  }

  /** Forget a pod; false when it was not known. */
  async removeEndpoint(id: string): Promise<boolean> {
    return this.serialize(async () => {
      const ep = this.endpoints.get(id);
      if (!ep) return false;
      const key = encodeIpv4(ep.ip);
      await deleteKeys(this.pins.map('endpoints'), [key]);
      if (ep.ip6) await deleteKeys(this.pins.map('endpoints6'), [encodeIpv6(ep.ip6)]);
      await deleteKeys(this.pins.map('lxc_ifindex'), [encodeU32(ep.ifindex)]);
      await deleteKeys(this.pins.map('counters'), [key]);
      this.endpoints.delete(id);
      this.log(`endpoint ${id.slice(0, 12)} removed (${[ep.ip, ep.ip6].filter(Boolean).join(' ')})`);
      if (this.view) await this.programPolicy(this.view);
      return true;
    });
  }

  /** The cluster's pods, namespaces and policies, pushed by the control plane: identities, ipcache and policy maps follow. */
  async setPolicy(view: CiliumView): Promise<CompiledPolicy> {
    return this.serialize(() => this.programPolicy(view));
  }

  /** Only what changed is written; entries that stay keep their counters. */
  private async programPolicy(view: CiliumView): Promise<CompiledPolicy> {
    const local = [...this.endpoints.values()].map((e) => ({ ip: e.ip, ifindex: e.ifindex }));
    const c = compileCilium(view, local);
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const want = {
      ipcache: new Map(c.ipcache.map((e) => [encodePrefixKey(e.cidr), encodeIdentity(e.identity)] as const).map(([k, v]) => [hex(k) + hex(v), k])),
      policy: new Map(c.entries.map((e) => encodePolicyKey(e)).map((k) => [hex(k), k])),
      state: new Map(c.state.map((s) => [encodeU32(s.ifindex), encodePolicyState({ ingress: s.ingress.length > 0, egress: s.egress.length > 0 })] as const).map(([k, v]) => [hex(k) + hex(v), k])),
    };
    const map = (m: 'ipcache' | 'policy' | 'policy_state') => this.pins.map(m);
    // An IPv6 prefix key (20 bytes) goes in ipcache6.
    const ipcacheOf = (key: Uint8Array) => this.pins.map(key.length === 20 ? 'ipcache6' : 'ipcache');
    const changes: MapChange[] = [
      ...c.ipcache
        .map((e) => ({ key: encodePrefixKey(e.cidr), value: encodeIdentity(e.identity) }))
        .filter((e) => !this.programmed.ipcache.has(hex(e.key) + hex(e.value)))
        .map((e): MapChange => ({ map: ipcacheOf(e.key), op: 'update', ...e })),
      ...[...want.policy].filter(([h]) => !this.programmed.policy.has(h)).map(([, key]): MapChange => ({ map: map('policy'), op: 'update', key, value: ZERO_POLICY_VALUE })),
      // Isolation last, so that an endpoint is never isolated before its allowed entries are there.
      ...c.state
        .map((s) => ({ key: encodeU32(s.ifindex), value: encodePolicyState({ ingress: s.ingress.length > 0, egress: s.egress.length > 0 }) }))
        .filter((s) => !this.programmed.state.has(hex(s.key) + hex(s.value)))
        .map((s): MapChange => ({ map: map('policy_state'), op: 'update', ...s })),
    ];
    await updateMaps(changes);
    const stale = (kind: 'ipcache' | 'policy' | 'state') => [...this.programmed[kind]].filter(([h]) => !want[kind].has(h)).map(([, k]) => k);
    const keep = (keys: Uint8Array[], current: Map<string, Uint8Array>) => keys.filter((k) => ![...current.values()].some((w) => hex(w) === hex(k)));
    // A key whose value changed was rewritten above; only keys no longer wanted at all go.
    await deleteKeys(map('policy_state'), keep(stale('state'), want.state));
    await deleteKeys(map('policy'), stale('policy'));
    const staleIpcache = keep(stale('ipcache'), want.ipcache);
    await deleteKeys(map('ipcache'), staleIpcache.filter((k) => k.length !== 20));
    await deleteKeys(this.pins.map('ipcache6'), staleIpcache.filter((k) => k.length === 20));
    this.programmed = want;
    this.view = view;
    if (this.cfg.policyFile) {
      mkdirSync(dirname(this.cfg.policyFile), { recursive: true });
      writeFileSync(this.cfg.policyFile + '.tmp', JSON.stringify(c, null, 2));
      renameSync(this.cfg.policyFile + '.tmp', this.cfg.policyFile);
    }
    this.log(`policy: ${view.policies.length} policies, ${c.identities.length} identities, ${c.state.length} isolated endpoints, ${c.entries.length} policy map entries`);
    return c;
  }

  private async listen(): Promise<void> {
    rmSync(this.cfg.socket, { force: true });
    mkdirSync(dirname(this.cfg.socket), { recursive: true });
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.cfg.socket, resolve);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/v1/healthz') return reply(200, { status: 'ok', mode: this.cfg.mode, endpoints: this.endpoints.size });
      if (req.method === 'GET' && path === '/v1/endpoint') return reply(200, [...this.endpoints.values()]);
      if (req.method === 'PUT' && path === '/v1/policy') {
        const c = await this.setPolicy((await readJson(req)) as CiliumView);
        return reply(200, { identities: c.identities.length, entries: c.entries.length, isolated: c.state.length });
      }
      const m = /^\/v1\/endpoint\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(path);
      if (!m) throw new HttpError(404, `no such API path: ${req.method} ${path}`);
      const id = m[1];
      if (req.method === 'GET') {
        const ep = this.endpoints.get(id);
        return ep ? reply(200, ep) : reply(404, { error: `no endpoint ${id}` });
      }
      if (req.method === 'PUT') return reply(201, await this.addEndpoint(id, (await readJson(req)) as EndpointSpec));
      if (req.method === 'DELETE') return (await this.removeEndpoint(id)) ? reply(200, { deleted: id }) : reply(404, { error: `no endpoint ${id}` });
      throw new HttpError(405, `${req.method} is not allowed on ${path}`);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) this.log(`API error: ${(e as Error).message}`);
      reply(status, { error: (e as Error).message });
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(new HttpError(400, `the request body is not JSON: ${(e as Error).message}`));
      }
    });
  });
}

/** The fields a registration must have, each checked with the reason named. */
function checkSpec(s: EndpointSpec): EndpointSpec {
  const bad = (field: string, why: string) => new HttpError(400, `endpoint.${field}: ${why}`);
  if (typeof s !== 'object' || s === null) throw new HttpError(400, 'the endpoint must be a JSON object');
  if (typeof s.ip !== 'string' || parseIp(s.ip) === undefined) throw bad('ip', `${JSON.stringify(s.ip)} is not an IPv4 address`);
  if (s.ip6 !== undefined && (typeof s.ip6 !== 'string' || parseAddr(s.ip6)?.family !== 6)) throw bad('ip6', `${JSON.stringify(s.ip6)} is not an IPv6 address`);
  if (typeof s.ifname !== 'string' || !/^[\w.-]{1,15}$/.test(s.ifname)) throw bad('ifname', `${JSON.stringify(s.ifname)} is not an interface name`);
  if (!Number.isInteger(s.ifindex) || s.ifindex <= 0) throw bad('ifindex', `${JSON.stringify(s.ifindex)} is not an interface index`);
  for (const f of ['mac', 'nodeMac'] as const) {
    if (typeof s[f] !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s[f])) throw bad(f, `${JSON.stringify(s[f])} is not a MAC address`);
  }
  return { ip: s.ip, ...(s.ip6 ? { ip6: s.ip6 } : {}), ifname: s.ifname, ifindex: s.ifindex, mac: s.mac.toLowerCase(), nodeMac: s.nodeMac.toLowerCase(), ...(s.pod ? { pod: String(s.pod) } : {}) };
}

/** The agent's configuration file, checked. */
export function checkConfig(raw: unknown, file: string): CiliumAgentConfig {
  const c = raw as CiliumAgentConfig;
  const bad = (field: string, why: string) => new Error(`${file}: ${field}: ${why}`);
  if (c.mode !== 'native' && c.mode !== 'vxlan') throw bad('mode', `"${c.mode}" is neither native nor vxlan`);
  if (parseIp(c.nodeIp) === undefined) throw bad('nodeIp', `"${c.nodeIp}" is not an IPv4 address`);
  if (!Array.isArray(c.nodes)) throw bad('nodes', 'must be a list');
  c.nodes.forEach((n, i) => {
    if (!parseCidr(n.podCIDR)) throw bad(`nodes[${i}].podCIDR`, `"${n.podCIDR}" is not a CIDR`);
    if (parseIp(n.address) === undefined) throw bad(`nodes[${i}].address`, `"${n.address}" is not an IPv4 address`);
    if (n.podCIDRv6 !== undefined && parsePrefix(n.podCIDRv6)?.family !== 6) throw bad(`nodes[${i}].podCIDRv6`, `"${n.podCIDRv6}" is not an IPv6 CIDR`);
    if (n.addressV6 !== undefined && parseAddr(n.addressV6)?.family !== 6) throw bad(`nodes[${i}].addressV6`, `"${n.addressV6}" is not an IPv6 address`);
  });
  for (const f of ['bpffs', 'socket', 'readyFile', 'underlayDevice'] as const) if (typeof c[f] !== 'string' || !c[f]) throw bad(f, 'is required');
  if (!c.objects?.lxc || !c.objects?.node) throw bad('objects', 'needs the lxc and node object files');
  // sockaddr_un holds 108 bytes with the terminating zero.
  if (Buffer.byteLength(c.socket) > 107) throw bad('socket', `${c.socket} is longer than a unix socket path may be (107 bytes); use a shorter CNILAB_STATE_DIR or instance name`);
  return c;
}
