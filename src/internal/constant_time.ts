/**
 * The one constant-time comparison of kefu-edge, for push signatures, forwarded-message
 * signatures and API keys. Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */

/**
 * Compares two strings in time that depends only on their length, never on where they
 * differ. Strings of different lengths are unequal at once: callers compare values whose
 * length is public (a SHA-1 is 40 hex digits, an HMAC-SHA256 64), and a secret of any length
 * is MACed to a digest first (`worker/auth.ts`).
 *
 * @param a one string (e.g. a received signature)
 * @param b the other (e.g. the expected signature)
 * @returns whether they are equal
 * @example Compare two digests
 * ```ts
 * import { constantTimeEqual } from "./constant_time.ts";
 * console.log(constantTimeEqual("ab12", "ab12"), constantTimeEqual("ab12", "ab13")); // true false
 * ```
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
