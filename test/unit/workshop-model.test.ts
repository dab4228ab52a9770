// The workshop's data model and its two renderers, on snapshots recorded from
// real labs and on hand-written ones for datapaths of other labs.
import { expect } from 'chai';
import { buildModel, forFamily, longestMatch, nodeServing, nsById, ownerOfAddress, ownerOfMac, primaryAddress, underlaySubnet, uplink, type RawNamespace } from '../../src/workshop/model.js';
import { layoutNode } from '../../src/workshop/layout.js';
import { renderText } from '../../src/workshop/render-text.js';
import { renderSvg } from '../../src/workshop/render-svg.js';
import { calicoBgp, flannelUdp, macvlan, recorded } from '../helpers/topologies.js';
import { link, ns } from '../helpers/netmodel.js';

describe('workshop model', () => {
  describe('built from a recorded flannel-vxlan snapshot', () => {
    const m = recorded('flannel-vxlan');

    it('pairs each pod eth0@ifN with the node veth whose index is N, and back', () => {
      for (const pod of m.namespaces.filter((n) => n.kind === 'pod')) {
        const eth0 = pod.links.find((l) => l.name === 'eth0')!;
        expect(eth0.peer, pod.id).to.include({ ns: pod.node });
        const host = nsById(m, pod.node)!.links.find((l) => l.ifindex === eth0.peer!.ifindex)!;
        expect(eth0.label).to.equal(`eth0@if${host.ifindex}`);
        expect(host.peer).to.deep.equal({ ns: pod.id, ifname: 'eth0', ifindex: eth0.ifindex });
        expect(host.master).to.equal('cni0');
        expect(host.name).to.match(/^veth[0-9a-f]{8}$/);
      }
    });

    it('marks the node uplinks, whose other end is the underlay switch, as outside', () => {
      for (const node of ['master', 'worker']) {
        const eth0 = nsById(m, node)!.links.find((l) => l.name === 'eth0')!;
        expect(eth0.peerOutside).to.equal(true);
        expect(eth0.peer).to.equal(undefined);
      }
      expect(m.underlay).to.equal('192.168.10.0/24');
    });

    it('reads flannel.1 as VXLAN VNI 1 on UDP 8472, and each node route to the other node through it', () => {
      const vx = nsById(m, 'master')!.links.find((l) => l.name === 'flannel.1')!;
      expect(vx.vxlan).to.deep.equal({ vni: 1, port: 8472, local: '192.168.10.210', dev: 'eth0' });
      expect(m.nodeRoutes.map((r) => [r.node, r.dst, r.toNode, r.how])).to.deep.equal([
        ['master', '10.10.1.0/24', 'worker', 'VXLAN VNI 1 via flannel.1 → 192.168.10.220:8472'],
        ['worker', '10.10.0.0/24', 'master', 'VXLAN VNI 1 via flannel.1 → 192.168.10.210:8472'],
      ]);
    });

    it('leaves multicast FDB entries out', () => {
      for (const n of m.namespaces) for (const f of n.fdb) expect(parseInt(f.mac.slice(0, 2), 16) & 1, f.mac).to.equal(0);
    });
  });

  it('host-gw: no tunnel device, and routes go via the other node', () => {
    const m = recorded('flannel-host-gw');
    expect(m.namespaces.flatMap((n) => n.links).filter((l) => l.kind === 'vxlan')).to.deep.equal([]);
    expect(m.nodeRoutes.map((r) => `${r.node}→${r.toNode}: ${r.how}`)).to.deep.equal(['master→worker: routed via 192.168.10.220 (eth0)', 'worker→master: routed via 192.168.10.210 (eth0)']);
  });

  it('Calico-style: routed veths with no bridge, blackhole routes left out of node routes', () => {
    const m = calicoBgp();
    const l = layoutNode(m, nsById(m, 'master')!);
    expect(l.bridges).to.deep.equal([]);
    expect(l.routed.map((a) => [a.host.name, a.pod?.pod.name, a.pod?.gateway])).to.deep.equal([['cali051dd144e34', 'web-0', '169.254.1.1']]);
    expect(m.nodeRoutes.map((r) => `${r.node} ${r.dst} → ${r.toNode}`)).to.deep.equal(['master 10.10.171.0/26 → worker', 'worker 10.10.219.64/26 → master']);
    expect(l.routes).to.include('blackhole 10.10.219.64/26 proto bird');
  });

  it('macvlan: a pod interface points at its parent on the node, and the node lists it', () => {
    const m = macvlan();
    const a = nsById(m, 'pod/a')!.links.find((l) => l.name === 'eth0')!;
    expect(a.peer).to.deep.equal({ ns: 'master', ifname: 'eth0', ifindex: 2 });
    expect(layoutNode(m, nsById(m, 'master')!).macvlanPods.map((p) => [p.parent.name, p.pod.pod.name])).to.deep.equal([
      ['eth0', 'a'],
      ['eth0', 'c'],
    ]);
  });

  it('TUN: flannel0 carries the process that holds it, and its /16 route reaches no single node', () => {
    const m = flannelUdp();
    const tun = nsById(m, 'master')!.links.find((l) => l.name === 'flannel0')!;
    expect(tun.kind).to.equal('tun');
    expect(tun.tunOwners).to.deep.equal([{ pid: 4242, comm: 'flanneld', udpPorts: [8285] }]);
    expect(m.nodeRoutes.find((r) => r.node === 'master')).to.include({ toNode: undefined, how: 'TUN flannel0 → flanneld (pid 4242, udp 8285)' });
    expect(nodeServing(m, '10.10.1.2', 'master')?.id).to.equal('worker');
    expect(nodeServing(m, '10.10.0.0/16', 'master')).to.equal(undefined);
  });

  it('pairs veths by their indices when the namespaces have no names, preferring the pod\'s own node', () => {
    // Two nodes each with a veth index 5 toward a pod eth0 index 2: only the pod's node is its peer.
    const node = (name: string) => ns('node', name, name, { links: [link(2, 'eth0', 'veth', { addrs: [`192.168.10.${name === 'a' ? 1 : 2}/24`] }), link(5, 'vethx', 'veth', { peer: { index: 2, nsid: 7 } })] });
    const pod = (name: string, on: string) => ns('pod', name, on, { links: [link(2, 'eth0', 'veth', { addrs: ['10.0.0.2/24'], peer: { index: 5, nsid: 3 } })] });
    const raw: RawNamespace[] = [node('a'), node('b'), pod('p', 'b'), pod('q', 'a')];
    const m = buildModel(raw, { lab: 't', backend: 'docker' });
    expect(nsById(m, 'pod/p')!.links[1].peer?.ns).to.equal('b');
    expect(nsById(m, 'pod/q')!.links[1].peer?.ns).to.equal('a');
  });

  it('longest-prefix match, and the owner of a MAC prefers the link that holds an address', () => {
    const routes = [
      { dst: 'default', gateway: '10.0.0.1', dev: 'eth0' },
      { dst: '10.10.0.0/16', gateway: '10.10.0.1', dev: 'eth0' },
      { dst: '10.10.1.0/24', dev: 'cni0' },
      { type: 'blackhole', dst: '10.10.1.0/25' },
    ];
    expect(longestMatch(routes, '10.10.1.7')?.dev).to.equal('cni0');
    expect(longestMatch(routes, '10.10.9.7')?.dev).to.equal('eth0');
    expect(longestMatch(routes, '8.8.8.8')?.dst).to.equal('default');
    const m = recorded('flannel-vxlan');
    const cni0 = nsById(m, 'master')!.links.find((l) => l.name === 'cni0')!;
    expect(ownerOfMac(m, cni0.mac!)?.link.name).to.equal('cni0'); // one of its ports has the same MAC
    expect(underlaySubnet(m)).to.equal('192.168.10.0/24');
  });
});

