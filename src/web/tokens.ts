// Secret tokens for the links the server hands out: 128 random bits, and a
// comparison that takes the same time whatever the guess.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const newToken = (): string => randomBytes(16).toString('base64url');

/** Only the shape a token can have: anything else is refused before any lookup. */
export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{22}$/;

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
