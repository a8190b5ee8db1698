/**
 * The cryptography of WeChat's message push: SHA-1 signatures over the sorted
 * token, timestamp, nonce (and ciphertext), and the AES-256-CBC envelope of safe
 * mode, with WeChat's PKCS#7 padding to 32-byte blocks. Both run on node:crypto where the
 * runtime has it and it is the faster engine (Node, Deno, Bun), else on WebCrypto and a
 * constant-flow SHA-1 in JavaScript (Workers, browsers).
 *
 * @module
 */
import { PushVerificationError, ValidationError } from "../errors.ts";
import { constantTimeEqual } from "../internal/constant_time.ts";
import {
  type AesCbc,
  aesCbc,
  type CryptoPath,
  currentCryptoPath,
  decodeBase64,
  encodeBase64,
  sha1Hex,
} from "../runtime/crypto.ts";

/** Settings of {@link MessageCrypto}, as configured in the mini program's admin console. */
export interface MessageCryptoOptions {
  /** The push Token. */
  token: string;
  /** The EncodingAESKey: 43 characters of [A-Za-z0-9]. */
  encodingAESKey: string;
  /** The mini program's AppID, which ends every encrypted message. */
  appId: string;
}

/** Options of {@link MessageCrypto.encrypt}. */
export interface EncryptOptions {
  /**
   * The 16 random bytes that start the plaintext; default fresh from `crypto.getRandomValues`.
   * A string stands for its UTF-8 bytes (the official vectors use 16 ASCII characters).
   */
  random?: Uint8Array | string;
}

const AES_BLOCK = 16;
/** WeChat pads to 32 bytes, so pad values run 1..32 (WebCrypto's own PKCS#7 stops at 16). */
const WECHAT_BLOCK = 32;
const RANDOM_BYTES = 16;
const LENGTH_BYTES = 4;
const HEADER_BYTES = RANDOM_BYTES + LENGTH_BYTES;
/** Message byte 11 is plaintext byte 31: the last byte of the second AES block. */
const PREDICTED_BYTE = 2 * AES_BLOCK - 1 - HEADER_BYTES;
const ENCODING_AES_KEY = /^[A-Za-z0-9]{43}$/;

const encoder = new TextEncoder();
// Exact bytes in, exact text out: a BOM inside a message is content, not a marker.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

let decryptHinted: (crypto: MessageCrypto, encrypt: string, startsWith: string) => Promise<string>;

/**
 * Signs, encrypts and decrypts WeChat message-push payloads for one mini program.
 *
 * @example Round trip and signature
 * ```ts
 * import { MessageCrypto } from "@kefu/edge";
 * const mc = new MessageCrypto({ token: "AAAAA", encodingAESKey: "A".repeat(43), appId: "wxba5fad812f8e6fb9" });
 * const encrypt = await mc.encrypt('{"demo_resp":"good luck"}');
 * console.log(await mc.decrypt(encrypt)); // {"demo_resp":"good luck"}
 * console.log(await mc.signature("1713424427", "415670741", encrypt)); // 40 hex digits
 * ```
 */
export class MessageCrypto {
  readonly #token: string;
  readonly #appId: Uint8Array;
  readonly #aes: AesCbc;

  static {
    decryptHinted = (crypto, encrypt, startsWith) => crypto.#decrypt(encrypt, startsWith);
  }

  /**
   * Creates the crypto for one mini program's push settings.
   *
   * @param options the push Token, the EncodingAESKey and the AppID
   * @throws {ValidationError} when the EncodingAESKey is not 43 characters of [A-Za-z0-9], or a field is empty
   */
  constructor(options: MessageCryptoOptions) {
    requireText("token", options.token);
    requireText("appId", options.appId);
    if (typeof options.encodingAESKey !== "string" || !ENCODING_AES_KEY.test(options.encodingAESKey)) {
      throw new ValidationError("encodingAESKey", "must be 43 characters of [A-Za-z0-9]");
    }
    this.#token = options.token;
    this.#appId = encoder.encode(options.appId);
    // 43 base64 characters plus "=" decode to exactly 32 bytes; the IV is the key's first half.
    const path = currentCryptoPath();
    const key = decodeBase64(`${options.encodingAESKey}=`, path).slice();
    this.#aes = aesCbc(key, key.slice(0, AES_BLOCK), path);
  }

