// uploadTempMedia's inputs: every accepted one turned into a File for FormData.
import { MediaTooLargeError, ValidationError } from "../errors.ts";
import { readFileFromPath } from "../runtime/read_file.ts";
import { readStream } from "../internal/bytes.ts";
import { extensionForType, normaliseType, typeForFileName } from "../internal/media_types.ts";

/** Anything uploadTempMedia accepts besides a path. */
export type UploadBody = Blob | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array>;

/**
 * The third argument of uploadTempMedia: PowerWeChat's manual form `{ name, value }`,
 * or `{ filename }` to name a Blob, bytes or a stream.
 */
export interface UploadForm {
  /** File name, PowerWeChat style (`"cloud.jpg"`). */
  name?: string;
  /** File content, PowerWeChat style; used when the second argument is `""`. */
  value?: UploadBody;
  /** File name for a Blob, bytes or a stream. */
  filename?: string;
  /** Content type, when the input does not say (a Blob's own type wins). */
  contentType?: string;
}

/**
 * Builds the `media` file part. The file always has a name with an extension
 * (WeChat derives the type from it): inferred from the content type, else from
 * the magic bytes. Empty and over-limit files are refused here, before any call.
 */
export async function toUploadFile(
  pathOrBody: string | UploadBody,
  form: UploadForm | undefined,
  limit: number,
): Promise<File> {
  let bytes: Uint8Array<ArrayBuffer>;
  let name: string | undefined = form?.filename ?? form?.name;
  let type = form?.contentType ?? "";
  if (typeof pathOrBody === "string" && pathOrBody !== "") {
    bytes = await readFileFromPath(pathOrBody, limit);
    name ??= pathOrBody.split(/[\\/]/).pop();
  } else {
    const body = typeof pathOrBody === "string" ? form?.value : pathOrBody;
    if (body === undefined) {
      throw new ValidationError("media", 'pass a file path, or "" with { name, value }, or a Blob, bytes or a stream');
    }
    if (body instanceof Blob) return await blobFile(body, name, type, limit);
    bytes = await readBody(body, limit);
  }
  if (bytes.byteLength === 0) throw new ValidationError("media", "file is empty");
  if (bytes.byteLength > limit) throw new MediaTooLargeError(bytes.byteLength, limit);
  type = normaliseType(type) || typeForFileName(name) || sniffType(bytes) || "application/octet-stream";
  return new File([bytes], withExtension(name, type), { type });
}

/**
 * A Blob is never read whole here: a 10 MiB upload through the worker would otherwise sit
 * in memory once more for every copy. At most its first bytes are read (to sniff the type),
 * and a File that already has the right name and type is sent as it is.
 */
async function blobFile(blob: Blob, name: string | undefined, type: string, limit: number): Promise<File> {
  if (blob.size > limit) throw new MediaTooLargeError(blob.size, limit);
  if (blob.size === 0) throw new ValidationError("media", "file is empty");
  if (blob.type !== "") type = blob.type;
  if (name === undefined && "name" in blob && typeof blob.name === "string" && blob.name !== "") name = blob.name;
  type = normaliseType(type) || typeForFileName(name) ||
    sniffType(new Uint8Array(await blob.slice(0, 4).arrayBuffer())) || "application/octet-stream";
  const fileName = withExtension(name, type);
  if (blob instanceof File && blob.name === fileName && blob.type === type) return blob;
  return new File([blob], fileName, { type });
}

function readBody(
  body: Uint8Array | ArrayBuffer | ReadableStream<Uint8Array>,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  if (body instanceof ArrayBuffer) return Promise.resolve(new Uint8Array(body.slice(0)));
  if (ArrayBuffer.isView(body)) return Promise.resolve(new Uint8Array(body));
  if (!(body instanceof ReadableStream)) throw new ValidationError("media", "unsupported upload body");
  return readStream(body, limit, (seen) => new MediaTooLargeError(seen, limit));
}

function sniffType(bytes: Uint8Array): string | undefined {
  const [a, b, c, d] = bytes;
  if (a === 0xff && b === 0xd8 && c === 0xff) return "image/jpeg";
  if (a === 0x89 && b === 0x50 && c === 0x4e && d === 0x47) return "image/png";
  if (a === 0x47 && b === 0x49 && c === 0x46) return "image/gif";
  if (a === 0x42 && b === 0x4d) return "image/bmp";
  return undefined;
}

function withExtension(name: string | undefined, type: string): string {
  const base = name === undefined || name.trim() === "" ? "media" : name;
  if (/\.[A-Za-z0-9]{1,5}$/.test(base)) return base;
  return base + (extensionForType(type) ?? ".bin");
}
