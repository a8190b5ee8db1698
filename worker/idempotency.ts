/**
 * `Idempotency-Key` for `POST /api/messages` and `POST /api/typing`: the first result for a
 * key is kept 48 hours and given back for a repeat of the same request, so a caller's retry
 * (after a timeout, a dropped connection) never spends a second message of the user's window.
 * The same key with another body answers 422; a repeat while the first is still running, 409.
 *
 * Only a result after which the message may have been delivered is kept: a success, and a
 * failure after the request left for WeChat without a clear answer (a timeout, a network error,
 * an HTTP 5xx or an unreadable answer). A failure where WeChat certainly sent nothing (WeChat's
 * own error codes such as -1, 45015 or 45047, the window check, a bad request, a configuration
 * or access-token failure) is forgotten, so a retry with the same key sends again.
 *
 * Records live in the push store: the `KEFU_STORE` Durable Objects when bound (atomic: two
 * concurrent requests with one key cannot both run), the token store otherwise.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import {
  type KeyValueStore,
  OutOfWindowError,
  TokenSourceError,
  ValidationError,
  WeChatApiError,
  WeChatHttpError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the canonical JSON,
// SHA-1, store-key user part and JSON-object reader the push receiver's records use too.
import { canonicalJson } from "../src/internal/canonical_json.ts";
import { jsonObject } from "../src/internal/json.ts";
import { sha1Hex } from "../src/internal/sha1.ts";
import { userPart } from "../src/internal/store_keys.ts";
import { ConfigError, type Env } from "./env.ts";
import { HttpError } from "./errors.ts";

/** The request header. */
export const IDEMPOTENCY_HEADER = "idempotency-key";
/** The header on an answer given again from the record. */
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed";
/** How long a result is kept. */
export const IDEMPOTENCY_TTL_SECONDS = 48 * 3600;
// A record stays "running" at most this long: past every timeout and retry of one call.
const PENDING_TTL_SECONDS = 5 * 60;

type IdempotencyRecord =
  | { state: "running"; request: string }
  | { state: "done"; request: string; status: number; body: string };

/** What the middleware needs from the app. */
export interface IdempotencySettings {
  /** The store records go to for an env. */
  store(env: Env): KeyValueStore;
  /** The AppID of an env (records are per mini program). */
  appId(env: Env): string;
}

/**
 * Middleware for a validated JSON route: with an `Idempotency-Key` header (1 to 255
 * visible ASCII characters) the route runs once per key and its answer is kept.
 *
 * @param route a name for the route in the record's key (`messages`, `typing`)
 * @param settings where records live, and the AppID
 * @returns the middleware; place it after the body validator
 * @example A repeated request runs once
 * ```ts
 * import { Hono } from "hono";
 * import { MemoryStore } from "@kefu/edge";
 * import { idempotent } from "./idempotency.ts";
 * import { jsonBody, typingSchema } from "./schemas.ts";
 * const store = new MemoryStore();
 * let runs = 0;
 * const app = new Hono().post(
 *   "/typing",
 *   ...jsonBody(typingSchema),
 *   idempotent("typing", { store: () => store, appId: () => "wx123" }),
 *   (c) => c.json({ run: ++runs }),
 * );
 * const init = {
 *   method: "POST",
 *   headers: { "content-type": "application/json", "idempotency-key": "order-42" },
 *   body: JSON.stringify({ touser: "OPENID", command: "Typing" }),
 * };
 * const first = await app.request("/typing", init);
 * const again = await app.request("/typing", init);
 * console.log(await first.json(), await again.json(), again.headers.get("idempotent-replayed")); // { run: 1 } { run: 1 } "true"
 * ```
 */
