import { expect } from 'chai';
import { failedBatchLine, namedNetns, parseJsonLines } from '../../src/net/ip.js';
import { CommandError } from '../../src/net/exec.js';

describe('ip -n names', () => {
  it('uses the name for namespaces under /run/netns and nsenter for any other path', () => {
    expect(namedNetns('node1')).to.equal('node1');
    expect(namedNetns('/run/netns/cni-1234')).to.equal('cni-1234');
    expect(namedNetns('/var/run/netns/cni-1234')).to.equal('cni-1234');
    expect(namedNetns('/proc/42/ns/net')).to.equal(undefined);
    expect(namedNetns('/run/netns/a/b')).to.equal(undefined);
  });
});

describe('ip -batch output', () => {
  it('reads one JSON array per show line', () => {
    expect(parseJsonLines('[{"ifname":"a"}]\n[{"ifname":"b"}]\n')).to.deep.equal([[{ ifname: 'a' }], [{ ifname: 'b' }]]);
    expect(parseJsonLines('')).to.deep.equal([]);
  });
  it('finds the line that failed', () => {
    const e = new CommandError(['ip', '-batch', '-'], 1, 'RTNETLINK answers: File exists\nCommand failed -:2\n');
    expect(failedBatchLine(e)).to.equal(2);
    expect(failedBatchLine(new Error('x'))).to.equal(undefined);
  });
});
