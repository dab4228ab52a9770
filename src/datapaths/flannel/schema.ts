// The `network:` block of a flannel lab.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';

export const flannelNetwork = z.strictObject({
  ...NETWORK_FIELDS,
  plugin: z.literal('flannel'),
  /** The agent's backends by name (backends.ts); a unit test keeps the two lists equal. */
  backend: z.enum(['vxlan', 'host-gw', 'udp', 'wireguard']).default('vxlan'),
  /** More of flannel's Backend settings, as in its net-conf.json. */
  backendConfig: z.strictObject({ VNI: z.number().int().min(1).max(16777215).optional(), Port: z.number().int().min(1).max(65535).optional(), Offload: z.boolean().optional() }).optional(),
});
export type FlannelNetwork = z.infer<typeof flannelNetwork>;