  /**
   * WeChat's signature: hex SHA-1 of the token, timestamp, nonce (and `encrypt`) sorted and joined.
   *
   * @param timestamp the `timestamp` query parameter (or a reply's TimeStamp)
   * @param nonce the `nonce` query parameter (or a reply's Nonce)
   * @param encrypt the ciphertext, for `msg_signature` and reply signatures
   * @returns 40 lowercase hex digits
   * @example
   * ```ts
   * import { MessageCrypto } from "@kefu/edge";
   * const mc = new MessageCrypto({ token: "AAAAA", encodingAESKey: "A".repeat(43), appId: "wx1" });
   * console.log(await mc.signature("1714036504", "1514711492")); // "f464b24fc39322e44b38aa78f5edd27bd1441696"
   * ```
   */
  signature(timestamp: string, nonce: string, encrypt?: string): Promise<string> {
    return Promise.resolve(this.#sign(timestamp, nonce, encrypt));
  }

  /**
   * Checks a received signature against the expected one, in constant time.
   *
   * @param received the `signature` or `msg_signature` query parameter
   * @param timestamp the `timestamp` query parameter
   * @param nonce the `nonce` query parameter
   * @param encrypt the ciphertext, when checking `msg_signature`
   * @returns whether the signature is WeChat's
   * @example
   * ```ts
   * import { MessageCrypto } from "@kefu/edge";
   * const mc = new MessageCrypto({ token: "AAAAA", encodingAESKey: "A".repeat(43), appId: "wx1" });
   * console.log(await mc.verifySignature("f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492")); // true
   * ```
   */
  verifySignature(received: string, timestamp: string, nonce: string, encrypt?: string): Promise<boolean> {
    const expected = this.#sign(timestamp, nonce, encrypt);
    return Promise.resolve(constantTimeEqual(received.toLowerCase(), expected));
  }

  /**
   * Decrypts a safe-mode `Encrypt` value and checks that it was made for this AppID.
   *
   * @param encrypt the base64 ciphertext
   * @returns the message text (JSON or XML)
   * @throws {PushVerificationError} `undecryptable` for bad base64, length, padding or length prefix;
   *   `bad_appid` when the message ends with another AppID
   * @example
   * ```ts
   * import { MessageCrypto } from "@kefu/edge";
   * const mc = new MessageCrypto({ token: "AAAAA", encodingAESKey: "A".repeat(43), appId: "wxba5fad812f8e6fb9" });
   * const text = await mc.decrypt("ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==");
   * console.log(text); // {"demo_resp":"good luck"}
   * ```
   */
  decrypt(encrypt: string): Promise<string> {
    return this.#decrypt(encrypt, undefined);
  }

  /**
   * Encrypts a reply (or, for tests and emulators, a push) the way WeChat does.
   *
   * @param plaintext the message text
   * @param options `random`: the 16 leading bytes; default fresh random bytes
   * @returns the base64 ciphertext
   * @throws {ValidationError} when `random` is not 16 bytes
   * @example
   * ```ts
   * import { MessageCrypto } from "@kefu/edge";
   * const mc = new MessageCrypto({ token: "AAAAA", encodingAESKey: "A".repeat(43), appId: "wxba5fad812f8e6fb9" });
   * const encrypt = await mc.encrypt('{"demo_resp":"good luck"}', { random: "707722b803182950" });
   * console.log(encrypt); // "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
   * ```
   */
  async encrypt(plaintext: string, options: EncryptOptions = {}): Promise<string> {
    if (typeof plaintext !== "string") throw new ValidationError("plaintext", "must be a string");
    const random = randomBytes(options.random);
    const message = encoder.encode(plaintext);
    const size = HEADER_BYTES + message.length + this.#appId.length;
    const pad = WECHAT_BLOCK - (size % WECHAT_BLOCK);
    const padded = new Uint8Array(size + pad);
    padded.set(random);
    new DataView(padded.buffer).setUint32(RANDOM_BYTES, message.length);
    padded.set(message, HEADER_BYTES);
    padded.set(this.#appId, HEADER_BYTES + message.length);
    padded.fill(pad, size);
    return encodeBase64(await this.#aes.encrypt(padded), this.#aes.path);
  }

  // The start of the message, when the caller knows it, lets WebCrypto decrypt in one call
  // instead of two; a wrong guess costs time, never correctness.
  async #decrypt(encrypt: string, startsWith: string | undefined): Promise<string> {
    const cipher = decodeCiphertext(encrypt, this.#aes.path);
    // Only WebCrypto has a use for the guess.
    const predicted = startsWith === undefined || this.#aes.path === "native"
      ? undefined
      : encoder.encode(startsWith)[PREDICTED_BYTE];
    return this.#unpack(await this.#aes.decrypt(cipher, predicted));
  }

  #sign(timestamp: string, nonce: string, encrypt: string | undefined): string {
    return signatureOf(this.#token, timestamp, nonce, encrypt, this.#aes.path);
  }

  /** random(16) + length(4, big-endian) + message + appId + WeChat padding → message. */
  #unpack(plain: Uint8Array): string {
    const pad = plain[plain.length - 1] ?? 0;
    if (pad < 1 || pad > WECHAT_BLOCK || pad > plain.length) throw undecryptable("invalid padding");
    for (let i = plain.length - pad; i < plain.length; i++) {
      if (plain[i] !== pad) throw undecryptable("invalid padding");
    }
    const end = plain.length - pad;
    if (end < HEADER_BYTES) throw undecryptable("too short");
    const at = RANDOM_BYTES; // the big-endian length follows the random
    const length = ((plain[at]! << 24) | (plain[at + 1]! << 16) | (plain[at + 2]! << 8) | plain[at + 3]!) >>> 0;
    if (length > end - HEADER_BYTES) throw undecryptable("invalid length prefix");
    const messageEnd = HEADER_BYTES + length;
    if (!bytesEqual(plain.subarray(messageEnd, end), this.#appId)) {
      throw new PushVerificationError("bad_appid", "Cannot accept message: it was encrypted for another appId");
    }
    try {
      return utf8.decode(plain.subarray(HEADER_BYTES, messageEnd));
    } catch {
      throw undecryptable("message is not UTF-8");
    }
  }
}

/**
 * Private to the push receiver: {@link MessageCrypto.decrypt} told how the message is
 * expected to start (WeChat's JSON starts `{"ToUserName":"`, its XML `<xml><ToUserName>`).
 * On the WebCrypto path a right guess takes one call instead of two; the result is the
 * same either way.
 *
 * @param crypto the receiver's crypto
 * @param encrypt the base64 ciphertext
 * @param startsWith the expected start of the message (12 characters or more are used)
 * @returns the message text
 */
export function decryptStartingWith(crypto: MessageCrypto, encrypt: string, startsWith: string): Promise<string> {
  return decryptHinted(crypto, encrypt, startsWith);
}

/**
 * WeChat's push signature for a token: hex SHA-1 of the parts sorted and joined. Plain
 * mode needs it without an EncodingAESKey, hence a function beside {@link MessageCrypto}.
 * Synchronous: SHA-1 runs on node:crypto where the runtime has it, else in JavaScript (see
 * `src/runtime/crypto.ts` for the measurements behind the choice).
 *
 * @param token the push Token
 * @param timestamp the `timestamp` query parameter
 * @param nonce the `nonce` query parameter
 * @param encrypt the ciphertext, for `msg_signature`
 * @returns 40 lowercase hex digits
 * @example
 * ```ts
 * import { pushSignature } from "./crypto.ts";
 * console.log(pushSignature("AAAAA", "1714037059", "486452656")); // "899cf89e464efb63f54ddac96b0a0a235f53aa78"
 * ```
 */
export function pushSignature(token: string, timestamp: string, nonce: string, encrypt?: string): string {
  return signatureOf(token, timestamp, nonce, encrypt, currentCryptoPath());
}

function signatureOf(
  token: string,
  timestamp: string,
  nonce: string,
  encrypt: string | undefined,
  path: CryptoPath,
): string {
  // Every part is ASCII (digits, base64, WeChat's [A-Za-z0-9] token), so the default
  // UTF-16 sort is the byte order WeChat sorts by.
  const parts = encrypt === undefined ? [token, timestamp, nonce] : [token, timestamp, nonce, encrypt];
  return sha1Hex(parts.sort().join(""), path);
}

function requireText(field: string, value: unknown): void {
  if (typeof value !== "string" || value === "") throw new ValidationError(field, "must be a non-empty string");
}

function undecryptable(detail: string): PushVerificationError {
  return new PushVerificationError("undecryptable", `Cannot decrypt message: ${detail}`);
}

function randomBytes(random: Uint8Array | string | undefined): Uint8Array {
  if (random === undefined) return crypto.getRandomValues(new Uint8Array(RANDOM_BYTES));
  const bytes = typeof random === "string" ? encoder.encode(random) : random;
  if (!(bytes instanceof Uint8Array) || bytes.length !== RANDOM_BYTES) {
    throw new ValidationError("random", `must be ${RANDOM_BYTES} bytes`);
  }
  return bytes;
}

function decodeCiphertext(encrypt: string, path: CryptoPath): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = decodeBase64(encrypt, path);
  } catch {
    throw undecryptable("invalid base64");
  }
  if (bytes.length === 0 || bytes.length % AES_BLOCK !== 0) throw undecryptable("invalid length");
  return bytes;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
