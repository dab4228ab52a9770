// The `network:` block of a calico lab.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';

export const calicoNetwork = z.strictObject({
  ...NETWORK_FIELDS,
  plugin: z.literal('calico'),
  backend: z.enum(['bgp', 'vxlan', 'ipip']).default('bgp'),
  /** Nodes that run BIRD as a route reflector; with any, the node-to-node mesh is off. */
  routeReflectors: z.array(z.string()).min(1).optional(),
});
export type CalicoNetwork = z.infer<typeof calicoNetwork>;
