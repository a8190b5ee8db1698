/**
 * Forwarding verified push messages to your own service (`FORWARD_URL`), signed
 * with HMAC-SHA256 (`FORWARD_SECRET`), and the check a receiver runs.
 *
 * The request is `POST FORWARD_URL` with the message as a JSON body and:
 * - `X-Kefu-Timestamp`: Unix seconds when it was signed;
 * - `X-Kefu-Signature`: `sha256=` + hex HMAC-SHA256 of `` `${timestamp}.${body}` `` under `FORWARD_SECRET`.
 *
 * @module
 */

/** Header carrying the signature. */
export const FORWARD_SIGNATURE_HEADER = "x-kefu-signature";
/** Header carrying the signing time (Unix seconds). */
export const FORWARD_TIMESTAMP_HEADER = "x-kefu-timestamp";
/** Time allowed for the forward target to answer; WeChat waits 5 s for the whole push. */
export const FORWARD_TIMEOUT_MS = 4000;

const encoder = new TextEncoder();

async function hmacHex(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(data)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The `X-Kefu-Signature` value for a body signed at `timestamp`.
 *
 * @param secret `FORWARD_SECRET`
 * @param timestamp Unix seconds, as sent in `X-Kefu-Timestamp`
 * @param body the exact request body
 * @returns `sha256=<hex>`
 * @example
 * ```ts
 * import { signForward } from "./forward.ts";
 * console.log((await signForward("secret", "1700000000", "{}")).startsWith("sha256=")); // true
 * ```
 */
export async function signForward(secret: string, timestamp: string, body: string): Promise<string> {
  return `sha256=${await hmacHex(secret, `${timestamp}.${body}`)}`;
}

/**
 * Checks a forwarded request on the receiving side: the signature over the timestamp
 * and body, and the timestamp's distance from now.
 *
 * @param request the incoming request (its body is read)
 * @param secret `FORWARD_SECRET`
 * @param options `maxSkewSeconds` (default 300) and `now` (ms clock)
 * @returns the body text when the request is authentic, `null` otherwise
 * @example
 * ```ts ignore
 * const body = await verifyForward(request, env.FORWARD_SECRET);
 * if (body === null) return new Response("forbidden", { status: 403 });
 * const message = JSON.parse(body);
 * ```
 */
export async function verifyForward(
  request: Request,
  secret: string,
  options: { maxSkewSeconds?: number; now?: () => number } = {},
): Promise<string | null> {
  const timestamp = request.headers.get(FORWARD_TIMESTAMP_HEADER) ?? "";
  const signature = request.headers.get(FORWARD_SIGNATURE_HEADER) ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) return null;
  const skew = Math.abs((options.now ?? Date.now)() / 1000 - Number(timestamp));
  if (skew > (options.maxSkewSeconds ?? 300)) return null;
  const body = await request.text();
  const expected = await signForward(secret, timestamp, body);
  let diff = expected.length ^ signature.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
  return diff === 0 ? body : null;
}

/**
 * Forwarding failed: the target is unreachable, too slow, or answered non-2xx.
 * Thrown from the push handler so the push is answered non-success and WeChat retries.
 *
 * @example
 * ```ts
 * import { ForwardError } from "./forward.ts";
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
 * POSTs `message` as JSON to `url`, signed with `secret`.
 *
 * @param message the verified push message
 * @param target `url`, `secret`, the `fetch` to use and the clock (ms)
 * @throws {ForwardError} on a network error, a timeout or a non-2xx answer
 * @example
 * ```ts ignore
 * await forwardMessage(message, { url: env.FORWARD_URL, secret: env.FORWARD_SECRET, fetch, now: Date.now });
 * ```
 */
export async function forwardMessage(
  message: unknown,
  target: { url: string; secret: string; fetch: typeof fetch; now: () => number },
): Promise<void> {
  const body = JSON.stringify(message);
  const timestamp = String(Math.floor(target.now() / 1000));
  const signature = await signForward(target.secret, timestamp, body);
  let response: Response;
  try {
    response = await target.fetch(target.url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "kefu-edge",
        [FORWARD_TIMESTAMP_HEADER]: timestamp,
        [FORWARD_SIGNATURE_HEADER]: signature,
      },
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
  } catch (err) {
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new ForwardError(timeout ? `no answer within ${FORWARD_TIMEOUT_MS} ms` : "target unreachable");
  }
  await response.body?.cancel().catch(() => {});
  if (!response.ok) throw new ForwardError(`HTTP ${response.status}`);
}
