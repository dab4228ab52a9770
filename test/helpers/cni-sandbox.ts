// Real-kernel fixtures for CNI plugin tests: a "node" network namespace the
// plugin runs in, container namespaces, a lease directory, and a call that
// runs a plugin executable exactly as a runtime does (env + stdin in, JSON on
// stdout, exit code). Nothing here touches the root namespace.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath, run } from '../../src/net/exec.js';
import { Ip } from '../../src/net/ip.js';
import { addNetns, deleteNetns, listNetns } from '../../src/net/netns.js';
import { natRules } from '../../src/net/iptables.js';
import type { Command } from '../../src/cni/env.js';

export const OUR_PLUGINS = resolve('dist/cni/bin');
export const REFERENCE_PLUGINS = '/usr/lib/cni';
export const SPEC_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;

/** Every namespace we create starts with this; the PID keeps parallel runs apart. */
export const NS_PREFIX = `cnitest-a-${process.pid}-`;
export const NETWORK = 'cnitest-a-net';
export const BRIDGE = 'cnitest-a-br0';
export const SUBNET = '10.250.0.0/24';
export const GATEWAY = '10.250.0.1';

let built: Promise<unknown> | undefined;
/** Bundle the plugins once per test run, however many suites ask. */
export function buildPlugins(): Promise<unknown> {
  built ??= run(['node', 'scripts/build.mjs']);
  return built;
}

export interface PluginCall {
  command: Command;
  /** An object is sent as JSON; a string is sent as it is (for broken input). */
  conf: Record<string, unknown> | string;
  containerId?: string;
  /** Path of the container namespace; '' sends an empty CNI_NETNS. */
  netns?: string;
  ifname?: string;
  cniArgs?: string;
  /** Where the bridge executable (and its IPAM) are found: ours or the reference's. */
  binDir?: string;
  /** The executable to run from binDir: bridge unless said. */
  plugin?: string;
  /** Changes to the environment after the defaults: undefined removes a variable. */
  env?: Record<string, string | undefined>;
}

export interface PluginOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when there is any. */
  json: any;
}

let counter = 0;
/** Lease directories of sandboxes not destroyed yet. */
const liveDataDirs = new Set<string>();

// A root hook, registered when the first suite imports this module: whatever a
// suite failed to clean up is removed here, and the run fails so the leak is seen.
after(async () => {
  const namespaces = ourNamespaces();
  const dirs = [...liveDataDirs];
  for (const name of namespaces) await deleteNetns(name);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  liveDataDirs.clear();
  if (namespaces.length || dirs.length) throw new Error(`tests left behind: ${[...namespaces, ...dirs].join(', ')}`);
});

export class Sandbox {
  readonly nodeIp: Ip;
  private readonly containers = new Set<string>();

  private constructor(
    /** Name of the node namespace the plugin runs in. */
    readonly node: string,
    /** A fresh directory for host-local's leases. */
    readonly dataDir: string,
  ) {
    this.nodeIp = new Ip(node);
  }

