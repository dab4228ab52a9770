// calico-ipam: a /32 for each pod from its node's block, blocks claimed in
// etcd (see ipam.ts). Like Calico's, it reads the datastore
// fields from the top level of the network configuration it is handed.
import { hostname } from 'node:os';
import type { CmdArgs } from '../../cni/env.js';
import { CniError, ErrorCode } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import type { Result } from '../../cni/result.js';
import { BlockAllocator } from './ipam.js';
import { EtcdCalicoStore } from './store.js';

export interface CalicoDatastoreConf {
  /** The first of etcd_endpoints (comma-separated, as Calico takes them). */
  etcdEndpoint: string;
  nodename: string;
}

export interface CalicoIpamConf extends NetConf, CalicoDatastoreConf {
  pools: string[];
}

/** The fields both Calico plugins read: where the datastore is and which node this is. */
export function loadDatastoreConf(conf: NetConf): CalicoDatastoreConf {
  const f = new Fields(conf.raw);
  const type = f.string('datastore_type') ?? 'etcdv3';
  if (type !== 'etcdv3') throw new CniError(ErrorCode.UnsupportedField, `datastore_type "${type}" is not supported; cnilab's Calico keeps its data in etcd ("etcdv3")`);
  const endpoints = f.string('etcd_endpoints') ?? 'http://127.0.0.1:2379';
  const etcdEndpoint = endpoints.split(',')[0].trim();
  if (!/^https?:\/\/[^\s/]+$/.test(etcdEndpoint)) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: etcd_endpoints: "${endpoints}" is not a list of URLs like http://192.168.10.210:2379`);
  // Calico falls back to the host name too; a node here has its own (a UTS namespace).
  return { etcdEndpoint, nodename: f.string('nodename') ?? hostname() };
}

function loadCalicoIpam(conf: NetConf): CalicoIpamConf {
  const ipam = new Fields(conf.ipam ?? {}, 'ipam');
  if (ipam.string('assign_ipv6') === 'true') throw new CniError(ErrorCode.UnsupportedField, 'ipam.assign_ipv6: IPv6 is not supported yet');
  const pools = (ipam.list('ipv4_pools') ?? []).map((p, i) => {
    if (typeof p !== 'string' || !p) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.ipv4_pools[${i}]: must be a pool name or CIDR`);
    return p;
  });
  return { ...conf, ...loadDatastoreConf(conf), pools };
}

/** Calico's handle for a pod's addresses: `<network name>.<container id>`. */
export const handleOf = (conf: NetConf, args: CmdArgs) => `${conf.name}.${args.containerId}`;

/** Run against the datastore; an unreachable etcd is "try again later" (code 11), not a crash. */
async function withDatastore<T>(conf: CalicoIpamConf, fn: (a: BlockAllocator) => Promise<T>): Promise<T> {
  try {
    return await fn(new BlockAllocator(new EtcdCalicoStore(conf.etcdEndpoint)));
  } catch (e) {
    if (e instanceof CniError) throw e;
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CniError(ErrorCode.TryAgainLater, `the Calico datastore (etcd at ${conf.etcdEndpoint}) did not answer: ${why}`);
  }
}

export const calicoIpam: Plugin<CalicoIpamConf> = {
  loadConfig: loadCalicoIpam,

  async add(args, conf): Promise<Result> {
    const attrs = { node: conf.nodename, ...(args.args.K8S_POD_NAME ? { pod: `${args.args.K8S_POD_NAMESPACE ?? 'default'}/${args.args.K8S_POD_NAME}` } : {}) };
    const ip = await withDatastore(conf, (a) => a.assign({ node: conf.nodename, handle: handleOf(conf, args), attrs, pools: conf.pools }));
    return { cniVersion: conf.cniVersion, ips: [{ address: `${ip}/32` }], routes: [], dns: {} };
  },

  async del(args, conf) {
    await withDatastore(conf, (a) => a.release(handleOf(conf, args)));
  },

  async check(args, conf) {
    const held = await withDatastore(conf, (a) => a.addresses(handleOf(conf, args)));
    if (held.length === 0) throw new CniError(ErrorCode.UnknownContainer, `no address is assigned to ${handleOf(conf, args)} in the Calico datastore`);
  },

  async status(_args, conf) {
    await withDatastore(conf, async (a) => {
      if ((await a.store.pools()).length === 0) throw new CniError(ErrorCode.PluginNotAvailable, 'no IP pool in the Calico datastore');
    });
  },
};
