// /proc/PID/stat, read the one way that survives a command name holding
// spaces or parentheses: the fields after the name's closing parenthesis.
import { readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat from field 3 (state) on, or undefined once the process is gone. */
export function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
