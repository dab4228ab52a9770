// Underlay: pods as macvlan children of the node's own NIC, on the node network.
import { z } from 'zod';
import { NETWORK_FIELDS } from '../../lab/lab-file.js';
import type { Datapath } from '../types.js';
import { CNI_PLUGINS } from './cni.js';
import { installMacvlan, validateMacvlan } from './install.js';

export const macvlan: Datapath = {
  name: 'macvlan',
  network: z.strictObject({ ...NETWORK_FIELDS, plugin: z.literal('macvlan') }),
  kernelFeatures: () => ['macvlan'],
  tools: [],
  install: installMacvlan,
  validate: validateMacvlan,
  cniPlugins: CNI_PLUGINS,
};
