/**
 * Where the worker keeps copies of media in its R2 bucket (`KEFU_MEDIA`), and the parts of an
 * R2 bucket binding it uses (written here, not taken from `@cloudflare/workers-types`, so any
 * bucket of this shape works). Imports nothing: `env.ts` and the Durable Object need it.
 *
 * The layout:
 * - `media/<appId>/<openId>/<mediaId>`: a user's image (or card cover), copied from WeChat; one
 *   prefix per user, so purging a user lists and deletes exactly their copies;
 * - `uploads/<appId>/<uploadedAt>/<mediaId>`: a file the service uploaded, under its upload
 *   time (15 digits of ms), so the oldest come first in a listing and retention reads only them;
 * - `ids/<appId>/<mediaId>`: an empty object whose custom metadata `key` names one of the two
 *   above: how `GET /api/media/:mediaId`, which knows only the media_id, finds a copy.
 *
 * @module
 */

/** An object's metadata, as `head`, `get` and `list` give it. */
export interface MediaObjectLike {
  /** The object's key. */
  readonly key: string;
  /** Its size, bytes. */
  readonly size: number;
  /** When it was written. */
  readonly uploaded: Date;
  /** Its HTTP metadata (the Content-Type it is served with). */
  readonly httpMetadata?: { contentType?: string | undefined } | undefined;
  /** Its custom metadata. */
  readonly customMetadata?: Record<string, string> | undefined;
}

/** An object with its body, as `get` gives it. */
export interface MediaObjectBodyLike extends MediaObjectLike {
  /** The bytes. */
  readonly body: ReadableStream<Uint8Array>;
}

/** What `put` takes: a stream of known length (on Workers), bytes or a Blob. */
export type MediaBody = ReadableStream<Uint8Array> | ArrayBuffer | ArrayBufferView | Blob;

/** The part of an R2 bucket binding the worker uses. */
export interface MediaBucketLike {
  /** The object's metadata, or `null`. */
  head(key: string): Promise<MediaObjectLike | null>;
  /** The object with its body, or `null`. */
  get(key: string): Promise<MediaObjectBodyLike | null>;
  /** Writes an object. */
  put(
    key: string,
    value: MediaBody,
    options?: {
      httpMetadata?: { contentType?: string };
      customMetadata?: Record<string, string>;
    },
  ): Promise<unknown>;
  /** Deletes objects (up to 1000 keys a call). */
  delete(keys: string | string[]): Promise<void>;
  /** Lists objects by prefix, in key order, a page at a time. */
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{
    objects: MediaObjectLike[];
    truncated: boolean;
    cursor?: string;
  }>;
}

/**
 * Whether a value may be one part of a key: an AppID, OpenID or media_id as WeChat issues them
 * (letters, digits, `-` and `_`), so no part can reach into another user's prefix.
 *
 * @param value the value
 * @returns whether it is 1–256 such characters
 * @example
 * ```ts
 * import { isKeyPart } from "./media_keys.ts";
 * console.log(isKeyPart("o9AgO5Kd5ggOC-bXrbNODIiE3bGY"), isKeyPart("o1/../o2")); // true false
 * ```
 */
export function isKeyPart(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9_-]{1,256}$/.test(value);
}

/**
 * The key of a copy of a user's media.
 *
 * @param appId the mini program
 * @param openId the user
 * @param mediaId the media_id
 * @returns `media/<appId>/<openId>/<mediaId>`
 * @example
 * ```ts
 * import { userMediaKey } from "./media_keys.ts";
 * console.log(userMediaKey("wx1", "o1", "M1")); // "media/wx1/o1/M1"
 * ```
 */
export function userMediaKey(appId: string, openId: string, mediaId: string): string {
  return `${userMediaPrefix(appId, openId)}${mediaId}`;
}

