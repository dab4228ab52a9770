// The long-running `ip` of the CNI daemon keeps the meaning of `ip -batch`:
// lines run in order, the first failure stops the batch and is named by its
// line (also after earlier batches), the show lines' JSON comes back, a
// dead ip is restarted, and a name whose link was recreated elsewhere still works.
import { expect } from 'chai';
import { CommandError } from '../../src/net/exec.js';
import { failedBatchLine, Ip, parseJsonLines, type Link } from '../../src/net/ip.js';
import { IpSession } from '../../src/net/ip-session.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';

const NS = `cnitest-b-ipsession-${process.pid}`;

describe('IpSession (one ip process for many batches)', () => {
  let session: IpSession;

  before(async () => {
    await addNetns(NS);
    session = new IpSession(NS);
  });

  after(async () => {
    await session?.close();
    await deleteNetns(NS);
  });

  it('runs the lines in order and returns what the show lines print', async () => {
    const out = await session.batch([
      ['link', 'add', 'cnitest-v0', 'type', 'veth', 'peer', 'name', 'cnitest-v1'],
      ['link', 'set', 'dev', 'cnitest-v0', 'up'],
      ['link', 'show', 'dev', 'cnitest-v0'],
      ['link', 'show', 'dev', 'lo'],
    ]);
    const shown = parseJsonLines<Link>(out);
    expect(shown.map((l) => l[0].ifname)).to.deep.equal(['cnitest-v0', 'lo']);
    expect(shown[0][0].linkinfo?.info_kind).to.equal('veth'); // -details, as batchJson has it
    expect(shown[0][0].flags).to.include('UP');
  });

  it('stops at the first failure, names its line and keeps what came before', async () => {
    let err: unknown;
    try {
      await session.batch([
        ['link', 'show', 'dev', 'lo'],
        ['link', 'add', 'cnitest-v0', 'type', 'veth', 'peer', 'name', 'cnitest-v2'],
        ['link', 'set', 'dev', 'cnitest-v1', 'up'],
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CommandError);
    expect(failedBatchLine(err)).to.equal(2);
    expect((err as CommandError).stderr).to.match(/File exists/);
    expect(parseJsonLines<Link>((err as CommandError).stdout)[0][0].ifname).to.equal('lo');
    // Line 3 never ran.
    expect((await new Ip(NS).link('cnitest-v1'))?.flags).to.not.include('UP');
  });

  it('keeps one ip for many batches', async () => {
    await session.batch([['link', 'show', 'dev', 'lo']]);
    const pid = session.pid;
    await session.batch([['link', 'set', 'dev', 'cnitest-v0', 'mtu', '1400']]);
    const [[v0]] = parseJsonLines<Link>(await session.batch([['link', 'show', 'dev', 'cnitest-v0']]));
    expect(v0.mtu).to.equal(1400);
    expect(session.pid).to.equal(pid);
  });

  it('starts a new ip when the old one is gone', async () => {
    await session.batch([['link', 'show', 'dev', 'lo']]);
    const before = session.pid!;
    process.kill(before, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const out = await session.batch([['link', 'show', 'dev', 'lo']]);
    expect(parseJsonLines<Link>(out)[0][0].ifname).to.equal('lo');
    expect(session.pid).to.be.a('number').and.not.equal(before);
  });

  it('a link deleted elsewhere and added again under its name: the lines after reach the new one, failures keep their line', async () => {
    const recreate = async () => {
      await session.batch([
        ['link', 'add', 'cnitest-r0', 'type', 'veth', 'peer', 'name', 'cnitest-r1'],
        ['link', 'show', 'dev', 'cnitest-r0'], // this ip now knows the name's index
      ]);
      await new Ip(NS).cmd('link', 'del', 'cnitest-r0'); // another process deletes it, as a pod's CNI DEL does
    };
    await recreate();
    const out = await session.batch([
      ['link', 'add', 'cnitest-r0', 'type', 'veth', 'peer', 'name', 'cnitest-r1'],
      ['link', 'set', 'dev', 'cnitest-r0', 'address', 'ee:ee:ee:ee:ee:ee'],
      ['link', 'show', 'dev', 'cnitest-r0'],
    ]);
    const [[r0]] = parseJsonLines<Link>(out);
    expect(r0.address).to.equal('ee:ee:ee:ee:ee:ee');
    expect((await new Ip(NS).link('cnitest-r0'))?.ifindex).to.equal(r0.ifindex);

    await new Ip(NS).cmd('link', 'del', 'cnitest-r0');
    await recreate();
    let err: unknown;
    try {
      await session.batch([
        ['link', 'show', 'dev', 'lo'],
        ['link', 'add', 'cnitest-r0', 'type', 'veth', 'peer', 'name', 'cnitest-r1'],
        ['link', 'set', 'dev', 'cnitest-r0', 'up'],
        ['link', 'set', 'dev', 'cnitest-none', 'up'],
      ]);
    } catch (e) {
      err = e;
    }
    expect(failedBatchLine(err)).to.equal(4);
    expect(parseJsonLines<Link>((err as CommandError).stdout)[0][0].ifname).to.equal('lo');
    expect((await new Ip(NS).link('cnitest-r0'))?.flags).to.include('UP');
    await new Ip(NS).cmd('link', 'del', 'cnitest-r0');
  });

  it('serves callers one batch at a time', async () => {
    const outs = await Promise.all(Array.from({ length: 5 }, (_, i) => session.batch([['link', 'show', 'dev', i % 2 ? 'lo' : 'cnitest-v0']])));
    expect(outs.map((o) => parseJsonLines<Link>(o)[0][0].ifname)).to.deep.equal(['cnitest-v0', 'lo', 'cnitest-v0', 'lo', 'cnitest-v0']);
  });
});
