/**
 * HMAC-SHA256 through WebCrypto, for the signatures kefu-edge makes itself (queued push
 * jobs, forwarded messages). Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */
import { toHex } from "./hex.ts";

const encoder = new TextEncoder();

/**
 * An HMAC-SHA256 signing key made from a secret string.
 *
 * @param secret the secret
 * @returns the key, usable only to sign
 */
export function hmacKey(secret: string | Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const raw = typeof secret === "string" ? encoder.encode(secret) : secret;
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/**
 * Lowercase hex HMAC-SHA256 of `data`.
 *
 * @param key a key from {@link hmacKey}, or the secret itself
 * @param data what to sign
 * @returns 64 hex digits
 */
export async function hmacSha256Hex(key: CryptoKey | string, data: string): Promise<string> {
  const signing = typeof key === "string" ? await hmacKey(key) : key;
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", signing, encoder.encode(data))));
}

/**
 * A signing key derived from `secret` for one purpose (`label`): HMAC-SHA256(secret, label),
 * so that a key used for one kind of signature never signs another.
 *
 * @param secret the secret (e.g. the push token)
 * @param label what the derived key signs
 * @returns the derived key
 */
export async function derivedHmacKey(secret: string, label: string): Promise<CryptoKey> {
  const base = await hmacKey(secret);
  return await hmacKey(new Uint8Array(await crypto.subtle.sign("HMAC", base, encoder.encode(label))));
}
