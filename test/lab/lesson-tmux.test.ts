// `cnilab lesson` as a learner meets it: in a real terminal (tmux), reading the
// screen with capture-pane and answering with send-keys. The lab comes up,
// each exercise waits for Enter, q quits, and the lab is gone at the end.
import { expect } from 'chai';
import { join } from 'node:path';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { leftovers } from '../helpers/lab.js';
import { Terminal } from '../helpers/terminal.js';

describe('cnilab lesson in a terminal (tmux)', function () {
  this.timeout(120_000);
  let term: Terminal;
  before(() => requireBuilt());
  beforeEach(() => (term = new Terminal()));
  afterEach(() => term.stop());

  it('walks all of flannel-host-gw\'s exercises on Enter, runs them on the live lab, and tears it down', async () => {
    await term.start(`node ${join(ROOT, 'dist/cli.js')} lesson flannel-host-gw --name ws-lesson; echo LESSON-EXIT $?; sleep 600`);
    let s = await term.waitFor(/Exercise 1\/3 · The same pods, no tunnel[\s\S]*\[Enter\] run it/, 'the first exercise');
    expect(s).to.include('? What is missing from the picture compared with flannel-vxlan?');
    expect(s).to.include('$ cnilab diagram');
    expect(s).to.not.include('What to notice');

    await term.keys('Enter');
    s = await term.waitFor(/What to notice/, 'the diagram and what to notice');
    expect(s).to.match(/node master {2}eth0@if\d+ 192\.168\.10\.210\/24/);
    expect(s).to.match(/10\.10\.1\.0\/24 ⇒ worker: routed via 192\.168\.10\.220 \(eth0\)/);

    await term.keys('Enter');
    s = await term.waitFor(/Exercise 2\/3 · A route via the other node[\s\S]*\[Enter\] run them/, 'the second exercise');
    expect(s).to.match(/\(node master\) \$ ip route get 10\.10\.1\.\d+/); // the template is filled in
    await term.keys('Enter');
    s = await term.waitFor(/What to notice/, 'the routes');
    expect(s).to.include('10.10.1.0/24 via 192.168.10.220 dev eth0');

    await term.keys('Enter');
    await term.waitFor(/Exercise 3\/3 · Follow a packet[\s\S]*\[Enter\] run it/, 'the third exercise');
    await term.keys('Enter');
    s = await term.waitFor(/What to notice/, 'the trace');
    expect(s).to.include('✔ delivered in 12 steps, no encapsulation');
    expect(s).to.include('✔ capture: all 3 pings seen at every interface of the path');

    await term.keys('Enter');
    s = await term.waitFor(/LESSON-EXIT \d+/, 'the end');
    expect(s).to.include('✔ all 3 exercises of flannel-host-gw done');
    expect(s).to.include('tearing ws-lesson down');
    expect(s).to.include('LESSON-EXIT 0');
    expect(leftovers('ws-lesson')).to.deep.equal([]);
  });

  it('q at the first question quits and still tears the lab down', async () => {
    await term.start(`node ${join(ROOT, 'dist/cli.js')} lesson flannel-vxlan --name ws-lesson-q; echo LESSON-EXIT $?; sleep 600`);
    await term.waitFor(/Exercise 1\/\d+ · The cluster at a glance[\s\S]*\[q\] quit/, 'the first exercise');
    await term.keys('q');
    const s = await term.waitFor(/LESSON-EXIT \d+/, 'the end');
    expect(s).to.match(/stopped after 0 of \d+ exercises/);
    expect(s).to.include('LESSON-EXIT 0');
    expect(leftovers('ws-lesson-q')).to.deep.equal([]);
  });
});
