// The control plane's side of Services: the endpoints controller and the
// cluster DNS. It starts a kube-proxy on every node and dnsmasq in the DNS pod,
// and on every change of pods or services writes the services file each proxy
// watches and the hosts file dnsmasq reads, then waits until every node
// reports the change applied.
import { join } from 'node:path';
import { underlayIface, type Backend, type NodeSpec } from '../topologies/backend.js';
import { AGENTS_DIR } from '../lab/paths.js';
import {
  dnsRecords,
  dnsService,
  dnsServiceIP,
  podResolvConf,
  serviceStates,
  type ClusterServices,
  type PodView,
  type ProxyMode,
  type ProxyStatus,
  type ServiceSpec,
  type ServiceState,
} from '../services/model.js';

/** The DNS pod's workload, as the Service kube-system/kube-dns selects it. */
export const DNS_WORKLOAD = 'kube-dns';
export const DNS_POD = 'kube-dns-0';
/** On each node (node paths): what the proxy reads and what it reports. */
export const SERVICES_FILE = '/var/lib/kube-proxy/services.json';
export const STATUS_FILE = '/run/kube-proxy/status.json';

export interface ClusterConfig {
  services: ServiceSpec[];
  serviceCIDR: string;
  podCIDR: string;
  proxyMode: ProxyMode;
  nodes: NodeSpec[];
  /** What the datapath adds to a node's kube-proxy command line (ebpf mode: where its maps are pinned). */
  proxyArgs?: (node: NodeSpec) => Promise<string[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ServiceController {
  private generation = 0;
  /** Services beyond the lab file's (the benchmark adds thousands). */
  extra: ServiceSpec[] = [];
  /** What the last publish wrote. */
  current: ServiceState[] = [];

  constructor(
    readonly backend: Backend,
    readonly config: ClusterConfig,
    /** The pod's own directory, as the host and every node see it. */
    private podDir: (pod: string) => string,
  ) {}

  get dnsIP(): string {
    return dnsServiceIP(this.config.serviceCIDR);
  }

  /** The node of the DNS pod: the hosts file is written there (on the hosts backend the lab's directory is each machine's own). */
  private dnsNode?: string;

  private hostsDir(): string {
    return join(this.podDir(DNS_POD), 'hosts.d');
  }

  private hostsFile(): string {
    return join(this.hostsDir(), 'services');
  }

  /** One kube-proxy per node, recorded by PID. */
  async startProxies(): Promise<void> {
    for (const n of this.config.nodes) {
      await this.backend.start(n.name, 'kube-proxy', [
        process.execPath,
        join(AGENTS_DIR, 'kube-proxy.js'),
        '--services-file', this.backend.nodePath(n.name, SERVICES_FILE),
        '--status-file', this.backend.nodePath(n.name, STATUS_FILE),
        '--proxy-mode', this.config.proxyMode,
        '--iface', underlayIface(n),
        ...((await this.config.proxyArgs?.(n)) ?? []),
      ]);
    }
  }

  /** dnsmasq in the DNS pod, answering for cluster.local from a hosts file it re-reads when it changes. */
  async startDns(node: string): Promise<void> {
    this.dnsNode = node;
    await this.backend.writeFile(node, this.hostsFile(), '');
    const { log } = await this.backend.podStart(node, DNS_POD, 'dnsmasq', [
      'dnsmasq',
      '--keep-in-foreground',
      '--no-resolv', // nothing outside the cluster: lab traffic stays in the lab
      '--no-hosts',
      `--hostsdir=${this.hostsDir()}`,
      '--local=/cluster.local/', // names under cluster.local are answered here or not at all
      '--port=53',
      '--user=root',
      '--pid-file=',
      '--log-queries',
      '--log-facility=-',
    ]);
    for (let i = 0; i < 250; i++) {
      if ((await this.backend.readFile(node, log))?.includes('started, version')) return;
      await sleep(20);
    }
    throw new Error(`dnsmasq in ${DNS_POD} did not start within 5 s; see ${log}`);
  }

  /** The resolv.conf a kubelet would give a pod of namespace default. */
  resolvConf(): string {
    return podResolvConf(this.dnsIP);
  }

  /** Every service with its endpoints now, the DNS service first. */
  states(pods: PodView[]): ServiceState[] {
    return serviceStates([dnsService(this.config.serviceCIDR, DNS_WORKLOAD), ...this.config.services, ...this.extra], this.config.serviceCIDR, pods);
  }

  /**
   * Write the current services and endpoints to every node and to the DNS
   * server; resolves once every proxy has applied them. Returns each node's
   * report of that sync.
   */
  async publish(pods: PodView[], timeoutMs = 300_000): Promise<Record<string, ProxyStatus>> {
    const generation = ++this.generation;
    this.current = this.states(pods);
    const doc: ClusterServices = { generation, podCIDR: this.config.podCIDR, serviceCIDR: this.config.serviceCIDR, services: this.current };
    const text = JSON.stringify(doc);
    // dnsmasq re-reads the file once it is closed after writing (inotify on its hostsdir).
    if (this.dnsNode) await this.backend.writeFile(this.dnsNode, this.hostsFile(), dnsRecords(this.current));
    await Promise.all(this.config.nodes.map((n) => this.backend.writeFile(n.name, SERVICES_FILE, text)));
    const reports: Record<string, ProxyStatus> = {};
    const deadline = Date.now() + timeoutMs;
    for (const n of this.config.nodes) {
      for (;;) {
        const raw = await this.backend.readFile(n.name, STATUS_FILE);
        const status = raw ? (JSON.parse(raw) as ProxyStatus) : undefined;
        if (status && status.generation >= generation) {
          if (status.error) throw new Error(`kube-proxy on ${n.name} could not apply the services: ${status.error}`);
          reports[n.name] = status;
          break;
        }
        if (Date.now() > deadline) throw new Error(`kube-proxy on ${n.name} did not apply generation ${generation} within ${timeoutMs / 1000} s; see ${this.backend.nodePath(n.name, '/var/log/kube-proxy.log')}`);
        await sleep(10);
      }
    }
    return reports;
  }
}
