import { pluginMain } from '../skel.js';
import { ciliumPlugin } from '../plugins/cilium.js';

await pluginMain(ciliumPlugin);
