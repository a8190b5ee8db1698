/**
 * `PushReceiver`: answers WeChat's message push (URL verification and deliveries) as a
 * fetch handler — verify, decrypt, parse, deduplicate, run the handler, reply.
 *
 * @module
 */
import { PushVerificationError, ValidationError } from "../errors.ts";
import type { KeyValueStore } from "../stores/key_value_store.ts";
import { MemoryStore } from "../stores/memory_store.ts";
import { readStream } from "../_bytes.ts";
import type { Logger } from "../token/access_token.ts";
import { constantTimeEqual, decryptStartingWith, MessageCrypto, pushSignature } from "./crypto.ts";
import { detectFormat, parseEnvelope, parseFields, type PushFormat, toPushMessage } from "./parse.ts";
import { envelopeBody, Reply, replyXml } from "./reply.ts";
import type { PushMessage } from "./types.ts";

/** The `push` option of `MiniProgram`: the message-push settings from the admin console. */
export interface PushOptions {
  /** The push Token. */
  token: string;
  /** The EncodingAESKey (43 characters of [A-Za-z0-9]); needed for compatible and safe mode. */
  encodingAESKey?: string;
  /** Where handled messages are marked; default a {@link MemoryStore}. Share one (KV) across isolates. */
  dedupeStore?: KeyValueStore;
  /** Largest accepted distance between the request's timestamp and `now()`; default 300. */
  maxSkewSeconds?: number;
  /** Largest accepted body; default 64 KiB. Larger bodies are answered 413. */
  maxBodyBytes?: number;
}

/** Settings of {@link PushReceiver}: the push options plus what the mini program supplies. */
export interface PushReceiverOptions extends Partial<PushOptions> {
  /** The mini program's AppID, which safe-mode messages must end with. */
  appId: string;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
  /** Receives warnings (a failing store, a failing handler); never given message content. */
  logger?: Logger;
}

/** What a push handler learns besides the message. */
export interface PushHandlerContext {
  /** The request (its body has been read). */
  request: Request;
  /** Whether the message came encrypted (compatible or safe mode). */
  encrypted: boolean;
  /** The format of the body. */
  format: PushFormat;
}

/**
 * Handles one pushed message. Return nothing to answer `success`, or a {@link Reply}.
 * A thrown error answers 500, and WeChat retries.
 */
export type PushHandler = (
  message: PushMessage,
  context: PushHandlerContext,
) => void | Reply | undefined | Promise<void | Reply | undefined>;

/** Default for {@link PushOptions.maxSkewSeconds}. */
export const DEFAULT_MAX_SKEW_SECONDS = 300;
/** Default for {@link PushOptions.maxBodyBytes}: 64 KiB. */
export const DEFAULT_MAX_PUSH_BODY_BYTES = 64 * 1024;
/** Prefix of every dedupe mark in the store. */
export const DEDUPE_KEY_PREFIX = "kefu-edge:push:";

// WeChat retries for about 15 s, but a captured request stays acceptable until its
// timestamp is maxSkew old and may be used up to maxSkew early: the mark must outlive
// both for a replay to be caught, with a minute to spare.
const MIN_DEDUPE_TTL_SECONDS = 300;

/** What came of running the handler for one message, shared by concurrent deliveries. */
type Outcome = { ok: true; reply: Reply | undefined } | { ok: false };

// One flight per store and key for the whole isolate, so that receivers sharing a
// store (several MiniProgram instances) still run the handler once for a message.
const flights = new WeakMap<KeyValueStore, Map<string, Promise<Outcome>>>();

interface Delivery {
  message: PushMessage;
  context: PushHandlerContext;
  nonce: string;
}

/**
 * Receives WeChat's message push. `mp.push` is one; `handle` is a fetch handler for any
 * runtime. Every refusal is a 4xx JSON `{ "error": { "code", "message" } }`; bad input
 * never throws. Without a push token it answers 503 to everything (fail closed).
 *
 * @example A fetch handler
 * ```ts ignore
 * import { MiniProgram, Reply } from "../../mod.ts";
 * const mp = new MiniProgram({
 *   appId: "wx123", appSecret: "secret",
 *   push: { token: "TOKEN", encodingAESKey: "EncodingAESKey43CharactersLong0123456789abc" },
 * });
 * export default {
 *   fetch: (request: Request) => mp.push.handle(request, (msg) => {
 *     if (msg.MsgType === "text") return Reply.transferCustomerService();
 *   }),
 * };
 * ```
 */
export class PushReceiver {
  readonly #appId: string;
  readonly #token: string | undefined;
  readonly #crypto: MessageCrypto | undefined;
  readonly #store: KeyValueStore;
  readonly #maxSkewSeconds: number;
  readonly #maxBodyBytes: number;
  readonly #dedupeTtlSeconds: number;
  readonly #now: () => number;
  readonly #logger: Logger;

