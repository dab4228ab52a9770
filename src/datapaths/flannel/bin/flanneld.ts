// cnilab's flannel-like node agent. Runs on a node (inside its network namespace).
import { parseArgs } from 'node:util';
import { FlannelAgent } from '../agent.js';

process.title = 'flanneld';
const { values } = parseArgs({
  options: {
    'etcd-endpoints': { type: 'string' },
    'etcd-prefix': { type: 'string', default: '/coreos.com/network' },
    iface: { type: 'string', default: 'eth0' },
    'public-ip': { type: 'string' },
    'public-ipv6': { type: 'string' },
    'subnet-file': { type: 'string', default: '/run/flannel/subnet.env' },
    'wg-run-dir': { type: 'string' },
  },
});
for (const required of ['etcd-endpoints', 'public-ip'] as const) {
  if (!values[required]) {
    console.error(`flanneld: --${required} is required`);
    process.exit(2);
  }
}
const agent = new FlannelAgent({
  etcdEndpoint: values['etcd-endpoints']!.split(',')[0],
  prefix: values['etcd-prefix']!,
  iface: values.iface!,
  publicIp: values['public-ip']!,
  publicIpv6: values['public-ipv6'],
  subnetFile: values['subnet-file']!,
  wgRunDir: values['wg-run-dir'],
  keepIp: true,
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    // Threads finish within one poll interval; should one hang, exit anyway.
    setTimeout(() => process.exit(0), 1500).unref();
    agent.stop().finally(() => process.exit(0));
  });
}
agent.start().catch((e) => {
  console.error(`flanneld: ${(e as Error).message}`);
  process.exit(1);
});
