// Every plugin cnilab ships, by the name a runtime calls it (its `type`).
// The daemon serves exactly these; src/cni/bin has one executable per entry.
import type { Plugin } from './skel.js';
import { bridgePlugin } from './plugins/bridge.js';
import { calicoPlugin } from '../datapaths/calico/cni-plugin.js';
import { calicoIpam } from '../datapaths/calico/cni-ipam.js';
import { ciliumPlugin } from '../datapaths/cilium/cni-plugin.js';
import { flannelPlugin } from '../datapaths/flannel/cni-plugin.js';
import { hostLocal } from './plugins/host-local.js';
import { macvlanPlugin } from '../datapaths/macvlan/cni-plugin.js';
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
