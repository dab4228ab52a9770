// The `network:` block of a cilium lab.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';

export const ciliumNetwork = z.strictObject({
  ...NETWORK_FIELDS,
  plugin: z.literal('cilium'),
  backend: z.enum(['native', 'vxlan']).default('native'),
  vni: z.number().int().min(1).max(16777215).default(1),
});
export type CiliumNetwork = z.infer<typeof ciliumNetwork>;
