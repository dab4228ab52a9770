// The CNI_* environment, checked from one table: every missing or malformed
// variable is named in one error (code 4).
import { CniError, ErrorCode } from './errors.js';

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
export const COMMANDS: Command[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CmdArgs {
  command: Command;
  containerId: string;
  /** Path to the container's network namespace; empty on a DEL whose namespace is gone. */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: Record<string, string>;
  path: string[];
}

type Need = 'required' | 'optional' | 'unused';

// Which variables each verb needs (as the spec and libcni's skel have it).
const TABLE: Record<string, Record<Command, Need>> = {
  CNI_CONTAINERID: { ADD: 'required', DEL: 'required', CHECK: 'required', VERSION: 'unused', GC: 'unused', STATUS: 'unused' },
  CNI_NETNS: { ADD: 'required', DEL: 'optional', CHECK: 'required', VERSION: 'unused', GC: 'unused', STATUS: 'unused' },
  CNI_IFNAME: { ADD: 'required', DEL: 'required', CHECK: 'required', VERSION: 'unused', GC: 'unused', STATUS: 'unused' },
  CNI_ARGS: { ADD: 'optional', DEL: 'optional', CHECK: 'optional', VERSION: 'unused', GC: 'optional', STATUS: 'optional' },
  CNI_PATH: { ADD: 'required', DEL: 'required', CHECK: 'required', VERSION: 'unused', GC: 'required', STATUS: 'required' },
};

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why an interface name is unusable, or undefined when it is fine (the kernel's own rules). */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 15) return `is ${name.length} characters long; Linux allows at most 15`;
  if (name === '.' || name === '..') return 'cannot be "." or ".."';
  if (/[/:\s]/.test(name)) return 'cannot contain "/", ":" or white space';
  return undefined;
}

export function parseEnv(env: NodeJS.ProcessEnv): CmdArgs {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(ErrorCode.InvalidEnvironment, 'required environment variable CNI_COMMAND is not set');
  if (!COMMANDS.includes(command as Command)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_COMMAND is "${command}"; expected one of ${COMMANDS.join(', ')}`);
  }
  const verb = command as Command;
  const problems: string[] = [];
  const missing = Object.entries(TABLE)
    .filter(([name, needs]) => needs[verb] === 'required' && !env[name])
    .map(([name]) => name);
  if (missing.length) problems.push(`required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not set`);

  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId && TABLE.CNI_CONTAINERID[verb] !== 'unused' && !CONTAINER_ID.test(containerId)) {
    problems.push(`CNI_CONTAINERID "${containerId}" must start with a letter or digit and hold only letters, digits, "_", "." and "-"`);
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname && TABLE.CNI_IFNAME[verb] !== 'unused') {
    const why = interfaceNameProblem(ifname);
    if (why) problems.push(`CNI_IFNAME "${ifname}" ${why}`);
  }
  const args: Record<string, string> = {};
  for (const pair of (env.CNI_ARGS ?? '').split(';').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) problems.push(`CNI_ARGS entry "${pair}" is not KEY=VALUE`);
    else args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (problems.length) throw new CniError(ErrorCode.InvalidEnvironment, problems.join('; '));

  return {
    command: verb,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args,
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
}
