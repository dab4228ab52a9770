// The CNI plugin the underlay datapath ships (bundled by scripts/build.mjs).
import type { Plugin } from '../../cni/skel.js';
import { macvlanPlugin } from './cni-plugin.js';

export const CNI_PLUGINS: Record<string, Plugin<any>> = { macvlan: macvlanPlugin };
