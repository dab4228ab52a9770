// The entry every plugin shares: env and stdin in, result or error out.
// It takes its inputs as arguments, so tests can call a plugin in-process.
import { parseEnv, type CmdArgs } from './env.js';
import { CniError, ErrorCode } from './errors.js';
import { decodeJson, parseNetConf, type NetConf } from './config.js';
import { convertResult, type Result } from './result.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, requireVersion } from './version.js';

export interface GcArgs {
  /** cni.dev/valid-attachments: everything the runtime still uses; anything else may go. */
  validAttachments: { containerID: string; ifname: string }[];
}

export interface Plugin<C extends NetConf = NetConf> {
  /** The plugin's own fields, read and checked; errors name the field (code 7). */
  loadConfig(conf: NetConf): C;
  add(args: CmdArgs, conf: C): Promise<Result>;
  del(args: CmdArgs, conf: C): Promise<void>;
  check(args: CmdArgs, conf: C): Promise<void>;
  gc?(args: CmdArgs, conf: C, gc: GcArgs): Promise<void>;
  status?(args: CmdArgs, conf: C): Promise<void>;
}

export interface PluginIO {
  env: NodeJS.ProcessEnv;
  stdin: string;
  write(text: string): void;
}

/** Runs one CNI command; returns the process exit code. */
export async function dispatch<C extends NetConf>(plugin: Plugin<C>, io: PluginIO): Promise<number> {
  let version = CURRENT_VERSION;
  try {
    if (io.env.CNI_COMMAND === 'VERSION') {
      const requested = io.stdin.trim() ? decodeJson(io.stdin).cniVersion : undefined;
      const answer = typeof requested === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(requested) ? requested : CURRENT_VERSION;
      io.write(JSON.stringify({ cniVersion: answer, supportedVersions: SUPPORTED_VERSIONS }));
      return 0;
    }
    const args = parseEnv(io.env);
    const raw = decodeJson(io.stdin);
    if (typeof raw.cniVersion === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(raw.cniVersion)) version = raw.cniVersion;
    const conf = plugin.loadConfig(parseNetConf(raw, args.command !== 'STATUS'));
    switch (args.command) {
      case 'ADD': {
        const result = await plugin.add(args, conf);
        io.write(JSON.stringify(convertResult(result, conf.cniVersion)));
        return 0;
      }
      case 'DEL':
        await plugin.del(args, conf);
        return 0;
      case 'CHECK':
        requireVersion('CHECK', conf.cniVersion, '0.4.0');
        await plugin.check(args, conf);
        return 0;
      case 'GC': {
        requireVersion('GC', conf.cniVersion, '1.1.0');
        const valid = raw['cni.dev/valid-attachments'];
        if (valid !== undefined && !Array.isArray(valid)) {
          throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: cni.dev/valid-attachments: must be a list');
        }
        await plugin.gc?.(args, conf, { validAttachments: (valid ?? []) as GcArgs['validAttachments'] });
        return 0;
      }
      case 'STATUS':
        requireVersion('STATUS', conf.cniVersion, '1.1.0');
        await plugin.status?.(args, conf);
        return 0;
    }
    throw new CniError(ErrorCode.InvalidEnvironment, `unhandled CNI_COMMAND ${args.command}`);
  } catch (e) {
    const err = CniError.from(e);
    io.write(JSON.stringify(err.toJSON(version)));
    return err.code === 0 ? 1 : Math.min(err.code, 255) || 1;
  }
}

/** The `main` of a plugin executable. */
export async function pluginMain<C extends NetConf>(plugin: Plugin<C>): Promise<void> {
  const chunks: Buffer[] = [];
  if (process.env.CNI_COMMAND !== 'VERSION' || !process.stdin.isTTY) {
    for await (const c of process.stdin) chunks.push(c as Buffer);
  }
  const out: string[] = [];
  const code = await dispatch(plugin, { env: process.env, stdin: Buffer.concat(chunks).toString('utf8'), write: (t) => out.push(t) });
  process.stdout.write(out.join(''));
  process.exitCode = code;
}
