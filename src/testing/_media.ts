// Private: temporary media (spec §4 and §5): upload, get, 3-day retention.
import { DAY, SECOND } from "./_clock.ts";
import { extensionForType, typeForFileName, WECHAT_IMAGE_TYPES } from "../internal/media_types.ts";
import { randomId } from "./_random.ts";
import { ApiFailure, okResponse } from "./_responses.ts";
import type { EmulatorMedia, MediaInfo } from "./types.ts";

const RETENTION = 3 * DAY;
// [UNCERTAIN] the mini program doc gives no size or format; these are the Official
// Account temp-media limits (10 MB; PNG/JPEG/JPG/GIF: WECHAT_IMAGE_TYPES), the spec's closest source.
const MAX_BYTES = 10 * 1024 * 1024;

/** Stores media and answers the two media endpoints. */
export class MediaStore implements EmulatorMedia {
  readonly #now: () => number;
  readonly #items = new Map<string, MediaInfo>();

  constructor(now: () => number) {
    this.#now = now;
  }

  get(mediaId: string): MediaInfo | undefined {
    const item = this.#items.get(mediaId);
    return item !== undefined && this.#now() - item.createdAt < RETENTION ? item : undefined;
  }

  list(): MediaInfo[] {
    return [...this.#items.values()];
  }

  add(bytes: Uint8Array, contentType = "image/jpeg"): MediaInfo {
    return this.store(bytes, contentType, "upload");
  }

  /** Stores a copy of `bytes` under a new media_id (64 characters, like WeChat's). */
  store(bytes: Uint8Array, contentType: string, source: MediaInfo["source"]): MediaInfo {
    const item: MediaInfo = {
      mediaId: randomId(64),
      type: "image",
      contentType,
      bytes: bytes.slice(),
      createdAt: this.#now(),
      source,
    };
    this.#items.set(item.mediaId, item);
    return item;
  }

  /** POST /cgi-bin/media/upload?type=image with a multipart part `media` (token already checked). */
  async upload(type: string | null, form: FormData | undefined): Promise<Response> {
    if (type !== "image") throw new ApiFailure(40004);
    const file = form?.get("media");
    // A part without a filename parses as a string, not a File: WeChat wants a file part.
    if (!(file instanceof Blob) || !("name" in file) || typeof file.name !== "string" || file.name === "") {
      throw new ApiFailure(41005);
    }
    if (file.size === 0) throw new ApiFailure(44001);
    if (file.size > MAX_BYTES) throw new ApiFailure(40006);
    const contentType = typeForFileName(file.name);
    if (contentType === undefined || !WECHAT_IMAGE_TYPES.has(contentType)) throw new ApiFailure(40005);
    const item = this.store(new Uint8Array(await file.arrayBuffer()), contentType, "upload");
    return okResponse({ type: item.type, media_id: item.mediaId, created_at: Math.floor(item.createdAt / SECOND) });
  }

  /** GET /cgi-bin/media/get?media_id=…: the bytes, or 40007 as JSON (token already checked). */
  download(mediaId: string | null): Response {
    const item = mediaId === null ? undefined : this.get(mediaId);
    if (item === undefined) throw new ApiFailure(40007);
    // The old doc's example headers; the file name carries the media_id.
    const ext = extensionForType(item.contentType) ?? ".jpg";
    return new Response(item.bytes.slice(), {
      status: 200,
      headers: {
        "content-type": item.contentType,
        "content-disposition": `attachment; filename="${item.mediaId}${ext}"`,
        "content-length": String(item.bytes.byteLength),
        "cache-control": "no-cache, must-revalidate",
        date: new Date(this.#now()).toUTCString(),
      },
    });
  }
}
