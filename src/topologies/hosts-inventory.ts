// The hosts backend's inventory: which machine each lab node is, by its `Host`
// in an ordinary OpenSSH client config (so ProxyCommand, ProxyJump, Port and
// IdentityFile work as ssh users expect), and the interface that carries the
// underlay there. Checked like a lab file: errors name file:line field.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { LabFileError, parseYamlWith } from '../lab/lab-file.js';

const inventorySchema = z.strictObject({
  sshConfig: z.string().min(1),
  nodes: z.record(
    z.string(),
    z.strictObject({
      host: z.string().regex(/^[A-Za-z0-9._@-]+$/, 'a Host name of the ssh config (letters, digits, ".", "_", "-")'),
      interface: z.string().regex(/^[A-Za-z0-9._@-]{1,15}$/, 'an interface name such as eth0 (at most 15 characters)'),
    }),
  ),
});

export interface Inventory {
  /** The inventory file, absolute. */
  file: string;
  /** The ssh client config, absolute (relative paths are taken from the inventory's directory). */
  sshConfig: string;
  nodes: Record<string, { host: string; interface: string }>;
}

/** Read and check an inventory against the lab's node names: every node placed, each on a machine of its own. */
export function loadInventory(path: string, labNodes: string[]): Inventory {
  const file = resolve(path);
  if (!existsSync(file)) throw new LabFileError(file, undefined, '', 'no such inventory file');
  const { data, fail } = parseYamlWith(readFileSync(file, 'utf8'), file, inventorySchema);
  const sshConfig = resolve(dirname(file), data.sshConfig);
  if (!existsSync(sshConfig)) fail(['sshConfig'], `${sshConfig} does not exist`);
  for (const name of Object.keys(data.nodes)) {
    if (!labNodes.includes(name)) fail(['nodes', name], `the lab has no node "${name}" (its nodes: ${labNodes.join(', ')})`);
  }
  const missing = labNodes.filter((n) => !data.nodes[n]);
  if (missing.length) fail(['nodes'], `no host for ${missing.join(', ')}: every lab node needs one`);
  const byHost = new Map<string, string>();
  for (const [name, n] of Object.entries(data.nodes)) {
    const other = byHost.get(n.host);
    if (other) fail(['nodes', name, 'host'], `${n.host} is node ${other} already: each node is a machine of its own`);
    byHost.set(n.host, name);
  }
  return { file, sshConfig, nodes: data.nodes };
}
