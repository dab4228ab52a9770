// Snapshots of datapaths as the kernel would report them: six recorded from
// real labs (test/fixtures/workshop/*.raw.json) and three written by hand in
// the shapes the lessons describe (Calico's routed veths, macvlan pods on the
// node network, flannel's UDP backend with a TUN device).
import { readFileSync } from 'node:fs';
import { buildModel, type NetModel, type RawNamespace } from '../../src/workshop/model.js';
import { kernelRoute, link, ns } from './netmodel.js';

export function recorded(lab: 'flannel-vxlan' | 'flannel-vxlan-dual' | 'flannel-host-gw' | 'docker-bridge' | 'calico-bgp' | 'flannel-udp' | 'cilium-ebpf'): NetModel {
  const raw = JSON.parse(readFileSync(`test/fixtures/workshop/${lab}.raw.json`, 'utf8')) as RawNamespace[];
  return buildModel(raw, { lab, backend: 'netns', takenAt: '2026-01-01T12:00:00.000Z' });
}

const underlay = [{ nsid: 0, name: 't-underlay' }];
const M1 = '02:00:00:00:02:10';
const M2 = '02:00:00:00:02:20';

/** Calico in BGP mode: no bridge; caliXXXX answers ARP for 169.254.1.1, a /32 per pod, the other node's block via its address. */
export function calicoBgp(): NetModel {
  return buildModel(
    [
      ns('node', 'master', 'master', {
        links: [link(2, 'eth0', 'veth', { mac: M1, addrs: ['192.168.10.210/24'], peer: { index: 3, nsid: 0 } }), link(5, 'cali051dd144e34', 'veth', { mac: 'ee:ee:ee:ee:ee:ee', peer: { index: 2, nsid: 1 } })],
        routes: [
          { type: 'blackhole', dst: '10.10.219.64/26', protocol: 'bird', flags: [] },
          { dst: '10.10.219.67', dev: 'cali051dd144e34', scope: 'link', flags: [] },
          { dst: '10.10.171.0/26', gateway: '192.168.10.220', dev: 'eth0', protocol: 'bird', flags: [] },
          kernelRoute('192.168.10.0/24', 'eth0', '192.168.10.210'),
        ],
        neighbours: [
          { dst: '192.168.10.220', dev: 'eth0', lladdr: M2, state: ['REACHABLE'] },
          { dst: '10.10.219.67', dev: 'cali051dd144e34', lladdr: '0a:00:00:00:00:67', state: ['REACHABLE'] },
        ],
        nsids: [...underlay, { nsid: 1, name: 't-pod-web-0' }],
      }),
      ns('node', 'worker', 'worker', {
        links: [link(2, 'eth0', 'veth', { mac: M2, addrs: ['192.168.10.220/24'], peer: { index: 4, nsid: 0 } }), link(4, 'calia17a7ab6ab', 'veth', { mac: 'ee:ee:ee:ee:ee:ee', peer: { index: 4, nsid: 1 } })],
        routes: [
          { dst: '10.10.219.64/26', gateway: '192.168.10.210', dev: 'eth0', protocol: 'bird', flags: [] },
          { dst: '10.10.171.1', dev: 'calia17a7ab6ab', scope: 'link', flags: [] },
          kernelRoute('192.168.10.0/24', 'eth0', '192.168.10.220'),
        ],
        neighbours: [{ dst: '10.10.171.1', dev: 'calia17a7ab6ab', lladdr: '0a:00:00:00:01:01', state: ['REACHABLE'] }],
        nsids: [...underlay, { nsid: 1, name: 't-pod-web-1' }],
      }),
      ns('pod', 'web-0', 'master', {
        links: [link(2, 'eth0', 'veth', { mac: '0a:00:00:00:00:67', addrs: ['10.10.219.67/32'], peer: { index: 5, nsid: 0 } })],
        routes: [
          { dst: 'default', gateway: '169.254.1.1', dev: 'eth0', flags: ['onlink'] },
          { dst: '169.254.1.1', dev: 'eth0', scope: 'link', flags: [] },
        ],
        neighbours: [{ dst: '169.254.1.1', dev: 'eth0', lladdr: 'ee:ee:ee:ee:ee:ee', state: ['REACHABLE'] }],
        nsids: [{ nsid: 0, name: 't-master' }],
      }),
      ns('pod', 'web-1', 'worker', {
        links: [link(4, 'eth0', 'veth', { mac: '0a:00:00:00:01:01', addrs: ['10.10.171.1/32'], peer: { index: 4, nsid: 0 } })],
        routes: [{ dst: 'default', gateway: '169.254.1.1', dev: 'eth0', flags: ['onlink'] }],
        nsids: [{ nsid: 0, name: 't-worker' }],
      }),
    ],
    { lab: 'calico-bgp', backend: 'netns' },
  );
}

