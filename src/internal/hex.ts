/**
 * Lowercase hex of bytes and of 32-bit words, from one table. Private to kefu-edge (see
 * README.md beside this file).
 *
 * @module
 */

const HEX: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/**
 * The lowercase hex of `bytes`, two digits a byte.
 *
 * @param bytes the bytes
 * @returns `2 * bytes.length` hex digits
 * @example Hex of three bytes
 * ```ts
 * import { toHex } from "./hex.ts";
 * console.log(toHex(new Uint8Array([0, 15, 255]))); // "000fff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

/**
 * The eight lowercase hex digits of a 32-bit word, most significant byte first (a SHA-1
 * state word).
 *
 * @param word a 32-bit integer (signed or not)
 * @returns 8 hex digits
 * @example Hex of a word
 * ```ts
 * import { wordHex } from "./hex.ts";
 * console.log(wordHex(0x67452301), wordHex(-1)); // "67452301" "ffffffff"
 * ```
 */
export function wordHex(word: number): string {
  return HEX[(word >>> 24) & 0xff]! + HEX[(word >>> 16) & 0xff]! + HEX[(word >>> 8) & 0xff]! + HEX[word & 0xff]!;
}
