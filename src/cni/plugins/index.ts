// The plugins no datapath owns: any network can chain them. Bundled one by
// one into dist/cni/lib/<type>.mjs (scripts/build.mjs).
import type { Plugin } from '../skel.js';
import { bandwidthPlugin } from './bandwidth.js';
import { bridgePlugin } from './bridge.js';
import { hostLocal } from './host-local.js';
import { portmapPlugin } from './portmap.js';

export const CNI_PLUGINS: Record<string, Plugin<any>> = {
  bandwidth: bandwidthPlugin,
  bridge: bridgePlugin,
  'host-local': hostLocal,
  portmap: portmapPlugin,
};
