/**
 * Private to the inbox: its page files (Workers Static Assets, `public/inbox/`), served through
 * the worker with the inbox's security headers once the request was let in.
 *
 * @module
 */
import type { Context } from "hono";
import type { AppEnv } from "../types.ts";
import { HttpError } from "../errors.ts";

/**
 * The headers of every `/inbox` answer: a strict Content-Security-Policy (no inline script or
 * style, nothing from elsewhere, never framed), no sniffing, no referrer outside the site.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
};

/**
 * Answers with one of the inbox's page files, by path (`/inbox/` is `index.html`, `/inbox/login`
 * is `login.html`, as Workers Static Assets resolve them).
 *
 * @param c the request's context
 * @param path the file's path, e.g. `/inbox/login`
 * @returns the file, or a 404 JSON error when there is no such file
 * @throws {HttpError} 503 when the worker has no `ASSETS` binding
 * @example With a stand-in for the `ASSETS` binding
 * ```ts
 * import { Hono } from "hono/tiny";
 * import type { AppEnv } from "@kefu/edge/worker";
 * import { serveAsset } from "./assets.ts";
 * const ASSETS = { fetch: async () => new Response("<!doctype html>", { headers: { "content-type": "text/html" } }) };
 * const app = new Hono<AppEnv>().get("/inbox/", (c) => serveAsset(c, "/inbox/"));
 * const res = await app.request("/inbox/", {}, { ASSETS });
 * console.log(res.status, res.headers.get("x-frame-options"), res.headers.get("cache-control")); // 200 "DENY" "no-store"
 * ```
 */
export async function serveAsset(c: Context<AppEnv>, path: string): Promise<Response> {
  const assets = c.env?.ASSETS;
  if (assets === undefined) {
    throw new HttpError(
      503,
      "assets_missing",
      "The inbox's page files are not deployed: keep [assets] in wrangler.toml",
      {
        variable: "ASSETS",
      },
    );
  }
  const url = new URL(path, c.req.url);
  const found = await assets.fetch(new Request(url, { headers: { accept: c.req.header("accept") ?? "*/*" } }));
  if (found.status === 404) {
    await found.body?.cancel();
    throw new HttpError(404, "not_found", "No such file");
  }
  const headers = new Headers(found.headers);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  // Pages are never cached (they depend on who is signed in); scripts and styles briefly.
  const page = (headers.get("content-type") ?? "").startsWith("text/html");
  headers.set("cache-control", page ? "no-store" : "public, max-age=300");
  return new Response(found.body, { status: found.status, headers });
}
