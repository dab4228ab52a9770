// The packet walk on recorded and hand-written datapaths, with `ip route get`
// answered from the snapshot's own tables; and the pieces --capture relies on.
import { expect } from 'chai';
import { walk, type TracePath } from '../../src/workshop/trace.js';
import { captureFilter, packetsSeen, resolveEnd, traceFamilies } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { nsById, type NetModel } from '../../src/workshop/model.js';
import { parseProcNetUdp, parseTunIff } from '../../src/net/proc.js';
import { sourceNat, words } from '../../src/workshop/nat.js';
import { answeringPod, findService, servicesLines, translationText } from '../../src/workshop/services.js';
import type { ServiceState } from '../../src/services/model.js';
import { calicoBgp, flannelUdp, macvlan, recorded } from '../helpers/topologies.js';
import { tableOracle } from '../helpers/netmodel.js';

async function trace(m: NetModel, from: string, to: string): Promise<TracePath> {
  return walk(m, tableOracle(m), resolveEnd(m, from)!, resolveEnd(m, to)!);
}

const steps = (t: TracePath) => t.hops.map((h) => `${h.at} ${h.kind}`);

describe('trace: the walk', () => {
  it('flannel-vxlan across nodes: veth, cni0, flannel.1, neighbour, FDB, VXLAN to 192.168.10.220, and back down', async () => {
    const t = await trace(recorded('flannel-vxlan'), 'nginx-0', 'nginx-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(steps(t)).to.deep.equal([
      'pod/nginx-0 route',
      'pod/nginx-0 neighbour',
      'master veth',
      'master bridge',
      'master route',
      'master neighbour',
      'master fdb',
      'master encap',
      'master route',
      'master neighbour',
      'worker wire',
      'worker decap',
      'worker route',
      'worker neighbour',
      'worker fdb',
      'pod/nginx-1 veth',
      'pod/nginx-1 deliver',
    ]);
    expect(t.hops[4].text).to.equal('10.10.1.0/24 via 10.10.1.0 dev flannel.1 onlink');
    expect(t.hops[6].text).to.match(/^[0-9a-f:]{17} is reached through 192\.168\.10\.220/);
    expect(t.hops[7].text).to.equal('flannel.1 wraps it in VXLAN: VNI 1, UDP 192.168.10.210 → 192.168.10.220:8472');
    expect(t.tunnels).to.deep.equal([{ via: 'vxlan', src: '192.168.10.210', dst: '192.168.10.220', port: 8472, vni: 1 }]);
    // What --capture listens on: the pod's packet inside, the UDP packet on both uplinks.
    expect(t.hops.filter((h) => h.device).map((h) => `${h.at} ${h.device} ${h.layer}`)).to.deep.equal([
      'pod/nginx-0 eth0 inner',
      `master ${t.hops[2].device} inner`,
      'master cni0 inner',
      'master flannel.1 inner',
      'master eth0 outer',
      'worker eth0 outer',
      'worker flannel.1 inner',
      'worker cni0 inner',
      `worker ${t.hops[14].device} inner`,
      'pod/nginx-1 eth0 inner',
    ]);
  });

  it('flannel-vxlan on one node: through cni0 only, no route on the node', async () => {
    const t = await trace(recorded('flannel-vxlan'), 'nginx-0', 'nginx-2');
    expect(steps(t)).to.deep.equal(['pod/nginx-0 route', 'pod/nginx-0 neighbour', 'master veth', 'master bridge', 'pod/nginx-2 veth', 'pod/nginx-2 deliver']);
    expect(t.tunnels).to.deep.equal([]);
  });

  it('flannel-host-gw: the route via the other node, across the underlay with no wrapping', async () => {
    const t = await trace(recorded('flannel-host-gw'), 'nginx-0', 'nginx-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(steps(t)).to.deep.equal([
      'pod/nginx-0 route',
      'pod/nginx-0 neighbour',
      'master veth',
      'master bridge',
      'master route',
      'master neighbour',
      'worker wire',
      'worker route',
      'worker neighbour',
      'worker fdb',
      'pod/nginx-1 veth',
      'pod/nginx-1 deliver',
    ]);
    expect(t.hops[4].text).to.equal('10.10.1.0/24 via 192.168.10.220 dev eth0');
    expect(t.hops.every((h) => h.layer !== 'outer')).to.equal(true);
  });

  it('Calico-style: 169.254.1.1 answered by the cali veth, a /32 route per pod, the other block via the other node', async () => {
    const t = await trace(calicoBgp(), 'web-0', 'web-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(steps(t)).to.deep.equal([
      'pod/web-0 route',
      'pod/web-0 neighbour',
      'master veth',
      'master route',
      'master neighbour',
      'worker wire',
      'worker route',
      'worker neighbour',
      'pod/web-1 veth',
      'pod/web-1 deliver',
    ]);
    expect(t.hops[1].text).to.equal('169.254.1.1 is at ee:ee:ee:ee:ee:ee on eth0 (REACHABLE)');
    expect(t.hops[3].text).to.equal('10.10.171.0/26 via 192.168.10.220 dev eth0 proto bird (learned over BGP: BIRD put it there)');
    expect(t.hops[6].text).to.equal('10.10.171.1 dev calia17a7ab6ab scope link');
  });

  it('recorded calico-bgp: across nodes by the BGP route, on one node by the /32 route to the other cali veth', async () => {
    const m = recorded('calico-bgp');
    const far = await trace(m, 'nginx-0', 'nginx-1');
    expect(far.delivered, far.problem).to.equal(true);
    expect(far.hops.map((h) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'route', 'neighbour', 'wire', 'route', 'neighbour', 'veth', 'deliver']);
    expect(far.hops[3].text).to.match(/^10\.244\.0\.64\/26 via 192\.168\.10\.220 dev eth0 proto bird \(learned over BGP/);
    const near = await trace(m, 'nginx-0', 'nginx-2');
    expect(near.hops.map((h) => `${h.at} ${h.kind}`)).to.deep.equal(['pod/nginx-0 route', 'pod/nginx-0 neighbour', 'master veth', 'master route', 'master neighbour', 'pod/nginx-2 veth', 'pod/nginx-2 deliver']);
    expect(near.hops[3].text).to.match(/^10\.244\.0\.1 dev cali[0-9a-f]{11} scope link$/);
  });

  it('recorded flannel-udp: flannel0 holds 10.10.x.0/16 on every node, yet the underlay is still the nodes\' network', async () => {
    const m = recorded('flannel-udp');
    expect(m.underlay).to.equal('192.168.10.0/24');
    const t = await trace(m, 'nginx-0', 'nginx-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(t.hops.map((h) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'route', 'tun', 'route', 'neighbour', 'wire', 'decap', 'route', 'neighbour', 'fdb', 'veth', 'deliver']);
    expect(t.tunnels).to.deep.equal([{ via: 'tun', src: '192.168.10.210', dst: '192.168.10.220', port: 8285 }]);
  });

  it('macvlan: to a pod on another node through the parent and the underlay; to a sibling directly', async () => {
    const m = macvlan();
    const far = await trace(m, 'a', 'b');
    expect(steps(far)).to.deep.equal(['pod/a route', 'pod/a neighbour', 'master macvlan', 'pod/b wire', 'pod/b deliver']);
    const near = await trace(m, 'a', 'c');
    expect(steps(near)).to.deep.equal(['pod/a route', 'pod/a neighbour', 'pod/c macvlan', 'pod/c deliver']);
  });

  it('flannel UDP: into flannel0, to flanneld, in UDP 8285 to the node that has the pod, out of its flannel0', async () => {
    const t = await trace(flannelUdp(), 'nginx-0', 'nginx-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(steps(t)).to.deep.equal([
      'pod/nginx-0 route',
      'pod/nginx-0 neighbour',
      'master veth',
      'master bridge',
      'master route',
      'master tun',
      'master route',
      'master neighbour',
      'worker wire',
      'worker decap',
      'worker route',
      'worker neighbour',
      'worker fdb',
      'pod/nginx-1 veth',
      'pod/nginx-1 deliver',
    ]);
    expect(t.hops[5].text).to.equal('flannel0 is a TUN device: the kernel hands the packet to flanneld (pid 4242), which sends it in UDP 192.168.10.210 → 192.168.10.220:8285 to node worker');
    expect(captureFilter(t, 'outer')).to.equal('udp and src host 192.168.10.210 and dst host 192.168.10.220 and dst port 8285');
  });

  it('docker-bridge: pods on two nodes share 172.17.0.2, so the packet never leaves; to the other node it is masqueraded', async () => {
    const m = recorded('docker-bridge');
    const same = await trace(m, 'nginx-0', 'nginx-1');
    expect(same.delivered).to.equal(false);
    expect(steps(same)).to.deep.equal(['pod/nginx-0 deliver']);
    expect(same.problem).to.match(/never leaves for pod nginx-1: pod nginx-0 has the same address 172\.17\.0\.2 itself/);

    const out = await trace(m, 'nginx-0', 'worker');
    expect(out.delivered, out.problem).to.equal(true);
    expect(steps(out)).to.deep.equal(['pod/nginx-0 route', 'pod/nginx-0 neighbour', 'master veth', 'master bridge', 'master route', 'master nat', 'master neighbour', 'worker wire', 'worker deliver']);
    expect(out.hops[5].text).to.match(/^iptables nat POSTROUTING rewrites the source 172\.17\.0\.2 → 192\.168\.10\.210 \(MASQUERADE: eth0's address\): -A CNI-[0-9a-f]+ ! -d 224\.0\.0\.0\/4 -j MASQUERADE$/);
    expect(out.nat).to.deep.equal({ at: 'master', to: '192.168.10.210' });
    // Captures before the rewrite look for the pod's address, from the uplink on for the node's.
    expect(out.hops.filter((h) => h.device).map((h) => `${h.device} ${h.src}`)).to.deep.equal(['eth0 172.17.0.2', `${out.hops[2].device} 172.17.0.2`, 'docker0 172.17.0.2', 'eth0 192.168.10.210', 'eth0 192.168.10.210']);
    expect(formatTrace({ ...out, reachable: true }).at(-1)).to.equal('✔ delivered in 9 steps, no encapsulation; source NAT on master: worker sees 192.168.10.210, not 172.17.0.2');
  });

  it('recorded cilium-ebpf: a BPF program on the host veth forwards what the routing table cannot, and the walk says so', async () => {
    const m = recorded('cilium-ebpf');
    const t = await trace(m, 'nginx-0', 'nginx-1');
    expect(t.delivered).to.equal(false);
    expect(steps(t)).to.deep.equal(['pod/nginx-0 route', 'pod/nginx-0 neighbour', 'master veth', 'master bpf']);
    expect(t.hops[3].text).to.match(/^lxc[0-9a-f]{12} runs BPF \(tc ingress from_container\): the program sees the packet first/);
    expect(t.problem).to.match(/node master's routing table has no route to 10\.10\.1\.2: from lxc[0-9a-f]{12} on, the BPF program \(tc ingress from_container\) forwards the packet/);
    const lines = formatTrace({ ...t, reachable: true, capture: { sent: 3, received: 3, allSeen: true, beyond: [{ at: 'worker', device: 'eth0', packets: 3 }, { at: 'pod/nginx-1', device: 'eth0', packets: 3 }] } });
    expect(lines.at(-1)).to.equal('  beyond the walk, the pings were seen on: worker eth0 3/3 · nginx-1 eth0 3/3');
  });

  it('stops where the kernel has no answer, and says what to look at', async () => {
    const m = recorded('flannel-vxlan');
    nsById(m, 'master')!.fdb = nsById(m, 'master')!.fdb.filter((f) => f.ifname !== 'flannel.1');
    const noFdb = await trace(m, 'nginx-0', 'nginx-1');
    expect(noFdb.delivered).to.equal(false);
    expect(noFdb.problem).to.match(/flannel\.1 on node master has no FDB entry for [0-9a-f:]{17}.*bridge fdb show dev flannel\.1/);

    const m2 = recorded('flannel-host-gw');
    nsById(m2, 'master')!.routes = nsById(m2, 'master')!.routes.filter((r) => !r.gateway);
    const noRoute = await trace(m2, 'nginx-0', 'nginx-1');
    expect(noRoute.problem).to.match(/^node master has no route to 10\.10\.1\.2: RTNETLINK answers: Network is unreachable\. Look at `ip route` there \(cnilab shell master\)/);

    const m3 = recorded('flannel-vxlan');
    nsById(m3, 'pod/nginx-0')!.neighbours = [];
    const noNeigh = await trace(m3, 'nginx-0', 'nginx-1');
    expect(noNeigh.problem).to.match(/pod nginx-0 has no neighbour entry for 10\.10\.0\.1 on eth0/);
  });
});

describe('trace: source NAT from the nat table', () => {
  const flannel = ['-P POSTROUTING ACCEPT', '-A POSTROUTING -s 10.10.0.0/16 ! -d 10.10.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE'];
  const cniBridge = [
    '-A POSTROUTING -s 172.17.0.2/32 -m comment --comment "name: bridge id: dcc8" -j CNI-2847',
    '-A CNI-2847 -d 172.17.0.0/16 -m comment --comment "name: bridge id: dcc8" -j ACCEPT',
    '-A CNI-2847 ! -d 224.0.0.0/4 -m comment --comment "name: bridge id: dcc8" -j MASQUERADE',
  ];

  it('keeps quoted comments whole', () => {
    expect(words('-A X -m comment --comment "a b \\"c\\"" -j Y')).to.deep.equal(['-A', 'X', '-m', 'comment', '--comment', 'a b \\"c\\"', '-j', 'Y']);
  });

  it('flanneld masquerades only what leaves the pod network', () => {
    expect(sourceNat(flannel, { src: '10.10.0.2', dst: '10.10.1.2', outDev: 'flannel.1' })).to.equal(undefined);
    expect(sourceNat(flannel, { src: '10.10.0.2', dst: '192.168.10.220', outDev: 'eth0' })).to.include({ masquerade: true, rule: flannel[1] });
  });

  it('follows a jump into the bridge plugin\'s chain: ACCEPT inside the subnet, MASQUERADE outside', () => {
    expect(sourceNat(cniBridge, { src: '172.17.0.2', dst: '172.17.0.3', outDev: 'docker0' })).to.equal(undefined);
    expect(sourceNat(cniBridge, { src: '172.17.0.2', dst: '192.168.10.220', outDev: 'eth0' })?.rule).to.equal(cniBridge[2]);
    expect(sourceNat(cniBridge, { src: '172.17.0.9', dst: '192.168.10.220', outDev: 'eth0' })).to.equal(undefined);
  });

  it('SNAT names its address; RETURN goes back; ! -o and a rule it cannot judge are handled, the latter named', () => {
    const rules = [
      '-A POSTROUTING -j SUB',
      '-A SUB -s 10.0.0.0/8 -j RETURN',
      '-A POSTROUTING -m addrtype --src-type LOCAL -j MASQUERADE',
      '-A POSTROUTING ! -o docker0 -s 172.17.0.0/16 -j SNAT --to-source 192.168.10.5:1024-2048',
    ];
    const v = sourceNat(rules, { src: '172.17.0.2', dst: '8.8.8.8', outDev: 'eth0' })!;
    expect(v).to.include({ masquerade: false, toSource: '192.168.10.5' });
    expect(v.skipped).to.deep.equal([rules[2]]);
    expect(sourceNat(rules, { src: '172.17.0.2', dst: '8.8.8.8', outDev: 'docker0' })).to.equal(undefined);
    expect(sourceNat(rules, { src: '10.1.1.1', dst: '8.8.8.8', outDev: 'eth0' })).to.equal(undefined);
  });
});

describe('trace: kube-proxy\'s masquerade and a service\'s translation', () => {
  // As kube-proxy's iptables mode writes them (flannel-vxlan-services, iptables -t nat -S on master).
  const kube = [
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A POSTROUTING -s 10.10.0.0/16 ! -d 10.10.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "default/web: cluster IP" -m tcp --dport 80 -j KUBE-SVC-BIJGBSD4RZCCZX5R',
    '-A KUBE-SVC-BIJGBSD4RZCCZX5R -m comment --comment "default/web: -> 10.10.0.3:80" -m statistic --mode random --probability 0.5 -j KUBE-SEP-AAAA',
    '-A KUBE-SVC-BIJGBSD4RZCCZX5R -m comment --comment "default/web: -> 10.10.1.2:80" -j KUBE-SEP-BBBB',
    '-A KUBE-SEP-AAAA -p tcp -m comment --comment "default/web:" -m tcp -j DNAT --to-destination 10.10.0.3:80',
    '-A KUBE-SEP-BBBB -p tcp -m comment --comment "default/web:" -m tcp -j DNAT --to-destination 10.10.1.2:80',
  ];
  const web: ServiceState = {
    name: 'web',
    namespace: 'default',
    type: 'ClusterIP',
    clusterIP: '10.96.0.11',
    sessionAffinity: 'None',
    ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
    endpoints: [
      { ip: '10.10.0.3', pod: 'web-0', node: 'master' },
      { ip: '10.10.1.2', pod: 'web-1', node: 'worker' },
    ],
  };

  it('a packet without kube-proxy\'s mark leaves KUBE-POSTROUTING unchanged (RETURN); a marked one is masqueraded', () => {
    expect(sourceNat(kube, { src: '10.10.0.5', dst: '10.10.1.2', outDev: 'flannel.1' })).to.equal(undefined);
    expect(sourceNat(kube, { src: '192.168.10.220', dst: '10.10.1.2', outDev: 'flannel.1', mark: 0x4000 })?.rule).to.equal(kube[4]);
  });

  it('names the KUBE-SVC and KUBE-SEP chains that took the ClusterIP to the pod', () => {
    const t = translationText('iptables', web, { pod: 'web-1', ip: '10.10.1.2' }, kube);
    expect(t.text).to.include('jumps to KUBE-SVC-BIJGBSD4RZCCZX5R, which picks one of 2 at random (statistic random) → KUBE-SEP-BBBB: DNAT to 10.10.1.2:80 (pod web-1)');
    expect(t.kernel).to.equal('iptables -t nat -S KUBE-SVC-BIJGBSD4RZCCZX5R');
    const e = translationText('ebpf', { ...web, sessionAffinity: 'ClientIP' }, { pod: 'web-0', ip: '10.10.0.3' }, [], '/n/maps');
    expect(e.text).to.match(/lb4_services: slot 0 says 2 backends, it picks the client's remembered one \(ClientIP affinity\) or one at random .* to 10\.10\.0\.3:80 \(pod web-0\)/);
    expect(e.kernel).to.equal('bpftool map dump pinned /n/maps/lb4_services');
  });

  it('finds a service by ClusterIP, short name, namespace/name or DNS name, and the pod that answered', () => {
    const v = { proxies: [], services: [web, { ...web, name: 'h', clusterIP: 'None' }] };
    for (const what of ['10.96.0.11', 'web', 'default/web', 'web.default', 'web.default.svc.cluster.local']) expect(findService(v, what)?.name).to.equal('web');
    expect(findService(v, 'h')).to.equal(undefined); // headless: no frontend to trace through
    expect(findService(v, 'nginx-0')).to.equal(undefined);
    expect(answeringPod('pod web-1 on worker, address 10.10.1.2\n', web)).to.equal('web-1');
    expect(answeringPod('<html>', web)).to.equal(undefined);
  });

  it('lists each service with its endpoints and the proxy of every node for the diagram', () => {
    const l = servicesLines({ proxies: [{ node: 'master', mode: 'ebpf', generation: 3, rules: 31 }], services: [web] });
    expect(l.head).to.equal('services: kube-proxy ebpf on master (31 map entries, generation 3)');
    expect(l.services[0]).to.deep.equal({ text: 'default/web ClusterIP 10.96.0.11 80/TCP', endpoints: ['web-0 10.10.0.3 on master', 'web-1 10.10.1.2 on worker'] });
  });
});

describe('trace: text, capture filters and counts', () => {
  it('prints one numbered line per hop with the kernel command under it, and the packets each interface saw', async () => {
    const t = await trace(recorded('flannel-vxlan'), 'nginx-0', 'nginx-2');
    t.hops.forEach((h) => h.device && (h.packets = 3));
    const lines = formatTrace({ ...t, reachable: true, capture: { sent: 3, received: 3, allSeen: true } });
    expect(lines[0]).to.equal('trace pod nginx-0 (10.10.0.2) → pod nginx-2 (10.10.0.3) in flannel-vxlan');
    expect(lines[1]).to.match(/^ 1 {3}3\/3 nginx-0 +route +10\.10\.0\.0\/24 dev eth0/);
    expect(lines[2].trim()).to.equal('$ ip route get 10.10.0.3');
    expect(lines.at(-2)).to.equal('✔ delivered in 6 steps, no encapsulation');
    expect(lines.at(-1)).to.equal('✔ capture: all 3 pings seen at every interface of the path (3/3 answered)');
  });

  it('filters the pings themselves inside, and the tunnel packets outside', async () => {
    const t = await trace(recorded('flannel-vxlan'), 'nginx-0', 'nginx-1');
    expect(captureFilter(t, 'inner')).to.equal('icmp[icmptype] == icmp-echo and src host 10.10.0.2 and dst host 10.10.1.2');
    expect(captureFilter(t, 'outer')).to.equal('udp and src host 192.168.10.210 and dst host 192.168.10.220 and dst port 8472 and ip[59] == 1 and ip[70] == 8');
  });

  it('counts what the kernel matched when tcpdump stopped', () => {
    expect(packetsSeen('listening on eth0\n\n2 packets captured\n3 packets received by filter\n0 packets dropped by kernel\n')).to.equal(3);
    expect(packetsSeen('1 packet captured\n')).to.equal(1);
    expect(packetsSeen('tcpdump: eth9: No such device exists')).to.be.NaN;
  });

  it('reads TUN owners and UDP ports from /proc text', () => {
    expect(parseTunIff('pos:\t0\nflags:\t02\nmnt_id:\t15\niff:\tflannel0\n')).to.equal('flannel0');
    expect(parseTunIff('pos:\t0\nflags:\t02\n')).to.equal(undefined);
    const udp = parseProcNetUdp(
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
        '  12: 00000000:205D 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 54321 2 0000000000000000 0\n',
    );
    expect([...udp.entries()]).to.deep.equal([[54321, 8285]]);
  });

  it('resolves pods and nodes to their addresses, and an address to its namespace', () => {
    const m = recorded('flannel-vxlan');
    expect(resolveEnd(m, 'nginx-1')).to.deep.equal({ ns: 'pod/nginx-1', ip: '10.10.1.2' });
    expect(resolveEnd(m, 'worker')).to.deep.equal({ ns: 'worker', ip: '192.168.10.220' });
    expect(resolveEnd(m, '10.10.0.3')).to.deep.equal({ ns: 'pod/nginx-2', ip: '10.10.0.3' });
    expect(resolveEnd(m, 'nginx-9')).to.equal(undefined);
  });
});

describe('trace: IPv6 on a dual-stack lab (recorded flannel-vxlan-dual)', () => {
  const m = recorded('flannel-vxlan-dual');
  const trace6 = (from: string, to: string) => walk(m, tableOracle(m), resolveEnd(m, from, 6)!, resolveEnd(m, to, 6)!);

  it('follows ip -6 route get through flannel-v6.1, VXLAN over the IPv6 underlay, and back down', async () => {
    const t = await trace6('nginx-0', 'nginx-1');
    expect(t.delivered, t.problem).to.equal(true);
    expect(t.family).to.equal(6);
    expect(steps(t)).to.deep.equal(steps(await trace(m, 'nginx-0', 'nginx-1')));
    expect(t.hops[0].kernel).to.equal('ip -6 route get fd00:10:0:1::2');
    expect(t.hops[4].text).to.equal('fd00:10:0:1::/64 via fd00:10:0:1:: dev flannel-v6.1 onlink');
    expect(t.hops[5].text).to.match(/^fd00:10:0:1:: is at [0-9a-f:]{17} on flannel-v6\.1 \(PERMANENT\)/);
    expect(t.hops[7].text).to.equal('flannel-v6.1 wraps it in VXLAN over IPv6: VNI 1, UDP fd00:192:168:10::210 → [fd00:192:168:10::220]:8472');
    expect(t.hops[10].text).to.match(/^across the underlay fd00:192:168:10::\/64: node master eth0 →/);
    // flannel.1 has the same VNI and port: the IPv6 tunnel is unwrapped by flannel-v6.1.
    expect(t.hops[11]).to.include({ kind: 'decap', device: 'flannel-v6.1' });
    expect(t.tunnels).to.deep.equal([{ via: 'vxlan', src: 'fd00:192:168:10::210', dst: 'fd00:192:168:10::220', port: 8472, vni: 1 }]);
  });

  it('filters ICMPv6 echo requests inside, and inside the VXLAN envelope on the IPv6 underlay', async () => {
    const t = await trace6('nginx-0', 'nginx-1');
    expect(captureFilter(t, 'inner')).to.equal('icmp6 and ip6[40] == 128 and src host fd00:10::2 and dst host fd00:10:0:1::2');
    // 40 (outer IPv6) + 8 (UDP) + 8 (VXLAN) + 14 (Ethernet) = 70: the pod's IPv6 header; +6 its next header, +40 the ICMPv6 type.
    expect(captureFilter(t, 'outer')).to.equal('udp and src host fd00:192:168:10::210 and dst host fd00:192:168:10::220 and dst port 8472 and ip6[76] == 58 and ip6[110] == 128');
    // IPv6 pods over an IPv4 underlay: the same inside a 20-byte IPv4 header.
    const v4under = { ...t, tunnels: [{ via: 'vxlan' as const, src: '192.168.10.210', dst: '192.168.10.220', port: 8472, vni: 1 }] };
    expect(captureFilter(v4under, 'outer')).to.equal('udp and src host 192.168.10.210 and dst host 192.168.10.220 and dst port 8472 and ip[56] == 58 and ip[90] == 128');
  });

  it('prints the family in the heading and the tunnel', async () => {
    const lines = formatTrace({ ...(await trace6('nginx-0', 'nginx-1')), reachable: true });
    expect(lines[0]).to.equal('trace pod nginx-0 (fd00:10::2) → pod nginx-1 (fd00:10:0:1::2) in flannel-vxlan-dual over IPv6');
    expect(lines.at(-1)).to.equal('✔ delivered in 17 steps, through VXLAN over IPv6 (VNI 1, UDP 8472)');
  });

  it('traces both families between dual-stack pods, one when asked or when the destination is an address', () => {
    expect(traceFamilies(m, 'nginx-0', 'nginx-1')).to.deep.equal([4, 6]);
    expect(traceFamilies(m, 'nginx-0', 'nginx-1', 6)).to.deep.equal([6]);
    expect(traceFamilies(m, 'nginx-0', 'fd00:10:0:1::2')).to.deep.equal([6]);
    expect(traceFamilies(m, 'nginx-0', '10.10.1.2')).to.deep.equal([4]);
    expect(traceFamilies(recorded('flannel-vxlan'), 'nginx-0', 'nginx-1')).to.deep.equal([4]);
    expect(resolveEnd(m, 'worker', 6)).to.deep.equal({ ns: 'worker', ip: 'fd00:192:168:10::220' });
    expect(resolveEnd(recorded('flannel-vxlan'), 'nginx-1', 6)).to.equal(undefined);
  });
});
