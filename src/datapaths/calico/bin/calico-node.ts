// cnilab's calico-node-like agent. Runs on a node (inside its network namespace).
import { parseArgs } from 'node:util';
import { CalicoNodeAgent } from '../node-agent.js';
import { parsePrefix } from '../../../net/ipnet.js';

const { values } = parseArgs({
  options: {
    'etcd-endpoints': { type: 'string' },
    nodename: { type: 'string' },
    ip: { type: 'string' },
    ip6: { type: 'string' },
    iface: { type: 'string', default: 'eth0' },
    as: { type: 'string', default: '64512' },
    'route-reflector-cluster-id': { type: 'string' },
    'bird-config': { type: 'string', default: '/etc/calico/confd/config/bird.cfg' },
    'bird-socket': { type: 'string', default: '/var/run/calico/bird.ctl' },
    'status-file': { type: 'string', default: '/var/run/calico/status.json' },
  },
});
for (const required of ['etcd-endpoints', 'nodename', 'ip'] as const) {
  if (!values[required]) {
    console.error(`calico-node: --${required} is required`);
    process.exit(2);
  }
}
if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(values.ip!)) {
  console.error(`calico-node: --ip "${values.ip}" must be the node's address with its prefix, like 192.168.10.210/24`);
  process.exit(2);
}
if (values.ip6 !== undefined && parsePrefix(values.ip6)?.family !== 6) {
  console.error(`calico-node: --ip6 "${values.ip6}" must be the node's IPv6 address with its prefix, like fd00:192:168:10::210/64`);
  process.exit(2);
}
const agent = new CalicoNodeAgent({
  etcdEndpoint: values['etcd-endpoints']!.split(',')[0],
  nodename: values.nodename!,
  ip: values.ip!,
  ...(values.ip6 ? { ip6: values.ip6 } : {}),
  iface: values.iface!,
  asNumber: Number(values.as),
  ...(values['route-reflector-cluster-id'] ? { routeReflectorClusterID: values['route-reflector-cluster-id'] } : {}),
  birdConfig: values['bird-config']!,
  birdSocket: values['bird-socket']!,
  statusFile: values['status-file']!,
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    agent.stop();
    process.exit(0);
  });
}
agent.start().catch((e) => {
  console.error(`calico-node: ${(e as Error).message}`);
  process.exit(1);
});
