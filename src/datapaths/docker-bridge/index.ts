// Docker's default bridge on every node (lesson 6): the generic bridge and
// portmap plugins, the same range everywhere, NAT to cross hosts.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';
import type { Datapath } from '../types.js';
import { installDockerBridge } from './install.js';

export const dockerBridge: Datapath = {
  name: 'docker-bridge',
  network: z.strictObject({ ...NETWORK_FIELDS, plugin: z.literal('docker-bridge') }),
  kernelFeatures: () => [],
  tools: ['iptables-restore'],
  install: installDockerBridge,
  cniPlugins: {},
};
