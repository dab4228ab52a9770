// The bench and load scripts' command line (scripts/args.ts): --help prints the
// npm command and every option and exits 0, an unknown option or a bad value is
// one line and exit code 2, both before any benchmark starts.
import { expect } from 'chai';
import { execa } from 'execa';
import { ROOT } from '../../src/lab/paths.js';

const script = (name: string, ...args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', `${ROOT}/scripts/${name}.ts`, ...args], { cwd: ROOT, reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });

describe('scripts: --help and usage errors', () => {
  it('--help and -h print the npm command and each option with its default, and exit 0', async () => {
    const scale = await script('bench-scale', '--help');
    expect(scale.exitCode).to.equal(0);
    expect(scale.stderr).to.equal('');
    expect(scale.stdout).to.include('npm run bench:scale --').and.include('--pods <list>').and.include('(default: 100,500,1000)').and.include('--nodes').and.include('--json');
    const cni = await script('bench-cni', '-h');
    expect(cni.exitCode).to.equal(0);
    expect(cni.stdout).to.include('npm run bench:cni --').and.include('--cycles <n>').and.include('(default: 30)').and.include('--warmup');
    expect(cni.stdout, 'the option the script gives itself is not shown').not.to.include('--inside');
  });

  it('an unknown option, a positional argument or a bad value is one line on stderr and exit code 2', async () => {
    const cases: [string, string[], RegExp][] = [
      ['bench-scale', ['--bogus'], /^error: unknown option '--bogus' \(try --help\)$/],
      ['bench-scale', ['--pods', '100,many'], /^error: --pods wants a whole number of at least 0, not 'many' \(try --help\)$/],
      ['bench-cni', ['--cycles', '0'], /^error: --cycles wants a whole number of at least 1, not '0' \(try --help\)$/],
      ['bench-cni', ['stray'], /^error: unexpected argument 'stray' \(try --help\)$/],
    ];
    for (const [name, args, message] of cases) {
      const r = await script(name, ...args);
      expect(r.exitCode, `${name} ${args.join(' ')}`).to.equal(2);
      expect(r.stderr.trim()).to.match(message);
      expect(r.stdout).to.equal('');
    }
  });
});
