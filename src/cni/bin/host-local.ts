import { pluginMain } from '../skel.js';
import { hostLocal } from '../plugins/host-local.js';

await pluginMain(hostLocal);
