import { pluginMain } from '../skel.js';
import { portmapPlugin } from '../plugins/portmap.js';

await pluginMain(portmapPlugin);
