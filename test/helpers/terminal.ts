// A real terminal for tests that drive cnilab as a person would: a tmux server
// of our own (its own socket) running one command in a tall window, read with
// capture-pane and answered with send-keys.
import { execFile } from 'node:child_process';
import { ROOT } from '../../src/lab/paths.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(argv[0], argv.slice(1), (err, stdout, stderr) => (err ? reject(new Error(`${argv.join(' ')}: ${stderr}`)) : resolve(stdout))));
}

export class Terminal {
  readonly socket: string;
  private tmux = (...args: string[]) => run(['tmux', '-L', this.socket, ...args]);

  constructor(name = 'lesson') {
    this.socket = `cnilab-${name}-test-${process.pid}`;
  }

  /** Run `command` in ROOT with the CNILAB_ variables of this process. */
  async start(command: string): Promise<void> {
    const env = Object.entries(process.env)
      .filter(([k]) => k.startsWith('CNILAB_'))
      .flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await this.tmux('new-session', '-d', '-x', '160', '-y', '90', ...env, `cd ${ROOT} && ${command}`);
  }

  screen(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-J');
  }

  keys(...keys: string[]): Promise<string> {
    return this.tmux('send-keys', ...keys);
  }

  /** Type a line and press Enter. */
  line(text: string): Promise<string> {
    return this.tmux('send-keys', '-l', text).then(() => this.keys('Enter'));
  }

  /** Wait until the screen shows `pattern` (a lab coming up can take a while on a busy machine). */
  async waitFor(pattern: RegExp, what: string): Promise<string> {
    let last = '';
    for (let i = 0; i < 600; i++) {
      last = await this.screen();
      if (pattern.test(last)) return last;
      await sleep(100);
    }
    throw new Error(`the screen never showed ${what} (${pattern}); it shows:\n${last}`);
  }

  async stop(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
  }
}
