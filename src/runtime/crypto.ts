// Adapter: the push cryptography on the fastest engine the runtime has, chosen per
// primitive by measurement (608-byte message, this repository's 2-core bench machine):
//
//   AES-256-CBC decrypt  node:crypto   WebCrypto                SHA-1 (msg_signature)  node:crypto  JS
//   Node 20              2.5 µs        34 µs (thread-pool hop)                         0.9 µs       5.4 µs
//   Deno                 6.5 µs        8.8 µs                                          1.4 µs       4.6 µs
//   Bun                  1.6 µs        14 µs                                           0.6 µs       4.0 µs
//   workerd (compat)     11 µs         4.8 µs                                          4.2 µs       6.1 µs
//
// Node, Deno and Bun use node:crypto for both. Workers use WebCrypto and the JS SHA-1 even
// with nodejs_compat: there node:crypto is a slower layer over the same engine, and the
// short `signature` input hashes 3× faster in JS (1.4 vs 4.1 µs), which evens out SHA-1.
// node:crypto is reached through `process.getBuiltinModule`, as `read_file.ts` reaches
// node:fs: no import statement names it, so Workers bundles leave it alone and the core
// still type-checks with Web libs only.
import { sha1Hex as sha1HexJs } from "../internal/sha1.ts";

/** Which engine runs the push cryptography: node:crypto, or WebCrypto with SHA-1 in JS. */
export type CryptoPath = "native" | "webcrypto";

/** AES-256-CBC without padding (WeChat pads to 32 bytes itself): lengths are multiples of 16. */
export interface AesCbc {
  /** The engine behind this cipher. */
  readonly path: CryptoPath;
  /** Encrypts `padded`; the result has the same length. */
  encrypt(padded: Uint8Array<ArrayBuffer>): Promise<Uint8Array>;
  /**
   * Decrypts `cipher`, padding included. `predicted` is a guess of plaintext byte 31; a right
   * guess saves WebCrypto a call (see {@link webCryptoAesCbc}), a wrong one costs a call.
   */
  decrypt(cipher: Uint8Array<ArrayBuffer>, predicted?: number): Promise<Uint8Array>;
}

// The part of node:crypto used here, as Node, Deno and Bun provide it.
interface NodeCipher {
  setAutoPadding(autoPadding: boolean): NodeCipher;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}
interface NodeCrypto {
  createCipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array): NodeCipher;
  createDecipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array): NodeCipher;
  /** Node >= 20.12, Deno, Bun. */
  hash?(algorithm: string, data: string, outputEncoding: "hex"): string;
  createHash(algorithm: string): { update(data: string): { digest(encoding: "hex"): string } };
  createHmac(algorithm: string, key: Uint8Array): {
    update(data: string): { digest(): Uint8Array; digest(encoding: "hex"): string };
  };
}
// The part of node:buffer used here: base64 in native code.
interface NodeBufferClass {
  from(text: string, encoding: "base64"): NodeBuffer;
  from(buffer: ArrayBuffer, byteOffset: number, length: number): NodeBuffer;
}
type NodeBuffer = Uint8Array<ArrayBuffer> & { toString(encoding: "base64"): string };
interface RuntimeGlobals {
  process?: { getBuiltinModule?(id: string): unknown };
  navigator?: { userAgent?: string };
}

const AES_BLOCK = 16;

let native: { crypto: NodeCrypto; buffer: NodeBufferClass | undefined } | undefined | null = null;
let forced: CryptoPath | undefined;

/** node:crypto (and node:buffer) where it is the faster engine (not on Workers); looked up once. */
function nodeModules(): { crypto: NodeCrypto; buffer: NodeBufferClass | undefined } | undefined {
  if (native === null) {
    const runtime = globalThis as RuntimeGlobals;
    const node = runtime.navigator?.userAgent === "Cloudflare-Workers" ? undefined : runtime.process;
    const cryptoModule = node?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
    const buffer = (node?.getBuiltinModule?.("node:buffer") as { Buffer?: NodeBufferClass } | undefined)?.Buffer;
    native = cryptoModule === undefined ? undefined : { crypto: cryptoModule, buffer };
  }
  return native;
}

function nodeCrypto(): NodeCrypto | undefined {
  return nodeModules()?.crypto;
}

/** The paths this runtime can run: `native` only where node:crypto is the faster engine. */
export function availableCryptoPaths(): CryptoPath[] {
  return nodeCrypto() === undefined ? ["webcrypto"] : ["native", "webcrypto"];
}

