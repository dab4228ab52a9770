// Giving a machine back: only what is new since the snapshot is removed, never what was there.
import { expect } from 'chai';
import { restoreCommands, ruleWords, type HostSnapshot } from '../../src/net/host-snapshot.js';

const base: HostSnapshot = {
  links: ['lo', 'eth0'],
  linkSettings: { lo: { mtu: 65536, txqlen: 1000 }, eth0: { mtu: 1500, txqlen: 0 } },
  routes: ['default via 172.31.7.1 dev eth0 table main', '172.31.7.0/24 dev eth0 table main'],
  rules: [0, 32766, 32767],
  qdiscs: ['eth0 noqueue root'],
  netns: [],
  mounts: ['/', '/proc'],
  iptables: { filter: { chains: { INPUT: 'ACCEPT', FORWARD: 'ACCEPT', OUTPUT: 'ACCEPT' }, rules: ['-A INPUT -j ACCEPT'] } },
  sysctls: { 'net.ipv4.ip_forward': '0' },
  files: ['/var/log', '/var/log/syslog'],
};

describe('host snapshot: what teardown removes from a machine', () => {
  it('removes exactly what is new: links, routes via kept links, chains, rules, mounts, files; puts sysctls and queue lengths back', () => {
    const after: HostSnapshot = {
      ...base,
      links: [...base.links, 'flannel.1', 'cni0'],
      linkSettings: { ...base.linkSettings, eth0: { mtu: 1500, txqlen: 1000 } },
      routes: [...base.routes, '10.10.1.0/24 via 10.10.1.0 dev flannel.1 table main', '10.244.0.64/26 via 172.31.7.12 dev eth0 table main'],
      qdiscs: [...base.qdiscs, 'eth0 clsact ffff:fff1'],
      netns: ['ch-lab-pod-nginx-0'],
      mounts: [...base.mounts, '/run/netns', '/sys/fs/bpf', '/home/other'],
      iptables: { filter: { chains: { ...base.iptables.filter.chains, FLANNEL: '-' }, rules: [...base.iptables.filter.rules, '-A FORWARD -m comment --comment "flanneld forward" -j ACCEPT'] } },
      sysctls: { 'net.ipv4.ip_forward': '1' },
      files: [...base.files, '/var/log/flanneld.log', '/etc/cni', '/etc/cni/net.d', '/etc/cni/net.d/10-cnilab.conflist'],
    };
    expect(restoreCommands(base, after)).to.deep.equal([
      ['sh', '-c', 'for p in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; ip netns del "$1"', 'sh', 'ch-lab-pod-nginx-0'],
      ['umount', '-l', '/sys/fs/bpf'],
      ['umount', '-l', '/run/netns'],
      ['ip', 'link', 'del', 'flannel.1'],
      ['ip', 'link', 'del', 'cni0'],
      ['ip', 'route', 'del', '10.244.0.64/26', 'via', '172.31.7.12', 'dev', 'eth0', 'table', 'main'],
      ['tc', 'qdisc', 'del', 'dev', 'eth0', 'clsact'],
      ['ip', 'link', 'set', 'dev', 'eth0', 'txqueuelen', '0'],
      ['iptables', '-t', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT'],
      ['iptables', '-t', 'filter', '-F', 'FLANNEL'],
      ['iptables', '-t', 'filter', '-X', 'FLANNEL'],
      ['sysctl', '-qw', 'net.ipv4.ip_forward=0'],
      ['rm', '-rf', '--one-file-system', '--', '/var/log/flanneld.log', '/etc/cni'],
    ]);
  });

  it('touches nothing when the machine is as it was', () => {
    expect(restoreCommands(base, structuredClone(base))).to.deep.equal([]);
  });

  it('reads iptables-save quoting back into words', () => {
    expect(ruleWords('-A POSTROUTING -s 10.10.0.0/16 -m comment --comment "a \\"b\\" c" -j MASQUERADE')).to.deep.equal(['-A', 'POSTROUTING', '-s', '10.10.0.0/16', '-m', 'comment', '--comment', 'a "b" c', '-j', 'MASQUERADE']);
  });

  it('a blackhole route a lab added goes (Calico announces each block as one); an nftables table it made goes, one that was there stays', () => {
    const before: HostSnapshot = { ...base, nftTables: ['inet firewalld'] };
    const after: HostSnapshot = {
      ...before,
      routes: [...base.routes, 'blackhole 10.244.0.0/26 table main'],
      nftTables: ['inet firewalld', 'ip kube-proxy'],
    };
    const cmds = restoreCommands(before, after);
    expect(cmds).to.deep.include(['ip', 'route', 'del', 'blackhole', '10.244.0.0/26', 'table', 'main']);
    expect(cmds).to.deep.include(['nft', 'delete', 'table', 'ip', 'kube-proxy']);
    expect(cmds.flat()).to.not.include('firewalld');
    // A snapshot from before nftables was read cannot say which tables are new: none is touched.
    expect(restoreCommands(base, after).filter((c) => c[0] === 'nft')).to.deep.equal([]);
  });
});
