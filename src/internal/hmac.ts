/**
 * HMAC-SHA256 through WebCrypto, for the signatures kefu-edge makes itself (queued push
 * jobs, forwarded messages). Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */
import { toHex } from "./hex.ts";
import { nativeHmacSha256 } from "../runtime/crypto.ts";

const encoder = new TextEncoder();

/**
 * A signing key: its raw bytes (signed with node:crypto where the runtime uses it) and, made
 * when first needed, the WebCrypto key (Workers).
 */
export interface HmacKey {
  readonly raw: Uint8Array<ArrayBuffer>;
  web?: Promise<CryptoKey>;
}

/**
 * An HMAC-SHA256 signing key made from a secret string.
 *
 * @param secret the secret
 * @returns the key, usable only to sign
 */
export function hmacKey(secret: string | Uint8Array<ArrayBuffer>): HmacKey {
  return { raw: typeof secret === "string" ? new Uint8Array(encoder.encode(secret)) : secret };
}

async function sign(key: HmacKey, data: string): Promise<Uint8Array<ArrayBuffer>> {
  key.web ??= crypto.subtle.importKey("raw", key.raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", await key.web, encoder.encode(data)));
}

/**
 * Lowercase hex HMAC-SHA256 of `data`.
 *
 * @param key a key from {@link hmacKey}, or the secret itself
 * @param data what to sign
 * @returns 64 hex digits
 */
export async function hmacSha256Hex(key: HmacKey | string, data: string): Promise<string> {
  const signing = typeof key === "string" ? hmacKey(key) : key;
  return nativeHmacSha256(signing.raw, data, "hex") ?? toHex(await sign(signing, data));
}

/**
 * A signing key derived from `secret` for one purpose (`label`): HMAC-SHA256(secret, label),
 * so that a key used for one kind of signature never signs another.
 *
 * @param secret the secret (e.g. the push token)
 * @param label what the derived key signs
 * @returns the derived key
 */
export async function derivedHmacKey(secret: string, label: string): Promise<HmacKey> {
  const base = hmacKey(secret);
  const derived = nativeHmacSha256(base.raw, label, "raw") ?? await sign(base, label);
  return hmacKey(new Uint8Array(derived));
}
