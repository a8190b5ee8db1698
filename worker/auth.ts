/**
 * Bearer-key authentication for `/api/*`, compared in constant time, failing closed
 * when `API_KEY` is unset.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
// Private helpers (a documented exception, see src/internal/README.md): the constant-time
// comparison and the hex encoder the core uses too.
import { constantTimeEqual } from "../src/internal/constant_time.ts";
import { toHex } from "../src/internal/hex.ts";
import { type Env, requireVar } from "./env.ts";
import { HttpError } from "./errors.ts";

const encoder = new TextEncoder();
let macKey: Promise<CryptoKey> | undefined;

// A random per-isolate HMAC key: both sides are MACed with it, so the comparison runs over
// two fixed-length digests whatever the lengths and contents of the inputs.
function isolateKey(): Promise<CryptoKey> {
  macKey ??= crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]) as Promise<CryptoKey>;
  return macKey;
}

/**
 * Compares two strings in time independent of where (or whether) they differ and of their lengths.
 *
 * @param a a string, e.g. the presented key
 * @param b a string, e.g. the configured key
 * @returns whether they are equal
 * @example
 * ```ts
 * import { timingSafeEqual } from "./auth.ts";
 * console.log(await timingSafeEqual("a", "a")); // true
 * ```
 */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const key = await isolateKey();
  const [da, db] = await Promise.all([
    crypto.subtle.sign("HMAC", key, encoder.encode(a)),
    crypto.subtle.sign("HMAC", key, encoder.encode(b)),
  ]);
  return constantTimeEqual(toHex(new Uint8Array(da)), toHex(new Uint8Array(db)));
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="kefu-edge"' };

/**
 * Middleware: requires `Authorization: Bearer <API_KEY>`. Answers 503 `config_missing`
 * when `API_KEY` is unset (fail closed) and 401 `unauthorized` when the header is
 * missing, malformed or wrong.
 *
 * @returns the middleware
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { Env } from "@kefu/edge/worker";
 * import { requireApiKey } from "./auth.ts";
 * import { answerErrors } from "./errors.ts";
 * const app = new Hono<{ Bindings: Env }>().use("/api/*", requireApiKey()).get("/api/x", (c) => c.text("ok"));
 * app.onError(answerErrors(console));
 * const env = { API_KEY: "key-0123456789" };
 * console.log((await app.request("/api/x", {}, env)).status); // 401
 * console.log((await app.request("/api/x", { headers: { authorization: "Bearer key-0123456789" } }, env)).status); // 200
 * ```
 */
export function requireApiKey<E extends { Bindings: Env } = { Bindings: Env }>(): MiddlewareHandler<E> {
  return async (c, next) => {
    const expected = requireVar(c.env ?? {}, "API_KEY");
    const header = c.req.header("authorization");
    if (header === undefined) {
      throw new HttpError(401, "unauthorized", "Missing Authorization: Bearer <API_KEY>", {}, CHALLENGE);
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (match === null) {
      throw new HttpError(401, "unauthorized", "Authorization must be: Bearer <API_KEY>", {}, CHALLENGE);
    }
    if (!(await timingSafeEqual(match[1] ?? "", expected))) {
      throw new HttpError(401, "unauthorized", "Invalid API key", {}, CHALLENGE);
    }
    await next();
  };
}
