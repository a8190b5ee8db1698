/**
 * Forwarding verified push messages to your own service (`FORWARD_URL`), signed
 * with HMAC-SHA256 (`FORWARD_SECRET`), and the check a receiver runs.
 *
 * The request is `POST FORWARD_URL` with the message as a JSON body and:
 * - `X-Kefu-Timestamp`: Unix seconds when it was signed;
 * - `X-Kefu-Delivery`: the message's delivery id, the same on every retry of that message
 *   (WeChat's and the worker's), so a receiver can process each message once;
 * - `X-Kefu-Signature`: `sha256=` + hex HMAC-SHA256 of `` `${timestamp}.${deliveryId}.${body}` ``
 *   under `FORWARD_SECRET`.
 *
 * Redirects are not followed: a 3xx answer is a failed forward.
 *
 * @module
 */
// Private helpers (a documented exception, see src/internal/README.md): the body reader that
// counts what arrives, the hex encoder and the constant-time comparison the core uses too.
import { readStream } from "../src/internal/bytes.ts";
import { constantTimeEqual } from "../src/internal/constant_time.ts";
import { toHex } from "../src/internal/hex.ts";

/** Header carrying the signature. */
export const FORWARD_SIGNATURE_HEADER = "x-kefu-signature";
/** Header carrying the signing time (Unix seconds). */
export const FORWARD_TIMESTAMP_HEADER = "x-kefu-timestamp";
/** Header carrying the delivery id (stable across retries of one message). */
export const FORWARD_DELIVERY_HEADER = "x-kefu-delivery";
/**
 * Time allowed for the forward target to answer while WeChat waits (no queue): WeChat waits
 * 5 s for the whole push.
 */
export const SYNC_FORWARD_TIMEOUT_MS = 4000;
/** Default time allowed for the forward target to answer in the queue's consumer (`FORWARD_TIMEOUT_MS`). */
export const QUEUE_FORWARD_TIMEOUT_MS = 30_000;
/** Default largest body {@link verifyForward} reads: 1 MiB. */
export const DEFAULT_MAX_FORWARD_BYTES = 1024 * 1024;

const encoder = new TextEncoder();

async function hmacHex(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(data))));
}

/**
 * The `X-Kefu-Signature` value for a body signed at `timestamp` with its delivery id.
 *
 * @param secret `FORWARD_SECRET`
 * @param timestamp Unix seconds, as sent in `X-Kefu-Timestamp`
 * @param deliveryId the delivery id, as sent in `X-Kefu-Delivery`
 * @param body the exact request body
 * @returns `sha256=<hex>`
 * @example
 * ```ts
 * import { signForward } from "@kefu/edge/worker";
 * console.log((await signForward("secret", "1700000000", "d41d8c", "{}")).startsWith("sha256=")); // true
 * ```
 */
export async function signForward(
  secret: string,
  timestamp: string,
  deliveryId: string,
  body: string,
): Promise<string> {
  return `sha256=${await hmacHex(secret, `${timestamp}.${deliveryId}.${body}`)}`;
}

/** An authentic forwarded request, as {@link verifyForward} read it. */
export interface VerifiedForward {
  /** The exact body: the push message as JSON. */
  body: string;
  /**
   * The delivery id: the same for every retry of one message. Keep the ids you have
   * processed (for a day is plenty) and answer 2xx to one you have seen without acting again.
   */
  deliveryId: string;
  /** When the request was signed, Unix seconds. */
  timestamp: number;
}

/** Options of {@link verifyForward}. */
export interface VerifyForwardOptions {
  /** Largest accepted distance between `X-Kefu-Timestamp` and now, in seconds; default 300. */
  maxSkewSeconds?: number | undefined;
  /** Largest body read, in bytes; default 1 MiB. A larger body is refused before it is read whole. */
  maxBodyBytes?: number | undefined;
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
}

/**
 * Checks a forwarded request on the receiving side: the signature over the timestamp,
 * the delivery id and the body, the timestamp's distance from now, and the body's size
 * (counted as it arrives, never trusted from Content-Length).
 *
 * @param request the incoming request (its body is read, up to the limit)
 * @param secret `FORWARD_SECRET`
 * @param options `maxSkewSeconds` (default 300), `maxBodyBytes` (default 1 MiB) and `now` (ms clock)
 * @returns the body, delivery id and timestamp when the request is authentic, `null` otherwise
 * @example Your service's receiving end
 * ```ts
 * import { verifyForward } from "@kefu/edge/worker";
 * import { forwardMessage } from "./forward.ts";
 * const processed = new Set<string>(); // keep the ids a day, in your own store
 * const receive = async (request: Request): Promise<Response> => {
 *   const forwarded = await verifyForward(request, "forward-secret");
 *   if (forwarded === null) return new Response("forbidden", { status: 403 });
 *   if (processed.has(forwarded.deliveryId)) return new Response("ok"); // a retry
 *   processed.add(forwarded.deliveryId);
 *   const message = JSON.parse(forwarded.body);
 *   return new Response(`got ${message.MsgType}`);
 * };
 * const answers: string[] = [];
 * const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
 *   const response = await receive(new Request(input, init));
 *   answers.push(await response.clone().text());
 *   return response;
 * };
 * const target = { url: "https://bot.example/wechat", secret: "forward-secret", deliveryId: "d41d8c", fetch, now: Date.now };
 * await forwardMessage({ MsgType: "text", Content: "hi" }, target);
 * await forwardMessage({ MsgType: "text", Content: "hi" }, target); // the same delivery again
 * console.log(answers); // ["got text", "ok"]
 * const forged = new Request("https://bot.example/wechat", { method: "POST", body: "{}" }); // unsigned
 * console.log((await receive(forged)).status); // 403
 * ```
 */
