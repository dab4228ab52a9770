import { expect } from 'chai';
import { daemonBreakdown } from '../../src/bench/cni-trace.js';

const LOG = `2026-01-01T00:00:00.000Z cnilab daemon 1 serving bridge on /x.sock
trace 3.00 ms ip -json -details -batch -
trace 2.00 ms ip -n cnitest-b-1 -batch -
2026-01-01T00:00:00.010Z bridge ADD bench0 eth0 exit 0 6.0 ms
trace 9.00 ms ip -n cnitest-b-1 link del dev eth0
2026-01-01T00:00:00.020Z bridge DEL bench0 eth0 exit 0 9.5 ms
trace 5.00 ms ip -json -details -batch -
trace 4.00 ms ip -n cnitest-b-2 -batch -
2026-01-01T00:00:00.030Z bridge ADD bench1 eth0 exit 0 10.0 ms
trace 1.00 ms ip -json -details -batch -
2026-01-01T00:00:00.040Z bridge ADD bench2 eth0 exit 7 1.5 ms
2026-01-01T00:00:00.050Z bridge VERSION   exit 0 0.2 ms
`;

describe('daemon trace breakdown', () => {
  it('gives each call the commands logged before it, and the rest', () => {
    const add = daemonBreakdown(LOG, 'ADD')!;
    expect(add.total).to.equal(8);
    expect(add.commands).to.deep.equal([
      { command: 'ip -json -details -batch -', median: 4, perCall: 1 },
      { command: 'ip -n <ctr> -batch -', median: 3, perCall: 1 },
    ]);
    expect(add.rest).to.equal(1);
  });
  it('skips failed calls and the ones the filter leaves out', () => {
    const add = daemonBreakdown(LOG, 'ADD', (id) => id !== 'bench0')!;
    expect(add.total).to.equal(10);
    expect(daemonBreakdown(LOG, 'DEL')!.commands[0]).to.include({ command: 'ip -n <ctr> link del dev eth0', median: 9 });
    expect(daemonBreakdown(LOG, 'CHECK')).to.equal(undefined);
  });
});
