// Private to kefu-edge (see README.md beside this file): SHA-1 in plain JavaScript, for
// WeChat's push signatures where node:crypto is not used (Workers and other WebCrypto-only
// runtimes; see src/runtime/crypto.ts).
//
// Why not crypto.subtle.digest: on Node every SubtleCrypto call is a round trip through
// the libuv thread pool (about 20 µs, far more on a busy machine), while hashing the
// 60–400 bytes of a push signature here takes about 2 µs. A receiver checks two
// signatures per message, so this halves the crypto latency of the hot path. The
// function uses only 32-bit adds, rotations and bitwise logic — no table lookups and no
// branch on the data — so its timing does not depend on the token being hashed.
// Tests compare it with node:crypto over every length up to several blocks.

import { wordHex } from "./hex.ts";

const encoder = new TextEncoder();
// The message schedule, reused: JavaScript is single-threaded and the function never yields.
const schedule = new Int32Array(80);

/**
 * Hex SHA-1 of the UTF-8 bytes of `text`.
 *
 * @param text the text to hash
 * @returns 40 lowercase hex digits
 */
export function sha1Hex(text: string): string {
  const bytes = encoder.encode(text);
  const length = bytes.length;
  // Message + 0x80 + zero fill + 64-bit bit length, in 64-byte blocks of 16 big-endian words.
  const words = new Int32Array((((length + 8) >> 6) + 1) * 16);
  for (let i = 0; i < length; i++) words[i >> 2]! |= bytes[i]! << (24 - (i & 3) * 8);
  words[length >> 2]! |= 0x80 << (24 - (length & 3) * 8);
  words[words.length - 2] = Math.floor(length / 0x20000000);
  words[words.length - 1] = length << 3;

  let h0 = 0x67452301, h1 = 0xefcdab89 | 0, h2 = 0x98badcfe | 0, h3 = 0x10325476, h4 = 0xc3d2e1f0 | 0;
  const w = schedule;
  for (let block = 0; block < words.length; block += 16) {
    for (let t = 0; t < 16; t++) w[t] = words[block + t]!;
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number;
      let k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc | 0;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6 | 0;
      }
      const next = (((a << 5) | (a >>> 27)) + f + e + k + w[t]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  return wordHex(h0) + wordHex(h1) + wordHex(h2) + wordHex(h3) + wordHex(h4);
}
