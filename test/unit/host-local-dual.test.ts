// host-local with IPv6 and dual-stack range sets, run in-process on a temporary
// lease directory (IPAM touches no kernel state, only files).
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch } from '../../src/cni/skel.js';
import { hostLocal } from '../../src/cni/plugins/host-local.js';

const V4 = { subnet: '10.77.0.0/24' };
const V6 = { subnet: 'fd00:77::/64' };

describe('host-local: IPv6 and dual-stack', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cnilab-hl6-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const conf = (ranges: unknown, extra: Record<string, unknown> = {}, version = '1.0.0') => ({
    cniVersion: version,
    name: 'n',
    type: 'host-local',
    ipam: { type: 'host-local', ranges, dataDir: dir, ...extra },
  });
  async function call(command: string, c: unknown, containerId = 'c1', more: Record<string, string> = {}) {
    let out = '';
    const env = { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_PATH: '/x', ...more };
    const code = await dispatch(hostLocal, { env, stdin: JSON.stringify(c), write: (t) => (out += t) });
    return { code, out: out.trim() ? JSON.parse(out) : undefined };
  }
  const files = () => readdirSync(join(dir, 'n')).sort();
  const leases = () => files().filter((f) => !f.startsWith('last_reserved') && !f.startsWith('owner.'));

  it('dual-stack: one address per family, each with its gateway, lease files named by the canonical address', async () => {
    const r = await call('ADD', conf([[V4], [V6]], { routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:77::1' }] }));
    expect(r.code, JSON.stringify(r.out)).to.equal(0);
    expect(r.out.ips).to.deep.equal([
      { address: '10.77.0.2/24', gateway: '10.77.0.1' },
      { address: 'fd00:77::2/64', gateway: 'fd00:77::1' },
    ]);
    expect(r.out.routes).to.deep.equal([{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:77::1' }]);
    expect(leases()).to.deep.equal(['10.77.0.2', 'fd00:77::2']);
    const second = await call('ADD', conf([[V4], [V6]]), 'c2');
    expect(second.out.ips.map((i: { address: string }) => i.address)).to.deep.equal(['10.77.0.3/24', 'fd00:77::3/64']);
  });

  it('0.4.0 results say the version of each address', async () => {
    const r = await call('ADD', conf([[V4], [V6]], {}, '0.4.0'));
    expect(r.out.ips.map((i: { version: string }) => i.version)).to.deep.equal(['4', '6']);
  });

  it('an IPv6-only network; the last address of an IPv6 range is usable (no broadcast)', async () => {
    const small = [[{ subnet: 'fd00:78::/126' }]];
    const got: string[] = [];
    for (const id of ['a', 'b']) got.push((await call('ADD', conf(small), id)).out.ips[0].address);
    expect(got).to.deep.equal(['fd00:78::2/126', 'fd00:78::3/126']);
    const full = await call('ADD', conf(small), 'c');
    expect(full.out.code).to.equal(100);
    expect(full.out.msg).to.include('fd00:78::1-fd00:78::3');
    const status = await call('STATUS', conf(small, {}, '1.1.0'));
    expect(status.out.code).to.equal(50);
  });

  it('rangeStart/rangeEnd in IPv6, wrapping after the last address handed out', async () => {
    const set = [[{ subnet: 'fd00:79::/64', rangeStart: 'fd00:79::fffe', rangeEnd: 'fd00:79::1:0' }]];
    const addr = async (id: string) => (await call('ADD', conf(set), id)).out.ips[0].address;
    expect(await addr('a')).to.equal('fd00:79::fffe/64');
    expect(await addr('b')).to.equal('fd00:79::ffff/64');
    expect(await addr('c')).to.equal('fd00:79::1:0/64');
    await call('DEL', conf(set), 'a');
    expect(await addr('d')).to.equal('fd00:79::fffe/64');
  });

  it('a range set of several IPv6 ranges walks on to the next range', async () => {
    const set = [[{ subnet: 'fd00:80::/126' }, { subnet: 'fd00:81::/126' }]];
    const got: string[] = [];
    for (const id of ['a', 'b', 'c']) got.push((await call('ADD', conf(set), id)).out.ips[0].address);
    expect(got).to.deep.equal(['fd00:80::2/126', 'fd00:80::3/126', 'fd00:81::2/126']);
  });

  it('when one family is full the other family is not kept either', async () => {
    const sets = [[V4], [{ subnet: 'fd00:82::/126' }]];
    await call('ADD', conf(sets), 'a');
    await call('ADD', conf(sets), 'b');
    const before = leases();
    const r = await call('ADD', conf(sets), 'c');
    expect(r.out.code).to.equal(100);
    expect(leases()).to.deep.equal(before);
  });

  it('DEL and GC remove the leases of both families', async () => {
    for (const id of ['a', 'b', 'c']) await call('ADD', conf([[V4], [V6]], {}, '1.1.0'), id);
    await call('DEL', conf([[V4], [V6]], {}, '1.1.0'), 'a');
    expect(leases()).to.deep.equal(['10.77.0.3', '10.77.0.4', 'fd00:77::3', 'fd00:77::4']);
    const gc = { ...conf([[V4], [V6]], {}, '1.1.0'), 'cni.dev/valid-attachments': [{ containerID: 'c', ifname: 'eth0' }] };
    expect((await call('GC', gc)).code).to.equal(0);
    expect(leases()).to.deep.equal(['10.77.0.4', 'fd00:77::4']);
    // Each attachment's owner file goes with its leases, by DEL or by GC.
    expect(files().filter((f) => f.startsWith('owner.'))).to.deep.equal(['owner.c:eth0']);
    expect((await call('CHECK', { ...conf([[V4], [V6]], {}, '1.1.0'), prevResult: { cniVersion: '1.1.0' } }, 'c')).code).to.equal(0);
  });

  it('parallel ADDs never share an IPv6 address', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call('ADD', conf([[V6]]), `p${i}`)));
    const addrs = results.map((r) => r.out.ips[0].address);
    expect(new Set(addrs).size).to.equal(20);
  });

  it('resolvConf gives dns, IPv6 nameservers included', async () => {
    const file = join(dir, 'resolv.conf');
    writeFileSync(file, 'nameserver 10.77.0.10\nnameserver fd00:77::10\nsearch svc.cluster.local cluster.local\noptions ndots:5\n');
    const r = await call('ADD', conf([[V4], [V6]], { resolvConf: file }));
    expect(r.out.dns).to.deep.equal({ nameservers: ['10.77.0.10', 'fd00:77::10'], search: ['svc.cluster.local', 'cluster.local'], options: ['ndots:5'] });
  });

  const bad: { title: string; ranges: unknown; extra?: Record<string, unknown>; mentions: string[] }[] = [
    { title: 'an IPv6 range that is no CIDR', ranges: [[{ subnet: 'fd00:77::/64x' }]], mentions: ['ipam.ranges[0][0].subnet', 'fd00:77::/64x'] },
    { title: 'an IPv6 prefix past 128', ranges: [[{ subnet: 'fd00:77::/129' }]], mentions: ['ipam.ranges[0][0].subnet', 'fd00:77::/129'] },
    { title: 'an IPv6 range too small for a pod', ranges: [[{ subnet: 'fd00:77::/127' }]], mentions: ['ipam.ranges[0][0].subnet', '/126'] },
    { title: 'a broken IPv6 rangeStart', ranges: [[{ subnet: 'fd00:77::/64', rangeStart: 'fd00:::5' }]], mentions: ['ipam.ranges[0][0].rangeStart', 'fd00:::5', 'IPv6'] },
    { title: 'an IPv4 gateway in an IPv6 range', ranges: [[{ subnet: 'fd00:77::/64', gateway: '10.77.0.1' }]], mentions: ['ipam.ranges[0][0].gateway', 'IPv4', 'IPv6'] },
    { title: 'an IPv6 rangeEnd outside the subnet', ranges: [[{ subnet: 'fd00:77::/64', rangeEnd: 'fd00:78::9' }]], mentions: ['ipam.ranges[0][0].rangeEnd', 'outside'] },
    { title: 'both families in one range set', ranges: [[V4, V6]], mentions: ['ipam.ranges[0][1].subnet', 'IPv6', 'IPv4', 'one family'] },
    { title: 'overlapping IPv6 range sets', ranges: [[{ subnet: 'fd00:77::/48' }], [V6]], mentions: ['ipam.ranges[1][0].subnet', 'overlaps'] },
    { title: 'an empty range list', ranges: [], mentions: ['ipam.ranges', 'empty'] },
    { title: 'a route whose gateway is of the other family', ranges: [[V4], [V6]], extra: { routes: [{ dst: '::/0', gw: '10.77.0.1' }] }, mentions: ['ipam.routes[0].gw', 'IPv4', 'IPv6'] },
  ];
  for (const b of bad) {
    it(`refuses ${b.title} with code 7 naming the field, and writes no lease`, async () => {
      const r = await call('ADD', conf(b.ranges, b.extra ?? {}));
      expect(r.code).to.not.equal(0);
      expect(r.out.code, r.out.msg).to.equal(7);
      for (const w of b.mentions) expect(r.out.msg).to.include(w);
      expect(readdirSync(dir)).to.deep.equal([]);
    });
  }
});
