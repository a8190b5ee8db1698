/**
 * The one error answer of kefu-edge: `{ "error": { "code", "message", … } }` as JSON, never
 * cached, never sniffed. The push receiver's refusals and every error of the worker's HTTP
 * API are written by this function. Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */

/** The headers of every JSON answer kefu-edge writes itself. */
export const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json; charset=utf-8",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

/**
 * An error answer.
 *
 * @param status the HTTP status
 * @param error `code`, `message` (safe to show: no stack, token or secret) and any extra fields
 * @param headers extra headers (`allow`, `retry-after`, `www-authenticate`)
 * @returns the JSON response
 * @example A refusal
 * ```ts
 * import { errorResponse } from "./error_response.ts";
 * const res = errorResponse(401, { code: "unauthorized", message: "Invalid API key" });
 * console.log(res.status, await res.text()); // 401 {"error":{"code":"unauthorized","message":"Invalid API key"}}
 * ```
 */
export function errorResponse(
  status: number,
  error: { readonly code: string; readonly message: string },
  headers?: Readonly<Record<string, string>>,
): Response {
  return new Response(JSON.stringify({ error }), { status, headers: { ...JSON_HEADERS, ...headers } });
}
