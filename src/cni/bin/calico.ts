import { pluginMain } from '../skel.js';
import { calicoPlugin } from '../../datapaths/calico/cni-plugin.js';

await pluginMain(calicoPlugin);
// The HTTP agent may keep its connection to etcd open: do not wait for it.
process.exit();
