// Preflight on nodes with kernels of their own (hosts): each node's kernel is
// asked over its transport, and a lack is named with the machine it is on. The
// transport is faked here (the boundary); test/lab/hosts.test.ts runs it for real.
import { expect } from 'chai';
import { loadLab } from '../../src/datapaths/index.js';
import { nodePreflight, MissingFeatureError } from '../../src/runner/preflight.js';
import type { Backend } from '../../src/topologies/backend.js';
import type { RunResult } from '../../src/net/exec.js';

/** What a node's kernel answers: the link kinds it lacks, and the tc BPF probe's line ("filter <tc's error>") when it cannot. */
type Answers = Record<string, { links?: string[]; tcBpf?: string }>;

/** Nodes that answer as told; records every script they were asked to run, with its input. */
function fakeHosts(answers: Answers, hosts: Record<string, string>) {
  const asked: { node: string; script: string; input?: string }[] = [];
  const backend = {
    node: (n: string) => ({
      label: `node ${n}`,
      argv: (a: string[]) => a,
      run: async (argv: string[], opts: { input?: string } = {}): Promise<RunResult> => {
        asked.push({ node: n, script: argv[2], input: opts.input });
        const lines = argv[2].includes('tc filter add') ? [answers[n]?.tcBpf ?? ''] : (answers[n]?.links ?? []);
        return { exitCode: 0, stdout: lines.filter(Boolean).map((l) => `${l}\n`).join(''), stderr: '' } as RunResult;
      },
    }),
    nodeLabel: (n: string) => `${hosts[n]} (node ${n})`,
  } as unknown as Backend;
  return { backend, asked };
}

const failure = (p: Promise<void>) => p.then(() => undefined, (err: Error) => err);

describe('preflight on each node', () => {
  it('names the machine whose kernel lacks a link kind, and skips the lab', async () => {
    const { lab } = loadLab('flannel-vxlan');
    const { backend, asked } = fakeHosts({ worker: { links: ['vxlan'] } }, { master: 'm1', worker: 'w1' });
    const e = await failure(nodePreflight(lab, backend));
    expect(e).to.be.instanceOf(MissingFeatureError);
    expect(e!.message).to.equal('skipped: the kernel of w1 (node worker) lacks vxlan, which lab flannel-vxlan needs');
    // Asked in a scratch namespace of its own, removed again: the host's own links are never touched.
    expect(asked).to.have.length(2);
    for (const { script } of asked) expect(script).to.match(/^ip netns add "\$1"/m).and.match(/^ip netns del "\$1"$/m).and.include('ip -n "$1" link add pf');
  });

  it('passes when every node has every link kind the lab makes', async () => {
    const { lab } = loadLab('flannel-vxlan');
    await nodePreflight(lab, fakeHosts({}, { master: 'm1', worker: 'w1' }).backend);
  });

  it('cilium: each machine also loads a tc BPF program sent over from here; the one that cannot is named with what tc said', async () => {
    const { lab } = loadLab('cilium-ebpf');
    const { backend, asked } = fakeHosts({ master: { tcBpf: 'filter Error: Failed to load program: Operation not permitted' } }, { master: 'm1', worker: 'w1' });
    const e = await failure(nodePreflight(lab, backend));
    expect(e).to.be.instanceOf(MissingFeatureError);
    expect(e!.message).to.equal(
      'skipped: the kernel of m1 (node master) lacks BPF tc classifiers (cls_bpf and the bpf() syscall: Error: Failed to load program: Operation not permitted), which lab cilium-ebpf needs',
    );
    const bpf = asked.filter((a) => a.script.includes('tc filter add'));
    expect(bpf.map((a) => a.node).sort()).to.deep.equal(['master', 'worker']);
    for (const { script, input } of bpf) {
      // The compiled probe travels as the script's input: an ELF object, written to a temporary file there and removed.
      expect(Buffer.from(input!, 'base64').subarray(0, 4).toString('latin1')).to.equal('\x7fELF');
      expect(script).to.include('base64 -d > "$obj"').and.include('tc qdisc add dev pf0 clsact').and.match(/ip netns del "\$1"; rm -f "\$obj"$/);
    }
  });

  it('cilium: a kernel without the clsact qdisc is named as such, on each machine that lacks it', async () => {
    const { lab } = loadLab('cilium-ebpf');
    const noClsact = { tcBpf: 'clsact Error: Specified qdisc kind is unknown.' };
    const e = await failure(nodePreflight(lab, fakeHosts({ master: noClsact, worker: noClsact }, { master: 'm1', worker: 'w1' }).backend));
    expect(e!.message).to.equal(
      'skipped: the kernel of m1 (node master) and the kernel of w1 (node worker) lacks tc clsact qdisc (sch_clsact: Error: Specified qdisc kind is unknown.), which lab cilium-ebpf needs',
    );
  });
});
