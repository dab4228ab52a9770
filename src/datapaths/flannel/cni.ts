// The CNI plugins flannel ships, by type: light on purpose, each is bundled
// on its own into dist/cni/lib/<type>.mjs (scripts/build.mjs).
import type { Plugin } from '../../cni/skel.js';
import { flannelPlugin } from './cni-plugin.js';

export const CNI_PLUGINS: Record<string, Plugin<any>> = { flannel: flannelPlugin };
