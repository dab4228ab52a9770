// The datapaths a lab can install, by its `network.plugin`: one line each.
// Adding one is a folder under src/datapaths/ and a line here.
import type { Plugin } from '../cni/skel.js';
import { CNI_PLUGINS as GENERIC_PLUGINS } from '../cni/plugins/index.js';
import { loadLabWith, parseLabWith, type Lab } from '../lab/lab-file.js';
import type { Datapath } from './types.js';
import { flannel } from './flannel/index.js';
import { calico } from './calico/index.js';
import { cilium } from './cilium/index.js';
import { macvlan } from './macvlan/index.js';
import { dockerBridge } from './docker-bridge/index.js';

export type { Datapath } from './types.js';

export const DATAPATHS: Record<string, Datapath> = Object.fromEntries([flannel, calico, cilium, macvlan, dockerBridge].map((d) => [d.name, d]));

export function datapath(name: string): Datapath {
  const d = DATAPATHS[name];
  if (!d) throw new Error(`network plugin "${name}" is unknown; available: ${Object.keys(DATAPATHS).join(', ')}`);
  return d;
}

/** Every CNI plugin cnilab ships, by the `type` a runtime calls: the generic ones and each datapath's. */
export function cniPlugins(): Record<string, Plugin<any>> {
  return Object.assign({}, GENERIC_PLUGINS, ...Object.values(DATAPATHS).map((d) => d.cniPlugins));
}

/** A lab file by name (labs/<name>.yaml) or path, checked against every datapath's schema. */
export function loadLab(nameOrPath: string): { lab: Lab; file: string } {
  return loadLabWith(nameOrPath, DATAPATHS);
}

export function parseLab(text: string, file: string): Lab {
  return parseLabWith(text, file, DATAPATHS);
}
