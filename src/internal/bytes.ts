// Private to kefu-edge (see README.md beside this file): byte helpers shared by uploads,
// media error detection and the push body reader.

/** Joins `chunks` into one array of `size` bytes (their total by default). */
export function concatBytes(chunks: readonly Uint8Array[], size?: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size ?? chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Reads a whole stream, counting what actually arrives; past `limit` bytes it cancels
 * the stream and throws `tooLarge(bytesSeen)`. Read errors propagate as they are.
 */
export async function readStream(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  tooLarge: (seen: number) => Error,
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.cancel().catch(() => {});
      throw tooLarge(size);
    }
    chunks.push(value);
  }
  // One chunk (a small body, as a push is) is handed back as it is, without a copy.
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  if (only !== undefined && only.buffer instanceof ArrayBuffer) return only as Uint8Array<ArrayBuffer>;
  return concatBytes(chunks, size);
}
