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
  // macvlan carries any family: IPv6 pods are hosts on the IPv6 underlay, as IPv4 ones on the IPv4 one.
  dualStack: true,
  validate: validateMacvlan,
  cniPlugins: CNI_PLUGINS,
  podsOnUnderlay: true,
};
