/**
 * Verifying WeChat's message push: the signature over the query, the timestamp's age,
 * `msg_signature` over the ciphertext, decryption (compatible and safe mode) and the
 * URL-verification echo. {@link verifyPush} does all of it for any HTTP framework; the push
 * receiver runs the same checks through {@link PushVerifier}.
 *
 * @module
 */
import { PushVerificationError, type PushVerificationReason, ValidationError } from "../errors.ts";
import { readStream } from "../internal/bytes.ts";
import { constantTimeEqual } from "../internal/constant_time.ts";
import { decryptStartingWith, MessageCrypto, pushSignature } from "./crypto.ts";
import { badRequest, detectFormat, parseEnvelope, parseFields, type PushFormat, typePushMessage } from "./parse.ts";
import type { PushMismatch } from "./parse.ts";
import type { PushMessage } from "./types.ts";

/** Default for {@link VerifyPushOptions.maxSkewSeconds} (and the receiver's `maxSkewSeconds`). */
export const DEFAULT_MAX_SKEW_SECONDS = 300;
/** Default for {@link VerifyPushOptions.maxBodyBytes}: 64 KiB. */
export const DEFAULT_MAX_PUSH_BODY_BYTES = 64 * 1024;

/** Settings of {@link verifyPush}: the message-push settings of the mini program's admin console. */
export interface VerifyPushOptions {
  /** The push Token. */
  token: string;
  /**
   * The EncodingAESKey (43 characters of [A-Za-z0-9]). With it, only encrypted pushes
   * (`encrypt_type=aes` with `msg_signature`) are accepted; without it, only plain ones.
   */
  encodingAESKey?: string | undefined;
  /** The mini program's AppID, which an encrypted message must have been encrypted for. */
  appId: string;
  /** Largest accepted distance between the request's `timestamp` and `now()`, in seconds; default 300. */
  maxSkewSeconds?: number | undefined;
  /** Largest accepted body, in bytes; default 64 KiB. */
  maxBodyBytes?: number | undefined;
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
}

/** WeChat's URL verification (the GET sent when the push URL is saved): answer `echostr` as the body. */
export interface PushEcho {
  /** Verified. */
  ok: true;
  /** URL verification. */
  kind: "echo";
  /** What to answer, as `text/plain`, with status 200. */
  echostr: string;
}

/** A verified (and, in compatible or safe mode, decrypted) message. */
export interface VerifiedMessage {
  /** Verified. */
  ok: true;
  /** A message delivery. */
  kind: "message";
  /** The message, its 64-bit ids kept exact as strings. */
  message: PushMessage;
  /** Whether it came encrypted. */
  encrypted: boolean;
  /** The body's format. */
  format: PushFormat;
  /** The request's `timestamp`, checked against the clock. */
  timestamp: string;
  /** The request's `nonce` (an encrypted passive reply reuses it). */
  nonce: string;
}

/** Why a push was refused: a failed check, or settings that cannot take it. */
export type PushRefusalReason = PushVerificationReason | "push_not_configured";

/**
 * A refused request. `message` names the check that failed (a signature mismatch says which
 * signature), never the body, a signature's expected value, the token or the key.
 */
export interface PushRefusal {
  /** Refused. */
  ok: false;
  /** The HTTP status to answer with: 400, 401, 403, 405, 413, or 503 when the settings cannot take it. */
  status: number;
  /** Machine-readable reason. */
  reason: PushRefusalReason;
  /** Short human text, safe to log and to answer. */
  message: string;
}

/** What {@link verifyPush} found. */
export type VerifyPushResult = PushEcho | VerifiedMessage | PushRefusal;

