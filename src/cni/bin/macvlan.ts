import { pluginMain } from '../skel.js';
import { macvlanPlugin } from '../../datapaths/macvlan/cni-plugin.js';

await pluginMain(macvlanPlugin);
