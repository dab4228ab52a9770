import { pluginMain } from '../skel.js';
import { macvlanPlugin } from '../plugins/macvlan.js';

await pluginMain(macvlanPlugin);
