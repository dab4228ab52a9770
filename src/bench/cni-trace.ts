// Where a CNI call spends its time inside the node daemon, read from the
// daemon's log when it runs with CNILAB_TRACE=1 (see src/net/exec.ts and
// src/cni/daemon.ts for the two line formats).
import { summarize } from './stats.js';

/** Medians per command kind (and how many of it a call runs), the whole call, and what is not a command. */
export interface Breakdown {
  total: number;
  commands: { command: string; median: number; perCall: number }[];
  rest: number;
}

/**
 * Read the daemon's CNILAB_TRACE log: "trace <ms> ms <argv>" lines, then one
 * "<plugin> <VERB> <id> <ifname> exit <code> <ms> ms" line per call. Calls
 * never overlap here, so the trace lines before a call line are its commands.
 */
export function daemonBreakdown(log: string, verb: string, include: (containerId: string) => boolean = () => true): Breakdown | undefined {
  const calls: { total: number; commands: { command: string; ms: number }[] }[] = [];
  let pending: { command: string; ms: number }[] = [];
  for (const line of log.split('\n')) {
    const t = /^trace ([\d.]+) ms (.*)$/.exec(line);
    if (t) {
      // One kind per command shape: namespace names and paths differ from call to call.
      const command = t[2].replace(/-n \S+/, '-n <ctr>').replace(/--net=\S+/, '--net=<ctr>').replace(/\bveth[0-9a-f]{8}\b/, 'vethXXXX');
      pending.push({ command, ms: Number(t[1]) });
      continue;
    }
    const c = / \S+ (\w+) (\S+) \S+ exit 0 ([\d.]+) ms$/.exec(line);
    if (c && c[1] === verb && include(c[2])) calls.push({ total: Number(c[3]), commands: pending });
    if (/ exit -?\d+ /.test(line)) pending = [];
  }
  if (calls.length === 0) return undefined;
  const kinds = [...new Set(calls.flatMap((c) => c.commands.map((x) => x.command)))];
  return {
    total: summarize(calls.map((c) => c.total)).median,
    commands: kinds.map((command) => {
      const xs = calls.flatMap((c) => c.commands.filter((x) => x.command === command).map((x) => x.ms));
      return { command, median: summarize(xs).median, perCall: xs.length / calls.length };
    }),
    rest: summarize(calls.map((c) => c.total - c.commands.reduce((a, x) => a + x.ms, 0))).median,
  };
}
