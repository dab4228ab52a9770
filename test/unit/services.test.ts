// Services as data: ClusterIPs, endpoints, DNS records, the rules each proxy mode
// writes, and lab-file mistakes named by file, line and field.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { allocateClusterIPs, dnsRecords, dnsService, endpointsOf, podResolvConf, serviceStates, type ServiceSpec, type ServiceState } from '../../src/services/model.js';
import { hashName, iptablesRules, ownsChain, svcChain } from '../../src/services/iptables-rules.js';
import { nftablesRules, nftablesScript, nftablesState } from '../../src/services/nftables-rules.js';
import { IdAllocator, SVC_FLAG, decodeLbBackend, encodeLbKey, encodeU16Key, encodeU32Key, lbEntries } from '../../src/services/ebpf-maps.js';
import { labErrorMessage } from '../helpers/errors.js';
import { parseLab } from '../../src/datapaths/index.js';

const spec = (name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name,
  namespace: 'default',
  selector: 'web',
  type: 'ClusterIP',
  sessionAffinity: 'None',
  ports: [{ port: 80, protocol: 'TCP' }],
  ...extra,
});
const pods = [
  { name: 'web-10', node: 'worker', workload: 'web', ip: '10.10.1.9', status: 'Running' },
  { name: 'web-2', node: 'master', workload: 'web', ip: '10.10.0.3', status: 'Running' },
  { name: 'web-1', node: 'worker', workload: 'web', ip: '10.10.1.2', status: 'Running' },
  { name: 'web-3', node: 'master', workload: 'web', ip: '10.10.0.4', status: 'Terminating' },
  { name: 'web-4', node: 'master', workload: 'web', status: 'Pending' },
  { name: 'client-0', node: 'master', workload: 'client', ip: '10.10.0.9', status: 'Running' },
];
const web = (extra: Partial<ServiceSpec> = {}): ServiceState => serviceStates([spec('web', extra)], '10.96.0.0/12', pods)[0];