  /**
   * Creates the receiver; `MiniProgram` does this for you from its `push` option.
   *
   * @param options the push settings, the AppID, the clock and the logger
   * @throws {ValidationError} for an invalid EncodingAESKey, skew or body limit
   */
  constructor(options: PushReceiverOptions) {
    this.#appId = options.appId;
    this.#token = typeof options.token === "string" && options.token !== "" ? options.token : undefined;
    const aesKey = options.encodingAESKey;
    this.#crypto = this.#token === undefined || aesKey === undefined || aesKey === ""
      ? undefined
      : new MessageCrypto({ token: this.#token, encodingAESKey: aesKey, appId: options.appId });
    this.#maxSkewSeconds = nonNegative("push.maxSkewSeconds", options.maxSkewSeconds, DEFAULT_MAX_SKEW_SECONDS);
    this.#maxBodyBytes = nonNegative("push.maxBodyBytes", options.maxBodyBytes, DEFAULT_MAX_PUSH_BODY_BYTES);
    this.#dedupeTtlSeconds = Math.max(MIN_DEDUPE_TTL_SECONDS, 2 * this.#maxSkewSeconds + 60);
    this.#now = options.now ?? Date.now;
    this.#store = options.dedupeStore ?? new MemoryStore({ now: this.#now });
    this.#logger = options.logger ?? console;
  }

  /** Whether a push token is configured; when not, every request is answered 503. */
  get configured(): boolean {
    return this.#token !== undefined;
  }

  /**
   * Answers one request from WeChat: GET is URL verification, POST a message delivery.
   *
   * @param request the incoming request
   * @param handler runs once per message (retries are deduplicated)
   * @returns the response to send; never rejects
   * @example
   * ```ts ignore
   * import { MiniProgram } from "../../mod.ts";
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * export default { fetch: (request: Request) => mp.push.handle(request, (msg) => console.log(msg.MsgType)) };
   * ```
   */
  async handle(request: Request, handler: PushHandler): Promise<Response> {
    try {
      return await this.#handle(request, handler);
    } catch (err) {
      if (err instanceof PushVerificationError) {
        const headers = err.reason === "unsupported_method" ? { allow: "GET, POST" } : undefined;
        return errorResponse(err.status, err.reason, err.message, headers);
      }
      this.#logger.warn(`Push receiver failed: ${errorName(err)}`);
      return errorResponse(500, "internal_error", "The push receiver failed");
    }
  }

  async #handle(request: Request, handler: PushHandler): Promise<Response> {
    if (this.#token === undefined) {
      return errorResponse(503, "push_not_configured", "Message push is not configured: no push token");
    }
    if (request.method !== "GET" && request.method !== "POST") {
      throw new PushVerificationError("unsupported_method", "Method not allowed: use GET or POST");
    }
    const query = new URL(request.url).searchParams;
    const signed = {
      signature: requireParam(query, "signature"),
      timestamp: requireParam(query, "timestamp"),
      nonce: requireParam(query, "nonce"),
    };
    if (request.method === "GET") {
      // URL verification: plaintext even in safe mode, and nothing but the echo.
      const echostr = requireParam(query, "echostr");
      this.#verify(signed.signature, signed.timestamp, signed.nonce);
      return new Response(echostr, { headers: TEXT_HEADERS });
    }
    return await this.#receive(request, query, signed, handler);
  }

  /** A delivery: everything about the query is checked before the body is read. */
  async #receive(
    request: Request,
    query: URLSearchParams,
    { signature, timestamp, nonce }: { signature: string; timestamp: string; nonce: string },
    handler: PushHandler,
  ): Promise<Response> {
    if (!/^\d{1,12}$/.test(timestamp)) throw badRequest("Invalid query parameter: timestamp");
    this.#verify(signature, timestamp, nonce);
    this.#checkSkew(timestamp);
    const encrypted = isEncrypted(query.get("encrypt_type"));
    const msgSignature = encrypted ? requireParam(query, "msg_signature") : "";
    if (encrypted && this.#crypto === undefined) {
      return errorResponse(503, "push_not_configured", "Message push is not configured: no EncodingAESKey");
    }
    const body = await readBody(request, this.#maxBodyBytes);
    const format = requireFormat(body);
    const fields = encrypted
      ? await this.#open(parseEnvelope(body, format), format, msgSignature, timestamp, nonce)
      : parseFields(body, format);
    const message = toPushMessage(fields);
    const context: PushHandlerContext = { request, encrypted, format };
    const outcome = await this.#dispatch(message, handler, context);
    return await this.#answer(outcome, { message, context, nonce });
  }

  #verify(received: string, timestamp: string, nonce: string, encrypt?: string): void {
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
    this.#verify(msgSignature, timestamp, nonce, encrypt);
    const inner = await decryptStartingWith(this.#crypto!, encrypt, MESSAGE_START[format]);
    return parseFields(inner, requireFormat(inner));
  }

  async #dispatch(message: PushMessage, handler: PushHandler, context: PushHandlerContext): Promise<Outcome> {
    const key = dedupeKey(this.#appId, message);
    let inFlight = flights.get(this.#store);
    if (inFlight === undefined) flights.set(this.#store, inFlight = new Map());
    const running = inFlight.get(key);
    if (running !== undefined) return running;
    const flight = this.#runOnce(key, message, handler, context);
    inFlight.set(key, flight);
    try {
      return await flight;
    } finally {
      inFlight.delete(key);
    }
  }

  async #runOnce(
    key: string,
    message: PushMessage,
    handler: PushHandler,
    context: PushHandlerContext,
  ): Promise<Outcome> {
    const mark = await this.#readMark(key);
    if (mark !== null) return { ok: true, reply: Reply.fromType(mark) };
    let result: unknown;
    try {
      result = await handler(message, context);
    } catch (err) {
      this.#logger.warn(`Push handler failed: ${errorName(err)}`);
      return { ok: false };
    }
    if (result !== undefined && result !== null && !(result instanceof Reply)) {
      this.#logger.warn("Push handler returned neither nothing nor a Reply");
      return { ok: false };
    }
    const reply = result ?? undefined;
    await this.#writeMark(key, reply?.type ?? "success");
    return { ok: true, reply };
  }

  // A failing store must not lose a message: an unreadable mark runs the handler
  // (at least once), an unwritable one still answers success.
  async #readMark(key: string): Promise<string | null> {
    try {
      return await this.#store.get(key);
    } catch (err) {
      this.#logger.warn(`Push dedupe store read failed: ${errorName(err)}`);
      return null;
    }
  }

  async #writeMark(key: string, value: string): Promise<void> {
    try {
      await this.#store.set(key, value, { ttlSeconds: this.#dedupeTtlSeconds });
    } catch (err) {
      this.#logger.warn(`Push dedupe store write failed: ${errorName(err)}`);
    }
  }