describe('workshop renderers', () => {
  it('terminal view: each node with its uplink, bridge ports joined to pods, VXLAN tables and routes', () => {
    const text = renderText(recorded('flannel-vxlan')).join('\n');
    expect(text).to.match(/node master {2}eth0@if\d+ 192\.168\.10\.210\/24/);
    expect(text).to.match(/cni0 bridge · 10\.10\.0\.1\/24/);
    expect(text).to.match(/veth[0-9a-f]{8}@if2 ═ pod nginx-0 eth0@if\d+ · 10\.10\.0\.2\/24 · gw 10\.10\.0\.1/);
    expect(text).to.match(/flannel\.1 vxlan · VNI 1 · UDP 8472/);
    expect(text).to.match(/fdb [0-9a-f:]{17} dst 192\.168\.10\.220 permanent/);
    expect(text).to.include('10.10.1.0/24 via 10.10.1.0 dev flannel.1 onlink');
    expect(text).to.include('10.10.1.0/24 ⇒ worker: VXLAN VNI 1');
  });

  it('terminal view of a Calico-style node lists the routed veths', () => {
    const text = renderText(calicoBgp()).join('\n');
    expect(text).to.include('veths routed by the node (no bridge)');
    expect(text).to.match(/cali051dd144e34@if2 ═ pod web-0 eth0@if5 · 10\.10\.219\.67\/32 · gw 169\.254\.1\.1/);
  });

  for (const [name, make] of [
    ['flannel-vxlan', () => recorded('flannel-vxlan')],
    ['flannel-host-gw', () => recorded('flannel-host-gw')],
    ['recorded calico-bgp', () => recorded('calico-bgp')],
    ['recorded flannel-udp', () => recorded('flannel-udp')],
    ['recorded docker-bridge', () => recorded('docker-bridge')],
    ['recorded cilium-ebpf', () => recorded('cilium-ebpf')],
    ['calico-bgp', calicoBgp],
    ['macvlan', macvlan],
    ['flannel-udp', flannelUdp],
  ] as const) {
    it(`SVG for ${name}: one group per pod and routing table, balanced tags`, () => {
      const m = make();
      const svg = renderSvg(m);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).to.equal(true);
      for (const pod of m.namespaces.filter((n) => n.kind === 'pod')) expect(svg, pod.name).to.include(`<g id="pod-${pod.name}">`);
      expect(svg.match(/<g /g)?.length).to.equal(svg.match(/<\/g>/g)?.length);
      expect(svg.match(/<text /g)?.length).to.equal(svg.match(/<\/text>/g)?.length);
      for (const node of m.namespaces.filter((n) => n.kind === 'node')) expect(svg).to.include(`<g id="routes-${node.name}">`);
    });
  }

  it('BPF programs on a device are drawn where they sit (the terminal and the SVG)', () => {
    const m = recorded('cilium-ebpf');
    expect(renderText(m).join('\n')).to.match(/lxc[0-9a-f]{12}@if2 \[BPF: tc ingress from_container\] ═ pod nginx-0/);
    expect(renderSvg(m)).to.include('BPF from_container').and.include('BPF from_netdev');
  });

  it('SVG escapes what the kernel reports', () => {
    const raw = [ns('node', 'n<1>', 'n<1>', { links: [link(2, 'a&b"c', 'veth', { addrs: ['192.168.1.1/24'] })] })];
    const svg = renderSvg(buildModel(raw, { lab: 'x&y', backend: 'netns' }));
    expect(svg).to.include('node n&lt;1&gt;').and.include('a&amp;b&quot;c').and.include('x&amp;y');
    expect(svg).to.not.include('a&b');
  });

  it('SVG joins VXLAN devices of two nodes with a tunnel, and draws none for host-gw', () => {
    expect(renderSvg(recorded('flannel-vxlan'))).to.include('<g id="tunnel-master-worker"><title>VXLAN VNI 1 via flannel.1');
    expect(renderSvg(recorded('flannel-host-gw'))).to.not.include('id="tunnel-');
  });
});

