// calico-ipam: a /32 for each pod from its node's block (and with assign_ipv6
// a /128 from its IPv6 block), blocks claimed in
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
import { parsePrefix, type Family } from '../../net/ipnet.js';

export interface CalicoDatastoreConf {
  /** The first of etcd_endpoints (comma-separated, as Calico takes them). */
  etcdEndpoint: string;
  nodename: string;
}

export interface CalicoIpamConf extends NetConf, CalicoDatastoreConf {
  /** The families asked for (assign_ipv4, assign_ipv6), each with the pools to take from (all when empty). */
  families: { family: Family; pools: string[] }[];
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

/** Calico's "true"/"false" strings (a JSON boolean is taken too). */
function flag(ipam: Fields, key: string, dflt: boolean): boolean {
  const v = ipam.obj[key];
  if (v === undefined) return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.${key}: must be "true" or "false", not ${JSON.stringify(v)}`);
}

function poolList(ipam: Fields, family: Family): string[] {
  return (ipam.list(`ipv${family}_pools`) ?? []).map((p, i) => {
    if (typeof p !== 'string' || !p) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.ipv${family}_pools[${i}]: must be a pool name or CIDR`);
    if (p.includes('/') && parsePrefix(p)?.family !== family) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ipam.ipv${family}_pools[${i}]: "${p}" is not an IPv${family} CIDR`);
    return p;
  });
}

function loadCalicoIpam(conf: NetConf): CalicoIpamConf {
  const ipam = new Fields(conf.ipam ?? {}, 'ipam');
  // As Calico: IPv4 unless assign_ipv4 is "false", IPv6 only when assign_ipv6 is "true".
  const families = ([4, 6] as Family[])
    .filter((family) => flag(ipam, `assign_ipv${family}`, family === 4))
    .map((family) => ({ family, pools: poolList(ipam, family) }));
  if (families.length === 0) throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: ipam.assign_ipv4: with assign_ipv6 also off, no address would be assigned');
  return { ...conf, ...loadDatastoreConf(conf), families };
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
    const handle = handleOf(conf, args);
    try {
      const ips = await withDatastore(conf, async (a) => {
        const out: string[] = [];
        for (const { family, pools } of conf.families) out.push(`${await a.assign({ node: conf.nodename, handle, attrs, pools, family })}/${family === 4 ? 32 : 128}`);
        return out;
      });
      return { cniVersion: conf.cniVersion, ips: ips.map((address) => ({ address })), routes: [], dns: {} };
    } catch (e) {
      // The first family's address must not stay behind when the second fails.
      await withDatastore(conf, (a) => a.release(handle)).catch(() => undefined);
      throw e;
    }
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