/** The path used from now on: the forced one, else the fastest available. */
export function currentCryptoPath(): CryptoPath {
  return forced ?? (nodeCrypto() === undefined ? "webcrypto" : "native");
}

/**
 * Test and benchmark hook, not public API: forces `path` for the ciphers created and the
 * signatures computed from now on; `undefined` goes back to the automatic choice.
 */
export function forceCryptoPath(path: CryptoPath | undefined): void {
  if (path === "native" && nodeCrypto() === undefined) {
    throw new Error("Cannot force the native crypto path: node:crypto is not used on this runtime");
  }
  forced = path;
}

/** Hex SHA-1 of the UTF-8 bytes of `text`, on `path` (default the current one). */
export function sha1Hex(text: string, path: CryptoPath = currentCryptoPath()): string {
  const node = path === "native" ? nodeCrypto() : undefined;
  if (node === undefined) return sha1HexJs(text);
  return node.hash === undefined ? node.createHash("sha1").update(text).digest("hex") : node.hash("sha1", text, "hex");
}

/**
 * HMAC-SHA256 of the UTF-8 bytes of `data` with node:crypto where it is used (Node, Deno, Bun:
 * a synchronous call, where WebCrypto's `sign` is a promise through the runtime's thread pool,
 * 7 µs against 15 µs on Deno, 2.5 against 23 on Node, measured with a 400-byte input), or
 * `undefined` on Workers and wherever node:crypto is not reached, which sign with WebCrypto.
 *
 * @param key the raw key
 * @param data what to sign
 * @param encoding `hex` for 64 hex digits, `raw` for the 32 bytes
 * @returns the MAC, or `undefined` when the caller must use WebCrypto
 */
export function nativeHmacSha256(key: Uint8Array, data: string, encoding: "hex"): string | undefined;
export function nativeHmacSha256(key: Uint8Array, data: string, encoding: "raw"): Uint8Array<ArrayBuffer> | undefined;
export function nativeHmacSha256(
  key: Uint8Array,
  data: string,
  encoding: "hex" | "raw",
): string | Uint8Array | undefined {
  const node = currentCryptoPath() === "native" ? nodeCrypto() : undefined;
  if (node === undefined) return undefined;
  const mac = node.createHmac("sha256", key).update(data);
  return encoding === "hex" ? mac.digest("hex") : new Uint8Array(mac.digest());
}

// Web-standard base64 of typed arrays (ES2026; Deno, Bun, Node 25), where the runtime has it.
const webBase64 = Uint8Array as unknown as { fromBase64?(text: string): Uint8Array<ArrayBuffer> };

/**
 * Decodes base64 the way `atob` does (ASCII blanks skipped, padding optional), on `path`
 * (default the current one); throws on anything else. The native path decodes with
 * node:buffer and, as that decoder skips what it does not know, accepts its result only
 * when it encodes back to the same text; anything else takes the `atob` route.
 */
