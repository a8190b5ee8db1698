// Private: identifiers the emulator hands out. Web Crypto only, so it runs everywhere.
import { toHex } from "../internal/hex.ts";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** `length` random characters of [A-Za-z0-9_-], the alphabet of WeChat's tokens and media ids. */
export function randomId(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const byte of bytes) out += B64URL[byte & 63];
  return out;
}

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** A request id shaped like WeChat's: `xxxxxxxx-xxxxxxxx-xxxxxxxx`. */
export function randomRid(): string {
  return `${randomHex(4)}-${randomHex(4)}-${randomHex(4)}`;
}

/** A push nonce: WeChat sends 9 to 10 decimal digits. */
export function randomNonce(): string {
  const [n = 0] = crypto.getRandomValues(new Uint32Array(1));
  return String(100_000_000 + (n % 4_000_000_000));
}

/**
 * Message ids as WeChat issues them: 64-bit integers, above 2^53 so that a receiver
 * that parses them as a float loses digits and a test notices. Each emulator starts
 * at a random point and counts up, so ids are unique and increasing. They are odd: an
 * even id can happen to be a multiple of a power of two that a double holds exactly.
 */
export function msgIdSequence(): () => string {
  const [hi = 0, lo = 0] = crypto.getRandomValues(new Uint32Array(2));
  // 2^62 plus 61 random bits, odd: always 19 digits, below 2^63, never exact as a double.
  let next = (1n << 62n) + ((BigInt(hi & 0x1fffffff) << 32n) | BigInt(lo)) | 1n;
  return () => {
    const id = next;
    next += 2n;
    return String(id);
  };
}
