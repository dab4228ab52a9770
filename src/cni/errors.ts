// CNI error codes (spec 1.1.0, "Error" section) and the one error type plugins throw.

export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  // cnilab's own codes (100 and above are the plugin's to define).
  AddressRangeExhausted: 100,
  KernelOperationFailed: 101,
  StateMismatch: 102,
  Internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string) {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }

  /** Anything thrown that is not a CniError becomes code 999 with its message kept. */
  static from(e: unknown): CniError {
    if (e instanceof CniError) return e;
    const err = e instanceof Error ? e : new Error(String(e));
    const stderr = (err as { stderr?: string }).stderr;
    if (err.name === 'CommandError' || err.name === 'NetlinkError') return new CniError(ErrorCode.KernelOperationFailed, err.message, stderr?.trim() ?? '');
    return new CniError(ErrorCode.Internal, err.message, err.stack ?? '');
  }
}

export function invalidConfig(field: string, problem: string): CniError {
  return new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ${field}: ${problem}`);
}
