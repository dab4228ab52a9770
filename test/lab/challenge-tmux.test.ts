// A challenge as a student meets it, in a real terminal (tmux): start it, read
// the story, open a shell on the node, look and repair there, ask for a hint,
// check, and take the lab down. Nothing here is scripted below the keyboard.
import { expect } from 'chai';
import { join } from 'node:path';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { leftovers } from '../helpers/lab.js';
import { Terminal } from '../helpers/terminal.js';

describe('cnilab challenge in a terminal (tmux)', function () {
  this.timeout(300_000);
  const term = new Terminal('challenge');
  before(() => requireBuilt());
  after(() => term.stop());

  // The lab is named in every command (--lab): other labs may be up on a shared machine.
  it('challenge, shell, hint, check: the student repairs ip_forward on the worker and the check passes', async () => {
    await term.start(`PS1='student$ ' bash --norc --noprofile`);
    await term.waitFor(/student\$\s*$/m, 'the prompt');
    await term.line(`cnilab() { node ${join(ROOT, 'dist/cli.js')} "$@"; }; clear`);

    await term.line('cnilab challenge flannel-host-gw ip-forward-off --name ch-tmux --no-log');
    let s = await term.waitFor(/Then: cnilab check[^\n]*\n[\s\S]*student\$\s*$/, 'the story');
    expect(s).to.include('Challenge · The worker stopped passing packets on (flannel-host-gw/ip-forward-off)');
    expect(s).to.include('pods on master no longer reach');

    await term.line('clear; cnilab check --lab ch-tmux; echo CHECK-EXIT $?');
    s = await term.waitFor(/CHECK-EXIT \d+/, 'the first check');
    expect(s).to.include('✘ nginx-0 on master reaches nginx-1 on the worker');
    expect(s).to.include('✘ the worker forwards IPv4 on every interface (net.ipv4.ip_forward = 1)');
    expect(s).to.include('CHECK-EXIT 1');

    await term.line('clear; cnilab shell --lab ch-tmux worker');
    await term.waitFor(/\[ch-tmux worker\] [^\n]*#\s*$/m, 'the shell on the worker');
    await term.line('sysctl net.ipv4.ip_forward');
    s = await term.waitFor(/net\.ipv4\.ip_forward = 0/, 'the sysctl');
    await term.line('sysctl -w net.ipv4.ip_forward=1');
    await term.waitFor(/net\.ipv4\.ip_forward = 1/, 'the repair');
    await term.line('exit');
    await term.waitFor(/student\$\s*$/m, 'back at the student\'s prompt');

    await term.line('clear; cnilab hint --lab ch-tmux');
    s = await term.waitFor(/Hint 1\/3:[^\n]*\n[\s\S]*student\$\s*$/, 'the first hint');
    expect(s).to.include('cnilab trace nginx-0 nginx-1');
    expect(s).to.not.include('Hint 2/3');

    await term.line('clear; cnilab check --lab ch-tmux; echo CHECK-EXIT $?');
    s = await term.waitFor(/CHECK-EXIT \d+/, 'the second check');
    expect(s).to.include('✔ the worker forwards IPv4 on every interface (net.ipv4.ip_forward = 1)');
    expect(s).to.match(/✔ fixed in \d+(m \d\ds|s) with 1 hint\(s\) and 2 check\(s\)\./);
    expect(s).to.include('CHECK-EXIT 0');

    await term.line('clear; cnilab down ch-tmux; echo DOWN-EXIT $?');
    s = await term.waitFor(/DOWN-EXIT \d+/, 'the lab going down');
    expect(s).to.include('DOWN-EXIT 0');
    expect(leftovers('ch-tmux')).to.deep.equal([]);
  });
});
