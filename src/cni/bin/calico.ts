import { pluginMain } from '../skel.js';
import { calicoPlugin } from '../plugins/calico.js';

await pluginMain(calicoPlugin);
// fetch keeps its connection to etcd alive for seconds after the last call: do not wait for it.
process.exit();