export async function verifyForward(
  request: Request,
  secret: string,
  options: VerifyForwardOptions = {},
): Promise<VerifiedForward | null> {
  const timestamp = request.headers.get(FORWARD_TIMESTAMP_HEADER) ?? "";
  const deliveryId = request.headers.get(FORWARD_DELIVERY_HEADER) ?? "";
  const signature = request.headers.get(FORWARD_SIGNATURE_HEADER) ?? "";
  if (!/^\d{1,12}$/.test(timestamp) || !/^[0-9a-f]{1,128}$/.test(deliveryId)) return null;
  const skew = Math.abs((options.now ?? Date.now)() / 1000 - Number(timestamp));
  if (skew > (options.maxSkewSeconds ?? 300)) return null;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_FORWARD_BYTES;
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) return null;
  let body: string;
  try {
    const bytes = request.body === null ? new Uint8Array() : await readStream(request.body, limit, () => tooLarge);
    body = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null; // over the limit, unreadable, or not UTF-8
  }
  const expected = await signForward(secret, timestamp, deliveryId, body);
  return constantTimeEqual(signature, expected) ? { body, deliveryId, timestamp: Number(timestamp) } : null;
}

const tooLarge = new Error("Forwarded body is over the limit");

/**
 * Forwarding failed: the target is unreachable, too slow, or answered non-2xx.
 * Thrown from the push handler so the push is answered non-success and WeChat retries.
 *
 * @example
 * ```ts
 * import { ForwardError } from "@kefu/edge/worker";
 * console.log(new ForwardError("HTTP 500").message); // "Cannot forward push message: HTTP 500"
 * ```
 */
export class ForwardError extends Error {
  /**
   * Describes the failure.
   *
   * @param detail what went wrong (never the URL, which may carry credentials)
   */
  constructor(detail: string) {
    super(`Cannot forward push message: ${detail}`);
    this.name = "ForwardError";
  }
}

/**
 * POSTs `message` as JSON to `url`, signed with `secret`, carrying its delivery id.
 * Redirects are not followed.
 *
 * @param message the verified push message
 * @param target `url`, `secret`, the message's `deliveryId`, the `fetch` to use, the clock (ms),
 *   and `timeoutMs`: how long the target may take to answer (default 4000, WeChat's budget)
 * @throws {ForwardError} on a network error, a timeout or an answer other than 2xx (3xx included)
 * @example A target that answers 500 fails the forward (and WeChat, or the queue, retries)
 * ```ts
 * import { ForwardError } from "@kefu/edge/worker";
 * import { forwardMessage } from "./forward.ts";
 * // In a push handler: forwardMessage(message, { url: env.FORWARD_URL, secret: env.FORWARD_SECRET, deliveryId: context.deliveryId, fetch, now: Date.now })
 * const fetch = () => Promise.resolve(new Response("down", { status: 500 }));
 * const target = { url: "https://bot.example/wechat", secret: "forward-secret", deliveryId: "d41d8c", fetch, now: Date.now };
 * const failed = await forwardMessage({ MsgType: "text" }, target).catch((err: unknown) => err);
 * console.log(failed instanceof ForwardError, (failed as Error).message); // true "Cannot forward push message: HTTP 500"
 * ```
 * @example A target slower than `timeoutMs` fails the forward (the queue's consumer allows 30 s by default)
 * ```ts
 * import { forwardMessage } from "./forward.ts";
 * const fetch = (_input: RequestInfo | URL, init?: RequestInit) =>
 *   new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
 * const target = { url: "https://bot.example/wechat", secret: "forward-secret", deliveryId: "d41d8c", fetch, now: Date.now };
 * const failed = await forwardMessage({ MsgType: "text" }, { ...target, timeoutMs: 50 }).catch((err: Error) => err);
 * console.log((failed as Error).message); // "Cannot forward push message: no answer within 50 ms"
 * ```
 */
export async function forwardMessage(
  message: unknown,
  target: {
    url: string;
    secret: string;
    deliveryId: string;
    fetch: typeof fetch;
    now: () => number;
    timeoutMs?: number | undefined;
  },
): Promise<void> {
  const timeoutMs = target.timeoutMs ?? SYNC_FORWARD_TIMEOUT_MS;
  const body = JSON.stringify(message);
  const timestamp = String(Math.floor(target.now() / 1000));
  const signature = await signForward(target.secret, timestamp, target.deliveryId, body);
  let response: Response;
  try {
    response = await target.fetch(target.url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "kefu-edge",
        [FORWARD_TIMESTAMP_HEADER]: timestamp,
        [FORWARD_DELIVERY_HEADER]: target.deliveryId,
        [FORWARD_SIGNATURE_HEADER]: signature,
      },
      // A redirect could take the signed message to a host FORWARD_URL does not name.
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new ForwardError(timeout ? `no answer within ${timeoutMs} ms` : "target unreachable");
  }
  await response.body?.cancel().catch(() => {});
  if (response.status >= 300 && response.status < 400) {
    throw new ForwardError(`HTTP ${response.status} (redirects are not followed)`);
  }
  // `redirect: "manual"` gives browsers an opaque answer with status 0: not a success either.
  if (!response.ok) throw new ForwardError(`HTTP ${response.status}`);
}
