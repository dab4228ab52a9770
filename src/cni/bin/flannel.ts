import { pluginMain } from '../skel.js';
import { flannelPlugin } from '../plugins/flannel.js';

await pluginMain(flannelPlugin);
