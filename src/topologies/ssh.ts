// Reaching a machine over OpenSSH with the user's (or Vagrant's) client config:
// one kept-open connection per host (ControlMaster, its socket under the lab's
// directory), every command sent as one quoted line, the environment carried by
// `env`. The vagrant and hosts backends both drive their nodes through here.
import { execa } from 'execa';
import type { RunResult } from '../net/exec.js';
import { shQuote, withEnv } from './node-commands.js';

/** The command line the remote login shell gets: as root (through `sudo -n` unless the login is root), the environment carried by `env`. */
export function remoteCommand(argv: string[], env?: Record<string, string>, sudo = true): string {
  return [...(sudo ? ['sudo', '-n'] : []), ...withEnv(env, argv)].map(shQuote).join(' ');
}

export interface SshTarget {
  /** The client config (`ssh -F`): ProxyCommand, ProxyJump, Port, IdentityFile all come from it. */
  config: string;
  /** Where the shared connections' sockets live. */
  controlDir: string;
  /** The Host in the config. */
  host: string;
  /** Commands run through `sudo -n` (the login is not root). */
  sudo?: boolean;
}

/** The ssh options that share one connection per host. */
function sshOptions(t: SshTarget): string[] {
  return ['-F', t.config, '-o', 'BatchMode=yes', '-o', 'ControlMaster=auto', '-o', `ControlPath=${t.controlDir}/%C`, '-o', 'ControlPersist=600'];
}

/** Run `argv` on the host, over its shared connection. */
export function sshArgv(t: SshTarget, argv: string[], env?: Record<string, string>, opts: { tty?: boolean } = {}): string[] {
  return ['ssh', ...(opts.tty ? ['-t'] : []), ...sshOptions(t), t.host, remoteCommand(argv, env, t.sudo ?? true)];
}

/** Ends the shared connection to a host. */
export function sshExitArgv(t: SshTarget): string[] {
  return ['ssh', '-F', t.config, '-o', `ControlPath=${t.controlDir}/%C`, '-O', 'exit', t.host];
}

export interface CommandRunner {
  (argv: string[], opts: { input?: string; env?: Record<string, string>; cwd?: string }): Promise<RunResult>;
}

/** Runs a command of this machine (vagrant, ssh) to completion. */
export const runCommand: CommandRunner = async (argv, opts) => {
  const r = await execa(argv[0], argv.slice(1), { input: opts.input, env: opts.env, cwd: opts.cwd, reject: false, stripFinalNewline: false });
  if ((r as { code?: string }).code === 'ENOENT') throw new Error(`${argv[0]} is not installed${argv[0] === 'vagrant' ? ' (Debian package vagrant)' : argv[0] === 'ssh' ? ' (Debian package openssh-client)' : ''}`);
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 127 };
};

/** The hosts an ssh config names (`Host` lines, one name each). */
export function sshConfigHosts(config: string): string[] {
  return [...config.matchAll(/^\s*Host\s+(\S+)/gim)].map((m) => m[1]);
}
