// Network installers by the lab's `network.plugin`.
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import type { Lab } from '../lab-file.js';
import { installFlannel } from './flannel.js';

type Installer = (backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void) => Promise<void>;

const INSTALLERS: Record<string, Installer> = {
  flannel: installFlannel,
};

export async function installNetwork(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  const install = INSTALLERS[lab.network.plugin];
  if (!install) throw new Error(`network plugin "${lab.network.plugin}" has no installer; available: ${Object.keys(INSTALLERS).join(', ')}`);
  await install(backend, lab, nodes, progress);
}
