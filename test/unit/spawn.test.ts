import { expect } from 'chai';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runSpawned, startDetached } from '../../src/net/exec.js';
import { rejectionOf } from '../helpers/errors.js';

describe('commands started through posix_spawn', () => {
  it('give what run() gives: input, output, error output, exit code, environment', async () => {
    for (const argv of [
      ['cat'],
      ['sh', '-c', 'cat; echo "to stderr $FOO" >&2; exit 3'],
    ]) {
      const opts = { input: 'a'.repeat(200_000), allowFailure: true, env: { PATH: process.env.PATH, FOO: 'bar' } };
      expect(await runSpawned(argv, opts)).to.deep.equal(await run(argv, opts));
    }
  });

  it('fail as run() does: the command and its exit code, a missing program named', async () => {
    const failed = await rejectionOf(runSpawned(['sh', '-c', 'echo broken >&2; exit 2']));
    expect(failed.message).to.equal('sh -c echo broken >&2; exit 2 failed (exit 2): broken');
    const missing = await rejectionOf(runSpawned(['/nonexistent/program']));
    expect(missing.message).to.match(/\/nonexistent\/program is not installed/);
    expect((await runSpawned(['/nonexistent/program'], { allowFailure: true })).exitCode).to.equal(127);
  });

  it('run many at once, each answer its own', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => runSpawned(['sh', '-c', `echo ${i}`])));
    expect(results.map((r) => r.stdout)).to.deep.equal(Array.from({ length: 200 }, (_, i) => `${i}\n`));
  });

  it('start a detached process in a session of its own, its output in the file given, its PID returned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-spawn-'));
    try {
      const log = join(dir, 'out.log');
      const fd = openSync(log, 'a');
      const pid = startDetached(['sh', '-c', 'echo "$$ $(ps -o sid= -p $$) $FOO"'], { stdout: fd, stderr: fd, env: { PATH: process.env.PATH, FOO: 'bar' } });
      closeSync(fd);
      const deadline = Date.now() + 5000;
      while (!readFileSync(log, 'utf8').includes('bar') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const [self, sid, foo] = readFileSync(log, 'utf8').trim().split(/\s+/);
      expect([Number(self), Number(sid), foo]).to.deep.equal([pid, pid, 'bar']);
      expect(() => startDetached(['/nonexistent/program'], { stdout: 1, stderr: 2 })).to.throw(/could not start \/nonexistent\/program/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
