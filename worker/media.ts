/**
 * The media proxy's answer: WeChat's body streamed through untouched, with the
 * Content-Type kept, a Content-Disposition rebuilt around a safe file name, and
 * private caching.
 *
 * @module
 */
import { filenameFromContentDisposition } from "../mod.ts";
import { extensionForType } from "../src/_media_types.ts";

/**
 * A `Content-Disposition: attachment` value for `name`: an ASCII-only `filename`
 * fallback and the exact name in RFC 8187 `filename*`.
 *
 * @param name a base name (no path, no quotes, no control characters)
 * @returns the header value
 * @example
 * ```ts
 * import { contentDisposition } from "./media.ts";
 * console.log(contentDisposition("图.jpg")); // attachment; filename="_.jpg"; filename*=UTF-8''%E5%9B%BE.jpg
 * ```
 */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\;%]/g, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * Wraps WeChat's media response for the client. The body stream is handed on
 * as it is, never read here.
 *
 * @param upstream the response of `getTempMedia`
 * @param mediaId the validated media_id, the file name when WeChat gives none
 * @returns the response to send
 * @example
 * ```ts ignore
 * return mediaResponse(await mp.customerServiceMessage.getTempMedia(mediaId), mediaId);
 * ```
 */
export function mediaResponse(upstream: Response, mediaId: string): Response {
  const type = upstream.headers.get("content-type") ?? "application/octet-stream";
  const name = filenameFromContentDisposition(upstream.headers.get("content-disposition")) ??
    `${mediaId}${extensionForType(type) ?? ""}`;
  const headers = new Headers({
    "content-type": type,
    "content-disposition": contentDisposition(name),
    "cache-control": "private",
    "x-content-type-options": "nosniff",
  });
  const length = upstream.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length)) headers.set("content-length", length);
  return new Response(upstream.body, { status: 200, headers });
}
