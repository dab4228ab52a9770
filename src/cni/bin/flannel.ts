import { pluginMain } from '../skel.js';
import { flannelPlugin } from '../../datapaths/flannel/cni-plugin.js';

await pluginMain(flannelPlugin);
