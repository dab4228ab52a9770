import type { RunResult } from '../net/exec.js';
import { RemoteNodeBackend } from './remote-node.js';
export class VagrantBackend extends RemoteNodeBackend {
  readonly kind = 'vagrant';
  async up(): Promise<void> {}
  async down(): Promise<void> {}
  async exec(): Promise<RunResult> {
    throw new Error('todo');
  }
}
export async function cleanVagrantLab(_lab: string): Promise<void> {}
