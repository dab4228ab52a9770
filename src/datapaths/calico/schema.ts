// The `network:` block of a calico lab.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';

export const calicoNetwork = z.strictObject({
  ...NETWORK_FIELDS,
  plugin: z.literal('calico'),
  backend: z.enum(['bgp', 'vxlan', 'ipip']).default('bgp'),
});
export type CalicoNetwork = z.infer<typeof calicoNetwork>;
