/**
 * Private to the inbox: base64url without padding (JWTs, password hashes, the session cookie,
 * the session key) and random tokens in it.
 *
 * @module
 */

/**
 * The base64url text of `bytes`, without padding.
 *
 * @param bytes the bytes
 * @returns letters, digits, `-` and `_`
 * @example
 * ```ts
 * import { toBase64Url } from "./base64url.ts";
 * console.log(toBase64Url(new Uint8Array([251, 255]))); // "-_8"
 * ```
 */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The bytes of base64url text without padding, or `undefined` when it is anything else
 * (another alphabet, padding, blanks, a length no encoding has).
 *
 * @param text the text
 * @returns the bytes, or `undefined`
 * @example
 * ```ts
 * import { fromBase64Url } from "./base64url.ts";
 * console.log(Array.from(fromBase64Url("-_8") ?? []), fromBase64Url("+/8=")); // [251, 255] undefined
 * ```
 */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  // Unused low bits must be zero: each byte string has one encoding, so a signature or a
  // token cannot be altered in its last character and still be read as the same bytes.
  return toBase64Url(bytes) === text ? bytes : undefined;
}

/**
 * `size` random bytes, as base64url.
 *
 * @param size how many bytes
 * @returns the token
 * @example
 * ```ts
 * import { randomToken } from "./base64url.ts";
 * console.log(randomToken(16).length); // 22
 * ```
 */
export function randomToken(size: number): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(size)));
}
