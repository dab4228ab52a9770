// `service` steps: stop a node's service by its recorded PID, start it again
// with the command its datapath gives.
import type { Backend } from '../topologies/backend.js';
import type { StateFile } from '../lab/state.js';

/** Stop and start a node's services by name, for `service` steps (a fault, then the recovery). */
export interface ServiceControl {
  stop(node: string, name: string): Promise<string>;
  start(node: string, name: string): Promise<string>;
}

/** Stops only the PID recorded for the service; starts it again with the command its network plugin gives. */
export class NodeServices implements ServiceControl {
  constructor(
    private backend: Backend,
    private state: StateFile,
    /** The services a node runs and the command that starts each. */
    private commands: (node: string) => Record<string, string[]>,
  ) {}

  private running(node: string, name: string) {
    return this.state.state.processes.find((p) => p.node === node && p.name === name);
  }

  async stop(node: string, name: string): Promise<string> {
    const p = this.running(node, name);
    if (!p) {
      const there = this.state.state.processes.filter((q) => q.node === node).map((q) => q.name);
      throw new Error(`no service "${name}" is running on ${node} (running there: ${there.join(', ') || 'nothing'})`);
    }
    await this.backend.stop(p);
    return `stopped ${name} on ${node} (pid ${p.pid})`;
  }

  async start(node: string, name: string): Promise<string> {
    const p = this.running(node, name);
    if (p) throw new Error(`${name} is already running on ${node} (pid ${p.pid})`);
    const commands = this.commands(node);
    const argv = commands[name];
    if (!argv) throw new Error(`"${name}" is not a service the network runs on ${node} (services: ${Object.keys(commands).join(', ') || 'none'})`);
    const started = await this.backend.start(node, name, argv);
    return `started ${name} on ${node} (pid ${started.pid})`;
  }
}
