import { pluginMain } from '../skel.js';
import { ciliumPlugin } from '../../datapaths/cilium/cni-plugin.js';

await pluginMain(ciliumPlugin);