/**
 * Verifies one request from WeChat's message push, for HTTP frameworks that hand you a Web
 * `Request` (Hono, Next.js route handlers, Deno, Bun, itty-router...): a GET is URL
 * verification (answer its `echostr`); a POST is a message, returned verified and
 * decrypted. Everything is checked before the body is read, and the body is read up to
 * `maxBodyBytes`. It never rejects for a bad request: a refusal says why, with the status
 * to answer.
 *
 * It does not deduplicate WeChat's retries (the same message up to three times) nor bind a
 * plain-mode query to its body: {@link PushReceiver} does both, with a store. In plain mode
 * the signature covers no part of the body, so prefer safe mode (an EncodingAESKey).
 *
 * @param request the incoming request (its body is read)
 * @param options the push Token, the EncodingAESKey and the AppID
 * @returns the echo, the verified message, or the refusal
 * @throws {ValidationError} for settings that can never verify anything (an empty token or
 *   AppID, an EncodingAESKey that is not 43 characters of [A-Za-z0-9], a negative limit)
 * @example A safe-mode push, verified and decrypted
 * ```ts
 * import { verifyPush } from "@kefu/edge";
 * import { buildPush } from "@kefu/edge/testing";
 * const settings = { token: "TOKEN", encodingAESKey: "EncodingAESKey43CharactersLong0123456789abc", appId: "wx123" };
 *
 * // In your framework's route: `const result = await verifyPush(request, settings);`
 * const handle = async (request: Request): Promise<Response> => {
 *   const result = await verifyPush(request, settings);
 *   if (!result.ok) return Response.json({ error: result.reason }, { status: result.status });
 *   if (result.kind === "echo") return new Response(result.echostr);
 *   console.log(result.message.MsgType, result.encrypted); // "text" true
 *   return new Response("success");
 * };
 *
 * // What WeChat sends, signed and encrypted:
 * const push = await buildPush({ ...settings, format: "json" }, {
 *   ToUserName: "gh_1", FromUserName: "OPENID", CreateTime: 1714112445, MsgType: "text", Content: "Hello", MsgId: "1",
 * });
 * console.log(await (await handle(push.request())).text()); // "success"
 * ```
 * @example A refusal names the check, nothing secret
 * ```ts
 * import { verifyPush } from "@kefu/edge";
 * const settings = { token: "TOKEN", appId: "wx123" };
 * const request = new Request("https://example.com/wechat?signature=0&timestamp=1&nonce=2&echostr=hi");
 * const result = await verifyPush(request, settings);
 * if (!result.ok) console.log(result.status, result.reason, result.message); // 401 "bad_signature" "Signature mismatch: signature"
 * ```
 */
export async function verifyPush(request: Request, options: VerifyPushOptions): Promise<VerifyPushResult> {
  if (typeof options?.token !== "string" || options.token === "") {
    throw new ValidationError("token", "must be a non-empty string");
  }
  if (typeof options.appId !== "string" || options.appId === "") {
    throw new ValidationError("appId", "must be a non-empty string");
  }
  const verifier = new PushVerifier({ ...options, now: options.now ?? Date.now, fieldPrefix: "" });
  try {
    const verified = await verifier.verify(request);
    if (verified.kind === "echo") return { ok: true, kind: "echo", echostr: verified.echostr };
    if (verified.kind === "unconfigured") {
      return { ok: false, status: 503, reason: "push_not_configured", message: verified.message };
    }
    const { message, encrypted, format, timestamp, nonce } = verified;
    return { ok: true, kind: "message", message, encrypted, format, timestamp, nonce };
  } catch (err) {
    if (err instanceof PushVerificationError) {
      return { ok: false, status: err.status, reason: err.reason, message: err.message };
    }
    throw err;
  }
}

/** Settings of {@link PushVerifier}. */
export interface PushVerifierOptions {
  /** The push Token; without one, every request is `unconfigured`. */
  token?: string | undefined;
  /** The EncodingAESKey; without one, encrypted pushes are `unconfigured`. */
  encodingAESKey?: string | undefined;
  /** The AppID encrypted messages must end with. */
  appId: string;
  /** See {@link VerifyPushOptions.maxSkewSeconds}. */
  maxSkewSeconds?: number | undefined;
  /** See {@link VerifyPushOptions.maxBodyBytes}. */
  maxBodyBytes?: number | undefined;
  /** Clock in ms. */
  now: () => number;
  /** How option errors name their field: `push.` (the receiver's option) by default. */
  fieldPrefix?: string | undefined;
}

/** What {@link PushVerifier.verify} found, for the receiver: the message with what it needs besides. */
export type Verified =
  | { kind: "echo"; echostr: string }
  | { kind: "unconfigured"; message: string }
  | (Omit<VerifiedMessage, "ok"> & {
    /** The body as received (plain mode binds the query to it). */
    body: string;
    /** Why the message did not fit its declared type, when it did not (it is passed on untyped). */
    mismatch: PushMismatch | undefined;
  });

