// flannel (meta plugin): reads the node agent's subnet.env and delegates to
// bridge + host-local with this node's subnet, as the upstream flannel plugin does.
// The delegate's config is saved per container so DEL works even after the agent is gone.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdArgs } from '../../cni/env.js';
import { CniError, ErrorCode, invalidConfig } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import { convertResult, type Result } from '../../cni/result.js';
import { delegateAdd, invokePlugin, registerInProcess, delegateArgs } from '../../cni/invoke.js';
import { bridgePlugin } from '../../cni/plugins/bridge.js';

registerInProcess('bridge', bridgePlugin);

export interface FlannelConf extends NetConf {
  subnetFile: string;
  dataDir: string;
  delegate: Record<string, unknown>;
}

export interface SubnetEnv {
  network: string;
  subnet: string;
  mtu: number;
  ipMasq: boolean;
  /** Dual-stack: FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET. */
  ipv6Network?: string;
  ipv6Subnet?: string;
}

export function readSubnetEnv(file: string): SubnetEnv {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CniError(ErrorCode.TryAgainLater, `${file} does not exist yet: is the flannel agent running on this node?`);
  }
  const env = Object.fromEntries(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  for (const k of ['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_MTU']) {
    if (!env[k]) throw new CniError(ErrorCode.InvalidConfig, `${file}: ${k} is missing`);
  }
  const v6 = env.FLANNEL_IPV6_SUBNET && env.FLANNEL_IPV6_NETWORK ? { ipv6Network: env.FLANNEL_IPV6_NETWORK, ipv6Subnet: env.FLANNEL_IPV6_SUBNET } : {};
  return { network: env.FLANNEL_NETWORK, subnet: env.FLANNEL_SUBNET, mtu: Number(env.FLANNEL_MTU), ipMasq: env.FLANNEL_IPMASQ === 'true', ...v6 };
}

function loadFlannelConf(conf: NetConf): FlannelConf {
  const f = new Fields(conf.raw);
  return {
    ...conf,
    subnetFile: f.string('subnetFile') ?? '/run/flannel/subnet.env',
    dataDir: f.string('dataDir') ?? '/var/lib/cni/flannel',
    delegate: f.object('delegate') ?? {},
  };
}

/** The bridge configuration this node's subnet calls for; `delegate` fields override. */
export function delegateConfig(conf: FlannelConf, env: SubnetEnv): Record<string, unknown> {
  const d = conf.delegate;
  return {
    cniVersion: conf.cniVersion,
    name: conf.name,
    type: 'bridge',
    bridge: 'cni0',
    isGateway: true,
    ipMasq: !env.ipMasq,
    mtu: env.mtu,
    ...d,
    ipam: {
      type: 'host-local',
      // A range set and a route per family, as flannel's plugin writes them.
      ranges: [[{ subnet: env.subnet }], ...(env.ipv6Subnet ? [[{ subnet: env.ipv6Subnet }]] : [])],
      routes: [{ dst: env.network }, ...(env.ipv6Network ? [{ dst: env.ipv6Network }] : [])],
      ...(conf.ipam ?? {}),
    },
  };
}

const savedPath = (conf: FlannelConf, id: string) => join(conf.dataDir, id);


async function add(args: CmdArgs, conf: FlannelConf): Promise<Result> {
  const delegate = delegateConfig(conf, readSubnetEnv(conf.subnetFile));
  const type = String(delegate.type);
  mkdirSync(conf.dataDir, { recursive: true });
  writeFileSync(savedPath(conf, args.containerId), JSON.stringify(delegate));
  try {
    const result = await delegateAdd(type, delegate, delegateArgs(args));
    return { ...result, cniVersion: conf.cniVersion };
  } catch (e) {
    rmSync(savedPath(conf, args.containerId), { force: true });
    throw e;
  }
}

function readSaved(conf: FlannelConf, id: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(savedPath(conf, id), 'utf8'));
  } catch {
    return undefined;
  }
}

export const flannelPlugin: Plugin<FlannelConf> = {
  loadConfig: loadFlannelConf,
  add,
  async del(args, conf) {
    const delegate = readSaved(conf, args.containerId);
    if (!delegate) return; // never added, or already deleted
    await invokePlugin(String(delegate.type), delegate, { ...delegateArgs(args), command: 'DEL' });
    rmSync(savedPath(conf, args.containerId), { force: true });
  },
  async check(args, conf) {
    const delegate = readSaved(conf, args.containerId);
    if (!delegate) throw new CniError(ErrorCode.UnknownContainer, `no saved delegate configuration for container ${args.containerId} in ${conf.dataDir}`);
    if (!conf.prevResult) throw invalidConfig('prevResult', 'CHECK needs the result of the ADD');
    await invokePlugin(String(delegate.type), { ...delegate, prevResult: convertResult(conf.prevResult, conf.cniVersion) }, { ...delegateArgs(args), command: 'CHECK' });
  },
};