describe('workshop model: dual-stack (a recorded flannel-vxlan-dual snapshot)', () => {
  const m = recorded('flannel-vxlan-dual');

  it('keeps IPv6 addresses (not the link-local ones) beside the IPv4 ones, and finds the IPv6 underlay', () => {
    const eth0 = nsById(m, 'pod/nginx-0')!.links.find((l) => l.name === 'eth0')!;
    expect(eth0.addresses).to.deep.equal(['10.10.0.2/24']);
    expect(eth0.addresses6).to.deep.equal(['fd00:10::2/64']);
    expect(m.underlay).to.equal('192.168.10.0/24');
    expect(m.underlayV6).to.equal('fd00:192:168:10::/64');
    expect(uplink(m, nsById(m, 'worker')!, 6)?.name).to.equal('eth0');
    expect(primaryAddress(nsById(m, 'pod/nginx-1')!, 6)).to.equal('fd00:10:0:1::2');
    expect(ownerOfAddress(m, 'fd00:192:168:10:0::220')?.ns.id).to.equal('worker');
  });

  it('reads ip -6 route without link-local routes, flannel-v6.1 with its IPv6 VTEP, and a node route per family', () => {
    const master = nsById(m, 'master')!;
    expect(master.routes6!.map((r) => r.dst)).to.include.members(['fd00:10::/64', 'fd00:10:0:1::/64', 'fd00:192:168:10::/64']);
    expect(master.routes6!.some((r) => r.dst.startsWith('fe80'))).to.equal(false);
    expect(master.links.find((l) => l.name === 'flannel-v6.1')!.vxlan).to.deep.include({ vni: 1, port: 8472, local: 'fd00:192:168:10::210' });
    expect(longestMatch(master.routes6!, 'fd00:10:0:1::2')?.dev).to.equal('flannel-v6.1');
    expect(m.nodeRoutes.filter((r) => r.node === 'master').map((r) => [r.dst, r.toNode, r.family, r.how])).to.deep.equal([
      ['10.10.1.0/24', 'worker', undefined, 'VXLAN VNI 1 via flannel.1 → 192.168.10.220:8472'],
      ['fd00:10:0:1::/64', 'worker', 6, 'VXLAN VNI 1 via flannel-v6.1 → [fd00:192:168:10::220]:8472'],
    ]);
  });

  it('--family 6 keeps the IPv6 side only: addresses, routes, NDP entries, flannel-v6.1, no iptables NAT', () => {
    const v6 = forFamily(m, 6);
    const master = nsById(v6, 'master')!;
    expect(v6.underlay).to.equal('fd00:192:168:10::/64');
    expect(master.links.map((l) => l.name)).to.not.include('flannel.1');
    expect(master.routes.every((r) => r.dst.includes(':'))).to.equal(true);
    expect(master.neighbours.every((n) => n.dst.includes(':'))).to.equal(true);
    expect(master.nat).to.equal(undefined);
    expect(v6.nodeRoutes.map((r) => r.dst)).to.deep.equal(['fd00:10:0:1::/64', 'fd00:10::/64']);
    const v4 = forFamily(m, 4);
    expect(nsById(v4, 'master')!.links.map((l) => l.name)).to.not.include('flannel-v6.1');
    expect(renderText(v4).join('\n')).to.not.match(/fd00:/);
  });

  it('terminal view: IPv6 addresses, ip -6 routes, the NDP and FDB entries of flannel-v6.1, the route to the other node per family', () => {
    const text = renderText(m).join('\n');
    expect(text).to.include('underlay 192.168.10.0/24 fd00:192:168:10::/64');
    expect(text).to.match(/pod nginx-0 eth0@if\d+ · 10\.10\.0\.2\/24 · fd00:10::2\/64 · gw 10\.10\.0\.1 · gw fd00:10::1/);
    expect(text).to.match(/flannel-v6\.1 vxlan · VNI 1 · UDP 8472 · local fd00:192:168:10::210/);
    expect(text).to.match(/neigh fd00:10:0:1:: lladdr [0-9a-f:]{17} PERMANENT/);
    expect(text).to.match(/fdb [0-9a-f:]{17} dst fd00:192:168:10::220 permanent/);
    expect(text).to.include('fd00:10:0:1::/64 via fd00:10:0:1:: dev flannel-v6.1 onlink');
    expect(text).to.include('fd00:10:0:1::/64 ⇒ worker: VXLAN VNI 1 via flannel-v6.1 → [fd00:192:168:10::220]:8472');
  });

  it('SVG: both families in the pods and on the uplinks, a tunnel line per family', () => {
    const svg = renderSvg(m);
    expect(svg).to.include('fd00:10::2/64');
    expect(svg).to.include('fd00:192:168:10::210/64');
    expect(svg).to.include('id="tunnel-master-worker"');
    expect(svg).to.include('id="tunnel-master-worker-v6"');
  });
});