/**
 * The checks of one mini program's push settings: the receiver verifies every request with
 * one, and {@link verifyPush} makes one per call.
 *
 * @example
 * ```ts
 * import { PushVerifier } from "./verify.ts";
 * const verifier = new PushVerifier({ token: "TOKEN", appId: "wx123", now: Date.now });
 * const refused = await verifier.verify(new Request("https://example.com/cb", { method: "PUT" })).catch((e) => e.reason);
 * console.log(refused); // "unsupported_method"
 * ```
 */
export class PushVerifier {
  readonly #token: string | undefined;
  /** The crypto of compatible and safe mode; `undefined` without an EncodingAESKey. */
  readonly crypto: MessageCrypto | undefined;
  readonly #maxSkewSeconds: number;
  readonly #maxBodyBytes: number;
  readonly #now: () => number;

  /**
   * @param options the token, key, AppID, limits and clock
   * @throws {ValidationError} for an invalid EncodingAESKey, skew or body limit
   */
  constructor(options: PushVerifierOptions) {
    this.#token = typeof options.token === "string" && options.token !== "" ? options.token : undefined;
    const aesKey = options.encodingAESKey;
    this.crypto = this.#token === undefined || aesKey === undefined || aesKey === ""
      ? undefined
      : new MessageCrypto({ token: this.#token, encodingAESKey: aesKey, appId: options.appId });
    const prefix = options.fieldPrefix ?? "push.";
    this.#maxSkewSeconds = nonNegative(`${prefix}maxSkewSeconds`, options.maxSkewSeconds, DEFAULT_MAX_SKEW_SECONDS);
    this.#maxBodyBytes = nonNegative(`${prefix}maxBodyBytes`, options.maxBodyBytes, DEFAULT_MAX_PUSH_BODY_BYTES);
    this.#now = options.now;
  }

  /** Whether a push token is configured. */
  get configured(): boolean {
    return this.#token !== undefined;
  }

  /** The largest accepted skew, in seconds. */
  get maxSkewSeconds(): number {
    return this.#maxSkewSeconds;
  }

  /**
   * Verifies a request: GET is URL verification, POST a delivery whose query is checked in
   * full before its body is read.
   *
   * @param request the request
   * @returns the echo, the message, or `unconfigured` (no token, or an encrypted push without a key)
   * @throws {PushVerificationError} for a refused request
   */
  async verify(request: Request): Promise<Verified> {
    if (this.#token === undefined) {
      return { kind: "unconfigured", message: "Message push is not configured: no push token" };
    }
    if (request.method !== "GET" && request.method !== "POST") {
      throw new PushVerificationError("unsupported_method", "Method not allowed: use GET or POST");
    }
    const query = queryOf(request.url);
    const signature = requireParam(query, "signature");
    const timestamp = requireParam(query, "timestamp");
    const nonce = requireParam(query, "nonce");
    if (request.method === "GET") {
      // URL verification: plaintext even in safe mode, and nothing but the echo.
      const echostr = requireParam(query, "echostr");
      this.#check(signature, timestamp, nonce);
      return { kind: "echo", echostr };
    }
    if (!/^\d{1,12}$/.test(timestamp)) throw badRequest("Invalid query parameter: timestamp");
    this.#check(signature, timestamp, nonce);
    this.#checkSkew(timestamp);
    const encrypted = isEncrypted(query.get("encrypt_type"));
    if (!encrypted && this.crypto !== undefined) {
      // `signature` covers the token, timestamp and nonce, none of the body: with a key
      // configured only msg_signature (over Encrypt) proves a body came from WeChat, and
      // compatible mode sends encrypt_type=aes as well, so no real push lands here.
      throw new PushVerificationError(
        "encryption_required",
        "Encryption required: an EncodingAESKey is configured, so only encrypt_type=aes with msg_signature is accepted",
      );
    }
    const msgSignature = encrypted ? requireParam(query, "msg_signature") : "";
    if (encrypted && this.crypto === undefined) {
      return { kind: "unconfigured", message: "Message push is not configured: no EncodingAESKey" };
    }
    const body = await readBody(request, this.#maxBodyBytes);
    const format = requireFormat(body);
    const fields = encrypted
      ? await this.#open(parseEnvelope(body, format), format, msgSignature, timestamp, nonce)
      : parseFields(body, format);
    const { message, mismatch } = typePushMessage(fields);
    return { kind: "message", message, encrypted, format, timestamp, nonce, body, mismatch };
  }

  #check(received: string, timestamp: string, nonce: string, encrypt?: string): void {
    const expected = pushSignature(this.#token!, timestamp, nonce, encrypt);
    if (!constantTimeEqual(received.toLowerCase(), expected)) {
      const which = encrypt === undefined ? "signature" : "msg_signature";
      throw new PushVerificationError("bad_signature", `Signature mismatch: ${which}`);
    }
  }

  #checkSkew(timestamp: string): void {
    const skew = Math.abs(this.#now() / 1000 - Number(timestamp));
    if (!(skew <= this.#maxSkewSeconds)) {
      throw new PushVerificationError("stale_timestamp", "Timestamp is too far from the current time");
    }
  }

  /** Safe and compatible mode: check msg_signature over Encrypt, then decrypt and parse the inner message. */
  async #open(
    envelope: Record<string, unknown>,
    format: PushFormat,
    msgSignature: string,
    timestamp: string,
    nonce: string,
  ): Promise<Record<string, unknown>> {
    const encrypt = envelope.Encrypt;
    if (typeof encrypt !== "string" || encrypt === "") throw badRequest("Missing Encrypt in an encrypted body");
    this.#check(msgSignature, timestamp, nonce, encrypt);
    const inner = await decryptStartingWith(this.crypto!, encrypt, MESSAGE_START[format]);
    return parseFields(inner, requireFormat(inner));
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** How WeChat's messages start, which lets decryption take one WebCrypto call instead of two. */
const MESSAGE_START: Record<PushFormat, string> = { json: '{"ToUserName":"', xml: "<xml><ToUserName>" };

function requireParam(query: URLSearchParams, name: string): string {
  const value = query.get(name);
  if (value === null || value === "") throw badRequest(`Missing query parameter: ${name}`);
  return value;
}

function requireFormat(body: string): PushFormat {
  const format = detectFormat(body);
  if (format === undefined) throw badRequest(body.trim() === "" ? "Body is empty" : "Body is neither JSON nor XML");
  return format;
}

/** `aes` is compatible or safe mode; absent or `raw` is plain mode; anything else is refused. */
function isEncrypted(encryptType: string | null): boolean {
  if (encryptType === null || encryptType === "" || encryptType === "raw") return false;
  if (encryptType === "aes") return true;
  throw badRequest("Unsupported encrypt_type: expected aes or raw");
}

/**
 * Reads at most `limit` bytes, counting what actually arrives: Content-Length only
 * allows an early refusal, it is never trusted to bound the read.
 */
async function readBody(request: Request, limit: number): Promise<string> {
  const tooLarge = () => new PushVerificationError("too_large", `Body exceeds the ${limit}-byte limit`);
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) throw tooLarge();
  if (request.body === null) return "";
  let bytes: Uint8Array;
  try {
    bytes = await readStream(request.body, limit, tooLarge);
  } catch (err) {
    if (err instanceof PushVerificationError) throw err;
    throw badRequest("Cannot read the body");
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest("Body is not UTF-8");
  }
}

/** The query of a request URL, without parsing the rest of it (a Request's URL is always absolute). */
function queryOf(url: string): URLSearchParams {
  const start = url.indexOf("?");
  if (start === -1) return new URLSearchParams();
  const end = url.indexOf("#", start);
  return new URLSearchParams(end === -1 ? url.slice(start + 1) : url.slice(start + 1, end));
}

/**
 * A non-negative finite number option, or its default.
 *
 * @param field the option's name, for the error
 * @param value what was given
 * @param fallback the default
 * @returns the value
 * @throws {ValidationError} naming `field` for anything else
 * @example
 * ```ts
 * import { nonNegative } from "./verify.ts";
 * console.log(nonNegative("push.leaseSeconds", undefined, 5)); // 5
 * ```
 */
export function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(field, "must be a non-negative number");
  }
  return value;
}
