// The command line's contract with scripts: --version, and exit code 2 for
// every usage error (README's table), whether commander or cnilab finds it.
import { expect } from 'chai';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { ROOT } from '../../src/lab/paths.js';

const cnilab = (...args: string[]) => execa(process.execPath, [`${ROOT}/dist/cli.js`, ...args], { reject: false, env: { NO_COLOR: '1' } });

describe('cnilab: version and usage errors', () => {
  it('--version and -V print the package version and exit 0', async () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await cnilab(flag);
      expect(r.exitCode).to.equal(0);
      expect(r.stdout.trim()).to.equal(version);
    }
  });

  it('an unknown option, an unknown command and a value outside the choices exit 2, naming what was wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['run', 'flannel-vxlan', '--bogus'], /unknown option '--bogus'/],
      [['nosuch'], /unknown command 'nosuch'/],
      [['run', 'calico-bgp-services', '--proxy-mode', 'ipvs'], /'ipvs' is invalid\. Allowed choices are iptables, nftables, ebpf/],
      [['run'], /missing required argument 'lab'/],
    ];
    for (const [args, message] of cases) {
      const r = await cnilab(...args);
      expect(r.exitCode, args.join(' ')).to.equal(2);
      expect(r.stderr).to.match(message);
    }
  });

  it('--help exits 0 and shows an example', async () => {
    const r = await cnilab('run', '--help');
    expect(r.exitCode).to.equal(0);
    expect(r.stdout).to.include('Example:').and.include('--proxy-mode');
  });
});