/** Pods with macvlan interfaces on their node's eth0, addresses on the node network itself. */
export function macvlan(): NetModel {
  const child = (ifindex: number, mac: string, addr: string) => link(ifindex, 'eth0', 'macvlan', { mac, addrs: [addr], peer: { index: 2, nsid: 0 }, data: { mode: 'bridge' } });
  const podRoutes = [kernelRoute('192.168.10.0/24', 'eth0', '')];
  return buildModel(
    [
      ns('node', 'master', 'master', { links: [link(2, 'eth0', 'veth', { mac: M1, addrs: ['192.168.10.210/24'], peer: { index: 3, nsid: 0 } })], routes: [kernelRoute('192.168.10.0/24', 'eth0', '192.168.10.210')], nsids: underlay }),
      ns('node', 'worker', 'worker', { links: [link(2, 'eth0', 'veth', { mac: M2, addrs: ['192.168.10.220/24'], peer: { index: 4, nsid: 0 } })], routes: [kernelRoute('192.168.10.0/24', 'eth0', '192.168.10.220')], nsids: underlay }),
      ns('pod', 'a', 'master', {
        links: [child(3, '0a:00:00:00:00:0a', '192.168.10.100/24')],
        routes: podRoutes,
        neighbours: [
          { dst: '192.168.10.101', dev: 'eth0', lladdr: '0a:00:00:00:00:0b', state: ['REACHABLE'] },
          { dst: '192.168.10.102', dev: 'eth0', lladdr: '0a:00:00:00:00:0c', state: ['REACHABLE'] },
        ],
        nsids: [{ nsid: 0, name: 't-master' }],
      }),
      ns('pod', 'b', 'worker', { links: [child(3, '0a:00:00:00:00:0b', '192.168.10.101/24')], routes: podRoutes, nsids: [{ nsid: 0, name: 't-worker' }] }),
      ns('pod', 'c', 'master', { links: [child(3, '0a:00:00:00:00:0c', '192.168.10.102/24')], routes: podRoutes, nsids: [{ nsid: 0, name: 't-master' }] }),
    ],
    { lab: 'macvlan', backend: 'netns' },
  );
}

/** Flannel's UDP backend: flannel0 is a TUN device held by flanneld, which carries packets in UDP 8285. */
export function flannelUdp(): NetModel {
  const node = (name: string, i: number, mac: string, peerOfPod: number) =>
    ns('node', name, name, {
      links: [
        link(2, 'eth0', 'veth', { mac, addrs: [`192.168.10.2${i}0/24`], peer: { index: 3 + i, nsid: 0 } }),
        link(3, 'flannel0', 'tun', { addrs: [`10.10.${i - 1}.0/32`], mtu: 1472 }),
        link(4, 'cni0', 'bridge', { mac: `aa:00:00:00:0${i}:01`, addrs: [`10.10.${i - 1}.1/24`], mtu: 1472 }),
        link(5, `veth0000000${i}`, 'veth', { mac: `aa:00:00:00:0${i}:05`, master: 'cni0', peer: { index: peerOfPod, nsid: 1 }, mtu: 1472 }),
      ],
      routes: [{ dst: '10.10.0.0/16', dev: 'flannel0', flags: [] }, kernelRoute(`10.10.${i - 1}.0/24`, 'cni0', `10.10.${i - 1}.1`), kernelRoute('192.168.10.0/24', 'eth0', `192.168.10.2${i}0`)],
      neighbours: [
        { dst: `192.168.10.2${3 - i}0`, dev: 'eth0', lladdr: i === 1 ? M2 : M1, state: ['REACHABLE'] },
        { dst: `10.10.${i - 1}.2`, dev: 'cni0', lladdr: `0a:00:00:00:0${i}:02`, state: ['REACHABLE'] },
      ],
      fdb: [{ mac: `0a:00:00:00:0${i}:02`, ifname: `veth0000000${i}`, master: 'cni0', flags: [], state: '' }],
      nsids: [...underlay, { nsid: 1, name: `t-pod-nginx-${i - 1}` }],
    });
  const raw = [
    node('master', 1, M1, 2),
    node('worker', 2, M2, 2),
    ...[0, 1].map((i) =>
      ns('pod', `nginx-${i}`, i ? 'worker' : 'master', {
        links: [link(2, 'eth0', 'veth', { mac: `0a:00:00:00:0${i + 1}:02`, addrs: [`10.10.${i}.2/24`], peer: { index: 5, nsid: 0 }, mtu: 1472 })],
        routes: [{ dst: 'default', gateway: `10.10.${i}.1`, dev: 'eth0', flags: [] }, kernelRoute(`10.10.${i}.0/24`, 'eth0', `10.10.${i}.2`)],
        neighbours: [{ dst: `10.10.${i}.1`, dev: 'eth0', lladdr: `aa:00:00:00:0${i + 1}:01`, state: ['REACHABLE'] }],
        nsids: [{ nsid: 0, name: `t-${i ? 'worker' : 'master'}` }],
      }),
    ),
  ];
  raw[0].tunOwners = [{ pid: 4242, comm: 'flanneld', ifname: 'flannel0', udpPorts: [8285] }];
  raw[1].tunOwners = [{ pid: 4343, comm: 'flanneld', ifname: 'flannel0', udpPorts: [8285] }];
  return buildModel(raw, { lab: 'flannel-udp', backend: 'netns' });
}
