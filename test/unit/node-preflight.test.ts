// Preflight on nodes with kernels of their own (hosts): each node's kernel is
// asked over its transport, and a lack is named with the machine it is on. The
// transport is faked here (the boundary); test/lab/hosts.test.ts runs it for real.
import { expect } from 'chai';
import { loadLab } from '../../src/datapaths/index.js';
import { nodePreflight, MissingFeatureError } from '../../src/runner/preflight.js';
import type { Backend } from '../../src/topologies/backend.js';
import type { RunResult } from '../../src/net/exec.js';

/** Nodes whose kernels lack the given link kinds; records every script they were asked to run. */
function fakeHosts(lacks: Record<string, string[]>, hosts: Record<string, string>) {
  const scripts: string[] = [];
  const backend = {
    node: (n: string) => ({
      label: `node ${n}`,
      argv: (a: string[]) => a,
      run: async (argv: string[]): Promise<RunResult> => {
        scripts.push(argv[2]);
        return { exitCode: 0, stdout: (lacks[n] ?? []).map((f) => `${f}\n`).join(''), stderr: '' } as RunResult;
      },
    }),
    nodeLabel: (n: string) => `${hosts[n]} (node ${n})`,
  } as unknown as Backend;
  return { backend, scripts };
}

describe('preflight on each node', () => {
  it('names the machine whose kernel lacks a link kind, and skips the lab', async () => {
    const { lab } = loadLab('flannel-vxlan');
    const { backend, scripts } = fakeHosts({ worker: ['vxlan'] }, { master: 'm1', worker: 'w1' });
    const e = await nodePreflight(lab, backend).then(() => undefined, (err: Error) => err);
    expect(e).to.be.instanceOf(MissingFeatureError);
    expect(e!.message).to.equal('skipped: the kernel of w1 (node worker) lacks vxlan, which lab flannel-vxlan needs');
    // Asked in a scratch namespace of its own, removed again: the host's own links are never touched.
    expect(scripts).to.have.length(2);
    for (const s of scripts) expect(s).to.match(/^ip netns add "\$1"/m).and.match(/^ip netns del "\$1"$/m).and.include('ip -n "$1" link add pf');
  });

  it('passes when every node has every link kind the lab makes', async () => {
    const { lab } = loadLab('flannel-vxlan');
    await nodePreflight(lab, fakeHosts({}, { master: 'm1', worker: 'w1' }).backend);
  });
});
