// CNI results: one internal shape (spec 1.1.0) and converters to and from the older wire formats.
import { CniError, ErrorCode } from './errors.js';
import { compareVersions } from './version.js';

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  address: string; // CIDR notation: 10.10.0.2/24
  gateway?: string;
  interface?: number; // index into interfaces
}

export interface RouteEntry {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: RouteEntry[];
  dns?: DNS;
}

const ROUTE_FIELDS_1_1 = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const INTERFACE_FIELDS_1_1 = ['mtu', 'socketPath', 'pciID'] as const;

/** Write a result in the wire format of `version`. Empty lists are left out, as the reference plugins do. */
export function convertResult(result: Result, version: string): Record<string, unknown> {
  const old = compareVersions(version, '1.0.0') < 0;
  const before11 = compareVersions(version, '1.1.0') < 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces?.length) {
    out.interfaces = result.interfaces.map((i) => {
      const copy: Record<string, unknown> = { ...i };
      if (before11) for (const f of INTERFACE_FIELDS_1_1) delete copy[f];
      return copy;
    });
  }
  if (result.ips?.length) {
    out.ips = result.ips.map((ip) => (old ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : { ...ip }));
  }
  if (result.routes?.length) {
    out.routes = result.routes.map((r) => {
      const copy: Record<string, unknown> = { ...r };
      if (before11) for (const f of ROUTE_FIELDS_1_1) delete copy[f];
      return copy;
    });
  }
  out.dns = result.dns ?? {};
  return out;
}

/** Read a result of any supported version (a prevResult, or what a delegate printed) into the internal shape. */
export function parseResult(raw: unknown, field = 'prevResult'): Result {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(ErrorCode.DecodeFailure, `${field}: expected a result object`);
  }
  const r = raw as Record<string, unknown>;
  const result: Result = { cniVersion: typeof r.cniVersion === 'string' ? r.cniVersion : '1.1.0' };
  if (r.interfaces !== undefined) {
    if (!Array.isArray(r.interfaces)) throw new CniError(ErrorCode.DecodeFailure, `${field}.interfaces: expected a list`);
    result.interfaces = r.interfaces as Interface[];
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips)) throw new CniError(ErrorCode.DecodeFailure, `${field}.ips: expected a list`);
    result.ips = (r.ips as Record<string, unknown>[]).map((ip, i) => {
      if (typeof ip.address !== 'string') throw new CniError(ErrorCode.DecodeFailure, `${field}.ips[${i}].address: expected a CIDR string`);
      const { version: _v, ...rest } = ip;
      return rest as unknown as IPConfig;
    });
  }
  if (r.routes !== undefined) {
    if (!Array.isArray(r.routes)) throw new CniError(ErrorCode.DecodeFailure, `${field}.routes: expected a list`);
    result.routes = r.routes as RouteEntry[];
  }
  if (r.dns !== undefined) result.dns = r.dns as DNS;
  return result;
}
