import { readdirSync } from 'node:fs';
import { statFields } from '../../src/util/proc-stat.js';

/** PIDs whose parent is `pid` (field 4 of /proc/PID/stat). */
export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && Number(statFields(e)?.[1]) === pid)
    .map(Number);
}