  static async create(): Promise<Sandbox> {
    const node = `${NS_PREFIX}node${++counter}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'cnitest-a-leases-'));
    const box = new Sandbox(node, dataDir);
    liveDataDirs.add(dataDir);
    try {
      await addNetns(node);
    } catch (e) {
      await box.destroy();
      throw e;
    }
    return box;
  }

  /** A new container namespace; returns its path, as a runtime passes it in CNI_NETNS. */
  async addContainer(): Promise<string> {
    const name = `${NS_PREFIX}ctr${++counter}`;
    this.containers.add(name);
    return addNetns(name);
  }

  /** Remove a container namespace, as a runtime does before a late DEL. */
  async removeContainer(path: string): Promise<void> {
    const name = path.replace('/run/netns/', '');
    await deleteNetns(name);
    this.containers.delete(name);
  }

  async call(c: PluginCall): Promise<PluginOutput> {
    const binDir = c.binDir ?? OUR_PLUGINS;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CNI_COMMAND: c.command,
      CNI_CONTAINERID: c.containerId ?? 'ctr1',
      CNI_NETNS: c.netns ?? '',
      CNI_IFNAME: c.ifname ?? 'eth0',
      CNI_PATH: binDir,
      CNILAB_CNID_AUTOSTART: '0', // the plugin itself, run by the shim; the daemon has its own tests
      ...(c.cniArgs !== undefined ? { CNI_ARGS: c.cniArgs } : {}),
    };
    for (const [k, v] of Object.entries(c.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const input = typeof c.conf === 'string' ? c.conf : JSON.stringify(c.conf);
    const argv = inNetns(this.node, join(binDir, c.plugin ?? 'bridge'), []);
    const r = await run(argv, { input, env, allowFailure: true });
    let json: any;
    try {
      json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      json = undefined;
    }
    return { ...r, json };
  }

  /** ADD that must succeed; returns the result. */
  async add(conf: Record<string, unknown>, netns: string, containerId = 'ctr1', binDir?: string): Promise<any> {
    const out = await this.call({ command: 'ADD', conf, netns, containerId, binDir });
    if (out.exitCode !== 0) throw new Error(`ADD failed (exit ${out.exitCode}): ${out.stdout}${out.stderr}`);
    return out.json;
  }

  /** The bridge config most tests use: isGateway, ipMasq, hairpin, MTU 1400, host-local on SUBNET. */
  bridgeConf(cniVersion: string, extra: Record<string, unknown> = {}, ipamExtra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion,
      name: NETWORK,
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      mtu: 1400,
      ...extra,
      ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }]], dataDir: this.dataDir, ...ipamExtra },
    };
  }

  /** Leased addresses of a network, both families (bookkeeping files such as last_reserved_ip.0 left out). */
  leases(network = NETWORK): string[] {
    try {
      return readdirSync(join(this.dataDir, network))
        .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f) || /^[0-9a-f:]+$/.test(f))
        .sort();
    } catch {
      return [];
    }
  }

  /** Everything a plugin could leave behind, in a form that compares with deep equality. */
  async snapshot(containers: string[] = [...this.containers].map(netnsPath)) {
    const linkNames = async (ip: Ip) => (await ip.links()).map((l) => l.ifname).sort();
    const inside: Record<string, string[]> = {};
    for (const c of containers) inside[c] = await linkNames(new Ip(c));
    return {
      node: await linkNames(this.nodeIp),
      containers: inside,
      nat: await natRules(this.node),
      nat6: await natRules(this.node, 6),
      leases: this.leases(),
      namespaces: ourNamespaces(),
    };
  }

  async destroy(): Promise<void> {
    for (const name of this.containers) await deleteNetns(name);
    this.containers.clear();
    await deleteNetns(this.node);
    rmSync(this.dataDir, { recursive: true, force: true });
    liveDataDirs.delete(this.dataDir);
  }
}

/** Namespaces this test process created and has not removed yet. */
export function ourNamespaces(): string[] {
  return listNetns()
    .filter((n) => n.startsWith(NS_PREFIX))
    .sort();
}

/**
 * Two fresh sandboxes per test, one for the reference plugins and one for ours,
 * destroyed after it; the suite is skipped where the reference `plugin` is not installed.
 */
export function referencePair(plugin: string): { ref: () => Sandbox; ours: () => Sandbox } {
  let ref: Sandbox | undefined;
  let ours: Sandbox | undefined;
  before(function () {
    if (!existsSync(join(REFERENCE_PLUGINS, plugin))) this.skip();
    return buildPlugins();
  });
  beforeEach(async () => {
    ref = await Sandbox.create();
    ours = await Sandbox.create();
  });
  afterEach(async () => {
    await ref?.destroy();
    await ours?.destroy();
  });
  return { ref: () => ref!, ours: () => ours! };
}
