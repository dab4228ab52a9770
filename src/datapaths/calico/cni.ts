// The CNI plugins calico ships, by type (bundled one by one by scripts/build.mjs).
import type { Plugin } from '../../cni/skel.js';
import { calicoIpam } from './cni-ipam.js';
import { calicoPlugin } from './cni-plugin.js';

export const CNI_PLUGINS: Record<string, Plugin<any>> = { calico: calicoPlugin, 'calico-ipam': calicoIpam };
