/**
 * The media proxy's answer: WeChat's body (or a copy's, from the worker's bucket) streamed through untouched, with an image,
 * audio or video Content-Type kept (anything else is served as
 * `application/octet-stream`, so no HTML or script runs on the worker's origin), a
 * Content-Disposition rebuilt around a safe, bounded file name, and private caching.
 *
 * @module
 */
import { filenameFromContentDisposition } from "../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the media-type table
// uploads are named with, so a download gets the extension its type stands for.
import { extensionForType, normaliseType } from "../src/internal/media_types.ts";

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
 * @example HTML from upstream is served as bytes, not as a page
 * ```ts
 * import { mediaResponse } from "./media.ts";
 * // In the route: return mediaResponse(await mp.customerServiceMessage.getTempMedia(mediaId), mediaId);
 * const upstream = new Response("<script>alert(1)</script>", { headers: { "content-type": "text/html" } });
 * const res = mediaResponse(upstream, "MEDIA_ID");
 * console.log(res.headers.get("content-type"), res.headers.get("content-disposition")); // "application/octet-stream" "attachment; filename=\"MEDIA_ID\"; filename*=UTF-8''MEDIA_ID"
 * ```
 */
export function mediaResponse(upstream: Response, mediaId: string): Response {
  const { headers } = upstream;
  return mediaAnswer(upstream.body, {
    contentType: headers.get("content-type"),
    filename: filenameFromContentDisposition(headers.get("content-disposition")),
    length: headers.get("content-length"),
  }, mediaId);
}

/**
 * Serves a copy of a media file from the worker's bucket with the headers
 * {@link mediaResponse} gives WeChat's: the stored type (checked again), file name and
 * length, private caching.
 *
 * @param copy the bucket's object with its body
 * @param mediaId the validated media_id, the file name when none was stored
 * @returns the response to send
 * @example
 * ```ts
 * import { copyResponse } from "./media.ts";
 * const body = new Response(new Uint8Array([0xff, 0xd8])).body!;
 * const copy = { body, size: 2, httpMetadata: { contentType: "image/jpeg" }, customMetadata: { filename: "a.jpg" } };
 * const res = copyResponse(copy, "MEDIA_ID");
 * console.log(res.headers.get("content-type"), res.headers.get("content-length")); // "image/jpeg" "2"
 * ```
 */
export function copyResponse(
  copy: {
    body: ReadableStream<Uint8Array>;
    size: number;
    httpMetadata?: { contentType?: string | undefined } | undefined;
    customMetadata?: Record<string, string> | undefined;
  },
  mediaId: string,
): Response {
  return mediaAnswer(copy.body, {
    contentType: copy.httpMetadata?.contentType ?? null,
    filename: copy.customMetadata?.filename,
    length: String(copy.size),
  }, mediaId);
}

function mediaAnswer(
  body: ReadableStream<Uint8Array> | null,
  meta: { contentType: string | null; filename: string | undefined; length: string | null },
  mediaId: string,
): Response {
  const type = servedType(meta.contentType);
  const name = capFilename(
    meta.filename === undefined || meta.filename === "" ? `${mediaId}${extensionForType(type) ?? ""}` : meta.filename,
  );
  const headers = new Headers({
    "content-type": type,
    "content-disposition": contentDisposition(name),
    "cache-control": "private",
    "x-content-type-options": "nosniff",
  });
  if (meta.length !== null && /^\d+$/.test(meta.length)) headers.set("content-length", meta.length);
  return new Response(body, { status: 200, headers });
}

/** Longest file name put in Content-Disposition, in UTF-8 bytes (the extension is kept). */
export const MAX_FILENAME_BYTES = 200;

const MEDIA_TYPE = /^(?:image|audio|video)\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/**
 * The Content-Type the proxy serves: WeChat's when it is an image, audio or video type
 * (parameters dropped; `image/svg+xml` excluded, it can carry script), else
 * `application/octet-stream`.
 *
 * @param upstream WeChat's Content-Type header, or `null`
 * @returns the type to serve
 * @example
 * ```ts
 * import { servedType } from "./media.ts";
 * console.log(servedType("image/jpeg"), servedType("text/html")); // "image/jpeg" "application/octet-stream"
 * ```
 */
export function servedType(upstream: string | null): string {
  const type = normaliseType(upstream ?? "");
  return MEDIA_TYPE.test(type) && type !== "image/svg+xml" ? type : "application/octet-stream";
}

/**
 * Cuts a file name to {@link MAX_FILENAME_BYTES} UTF-8 bytes on a character boundary,
 * keeping a short extension.
 *
 * @param name the file name
 * @returns the name, at most 200 bytes long
 * @example
 * ```ts
 * import { capFilename } from "./media.ts";
 * console.log(new TextEncoder().encode(capFilename("图".repeat(100) + ".jpg")).length <= 200); // true
 * ```
 */
export function capFilename(name: string): string {
  if (encoder.encode(name).length <= MAX_FILENAME_BYTES) return name;
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : "";
  let budget = MAX_FILENAME_BYTES - encoder.encode(ext).length;
  let out = "";
  for (const ch of name.slice(0, name.length - ext.length)) {
    budget -= encoder.encode(ch).length;
    if (budget < 0) break;
    out += ch;
  }
  return out + ext;
}

const encoder = new TextEncoder();