export function decodeBase64(text: string, path: CryptoPath = currentCryptoPath()): Uint8Array<ArrayBuffer> {
  const buffer = path === "native" ? nodeModules()?.buffer : undefined;
  if (buffer !== undefined) {
    const bytes = buffer.from(text, "base64");
    if (bytes.toString("base64") === text) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  } else if (webBase64.fromBase64 !== undefined) {
    return webBase64.fromBase64(text);
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Encodes `bytes` as base64 (with padding), on `path` (default the current one). */
export function encodeBase64(bytes: Uint8Array, path: CryptoPath = currentCryptoPath()): string {
  const buffer = path === "native" ? nodeModules()?.buffer : undefined;
  if (buffer !== undefined) {
    return buffer.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length).toString("base64");
  }
  const web = bytes as Uint8Array & { toBase64?(): string };
  if (web.toBase64 !== undefined) return web.toBase64();
  let binary = "";
  // Chunked so a long message never exceeds the engine's argument limit.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** An AES-256-CBC cipher for `key` and `iv` on `path` (default the current one). */
export function aesCbc(
  key: Uint8Array<ArrayBuffer>,
  iv: Uint8Array<ArrayBuffer>,
  path: CryptoPath = currentCryptoPath(),
): AesCbc {
  const node = path === "native" ? nodeCrypto() : undefined;
  return node === undefined ? webCryptoAesCbc(key, iv) : nodeAesCbc(node, key, iv);
}

function nodeAesCbc(node: NodeCrypto, key: Uint8Array, iv: Uint8Array): AesCbc {
  // One decipher serves every message: making one costs more than decrypting a message
  // (2 of 2.5 µs on Node). Without auto padding, update() returns every block it is given
  // and keeps only CBC's chaining value, the last ciphertext block. Each message's first
  // block therefore comes out XORed with the previous message's last block instead of
  // the IV, which is undone here.
  const decipher = node.createDecipheriv("aes-256-cbc", key, iv).setAutoPadding(false);
  const chain = iv.slice();
  const oneShot = (cipher: NodeCipher, data: Uint8Array): Uint8Array => {
    const out = cipher.setAutoPadding(false).update(data);
    cipher.final();
    return out;
  };
  return {
    path: "native",
    encrypt: (padded) => Promise.resolve(oneShot(node.createCipheriv("aes-256-cbc", key, iv), padded)),
    decrypt: (cipher) => {
      const out = decipher.update(cipher);
      if (out.length !== cipher.length) {
        return Promise.reject(new Error("node:crypto decipher held back data with auto padding off"));
      }
      for (let i = 0; i < AES_BLOCK; i++) out[i]! ^= chain[i]! ^ iv[i]!;
      chain.set(cipher.subarray(cipher.length - AES_BLOCK));
      return Promise.resolve(out);
    },
  };
}

/**
 * WebCrypto's AES-CBC always applies 16-byte PKCS#7, and would reject WeChat's pad values
 * 17..32. Encryption drops the block of padding WebCrypto appends. Decryption appends one
 * block that decrypts to a full 16-byte pad, which WebCrypto strips, leaving WeChat's
 * padding in place: one call when plaintext byte 31 is guessed right, two otherwise.
 */
function webCryptoAesCbc(rawKey: Uint8Array<ArrayBuffer>, iv: Uint8Array<ArrayBuffer>): AesCbc {
  let imported: Promise<CryptoKey> | undefined;
  const key = () =>
    imported ??= crypto.subtle.importKey("raw", rawKey, { name: "AES-CBC" }, false, ["encrypt", "decrypt"]);
  return {
    path: "webcrypto",
    async encrypt(padded) {
      const cipher = await crypto.subtle.encrypt({ name: "AES-CBC", iv }, await key(), padded);
      return new Uint8Array(cipher, 0, padded.length);
    },
    async decrypt(cipher, predicted) {
      const k = await key();
      const plain = predicted === undefined ? undefined : await decryptPredicted(k, iv, cipher, predicted);
      return plain ?? await decryptExtended(k, iv, cipher);
    },
  };
}

// A whole AES block of WebCrypto's own padding (16 bytes of 0x10).
const FULL_PAD_BLOCK = new Uint8Array(AES_BLOCK).fill(AES_BLOCK);

// Appending E(0x10×16 XOR last block) adds one block that decrypts to a full 16-byte pad.
// Two calls.
async function decryptExtended(
  key: CryptoKey,
  iv: Uint8Array<ArrayBuffer>,
  cipher: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  const last = cipher.subarray(cipher.length - AES_BLOCK);
  const tail = await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, key, FULL_PAD_BLOCK);
  const extended = new Uint8Array(cipher.length + AES_BLOCK);
  extended.set(cipher);
  extended.set(new Uint8Array(tail, 0, AES_BLOCK), cipher.length);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, extended));
}

// One call when plaintext byte 31 is `predicted`: append A and C2, where A is C1 with its
// last byte XORed by predicted^1. The appended C2 then decrypts to P2 XOR (0,…,0,
// predicted^1), whose last byte is 1 — valid 16-byte padding — only if P2 ends with
// `predicted`. WebCrypto strips at most 16 bytes, so the original blocks come back whole,
// WeChat's padding included, whatever the appended pair decrypted to; on a wrong guess
// WebCrypto refuses and the caller takes two calls.
async function decryptPredicted(
  key: CryptoKey,
  iv: Uint8Array<ArrayBuffer>,
  cipher: Uint8Array<ArrayBuffer>,
  predicted: number,
): Promise<Uint8Array | undefined> {
  const n = cipher.length;
  if (n < 2 * AES_BLOCK) return undefined;
  const input = new Uint8Array(n + 2 * AES_BLOCK);
  input.set(cipher);
  input.set(cipher.subarray(0, AES_BLOCK), n);
  input[n + AES_BLOCK - 1]! ^= predicted ^ 0x01;
  input.set(cipher.subarray(AES_BLOCK, 2 * AES_BLOCK), n + AES_BLOCK);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, input), 0, n);
  } catch {
    return undefined;
  }
}
