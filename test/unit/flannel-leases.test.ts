// flannel's leases: what is claimed for a node before its agent runs, and
// the agent's reconcile when a peer's lease changes. etcd and the kernel are
// faked (the boundary): the test reads the ip/bridge lines the agent would run.
import { expect } from 'chai';
import { FlannelAgent } from '../../src/datapaths/flannel/agent.js';
import { HostGwBackend } from '../../src/datapaths/flannel/host-gw.js';
import { VxlanBackend } from '../../src/datapaths/flannel/vxlan.js';
import { claimLease, parseLease, subnetKey, type LeaseValue, type NetworkConfig } from '../../src/datapaths/flannel/types.js';
import { parseCidr } from '../../src/net/ipnet.js';
import type { Ip } from '../../src/net/ip.js';

const PREFIX = '/coreos.com/network';
const dual = (type: string): NetworkConfig => ({ Network: '10.10.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10::/48', IPv6SubnetLen: 64, Backend: { Type: type } });

/** The kernel side of the agent: records every line instead of running it. */
function recordingIp() {
  const lines: string[] = [];
  const ip = {
    lines,
    batch: async (l: string[][]) => void lines.push(...l.map((x) => x.join(' '))),
    bridgeBatch: async (l: string[][]) => void lines.push(...l.map((x) => `bridge ${x.join(' ')}`)),
    cmd: async (...x: string[]) => void lines.push(x.join(' ')),
    bridgeCmd: async (...x: string[]) => void lines.push(`bridge ${x.join(' ')}`),
    link: async (name: string) => ({ name, mtu: 1500, address: name.startsWith('flannel-v6') ? '66:66:66:66:66:66' : '44:44:44:44:44:44' }),
    deleteLink: async () => undefined,
  };
  return ip;
}

/** etcd holding the given leases by subnet. */
function fakeEtcd(leases: Map<string, LeaseValue>) {
  let revision = 1;
  return {
    bump: () => revision++,
    list: async () => ({ kvs: [...leases].map(([key, v]) => ({ key, value: JSON.stringify(v), modRevision: revision })), revision }),
  };
}

function agentWith(type: string, leases: Map<string, LeaseValue>) {
  const opts = { etcdEndpoint: 'http://127.0.0.1:1', prefix: PREFIX, iface: 'eth0', publicIp: '192.168.10.210', publicIpv6: 'fd00:192:168:10::210', subnetFile: '/nonexistent', log: () => undefined };
  const agent = new FlannelAgent(opts);
  const ip = recordingIp();
  Object.assign(agent, { ip, etcd: fakeEtcd(leases) });
  const own = subnetKey(PREFIX, parseCidr('10.10.0.0/24')!);
  leases.set(own, claimLease(dual(type), parseCidr('10.10.0.0/24')!, opts.publicIp, opts.publicIpv6));
  agent.lease = parseLease({ key: own, value: JSON.stringify(leases.get(own)), modRevision: 1 }, PREFIX);
  const backend = type === 'vxlan' ? new VxlanBackend(ip as unknown as Ip, opts) : new HostGwBackend(opts);
  return { agent, ip, backend };
}

describe('flannel leases', () => {
  it('a lease claimed up front carries the IPv6 subnet and address on a dual-stack network, the nth /64 for the nth /24', () => {
    const v = claimLease(dual('host-gw'), parseCidr('10.10.2.0/24')!, '192.168.10.230', 'fd00:192:168:10::230');
    expect(v).to.deep.equal({ PublicIP: '192.168.10.230', BackendType: 'host-gw', BackendData: {}, PublicIPv6: 'fd00:192:168:10::230', IPv6Subnet: 'fd00:10:0:2::/64' });
    const v4 = claimLease({ Network: '10.10.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }, parseCidr('10.10.2.0/24')!, '192.168.10.230');
    expect(v4).to.deep.equal({ PublicIP: '192.168.10.230', BackendType: 'vxlan', BackendData: {} });
  });

  it('host-gw: a peer lease that gains its IPv6 fields gets its IPv6 route programmed', async () => {
    const leases = new Map<string, LeaseValue>();
    const { agent, ip, backend } = agentWith('host-gw', leases);
    const peer = subnetKey(PREFIX, parseCidr('10.10.1.0/24')!);
    leases.set(peer, { PublicIP: '192.168.10.220', BackendType: 'host-gw', BackendData: {} });
    await agent.reconcile(backend);
    expect(ip.lines).to.deep.equal(['route replace 10.10.1.0/24 via 192.168.10.220 dev eth0']);
    ip.lines.length = 0;
    leases.set(peer, claimLease(dual('host-gw'), parseCidr('10.10.1.0/24')!, '192.168.10.220', 'fd00:192:168:10::220'));
    await agent.reconcile(backend);
    expect(ip.lines).to.include('route replace fd00:10:0:1::/64 via fd00:192:168:10::220 dev eth0');
    expect(ip.lines).to.include('route replace 10.10.1.0/24 via 192.168.10.220 dev eth0');
    // Nothing changed since: nothing to run.
    ip.lines.length = 0;
    await agent.reconcile(backend);
    expect(ip.lines).to.deep.equal([]);
  });

  it('vxlan: a peer whose IPv6 VTEP appears later gets the IPv6 neighbour, route and FDB entry', async () => {
    const leases = new Map<string, LeaseValue>();
    const { agent, ip, backend } = agentWith('vxlan', leases);
    await (backend as VxlanBackend).setupV6(agent.lease!.ipv6Subnet!);
    ip.lines.length = 0;
    const peer = subnetKey(PREFIX, parseCidr('10.10.1.0/24')!);
    const claimed = claimLease(dual('vxlan'), parseCidr('10.10.1.0/24')!, '192.168.10.220', 'fd00:192:168:10::220');
    leases.set(peer, { ...claimed, BackendData: { VNI: 1, VtepMAC: 'aa:aa:aa:aa:aa:aa' } });
    await agent.reconcile(backend);
    expect(ip.lines, 'no IPv6 VTEP yet: the peer waits').to.deep.equal([]);
    leases.set(peer, { ...claimed, BackendData: { VNI: 1, VtepMAC: 'aa:aa:aa:aa:aa:aa' }, BackendV6Data: { VNI: 1, VtepMAC: 'bb:bb:bb:bb:bb:bb' } });
    await agent.reconcile(backend);
    expect(ip.lines).to.include('route replace fd00:10:0:1::/64 via fd00:10:0:1:: dev flannel-v6.1 onlink');
    expect(ip.lines).to.include('bridge fdb replace bb:bb:bb:bb:bb:bb dev flannel-v6.1 dst fd00:192:168:10::220 self permanent');
    expect(ip.lines).to.include('route replace 10.10.1.0/24 via 10.10.1.0 dev flannel.1 onlink');
  });
});
