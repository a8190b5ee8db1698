// getTempMedia's answers: an error body told from media bytes without buffering media, and
// the file name of a Content-Disposition.
import { throwIfApiError } from "../http/client.ts";
import { WeChatError, WeChatTimeoutError } from "../errors.ts";
import { concatBytes } from "../internal/bytes.ts";

/** Error bodies are small; media bodies are not read beyond the first chunk. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Returns the response for media; throws WeChatApiError for an errcode body.
 * Media types (image/audio/video) pass through unread. Anything else —
 * JSON, text/plain, no Content-Type, octet-stream — is peeked: a body whose
 * first non-blank byte is `{` is read (bounded) and checked for errcode; any
 * other body is re-assembled around the peeked chunk and streamed on. Every body
 * returned fails with a body-phase WeChatTimeoutError when a chunk is `idleTimeoutMs` late.
 */
export async function readMedia(response: Response, endpoint: string, idleTimeoutMs: number): Promise<Response> {
  if (response.body === null) return response;
  const stalled = () => new WeChatTimeoutError(endpoint, idleTimeoutMs, "body");
  const type = (response.headers.get("content-type") ?? "").toLowerCase();
  if (/^(image|audio|video)\//.test(type)) {
    if (!Number.isFinite(idleTimeoutMs)) return response;
    return new Response(withIdleTimeout(response.body.getReader(), idleTimeoutMs, stalled), response);
  }
  const reader = response.body.getReader();
  const first = await nextChunk(reader, idleTimeoutMs, stalled);
  if (first.done) {
    return new Response(null, response);
  }
  if (firstNonBlank(first.value) !== 0x7b /* { */) {
    return new Response(withIdleTimeout(reader, idleTimeoutMs, stalled, first.value), response);
  }
  const chunks = [first.value];
  let total = first.value.byteLength;
  for (;;) {
    if (total > MAX_ERROR_BODY) {
      return new Response(withIdleTimeout(reader, idleTimeoutMs, stalled, concatBytes(chunks)), response);
    }
    const next = await nextChunk(reader, idleTimeoutMs, stalled);
    if (next.done) break;
    chunks.push(next.value);
    total += next.value.byteLength;
  }
  const bytes = concatBytes(chunks);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return new Response(bytes, response);
  }
  throwIfApiError(parsed, endpoint);
  if (type.startsWith("application/json")) {
    throw new WeChatError(`Unexpected answer from ${endpoint}: JSON without media`);
  }
  return new Response(bytes, response);
}

function firstNonBlank(bytes: Uint8Array): number | undefined {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return byte;
  return undefined;
}

/** The next chunk, or `stalled()` thrown (and the body cancelled) after `ms` without one. */
async function nextChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
  stalled: () => Error,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (!Number.isFinite(ms)) return reader.read();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => timer = setTimeout(() => reject(stalled()), ms));
  try {
    return await Promise.race([reader.read(), timeout]);
  } catch (err) {
    reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The rest of `reader` as a stream (after `head`, if given), failing when a chunk is `ms` late. */
function withIdleTimeout(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
  stalled: () => Error,
  head?: Uint8Array,
): ReadableStream<Uint8Array> {
  let pending = head;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending !== undefined) {
        controller.enqueue(pending);
        pending = undefined;
        return;
      }
      const { done, value } = await nextChunk(reader, ms, stalled);
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * The file name in a `Content-Disposition` header (`filename*=UTF-8''…` preferred over
 * `filename="…"`), reduced to a safe base name; `undefined` when there is none.
 *
 * @param header the header value, e.g. `attachment; filename="MEDIA_ID.jpg"`
 * @returns the file name, or `undefined`
 * @example
 * ```ts
 * import { filenameFromContentDisposition } from "@kefu/edge";
 * console.log(filenameFromContentDisposition('attachment; filename="abc.jpg"')); // "abc.jpg"
 * ```
 */
export function filenameFromContentDisposition(header: string | null | undefined): string | undefined {
  if (header == null) return undefined;
  let name: string | undefined;
  const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (extended?.[2] !== undefined) {
    try {
      name = decodeURIComponent(extended[2].trim());
    } catch {
      name = undefined;
    }
  }
  if (name === undefined) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
    name = plain?.[1]?.replace(/\\(.)/g, "$1") ?? plain?.[2];
  }
  const base = name?.split(/[\\/]/).pop()?.replace(/["\p{Cc}]/gu, "").trim();
  return base === undefined || base === "" || base === "." || base === ".." ? undefined : base;
}
