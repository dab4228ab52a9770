// cnilab's kube-proxy: one per node, inside the node's network namespace.
import { parseArgs } from 'node:util';
import { KubeProxy } from '../kube-proxy.js';
import { PROXY_MODES, type ProxyMode } from '../model.js';

process.title = 'kube-proxy';
const { values } = parseArgs({
  options: {
    'services-file': { type: 'string' },
    'status-file': { type: 'string' },
    'proxy-mode': { type: 'string', default: 'iptables' },
    iface: { type: 'string', default: 'eth0' },
    'bpf-maps': { type: 'string' },
    'node-ip': { type: 'string' },
  },
});
for (const required of ['services-file', 'status-file'] as const) {
  if (!values[required]) {
    console.error(`kube-proxy: --${required} is required`);
    process.exit(2);
  }
}
if (!PROXY_MODES.includes(values['proxy-mode'] as ProxyMode)) {
  console.error(`kube-proxy: --proxy-mode must be one of ${PROXY_MODES.join(', ')}, not "${values['proxy-mode']}"`);
  process.exit(2);
}
if (values['proxy-mode'] === 'ebpf' && (!values['bpf-maps'] || !values['node-ip'])) {
  console.error('kube-proxy: --proxy-mode ebpf needs --bpf-maps (the datapath\'s pinned maps) and --node-ip');
  process.exit(2);
}
const proxy = new KubeProxy({
  servicesFile: values['services-file']!,
  statusFile: values['status-file']!,
  mode: values['proxy-mode'] as ProxyMode,
  iface: values.iface!,
  bpfMaps: values['bpf-maps'],
  nodeIp: values['node-ip'],
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    // The rules stay, as kube-proxy leaves them: traffic keeps flowing while it restarts.
    proxy.stop();
    process.exit(0);
  });
}
proxy.start().catch((e) => {
  console.error(`kube-proxy: ${(e as Error).message}`);
  process.exit(1);
});
