import { pluginMain } from '../skel.js';
import { bridgePlugin } from '../plugins/bridge.js';

await pluginMain(bridgePlugin);
