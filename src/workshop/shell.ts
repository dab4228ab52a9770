// `cnilab shell`: an interactive shell inside a node or a pod, with a prompt
// that says where you are. The backend says how to get in (nsenter for netns).
import { runInteractive } from '../net/exec.js';
import type { Backend } from '../topologies/backend.js';

/** The prompt: [flannel-vxlan master] or [flannel-vxlan pod nginx-0@master], then the directory. */
export function shellPrompt(lab: string, node: string, pod?: string): string {
  return `[${lab} ${pod ? `pod ${pod}@${node}` : node}] \\w # `;
}

/** `tty`: the shell talks to a terminal (ours, or a pty of cnilab serve). */
export function shellArgv(backend: Backend, lab: string, node: string, pod?: string, tty = true): string[] {
  // bash without rc files keeps our prompt; sh where there is no bash. No history file: a lab leaves nothing on the machine.
  const shell = 'if command -v bash >/dev/null 2>&1; then exec bash --norc --noprofile -i; fi; exec sh -i';
  return backend.commandFor(node, pod, ['env', `PS1=${shellPrompt(lab, node, pod)}`, `CNILAB_LAB=${lab}`, `CNILAB_TARGET=${pod ?? node}`, 'HISTFILE=', 'sh', '-c', shell], { tty });
}

export function openShell(backend: Backend, lab: string, node: string, pod?: string): Promise<number> {
  // A terminal only when there is one: `docker exec -t` refuses commands piped in (`cnilab shell nginx-0 < script`).
  return runInteractive(shellArgv(backend, lab, node, pod, Boolean(process.stdin.isTTY)));
}