/**
 * The prefix of every copy of one user's media.
 *
 * @param appId the mini program
 * @param openId the user
 * @returns `media/<appId>/<openId>/`
 * @example
 * ```ts
 * import { userMediaPrefix } from "./media_keys.ts";
 * console.log(userMediaPrefix("wx1", "o1")); // "media/wx1/o1/"
 * ```
 */
export function userMediaPrefix(appId: string, openId: string): string {
  return `media/${appId}/${openId}/`;
}

/**
 * The prefix of the service's uploads, oldest first.
 *
 * @param appId the mini program
 * @returns `uploads/<appId>/`
 * @example
 * ```ts
 * import { uploadPrefix } from "./media_keys.ts";
 * console.log(uploadPrefix("wx1")); // "uploads/wx1/"
 * ```
 */
export function uploadPrefix(appId: string): string {
  return `uploads/${appId}/`;
}

/**
 * The key of an upload's copy: under its upload time, so uploads list oldest first.
 *
 * @param appId the mini program
 * @param uploadedAt when WeChat took it, ms
 * @param mediaId the media_id
 * @returns `uploads/<appId>/<15-digit ms>/<mediaId>`
 * @example
 * ```ts
 * import { uploadKey } from "./media_keys.ts";
 * console.log(uploadKey("wx1", 1714112445000, "M1")); // "uploads/wx1/001714112445000/M1"
 * ```
 */
export function uploadKey(appId: string, uploadedAt: number, mediaId: string): string {
  return `${uploadPrefix(appId)}${String(Math.max(0, Math.floor(uploadedAt))).padStart(15, "0")}/${mediaId}`;
}

/**
 * When an upload's copy was made, read from its key.
 *
 * @param key a key from {@link uploadKey}
 * @returns ms, or `undefined` for another key
 * @example
 * ```ts
 * import { uploadedAtOf } from "./media_keys.ts";
 * console.log(uploadedAtOf("uploads/wx1/001714112445000/M1")); // 1714112445000
 * ```
 */
export function uploadedAtOf(key: string): number | undefined {
  const stamp = /^uploads\/[^/]+\/(\d{15})\/[^/]+$/.exec(key)?.[1];
  return stamp === undefined ? undefined : Number(stamp);
}

/**
 * The key of the index object that names the copy of a media_id.
 *
 * @param appId the mini program
 * @param mediaId the media_id
 * @returns `ids/<appId>/<mediaId>`
 * @example
 * ```ts
 * import { mediaIndexKey } from "./media_keys.ts";
 * console.log(mediaIndexKey("wx1", "M1")); // "ids/wx1/M1"
 * ```
 */
export function mediaIndexKey(appId: string, mediaId: string): string {
  return `ids/${appId}/${mediaId}`;
}

/**
 * The index key that goes with a copy's key (its first and last parts).
 *
 * @param key a key from {@link userMediaKey} or {@link uploadKey}
 * @returns its index key, or `undefined` for another key
 * @example
 * ```ts
 * import { indexKeyOf } from "./media_keys.ts";
 * console.log(indexKeyOf("media/wx1/o1/M1")); // "ids/wx1/M1"
 * ```
 */
export function indexKeyOf(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length !== 4 || (parts[0] !== "media" && parts[0] !== "uploads")) return undefined;
  return mediaIndexKey(parts[1]!, parts[3]!);
}

/**
 * Deletes copies and their index objects, 500 copies a call.
 *
 * @param bucket the bucket
 * @param keys the copies' keys
 * @example
 * ```ts
 * import { deleteCopies } from "./media_keys.ts";
 * const deleted: string[] = [];
 * const bucket = { delete: async (keys: string | string[]) => void deleted.push(...[keys].flat()) };
 * await deleteCopies(bucket, ["media/wx1/o1/M1"]);
 * console.log(deleted); // ["media/wx1/o1/M1", "ids/wx1/M1"]
 * ```
 */
export async function deleteCopies(bucket: Pick<MediaBucketLike, "delete">, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const indexes = batch.map(indexKeyOf).filter((key): key is string => key !== undefined);
    await bucket.delete([...batch, ...indexes]);
  }
}
