// Every plugin cnilab ships, by the name a runtime calls it (its `type`).
// The daemon serves exactly these; src/cni/bin has one executable per entry.
import type { Plugin } from './skel.js';
import { bridgePlugin } from './plugins/bridge.js';
import { calicoPlugin } from './plugins/calico.js';
import { calicoIpam } from './plugins/calico-ipam.js';
import { ciliumPlugin } from './plugins/cilium.js';
import { flannelPlugin } from './plugins/flannel.js';
import { hostLocal } from './plugins/host-local.js';
import { macvlanPlugin } from './plugins/macvlan.js';
import { portmapPlugin } from './plugins/portmap.js';

export const PLUGINS: Record<string, Plugin<any>> = {
  bridge: bridgePlugin,
  calico: calicoPlugin,
  'calico-ipam': calicoIpam,
  'cilium-cni': ciliumPlugin,
  flannel: flannelPlugin,
  'host-local': hostLocal,
  macvlan: macvlanPlugin,
  portmap: portmapPlugin,
};
