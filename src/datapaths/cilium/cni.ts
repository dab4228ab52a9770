// The CNI plugin the eBPF datapath ships (bundled by scripts/build.mjs).
import type { Plugin } from '../../cni/skel.js';
import { ciliumPlugin } from './cni-plugin.js';

export const CNI_PLUGINS: Record<string, Plugin<any>> = { 'cilium-cni': ciliumPlugin };
