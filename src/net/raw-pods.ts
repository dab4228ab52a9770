// The kernel's own pace for pods, as a yardstick: N namespaces with a veth
// each, made and removed through `ip -batch` (two processes in all), with
// nothing else (no IPAM, no plugin, no workload). Benchmarks compare the pods
// phase of a lab with this, measured in the same run.
import { cpus } from 'node:os';
import { runSpawned } from './exec.js';
import { Ip } from './ip.js';
import { listNetns } from './netns.js';

export interface RawPodTimes {
  upMs: number;
  downMs: number;
}

/** Make `n` namespaces named `<prefix>N` with a veth into each from `<prefix>host`, then remove them all. */
export async function rawPodLimit(prefix: string, n: number): Promise<RawPodTimes> {
  const host = `${prefix}host`;
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const root = new Ip();
  try {
    const t0 = performance.now();
    await root.batch([['netns', 'add', host], ...names.map((ns) => ['netns', 'add', ns])]);
    await new Ip(host).batch(names.flatMap((ns, i) => [
      ['link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
      ['link', 'set', `v${i}`, 'up'],
    ]));
    const upMs = performance.now() - t0;
    // The namespaces go in one process; the kernel then removes their veths in
    // batches on its own: the clock stops when the host side has none left.
    const t1 = performance.now();
    await root.batch(names.map((ns) => ['netns', 'del', ns]));
    const hostIp = new Ip(host);
    while ((await hostIp.json<unknown[]>('link', 'show', 'type', 'veth')).length > 0) await new Promise((r) => setTimeout(r, 5));
    const downMs = performance.now() - t1;
    await root.batch([['netns', 'del', host]]);
    return { upMs, downMs };
  } finally {
    const left = listNetns().filter((ns) => ns.startsWith(prefix));
    if (left.length) await root.batch(left.map((ns) => ['netns', 'del', ns])).catch(() => undefined);
  }
}

/**
 * The least a pod costs in processes: the CNI contract has the runtime start the
 * plugin for every ADD, and a pod runs at least one program of its own. So 2n
 * starts of /bin/true, through posix_spawn as a lab starts its plugins, as many
 * at a time as there are CPUs. Beside rawPodLimit this is the floor of any CNI's
 * pods phase on this machine, however fast its plugin.
 */
export async function processFloorMs(n: number): Promise<number> {
  let left = 2 * n;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.max(1, cpus().length) }, async () => {
      while (left-- > 0) await runSpawned(['/bin/true']);
    }),
  );
  return performance.now() - t0;
}
