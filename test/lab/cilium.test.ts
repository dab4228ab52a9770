// The eBPF labs through the real runner: every lesson step passes, the two
// labs run side by side without sharing a map, and afterwards nothing is
// left: namespaces, BPF filesystems, pinned programs and maps, processes.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { labDir, NAME_PREFIX, readState } from '../../src/lab/state.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { cleanAll } from '../../src/runner/clean.js';
import { PreflightError, preflight } from '../../src/runner/preflight.js';
import { loadLab } from '../../src/datapaths/index.js';
import { missingBpfFeatures } from '../../src/datapaths/cilium/install.js';
import { pinnedProgramIds, programLoaded } from '../../src/net/bpf.js';
import { run } from '../../src/net/exec.js';
import { listNetns } from '../../src/net/netns.js';
import { alive, failures, leftovers } from '../helpers/lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds; generous, since CI machines are shared and slow at times. */
async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(20);
  }
  return cond();
}
const NODES = ['master', 'worker'];
const MAPS = ['endpoints', 'remote_nodes', 'counters', 'config'];

/** What a lab loaded into the kernel, read while it is up. */
interface Loaded {
  programs: number[];
  /** node -> IDs of its pinned maps */
  maps: Record<string, number[]>;
  pids: number[];
}

/** A reporter that looks at the lab's pinned BPF objects just before the steps run. */
class InspectingReporter extends QuietReporter {
  loaded: Loaded = { programs: [], maps: {}, pids: [] };
  constructor(private instance: string) {
    super();
  }
  override async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (name === 'steps') {
      for (const node of NODES) {
        const pins = join(labDir(this.instance), 'nodes', node, 'sys/fs/bpf/cilium');
        this.loaded.programs.push(...(await pinnedProgramIds(join(pins, 'progs'))));
        this.loaded.maps[node] = await Promise.all(MAPS.map(async (m) => JSON.parse((await run(['bpftool', '-j', 'map', 'show', 'pinned', join(pins, 'maps', m)])).stdout).id as number));
      }
      this.loaded.pids = readState(this.instance)?.processes.map((p) => p.pid) ?? [];
    }
    return super.phase(name, fn);
  }
}

const gone = async (kind: 'prog' | 'map', id: number) => (kind === 'prog' ? !(await programLoaded(id)) : (await run(['bpftool', 'map', 'show', 'id', String(id)], { allowFailure: true })).exitCode !== 0);

/** Network namespaces are freed by the kernel in the background; what they held goes a moment later. */
async function eventuallyGone(kind: 'prog' | 'map', ids: number[]): Promise<number[]> {
  const left = async () => (await Promise.all(ids.map(async (id) => ((await gone(kind, id)) ? undefined : id)))).filter((x): x is number => x !== undefined);
  await waitFor(async () => (await left()).length === 0);
  return left();
}

const bpfMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - bpf /.test(l));

describe('lab: cilium-ebpf and cilium-vxlan', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('both labs run at once: every step passes, no two nodes share a map, nothing is left behind', async () => {
    const labs = ['cilium-ebpf', 'cilium-vxlan'];
    const reporters = labs.map((l) => new InspectingReporter(l));
    const reports = await Promise.all(labs.map((l, i) => runLab(l, {}, reporters[i])));
    for (const r of reports) {
      expect(r.ok, `${r.lab}: ${failures(r)}`).to.equal(true);
      expect(r.steps.length).to.be.greaterThan(15);
    }
    const loaded = reporters.map((r) => r.loaded);
    for (const l of loaded) expect(l.programs, 'lxc + netdev + overlay programs on each node').to.have.length(6);
    const mapIds = loaded.flatMap((l) => Object.values(l.maps).flat());
    expect(mapIds).to.have.length(16);
    expect(new Set(mapIds).size, `map IDs per node: ${JSON.stringify(loaded.map((l) => l.maps))}`).to.equal(16);

    for (const lab of labs) expect(leftovers(lab), lab).to.deep.equal([]);
    for (const pid of loaded.flatMap((l) => l.pids)) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
    expect(await eventuallyGone('prog', loaded.flatMap((l) => l.programs)), 'BPF programs still loaded').to.deep.equal([]);
    expect(await eventuallyGone('map', mapIds), 'BPF maps still there').to.deep.equal([]);
  });

  it('preflight names the missing tools with their Debian packages', async () => {
    const { lab } = loadLab('cilium-ebpf');
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const e = await preflight(lab, { install: false, log: () => undefined }).then(() => undefined, (err: Error) => err);
      expect(e).to.be.instanceOf(PreflightError);
      expect(e!.message).to.match(/missing tools: .*clang.*bpftool.*tc/);
      const packages = /Debian packages: ([^)]*)\)/.exec(e!.message)?.[1].split(' ');
      expect(packages).to.include.members(['clang', 'bpftool', 'iproute2']);
    } finally {
      process.env.PATH = path;
    }
  });

  it('the kernel check loads a trivial tc program in a scratch namespace and leaves no namespace or mount', async () => {
    const mountsBefore = bpfMounts();
    expect(await missingBpfFeatures()).to.deep.equal([]);
    expect(listNetns().filter((n) => n.startsWith(`${NAME_PREFIX}preflight-bpf-`))).to.deep.equal([]);
    expect(bpfMounts()).to.deep.equal(mountsBefore);
  });

  it('a runner killed with SIGKILL after the agents pinned their maps leaves nothing after clean', async () => {
    const instance = 'cil-killed';
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'up', 'cilium-ebpf', '--name', instance, '--json'], { stdio: 'ignore' });
    const reached = () => (readState(instance)?.processes.length ?? 0) >= 2 && bpfMounts().some((l) => l.includes(`${labDir(instance)}/nodes/worker/sys/fs/bpf`));
    expect(await waitFor(reached), 'the runner never started both agents').to.equal(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const pids = readState(instance)!.processes.map((p) => p.pid);
    expect(leftovers(instance).some((l) => l.includes('sys/fs/bpf')), 'the crash left the BPF filesystems mounted').to.equal(true);

    const report = await cleanAll();
    expect(report.labs).to.include(instance);
    expect(leftovers(instance)).to.deep.equal([]);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
  });
});
