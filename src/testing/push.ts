/**
 * Signed pushes as WeChat sends them (spec §6): plain or safe mode, JSON or XML, and
 * delivery with WeChat's timeout and retries.
 *
 * @module
 */
import { MessageCrypto } from "../push/crypto.ts";
import { randomNonce } from "./_random.ts";
import { envelope, isPlainReply, readEncryptedReply, toJson, toXml } from "./_push_wire.ts";
import type {
  DeliverOptions,
  DeliveryFailure,
  DeliveryOutcome,
  PushBuildOptions,
  PushFields,
  RequestHandler,
} from "./types.ts";

/** Where a push is signed for and sent to. */
export interface PushTarget {
  /** The mini program's AppID (the trailing appid of encrypted messages). */
  appId: string;
  /** The push Token. */
  token: string;
  /** EncodingAESKey: set for safe mode. */
  encodingAESKey?: string;
  /** `xml` (default) or `json`. */
  format?: "json" | "xml";
  /** The callback URL; default `http://localhost/wechat/callback`. */
  url?: string;
}

/** A push ready to send: a fresh `Request` on each call, since a body is read only once. */
export interface BuiltPush {
  /** The full URL, query included. */
  readonly url: string;
  /** The body as sent (an envelope in safe mode). */
  readonly body: string;
  /** The message before encryption. */
  readonly plaintext: string;
  /** Whether the body is encrypted. */
  readonly encrypted: boolean;
  /**
   * A new signed `POST` request.
   *
   * @param signal aborts the request (the sender gave up waiting)
   * @returns the request
   */
  request(signal?: AbortSignal): Request;
}

const DEFAULT_URL = "http://localhost/wechat/callback";

/**
 * Builds the push WeChat would send for `message`: the query (`signature`, `timestamp`,
 * `nonce`, `openid`, and in safe mode `encrypt_type=aes` and `msg_signature`, in the order
 * of the official example) and the body in the configured format.
 *
 * @param target token, key, format and URL of the receiver
 * @param message the payload in WeChat's field names (`FromUserName` becomes `openid`)
 * @param options fixed `timestamp`, `nonce` and `random`, e.g. to reproduce WeChat's vectors
 * @returns the push, ready to send
 * @example Reproduce the official plain-mode signature
 * ```ts
 * import { buildPush } from "@kefu/edge/testing";
 * const push = await buildPush(
 *   { appId: "wx123", token: "AAAAA", format: "json" },
 *   { ToUserName: "gh_97417a04a28d", FromUserName: "OPENID", CreateTime: 1714037059, MsgType: "event" },
 *   { timestamp: "1714037059", nonce: "486452656" },
 * );
 * console.log(new URL(push.url).searchParams.get("signature")); // "899cf89e464efb63f54ddac96b0a0a235f53aa78"
 * ```
 */
export async function buildPush(
  target: PushTarget,
  message: PushFields,
  options: PushBuildOptions = {},
): Promise<BuiltPush> {
  const crypto = cryptoFor(target);
  const format = target.format ?? "xml";
  const plaintext = format === "json" ? toJson(message) : toXml(message);
  const timestamp = options.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = options.nonce ?? randomNonce();
  const url = new URL(target.url ?? DEFAULT_URL);
  url.searchParams.set("signature", await crypto.signature(timestamp, nonce));
  url.searchParams.set("timestamp", timestamp);
  url.searchParams.set("nonce", nonce);
  if (message.FromUserName !== undefined) url.searchParams.set("openid", String(message.FromUserName));
  let body = plaintext;
  const encrypted = target.encodingAESKey !== undefined;
  if (encrypted) {
    const encrypt = await crypto.encrypt(plaintext, options.random === undefined ? {} : { random: options.random });
    body = envelope(format, String(message.ToUserName ?? ""), encrypt);
    url.searchParams.set("encrypt_type", "aes");
    url.searchParams.set("msg_signature", await crypto.signature(timestamp, nonce, encrypt));
  }
  const href = url.href;
  // [UNCERTAIN] WeChat's Content-Type for pushes is undocumented; these match the format.
  const contentType = format === "json" ? "application/json" : "text/xml";
  return {
    url: href,
    body,
    plaintext,
    encrypted,
    request: (signal) =>
      new Request(href, {
        method: "POST",
        body,
        headers: { "content-type": contentType },
        ...(signal === undefined ? {} : { signal }),
      }),
  };
}

/** Settings of {@link deliverPush}. */
export interface DeliverySettings {
  /** Signs and decrypts replies. */
  target: PushTarget;
  /** No answer within this many ms is a failed attempt. */
  timeoutMs: number;
  /** Re-sends after the first attempt. */
  retries: number;
}