  async #answer(outcome: Outcome, delivery: Delivery): Promise<Response> {
    if (!outcome.ok) return errorResponse(500, "handler_failed", "The push handler failed: WeChat will retry");
    const { reply } = outcome;
    if (reply === undefined) return new Response("success", { headers: TEXT_HEADERS });
    if (delivery.message.MsgType === "event") {
      // WeChat forwards only user messages; a transfer reply to an event is ignored at best.
      this.#logger.warn(`Push handler replied ${reply.type} to an event: answered success instead`);
      return new Response("success", { headers: TEXT_HEADERS });
    }
    const createTime = Math.floor(this.#now() / 1000);
    const xml = replyXml(reply, delivery.message, createTime);
    if (!delivery.context.encrypted) return new Response(xml, { headers: XML_HEADERS });
    const crypto = this.#crypto!;
    const encrypt = await crypto.encrypt(xml);
    const timeStamp = String(createTime);
    const envelope = {
      Encrypt: encrypt,
      MsgSignature: await crypto.signature(timeStamp, delivery.nonce, encrypt),
      TimeStamp: timeStamp,
      Nonce: delivery.nonce,
    };
    const json = delivery.context.format === "json";
    return new Response(envelopeBody(delivery.context.format, envelope), {
      headers: json ? JSON_HEADERS : XML_HEADERS,
    });
  }
}

const SECURITY_HEADERS = { "x-content-type-options": "nosniff", "cache-control": "no-store" };
const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS };
const XML_HEADERS = { "content-type": "text/xml; charset=utf-8", ...SECURITY_HEADERS };
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", ...SECURITY_HEADERS };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** How WeChat's messages start, which lets decryption take one WebCrypto call instead of two. */
const MESSAGE_START: Record<PushFormat, string> = { json: '{"ToUserName":"', xml: "<xml><ToUserName>" };

function errorResponse(status: number, code: string, message: string, extra?: Record<string, string>): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { ...JSON_HEADERS, ...extra },
  });
}

function badRequest(message: string): PushVerificationError {
  return new PushVerificationError("bad_request", message);
}

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

/** `MsgId` for messages; sender, time and event (or type) for events, as WeChat advises. */
function dedupeKey(appId: string, message: PushMessage): string {
  if (message.MsgId !== undefined) return `${DEDUPE_KEY_PREFIX}${appId}:msg:${message.MsgId}`;
  const event = typeof message.Event === "string" ? message.Event : message.MsgType;
  return `${DEDUPE_KEY_PREFIX}${appId}:event:${message.FromUserName}:${message.CreateTime}:${event}`;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(field, "must be a non-negative number");
  }
  return value;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
