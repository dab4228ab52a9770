// Bytes as hex, for tests that compare map keys and values with what the kernel stores.
import { endianness } from 'node:os';

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A 32-bit integer as the kernel on this machine stores it. */
export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  if (endianness() === 'LE') b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b.toString('hex');
};