/**
 * Delivers `push` as WeChat does: waits `timeoutMs` for each answer and re-sends up to
 * `retries` times while the answer is late, not HTTP 200, or neither `success`, empty,
 * nor a valid reply (in safe mode: an encrypted reply whose MsgSignature checks out).
 * [UNCERTAIN] "总共重试三次" (three retries in total) is read as 3 re-sends after the first.
 *
 * @param push the built push
 * @param handler the receiver
 * @param settings target, timeout and retry count
 * @returns the outcome
 * @example Deliver to an app
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { buildPush, deliverPush } from "@kefu/edge/testing";
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * const app = { fetch: (request: Request) => mp.push.handle(request, () => {}) };
 * const target = { appId: "wx123", token: "TOKEN" };
 * const message = { ToUserName: "gh_1", FromUserName: "OPENID", CreateTime: 1714037059, MsgType: "event", Event: "x" };
 * const push = await buildPush(target, message);
 * const outcome = await deliverPush(push, app.fetch, { target, timeoutMs: 5000, retries: 3 });
 * console.log(outcome.ok, outcome.responseText); // true "success"
 * ```
 */
export async function deliverPush(
  push: BuiltPush,
  handler: RequestHandler,
  settings: DeliverySettings,
): Promise<DeliveryOutcome> {
  const failures: DeliveryFailure[] = [];
  let last: { status: number; text: string } | undefined;
  for (let attempt = 1; attempt <= 1 + settings.retries; attempt++) {
    const answer = await attemptOnce(push, handler, settings.timeoutMs);
    if ("reason" in answer) {
      failures.push({ attempt, ...answer });
      continue;
    }
    last = answer;
    if (answer.status !== 200) {
      failures.push({ attempt, reason: "status", detail: `HTTP ${answer.status}` });
      continue;
    }
    const verdict = await judgeReply(answer.text, settings.target);
    if ("invalid" in verdict) {
      failures.push({ attempt, reason: "invalid_reply", detail: verdict.invalid });
      continue;
    }
    return { ok: true, attempts: attempt, status: 200, responseText: answer.text, ...verdict, failures };
  }
  return {
    ok: false,
    attempts: 1 + settings.retries,
    status: last?.status,
    responseText: last?.text,
    reply: undefined,
    encrypted: false,
    failures,
  };
}

/** Resolves `options` against the push config's defaults (5 s, 3 re-sends). */
export function deliverySettings(
  target: PushTarget & { timeoutMs?: number; retries?: number },
  options: DeliverOptions = {},
): DeliverySettings {
  return {
    target,
    timeoutMs: options.timeoutMs ?? target.timeoutMs ?? 5000,
    retries: options.retries ?? target.retries ?? 3,
  };
}

type Answer = { status: number; text: string } | Omit<DeliveryFailure, "attempt">;

// One attempt: the whole answer (status and body) must arrive within timeoutMs. On timeout
// the request's signal aborts, as WeChat drops the connection.
async function attemptOnce(push: BuiltPush, handler: RequestHandler, timeoutMs: number): Promise<Answer> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Answer>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new DOMException("WeChat stopped waiting", "TimeoutError"));
      resolve({ reason: "timeout", detail: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
  });
  const answer = (async (): Promise<Answer> => {
    try {
      const response = await handler(push.request(controller.signal));
      return { status: response.status, text: await response.text() };
    } catch (err) {
      return { reason: "network", detail: err instanceof Error ? err.message : String(err) };
    }
  })();
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Verdict = { reply: string | undefined; encrypted: boolean } | { invalid: string };

async function judgeReply(text: string, target: PushTarget): Promise<Verdict> {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed === "success") return { reply: undefined, encrypted: false };
  if (target.encodingAESKey === undefined) {
    return isPlainReply(trimmed) ? { reply: text, encrypted: false } : { invalid: "not success, empty or a reply" };
  }
  const reply = readEncryptedReply(trimmed);
  if (reply === undefined) return { invalid: "safe mode expects success, empty or an encrypted reply" };
  const crypto = cryptoFor(target);
  if (await crypto.signature(reply.timestamp, reply.nonce, reply.encrypt) !== reply.msgSignature) {
    return { invalid: "MsgSignature does not match" };
  }
  let plaintext: string;
  try {
    plaintext = await crypto.decrypt(reply.encrypt);
  } catch (err) {
    return { invalid: `cannot decrypt: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!isPlainReply(plaintext)) return { invalid: "decrypted reply is neither a JSON object nor <xml>" };
  return { reply: plaintext, encrypted: true };
}

const cryptos = new WeakMap<PushTarget, MessageCrypto>();
// MessageCrypto wants a key even to sign. In plain mode nothing is encrypted, so any
// well-formed key serves and only the token shapes the signatures.
const PLAIN_MODE_KEY = "A".repeat(43);

/**
 * The signer (and, in safe mode, cipher) of `target`, made once per target. Throws
 * `ValidationError` for an empty token or a malformed EncodingAESKey.
 */
export function cryptoFor(target: PushTarget): MessageCrypto {
  let crypto = cryptos.get(target);
  if (crypto === undefined) {
    crypto = new MessageCrypto({
      token: target.token,
      encodingAESKey: target.encodingAESKey ?? PLAIN_MODE_KEY,
      appId: target.appId,
    });
    cryptos.set(target, crypto);
  }
  return crypto;
}
