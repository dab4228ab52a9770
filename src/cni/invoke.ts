// Calling another plugin, as a runtime or a delegating plugin does: find the
// executable on CNI_PATH, pass env and config, read the result or the error.
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, trace } from '../net/exec.js';
import { CniError, ErrorCode } from './errors.js';
import { parseResult, type Result } from './result.js';
import type { CmdArgs, Command } from './env.js';
import { dispatch, type Plugin } from './skel.js';

export interface InvokeArgs {
  command: Command;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string; // CNI_ARGS
  path: string[]; // CNI_PATH
}

export function findPlugin(type: string, path: string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) throw new CniError(ErrorCode.InvalidConfig, `invalid plugin type "${type}"`);
  for (const dir of path) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* try the next directory */
    }
  }
  throw new CniError(ErrorCode.PluginNotAvailable, `plugin "${type}" not found in CNI_PATH (${path.join(':') || 'empty'})`);
}

export function cniEnv(a: InvokeArgs): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: a.command,
    CNI_CONTAINERID: a.containerId ?? '',
    CNI_NETNS: a.netns ?? '',
    CNI_IFNAME: a.ifname ?? '',
    CNI_ARGS: a.args ?? '',
    CNI_PATH: a.path.join(':'),
  };
}

function decodeOutput(type: string, stdout: string, exitCode: number): Record<string, unknown> | undefined {
  let parsed: Record<string, unknown> | undefined;
  if (stdout.trim()) {
    try {
      parsed = JSON.parse(stdout);
    } catch {
      throw new CniError(ErrorCode.DecodeFailure, `plugin ${type} printed something that is not JSON: ${stdout.slice(0, 200)}`);
    }
  }
  if (exitCode !== 0) {
    const code = typeof parsed?.code === 'number' ? parsed.code : ErrorCode.Internal;
    const msg = typeof parsed?.msg === 'string' ? parsed.msg : `plugin ${type} failed with exit code ${exitCode}`;
    throw new CniError(code, msg, typeof parsed?.details === 'string' ? parsed.details : '');
  }
  return parsed;
}

/** Plugins cnilab bundles with the caller; they run in-process, with the same env and JSON as an exec. */
const inProcess = new Map<string, Plugin<any>>();
export function registerInProcess(type: string, plugin: Plugin<any>): void {
  inProcess.set(type, plugin);
}

/** Run a plugin by type; returns its parsed JSON output (a result for ADD). */
export async function invokePlugin(type: string, conf: Record<string, unknown>, a: InvokeArgs): Promise<Record<string, unknown> | undefined> {
  const env = cniEnv(a);
  const stdin = JSON.stringify(conf);
  const local = inProcess.get(type);
  if (local) {
    let out = '';
    const t0 = performance.now();
    const code = await dispatch(local, { env, stdin, write: (t) => (out += t) });
    trace?.([type, a.command, '(in process)'], t0);
    return decodeOutput(type, out, code);
  }
  const file = findPlugin(type, a.path);
  const r = await run([file], { input: stdin, env, allowFailure: true });
  return decodeOutput(type, r.stdout, r.exitCode);
}

/** The same container, ifname, CNI_ARGS and CNI_PATH, for a plugin we delegate to (IPAM, bridge, …). */
export function delegateArgs(args: CmdArgs): Omit<InvokeArgs, 'command'> {
  const cniArgs = Object.entries(args.args)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
  return { containerId: args.containerId, netns: args.netns, ifname: args.ifname, args: cniArgs, path: args.path };
}

/** ADD and CHECK need the container's namespace to be there (code 4 names the variable). */
export function requireNetns(args: CmdArgs): void {
  if (!existsSync(args.netns)) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS "${args.netns}" does not exist`);
}

/** Delegate IPAM (or any plugin) and read its ADD result. */
export async function delegateAdd(type: string, conf: Record<string, unknown>, a: Omit<InvokeArgs, 'command'>): Promise<Result> {
  return parseResult(await invokePlugin(type, conf, { ...a, command: 'ADD' }), `result of ${type}`);
}

/** A plugin's IPAM section, as its config loader keeps it: the type to call and the whole config to pass. */
export interface IpamDelegation {
  ipamType?: string;
  raw: Record<string, unknown>;
}

/** The IPAM plugin called with one of the verbs that pass straight through (DEL, CHECK, GC, STATUS). */
export async function delegateIpam(command: 'DEL' | 'CHECK' | 'GC' | 'STATUS', conf: IpamDelegation, args: CmdArgs): Promise<void> {
  if (conf.ipamType) await invokePlugin(conf.ipamType, conf.raw, { ...delegateArgs(args), command });
}
