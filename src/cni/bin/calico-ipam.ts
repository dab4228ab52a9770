import { pluginMain } from '../skel.js';
import { calicoIpam } from '../../datapaths/calico/cni-ipam.js';

await pluginMain(calicoIpam);
// The HTTP agent may keep its connection to etcd open: do not wait for it.
process.exit();
