import { expect } from 'chai';
import { execa } from 'execa';
import { ROOT } from '../../src/lab/paths.js';

describe('cnilab serve: options', () => {
  it('refuses to hand root shells to a room: netns backend on a non-loopback address needs --host-shells (exit 2), and starts nothing', async () => {
    const r = await execa(process.execPath, [`${ROOT}/dist/cli.js`, 'serve', '--listen', '0.0.0.0', '--port', '0'], { reject: false, env: { NO_COLOR: '1' } });
    expect(r.exitCode).to.equal(2);
    expect(r.stderr).to.include('root shells on this machine').and.include('--backend docker').and.include('--host-shells');
  });
});