describe('services: addresses, endpoints, DNS', () => {
  it('gives kube-dns the tenth address and the lab services the next ones, in order, around a fixed one', () => {
    const ips = allocateClusterIPs([dnsService('10.96.0.0/12', 'kube-dns'), spec('a'), spec('b', { clusterIP: '10.96.0.12' }), spec('c'), spec('h', { clusterIP: 'None' })], '10.96.0.0/12');
    expect(Object.fromEntries(ips)).to.deep.equal({
      'kube-system/kube-dns': '10.96.0.10',
      'default/a': '10.96.0.11',
      'default/b': '10.96.0.12',
      'default/c': '10.96.0.13',
      'default/h': 'None',
    });
  });

  it('endpoints are the running pods of the selected workload, in name order; terminating and pending ones are not', () => {
    expect(endpointsOf('web', pods).map((e) => e.pod)).to.deep.equal(['web-1', 'web-2', 'web-10']);
  });

  it('DNS names a service by its ClusterIP, a headless one by its pods', () => {
    const states = serviceStates([spec('web'), spec('peers', { clusterIP: 'None' })], '10.96.0.0/12', pods);
    expect(dnsRecords(states)).to.equal(
      '10.96.0.11 web.default.svc.cluster.local\n10.10.1.2 peers.default.svc.cluster.local\n10.10.0.3 peers.default.svc.cluster.local\n10.10.1.9 peers.default.svc.cluster.local\n',
    );
    expect(podResolvConf('10.96.0.10')).to.equal('search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  });
});

describe('services: iptables mode', () => {
  it('names chains as kube-proxy does (sha256, base32, 16 characters)', () => {
    // The names every Kubernetes cluster shows for these service ports.
    expect(hashName('kube-system/kube-dns:dnsudp')).to.equal('TCOU7JCQXEZGVUNU');
    expect(hashName('kube-system/kube-dns:dns-tcptcp')).to.equal('ERIFXISQEP7F7OF4');
    expect(hashName('default/kubernetes:httpstcp')).to.equal('NPX46M4PTMTKRN6Y');
  });

  it('spreads three endpoints equally: 1/3, then 1/2 of the rest, then the last one unconditionally', () => {
    const s = web();
    const chain = svcChain(s, s.ports[0]);
    const rules = iptablesRules([s], '10.10.0.0/16').lines.filter((l) => l.startsWith(`-A ${chain} `));
    expect(rules[0]).to.equal(`-A ${chain} ! -s 10.10.0.0/16 -d 10.96.0.11/32 -p tcp -m comment --comment "default/web: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`);
    expect(rules.slice(1).map((r) => r.match(/--probability (\S+)/)?.[1] ?? 'rest')).to.deep.equal(['0.3333333333', '0.5000000000', 'rest']);
    expect(rules.slice(1).map((r) => r.match(/-> (\S+)"/)?.[1])).to.deep.equal(['10.10.1.2:80', '10.10.0.3:80', '10.10.1.9:80']);
  });

  it('writes a DNAT per endpoint, the nodeport jump last in KUBE-SERVICES, and masquerades by mark', () => {
    const s = web({ type: 'NodePort', ports: [{ port: 8080, targetPort: 80, nodePort: 30080, protocol: 'TCP' }] });
    const { lines } = iptablesRules([s], '10.10.0.0/16');
    expect(lines.filter((l) => l.includes('-j DNAT')).map((l) => l.split('--to-destination ')[1])).to.deep.equal(['10.10.1.2:80', '10.10.0.3:80', '10.10.1.9:80']);
    const services = lines.filter((l) => l.startsWith('-A KUBE-SERVICES'));
    expect(services[services.length - 1]).to.include('-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
    expect(lines.find((l) => l.startsWith('-A KUBE-NODEPORTS'))).to.match(/-p tcp .* --dport 30080 -j KUBE-EXT-\w{16}$/);
    expect(lines).to.include('-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000');
    expect(lines).to.include('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully');
  });

  it('ClientIP affinity checks the recent list before the dice and records the client in the endpoint chain', () => {
    const s = web({ sessionAffinity: 'ClientIP' });
    const { lines } = iptablesRules([s], '10.10.0.0/16');
    const chain = svcChain(s, s.ports[0]);
    const svcRules = lines.filter((l) => l.startsWith(`-A ${chain} `));
    expect(svcRules.slice(1, 4).every((r) => /-m recent --name (KUBE-SEP-\w+) --mask 255\.255\.255\.255 --rsource --rcheck --seconds 10800 --reap -j \1$/.test(r))).to.equal(true);
    expect(svcRules[4]).to.include('--probability 0.3333333333');
    expect(lines.filter((l) => l.includes('-m recent --set'))).to.have.length(3);
  });

  it('declares each chain it uses once; a removed endpoint\'s chain is simply absent from the next sync', () => {
    const before = iptablesRules([web()], '10.10.0.0/16').lines;
    const after = iptablesRules([{ ...web(), endpoints: web().endpoints.slice(0, 2) }], '10.10.0.0/16').lines;
    const declared = (lines: string[]) => lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1, -' - [0:0]'.length));
    expect(new Set(declared(before)).size).to.equal(declared(before).length);
    const gone = declared(before).filter((c) => !declared(after).includes(c));
    expect(gone).to.have.length(1);
    expect(gone[0]).to.match(/^KUBE-SEP-/);
    expect(after.some((l) => l.includes(gone[0]))).to.equal(false);
    // Every chain a rule jumps to or lives in is declared, and all of them are kube-proxy's.
    const used = after.flatMap((l) => [/^-A (\S+)/.exec(l)?.[1], / -j (KUBE-\S+)/.exec(l)?.[1]]).filter((c): c is string => !!c);
    for (const c of used) expect(declared(after)).to.include(c);
    expect(declared(after).every(ownsChain)).to.equal(true);
  });

  it('a service without endpoints and a headless service get no rules', () => {
    const lonely = { ...web(), endpoints: [] };
    const headless = web({ clusterIP: 'None' });
    expect(iptablesRules([lonely, headless], '10.10.0.0/16').lines.filter((l) => /KUBE-SVC|KUBE-SEP/.test(l))).to.deep.equal([]);
  });
});

describe('services: nftables mode', () => {
  it('puts each ClusterIP in the service-ips verdict map and picks an endpoint with numgen', () => {
    const s = web();
    const { script } = nftablesRules([s], '10.10.0.0/16');
    expect(script.startsWith('add table ip kube-proxy\ndelete table ip kube-proxy\ntable ip kube-proxy {')).to.equal(true);
    expect(script).to.match(/10\.96\.0\.11 \. tcp \. 80 : goto service-\w{8}-default\/web\/tcp\//);
    expect(script).to.match(/numgen random mod 3 vmap \{ 0 : goto endpoint-\w{8}-default\/web\/tcp\/__10\.10\.1\.2\/80, 1 : goto endpoint-\S+__10\.10\.0\.3\/80, 2 : goto endpoint-\S+__10\.10\.1\.9\/80 \}/);
    expect(script).to.include('meta l4proto tcp dnat to 10.10.0.3:80');
    // Declared before use: the endpoint chains come before the service chain that jumps to them, the maps after both.
    expect(script.indexOf('chain endpoint-')).to.be.lessThan(script.indexOf('chain service-'));
    expect(script.indexOf('chain service-')).to.be.lessThan(script.indexOf('map service-ips'));
  });

  it('NodePorts go through the service-nodeports map; affinity through a dynamic set with a timeout', () => {
    const s = web({ type: 'NodePort', sessionAffinity: 'ClientIP', ports: [{ port: 8080, targetPort: 80, nodePort: 30080, protocol: 'TCP' }] });
    const { script } = nftablesRules([s], '10.10.0.0/16');
    expect(script).to.match(/tcp \. 30080 : goto external-\w{8}-default\/web\/tcp\//);
    expect(script).to.match(/set affinity-\w{8}-default\/web\/tcp\/__10\.10\.0\.3\/80 \{ type ipv4_addr; flags dynamic,timeout; timeout 10800s; \}/);
    expect(script).to.match(/update @affinity-\S+ \{ ip saddr \}/);
    expect(script.indexOf('set affinity-')).to.be.lessThan(script.indexOf('chain service-'));
  });
});

describe('services: nftables mode, later syncs', () => {
  const state = (list: ServiceState[]) => nftablesState(list, '10.10.0.0/16');

  it('writes nothing when nothing changed', () => {
    expect(nftablesScript(state([web()]), state([web()])).script).to.equal('');
  });

  it('one more service: its chains and its map element, nothing else', () => {
    const more = serviceStates([spec('web'), spec('api')], '10.96.0.0/12', pods);
    const lines = nftablesScript(state(more), state([web()])).script.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('add chain '))).to.have.length(4); // a service chain, three endpoint chains
    expect(lines.filter((l) => l.startsWith('add element '))).to.deep.equal([
      `add element ip kube-proxy service-ips { 10.96.0.12 . tcp . 80 : goto ${[...state(more).chains.keys()].find((c) => c.startsWith('service-') && c.includes('/api/'))} }`,
    ]);
    expect(lines.some((l) => /^(delete|flush) /.test(l))).to.equal(false);
    // Chains exist before a rule or an element points at them.
    expect(lines.findIndex((l) => l.startsWith('add rule'))).to.equal(lines.filter((l) => l.startsWith('add chain')).length);
  });

  it('an endpoint gone: the service chain is rewritten, then the endpoint chain emptied and deleted', () => {
    const fewer = { ...web(), endpoints: web().endpoints.slice(0, 2) };
    const lines = nftablesScript(state([fewer]), state([web()])).script.trim().split('\n');
    const svc = [...state([web()]).chains.keys()].find((c) => c.startsWith('service-'))!;
    const gone = [...state([web()]).chains.keys()].find((c) => c.endsWith('__10.10.1.9/80'))!;
    expect(lines).to.deep.equal([
      `flush chain ip kube-proxy ${svc}`,
      ...state([fewer]).chains.get(svc)!.map((r) => `add rule ip kube-proxy ${svc} ${r}`),
      `flush chain ip kube-proxy ${gone}`,
      `delete chain ip kube-proxy ${gone}`,
    ]);
    expect(lines.join('\n')).to.include('numgen random mod 2 vmap');
  });
});

describe('services: lab-file mistakes', () => {
  const good = readFileSync('labs/flannel-vxlan-services.yaml', 'utf8');
  const cases: [string, string, RegExp][] = [
    ['a selector that matches no workload', good.replace('    selector: web\n    type: NodePort', '    selector: wbe\n    type: NodePort'), /bad\.yaml:\d+: services\[1\]\.selector: no workload named "wbe" \(workloads: web, client\)/],
    ['a port out of range', good.replace('ports: [{ port: 80 }]', 'ports: [{ port: 70000 }]'), /bad\.yaml:\d+: services\[0\]\.ports\[0\]\.port: a port is 1-65535/],
    ['a nodePort outside 30000-32767', good.replace('nodePort: 30080', 'nodePort: 8080'), /bad\.yaml:\d+: services\[1\]\.ports\[0\]\.nodePort: a nodePort is 30000-32767/],
    [
      'a nodePort taken twice',
      good.replace('    sessionAffinity: ClientIP\n    ports: [{ port: 80 }]', '    type: NodePort\n    sessionAffinity: ClientIP\n    ports: [{ port: 80, nodePort: 30080 }]'),
      /bad\.yaml:\d+: services\[2\]\.ports\[0\]\.nodePort: nodePort 30080 is taken by default\/web-nodeport/,
    ],
    ['a service CIDR overlapping the pod network', good.replace('serviceCIDR: 10.96.0.0/12', 'serviceCIDR: 10.0.0.0/8'), /bad\.yaml:\d+: network\.serviceCIDR: 10\.0\.0\.0\/8 overlaps the pod network 10\.10\.0\.0\/16/],
    ['a service CIDR overlapping the underlay', good.replace('serviceCIDR: 10.96.0.0/12', 'serviceCIDR: 192.168.0.0/16'), /bad\.yaml:\d+: network\.serviceCIDR: 192\.168\.0\.0\/16 overlaps the underlay 192\.168\.10\.0\/24/],
    ['a service CIDR that is not one', good.replace('serviceCIDR: 10.96.0.0/12', 'serviceCIDR: 10.96.0.0'), /network\.serviceCIDR: "10\.96\.0\.0" is not a CIDR/],
    ['an unknown proxy mode', good.replace('proxyMode: iptables', 'proxyMode: ipvs'), /bad\.yaml:\d+: network\.proxyMode: /],
    ['ebpf mode on a datapath without service maps', good.replace('proxyMode: iptables', 'proxyMode: ebpf'), /bad\.yaml:\d+: network\.proxyMode: the flannel datapath works with kube-proxy in iptables or nftables mode, not ebpf \(ebpf needs the cilium datapath's service maps\)/],
    ['a scale step for a workload that does not exist', good.replace('scale: { workload: web, replicas: 3 }', 'scale: { workload: webb, replicas: 3 }'), /steps\[\d+\]\.scale\.workload: no workload named "webb"/],
  ];
  for (const [what, text, re] of cases) {
    it(`names file, line and field for ${what}`, () => {
      expect(text).to.not.equal(good);
      expect(labErrorMessage(text)).to.match(re);
    });
  }

  it('refuses iptables mode on the cilium datapath, which hands replies to pods past the nat table', () => {
    const cilium = readFileSync('labs/cilium-ebpf-services.yaml', 'utf8');
    expect(labErrorMessage(cilium.replace('proxyMode: ebpf', 'proxyMode: iptables'))).to.match(/bad\.yaml:\d+: network\.proxyMode: the cilium datapath works with kube-proxy in ebpf mode, not iptables/);
    // Left out, the mode is the datapath's first.
    expect(parseLab(cilium.replace(/ *proxyMode: ebpf.*\n/, ''), 'ok.yaml').network.proxyMode).to.equal('ebpf');
    expect(parseLab(readFileSync('labs/flannel-vxlan-services.yaml', 'utf8').replace(/ *proxyMode: iptables.*\n/, ''), 'ok.yaml').network.proxyMode).to.equal('iptables');
  });

  it('a step for a kube-proxy mode the datapath never runs is refused; one for another mode it runs is kept', () => {
    const flannel = readFileSync('labs/flannel-vxlan-services.yaml', 'utf8');
    const steps = parseLab(flannel, 'ok.yaml').steps;
    const iptablesOnly = steps.filter((s) => s.proxyMode === 'iptables').map((s) => s.name);
    expect(iptablesOnly).to.include('kube-proxy wrote the real chain structure - KUBE-SERVICES sends the ClusterIP to a KUBE-SVC chain');
    const bad = flannel.replace(/(- name: kube-proxy wrote the real chain structure[^\n]*\n\s+)proxyMode: iptables/, '$1proxyMode: ebpf');
    expect(bad).to.not.equal(flannel);
    expect(labErrorMessage(bad)).to.match(/bad\.yaml:\d+: steps\[\d+\]\.proxyMode: the flannel datapath never runs kube-proxy in ebpf mode \(iptables, nftables\)/);
  });

  it('points at the line of the bad field', () => {
    const text = good.replace('nodePort: 30080', 'nodePort: 8080');
    const line = text.split('\n').findIndex((l) => l.includes('nodePort: 8080')) + 1;
    expect(labErrorMessage(text)).to.include(`bad.yaml:${line}:`);
  });
});

describe('services: the eBPF service maps (ebpf mode)', () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const entries = (services: ServiceState[]) => lbEntries(services, '192.168.10.210', new IdAllocator(0xffffffff), new IdAllocator(0xffff));

  it('lays out lb4_key as bpf/lb.h does: address in network order, port, slot and protocol in host order', () => {
    expect(hex(encodeLbKey('10.96.0.11', 80, 'TCP', 2))).to.equal('0a60000b' + '5000' + '0200' + '06' + '00' + '0000');
    expect(hex(encodeLbKey('10.96.0.10', 53, 'UDP', 0)).slice(16, 18)).to.equal('11');
  });

  it('gives a frontend slot 0 with the count and slots 1..n with backend IDs, each ID in lb4_backends', () => {
    const e = entries([web()]);
    const slots = e.filter((x) => x.map === 'lb4_services');
    expect(slots.map((x) => new DataView(x.key.buffer).getUint16(6, true))).to.deep.equal([1, 2, 3, 0]);
    const slot0 = slots.at(-1)!;
    expect(new DataView(slot0.value.buffer).getUint16(4, true)).to.equal(3);
    const ids = slots.slice(0, 3).map((x) => new DataView(x.value.buffer).getUint32(0, true));
    const backends = new Map(e.filter((x) => x.map === 'lb4_backends').map((x) => [hex(x.key), decodeLbBackend(x.value).address]));
    expect(ids.map((id) => backends.get(hex(encodeU32Key(id))))).to.deep.equal(['10.10.1.2', '10.10.0.3', '10.10.1.9']); // web-1, web-2, web-10
    // Writes in order: backends first, the count last.
    expect(e.map((x) => x.order)).to.deep.equal([...e.map((x) => x.order)].sort());
  });

  it('adds a NodePort frontend on the node address, flags affinity with the 10800 s timeout, and skips headless services', () => {
    const np = web({ type: 'NodePort', sessionAffinity: 'ClientIP', ports: [{ port: 8080, targetPort: 80, nodePort: 30080, protocol: 'TCP' }] });
    const headless = serviceStates([spec('h', { clusterIP: 'None' })], '10.96.0.0/12', pods)[0];
    const e = entries([np, headless]);
    const zero = e.filter((x) => x.map === 'lb4_services' && x.order === 2);
    expect(zero.map((x) => hex(x.key.subarray(0, 6)))).to.deep.equal(['0a60000b' + '901f', 'c0a80ad2' + '8075']);
    expect(zero.map((x) => x.value[8])).to.deep.equal([SVC_FLAG.affinity, SVC_FLAG.nodePort | SVC_FLAG.affinity]);
    expect(new DataView(zero[0].value.buffer).getUint32(0, true)).to.equal(10800);
    expect(e.filter((x) => x.map === 'lb4_reverse_nat').map((x) => hex(x.key))).to.deep.equal([hex(encodeU16Key(1)), hex(encodeU16Key(2))]);
  });

  it("keeps a backend's ID across syncs, so a change rewrites only what moved", () => {
    const b = new IdAllocator(0xffffffff);
    const f = new IdAllocator(0xffff);
    const first = lbEntries([web()], '192.168.10.210', b, f).map((x) => hex(x.key) + hex(x.value));
    const fewer = { ...web(), endpoints: web().endpoints.filter((x) => x.ip !== '10.10.1.2') };
    const second = new Set(lbEntries([fewer], '192.168.10.210', b, f).map((x) => hex(x.key) + hex(x.value)));
    // The 10.10.0.3 backend and its slot 1 stay as they were.
    expect(first.filter((x) => second.has(x)).length).to.be.at.least(2);
  });
});