export function idempotent<E extends { Bindings: Env } = { Bindings: Env }>(
  route: string,
  settings: IdempotencySettings,
): MiddlewareHandler<E> {
  return async (c, next) => {
    const key = c.req.header(IDEMPOTENCY_HEADER);
    if (key === undefined) return await next();
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new HttpError(400, "validation_error", "Invalid Idempotency-Key: 1 to 255 visible ASCII characters", {
        field: "Idempotency-Key",
      });
    }
    const env = c.env ?? {};
    const body = (c.req.valid as (target: "json") => Record<string, unknown>)("json");
    const request = sha1Hex(canonicalJson(body));
    const user = typeof body.touser === "string" ? userPart(body.touser) : "h.any";
    const recordKey = `kefu-edge:idem:${settings.appId(env)}:${user}:${route}:${sha1Hex(key)}`;
    const store = settings.store(env);
    const running = JSON.stringify({ state: "running", request } satisfies IdempotencyRecord);
    if (!await claim(store, recordKey, running)) {
      const record = parse(await store.get(recordKey));
      if (record !== undefined && record.request !== request) {
        throw new HttpError(422, "idempotency_key_reused", "This Idempotency-Key was used with another request body");
      }
      if (record?.state === "done") {
        return new Response(record.body, {
          status: record.status,
          headers: {
            "content-type": "application/json; charset=utf-8",
            "cache-control": "no-store",
            [IDEMPOTENT_REPLAYED_HEADER]: "true",
          },
        });
      }
      throw new HttpError(409, "idempotency_in_progress", "A request with this Idempotency-Key is still running", {}, {
        "retry-after": "1",
      });
    }
    await next();
    if (c.error !== undefined && sentNothing(c.error)) {
      // The pending record would answer 409 for five minutes; if it cannot be removed, it does.
      await store.delete(recordKey).catch(() => {});
      return;
    }
    // A send that timed out may still have been delivered: that result is kept like a success.
    const done: IdempotencyRecord = { state: "done", request, status: c.res.status, body: await c.res.clone().text() };
    await store.set(recordKey, JSON.stringify(done), { ttlSeconds: IDEMPOTENCY_TTL_SECONDS });
  };
}

// Where access tokens come from: a failure there happens before the call itself is sent.
const TOKEN_ENDPOINTS = new Set(["/cgi-bin/stable_token", "/cgi-bin/token"]);

/**
 * Whether a route's failure certainly sent nothing to the user: refused before any call (bad
 * input, configuration, the window check, the access token), or refused by WeChat with an
 * errcode. A timeout, a network error, an HTTP 5xx or an answer that could not be read, after
 * the call left, may have been delivered; so may anything unknown.
 *
 * @param err what the route threw
 * @returns `true` when replaying the request cannot send a second message
 * @example
 * ```ts
 * import { WeChatApiError, WeChatTimeoutError } from "@kefu/edge";
 * import { sentNothing } from "./idempotency.ts";
 * const busy = new WeChatApiError({ errcode: -1, errmsg: "system error", endpoint: "/cgi-bin/message/custom/send" });
 * console.log(sentNothing(busy), sentNothing(new WeChatTimeoutError("/cgi-bin/message/custom/send", 10_000))); // true false
 * ```
 */
export function sentNothing(err: unknown): boolean {
  if (
    err instanceof HttpError || err instanceof ConfigError || err instanceof ValidationError ||
    err instanceof OutOfWindowError || err instanceof WeChatApiError || err instanceof TokenSourceError
  ) {
    return true;
  }
  if (err instanceof WeChatHttpError) return err.status < 500 || TOKEN_ENDPOINTS.has(err.endpoint);
  if (err instanceof WeChatTimeoutError || err instanceof WeChatNetworkError) return TOKEN_ENDPOINTS.has(err.endpoint);
  return false;
}

async function claim(store: KeyValueStore, key: string, value: string): Promise<boolean> {
  const options = { ttlSeconds: PENDING_TTL_SECONDS };
  if (store.setIfAbsent !== undefined) return await store.setIfAbsent(key, value, options);
  if (await store.get(key) !== null) return false; // Workers KV: best effort
  await store.set(key, value, options);
  return true;
}

function parse(raw: string | null): IdempotencyRecord | undefined {
  return raw === null ? undefined : jsonObject(raw) as IdempotencyRecord | undefined;
}
