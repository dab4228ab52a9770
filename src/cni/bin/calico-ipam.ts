import { pluginMain } from '../skel.js';
import { calicoIpam } from '../plugins/calico-ipam.js';

await pluginMain(calicoIpam);
// fetch keeps its connection to etcd alive for seconds after the last call: do not wait for it.
process.exit();
