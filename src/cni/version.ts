// Version negotiation: which spec versions we speak, and how to compare them.
import { CniError, ErrorCode } from './errors.js';

export const CURRENT_VERSION = '1.1.0';
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function checkVersion(version: unknown, field = 'cniVersion'): string {
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ${field}: must be a version like "1.1.0", got ${JSON.stringify(version)}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `incompatible CNI version: ${field} is ${version}; this plugin supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return version;
}

/** CHECK exists from 0.4.0 on, GC and STATUS from 1.1.0 on. */
export function requireVersion(command: string, version: string, minimum: string): void {
  if (compareVersions(version, minimum) < 0) {
    throw new CniError(ErrorCode.IncompatibleVersion, `${command} needs cniVersion ${minimum} or later; the configuration says ${version}`);
  }
}
