// Decoding the network configuration a plugin gets on stdin: JSON (code 6),
// then the fields every plugin shares (code 1 or 7). Plugin-specific fields
// are read with `Fields`, whose errors name the field's full path.
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { parseResult, type Result } from './result.js';
import { checkVersion } from './version.js';

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  prevResult?: Result;
  runtimeConfig?: Record<string, unknown>;
  ipam?: Record<string, unknown>;
  dns?: Record<string, unknown>;
  /** The whole decoded object, for plugins that pass it on to a delegate. */
  raw: Record<string, unknown>;
}

export function decodeJson(stdin: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(ErrorCode.DecodeFailure, `network configuration on stdin is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(ErrorCode.DecodeFailure, 'network configuration on stdin must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function parseNetConf(raw: Record<string, unknown>, needsName = true): NetConf {
  const f = new Fields(raw);
  const cniVersion = checkVersion(raw.cniVersion);
  const conf: NetConf = {
    cniVersion,
    name: needsName ? f.string('name', { required: true, pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/ })! : f.string('name') ?? '',
    type: f.string('type', { required: true })!,
    raw,
  };
  if (raw.prevResult !== undefined) conf.prevResult = parseResult(raw.prevResult);
  conf.runtimeConfig = f.object('runtimeConfig');
  conf.ipam = f.object('ipam');
  conf.dns = f.object('dns');
  return conf;
}

interface StringOpts {
  required?: boolean;
  pattern?: RegExp;
  oneOf?: readonly string[];
}

/** Typed reads of one object's fields; `path` prefixes every field named in an error. */
export class Fields {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly path = '',
  ) {}

  name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  string(key: string, opts: StringOpts = {}): string | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null || v === '') {
      if (opts.required) throw invalidConfig(this.name(key), 'is required');
      return undefined;
    }
    if (typeof v !== 'string') throw invalidConfig(this.name(key), `must be a string, got ${JSON.stringify(v)}`);
    if (opts.pattern && !opts.pattern.test(v)) throw invalidConfig(this.name(key), `"${v}" does not match ${opts.pattern}`);
    if (opts.oneOf && !opts.oneOf.includes(v)) throw invalidConfig(this.name(key), `"${v}" is not one of ${opts.oneOf.join(', ')}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw invalidConfig(this.name(key), `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  int(key: string, opts: { min?: number; max?: number } = {}): number | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidConfig(this.name(key), `must be a whole number, got ${JSON.stringify(v)}`);
    if (opts.min !== undefined && v < opts.min) throw invalidConfig(this.name(key), `${v} is below the minimum ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw invalidConfig(this.name(key), `${v} is above the maximum ${opts.max}`);
    return v;
  }

  object(key: string): Record<string, unknown> | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw invalidConfig(this.name(key), 'must be an object');
    return v as Record<string, unknown>;
  }

  list(key: string): unknown[] | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw invalidConfig(this.name(key), 'must be a list');
    return v;
  }

  child(key: string): Fields {
    return new Fields(this.object(key) ?? {}, this.name(key));
  }
}
