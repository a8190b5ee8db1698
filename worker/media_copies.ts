/**
 * Copies of media in the worker's R2 bucket (`KEFU_MEDIA`): WeChat keeps a user's image, and a
 * file the service uploaded, for 3 days; a copy keeps it as long as the conversation's history.
 *
 * - A user's image (or card cover) is copied **after WeChat was answered**: the push's
 *   acceptance into the conversation notes it, and once the push is answered the copy is made
 *   with the request's `waitUntil`, or, with `KEFU_QUEUE` bound, by the queue's consumer (which
 *   retries a failed copy). The copy streams WeChat's body into R2 when WeChat says its length,
 *   and buffers it (up to the upload limit) when it does not. The history entry then carries
 *   the copy's key (`mediaKey`).
 * - A file the service uploads (`POST /api/media`, or `uploadTempMedia` in your handler) is put
 *   in the bucket under its media_id, after the answer where there is one.
 * - `GET /api/media/:mediaId` serves a copy when there is one, else streams from WeChat.
 * - Purging a user (`DELETE /api/users/:openId`, WeChat's deletion events) deletes their copies;
 *   the `KefuStore` object deletes copies with the history entries it deletes past
 *   `HISTORY_DAYS`, and each upload deletes the uploads older than that.
 *
 * A copy that fails is logged (no content, no media_id, no openid) and never fails or repeats
 * the push's handler; without a queue it is not tried again, and the entry keeps its media_id
 * and `mediaExpiresAt`.
 *
 * @module
 */
import {
  type ConversationRef,
  type ConversationStore,
  DEFAULT_CONVERSATION_SETTINGS,
  filenameFromContentDisposition,
  MediaTooLargeError,
  type MiniProgram,
  type UploadedMedia,
  ValidationError,
  WeChatApiError,
} from "../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the bounded stream
// reader uploads use, and how long WeChat keeps media.
import { readStream } from "../src/internal/bytes.ts";
import { MEDIA_LIFETIME_MS } from "../src/internal/conversation_rules.ts";
import { afterResponse, type WaitUntil } from "./background.ts";
import { type Env, lenientVar, secretValues } from "./env.ts";
import { describeError } from "./errors.ts";
import { capFilename, servedType } from "./media.ts";
import {
  deleteCopies,
  isKeyPart,
  type MediaBody,
  type MediaBucketLike,
  mediaIndexKey,
  type MediaObjectBodyLike,
  uploadedAtOf,
  uploadKey,
  uploadPrefix,
  userMediaKey,
  userMediaPrefix,
} from "./media_keys.ts";
import type { QueueLike, QueueMessageLike } from "./queue_types.ts";
import type { AppLogger } from "./types.ts";

/** A user's media to copy: the history entry that carries it. */
export interface UserMediaTask {
  /** A user's media. */
  kind: "user";
  /** The mini program. */
  appId: string;
  /** The user. */
  openId: string;
  /** The history entry. */
  seq: number;
  /** The entry's media_id. */
  mediaId: string;
  /** When the push was accepted, ms: WeChat forgets the media 3 days later. */
  receivedAt: number;
}

/** A file the service uploaded, to keep under its media_id. */
export interface UploadTask {
  /** An upload. */
  kind: "upload";
  /** The mini program. */
  appId: string;
  /** The media_id WeChat gave it. */
  mediaId: string;
  /** When WeChat took it, ms. */
  createdAt: number;
  /** The file as uploaded. */
  file: File;
}

/** A copy to make. */
export type MediaTask = UserMediaTask | UploadTask;

/** A user's media copy as the queue carries it (`KEFU_QUEUE`, beside the push jobs). */
export interface MediaJob extends Omit<UserMediaTask, "kind"> {
  /** Tells it from a push job. */
  kind: typeof MEDIA_JOB_KIND;
  /** The format's version. */
  v: 1;
}

/** The `kind` of a {@link MediaJob}. */
export const MEDIA_JOB_KIND = "kefu-edge.media-copy";

/** How long an accepted push's copy waits for the push to be answered before it may go anyway. */
const HOLD_MS = 60_000;
/** A push's claim while a delivery still holds it (a lease, an enqueuing mark): not answered yet. */
const STILL_HELD = /^(?:lease|enqueuing):/;
/** Copies waiting at once, at most (each upload holds its file in memory). */
const MAX_WAITING = 200;

/** What the copies need from the app. */
export interface MediaCopySettings {
  /** The env's bucket, or `undefined` when none is bound. */
  bucket(env: Env): MediaBucketLike | undefined;
  /** The env's mini program, with the AppSecret (getTempMedia). */
  miniProgram(env: Env): MiniProgram;
  /** The env's conversations (where a copy's key is recorded). */
  conversations(env: Env): ConversationStore | undefined;
  /** The env's queue: user media copies go through it when bound. */
  queue(env: Env): QueueLike | undefined;
  /** Largest copy, bytes (the upload limit). */
  maxBytes: number;
  /** Clock, ms. */
  now: () => number;
  /** Receives failed copies (no content, no media_id, no openid). */
  logger: AppLogger;
}

/** The copies waiting for their turn, for one bucket. */
class Waiting {
  /** Accepted pushes not answered yet, by conversation and push key. */
  readonly held = new Map<string, { task: UserMediaTask; since: number }>();
  /** Copies that may be made now. */
  ready: MediaTask[] = [];

  get empty(): boolean {
    return this.held.size === 0 && this.ready.length === 0;
  }

  add(task: MediaTask, logger: AppLogger): void {
    if (this.ready.length >= MAX_WAITING) {
      this.ready.shift();
      logger.warn(JSON.stringify({ event: "kefu-edge.media_copy_dropped", reason: "too_many_waiting" }));
    }
    this.ready.push(task);
  }

  take(now: number): MediaTask[] {
    for (const [key, { task, since }] of this.held) {
      // A push whose answer never settled its claim (a store that failed) goes anyway.
      if (now - since >= HOLD_MS) {
        this.held.delete(key);
        this.ready.push(task);
      }
    }
    const tasks = this.ready;
    this.ready = [];
    return tasks;
  }
}

/**
 * The app's media copies: wraps each env's conversations to note accepted media and purge
 * copies, runs the copies after answers and in the queue's consumer, keeps uploads, and finds
 * copies for `GET /api/media/:mediaId`. `createApp` makes one; it does nothing for an env
 * without a bucket.
 *
 * @example Without a bucket, the conversations are the env's own and there is no copy to find
 * ```ts
 * import { MemoryConversationStore } from "@kefu/edge";
 * import { MediaCopies } from "./media_copies.ts";
 * const copies = new MediaCopies({
 *   bucket: (env) => env.KEFU_MEDIA,
 *   miniProgram: () => {
 *     throw new Error("not needed without a bucket");
 *   },
 *   conversations: () => undefined,
 *   queue: () => undefined,
 *   maxBytes: 10 * 1024 * 1024,
 *   now: Date.now,
 *   logger: console,
 * });
 * const store = new MemoryConversationStore();
 * console.log(copies.conversations(store, {}) === store, await copies.find({}, "wx1", "MEDIA_ID")); // true undefined
 * ```
 */
export class MediaCopies {
  readonly #settings: MediaCopySettings;
  readonly #waiting = new WeakMap<object, Waiting>();
  readonly #wrapped = new WeakMap<object, WeakMap<object, ConversationStore>>();
  readonly #hooks = new WeakMap<object, Map<string, (upload: UploadedMedia) => void>>();

  /**
   * @param settings the bucket, mini program, conversations and queue of an env; limits, clock, logger
   */
  constructor(settings: MediaCopySettings) {
    this.#settings = settings;
  }

  /**
   * The env's conversations, wrapped when a bucket is bound: a push accepted with a user's
   * media is noted for a copy (made once the push is answered), and a purge deletes the user's
   * copies too. Every other operation is the store's own.
   *
   * @param store the env's conversations
   * @param env the bindings
   * @returns the store to use (the same object for the same store and bucket)
   */
  conversations(store: ConversationStore | undefined, env: Env): ConversationStore | undefined {
    const bucket = this.#settings.bucket(env);
    if (store === undefined || bucket === undefined) return store;
    let byBucket = this.#wrapped.get(store);
    if (byBucket === undefined) this.#wrapped.set(store, byBucket = new WeakMap());
    let wrapped = byBucket.get(bucket);
    if (wrapped === undefined) byBucket.set(bucket, wrapped = this.#wrap(store, bucket));
    return wrapped;
  }

  /**
   * What `uploadTempMedia` tells of each upload, for the env's bucket (the same function for the
   * same bucket): the file waits for the next answer, then is put in the bucket.
   *
   * @param env the bindings
   * @returns the hook, or `undefined` when no bucket is bound
   */
  uploadHook(env: Env): ((upload: UploadedMedia) => void) | undefined {
    const bucket = this.#settings.bucket(env);
    const appId = env.WECHAT_APPID;
    if (bucket === undefined || appId === undefined) return undefined;
    let byApp = this.#hooks.get(bucket);
    if (byApp === undefined) this.#hooks.set(bucket, byApp = new Map());
    let hook = byApp.get(appId);
    if (hook === undefined) {
      hook = (upload) =>
        this.#waitingFor(bucket).add({
          kind: "upload",
          appId,
          mediaId: upload.mediaId,
          createdAt: upload.createdAt,
          file: upload.file,
        }, this.#settings.logger);
      byApp.set(appId, hook);
    }
    return hook;
  }

  /**
   * After an answer: makes the copies that may be made now, in the background (`waitUntil`),
   * once the answer has been handed back. With a queue, a user's media goes to the queue.
   *
   * @param env the bindings
   * @param ctx the request's execution context, if any
   * @param after work to wait for first (the handler's `afterResponse` tasks, which may upload)
   */
  afterAnswer(env: Env, ctx: WaitUntil | undefined, after?: Promise<unknown>): void {
    const bucket = this.#settings.bucket(env);
    if (bucket === undefined) return;
    if (after === undefined && (this.#waiting.get(bucket)?.empty ?? true)) return;
    afterResponse(ctx, async () => {
      await after;
      await this.drain(env, { queue: true });
    });
  }

  /**
   * Makes the copies that may be made now, one after another; a failure is logged.
   *
   * @param env the bindings
   * @param options `queue`: send users' media to the queue when one is bound
   */
  async drain(env: Env, options: { queue: boolean }): Promise<void> {
    const bucket = this.#settings.bucket(env);
    if (bucket === undefined) return;
    const waiting = this.#waiting.get(bucket);
    if (waiting === undefined) return;
    const queue = options.queue ? this.#settings.queue(env) : undefined;
    for (const task of waiting.take(this.#settings.now())) {
      if (task.kind === "user" && queue !== undefined) {
        try {
          const job: MediaJob = { ...task, kind: MEDIA_JOB_KIND, v: 1 };
          await queue.send(job, { contentType: "json" });
          continue;
        } catch (err) {
          this.#log(env, task, err, { attempt: 1, retry: false, note: "not_enqueued_copied_now" });
        }
      }
      await this.#attempt(env, bucket, task, 1);
    }
  }

  /**
   * The queue consumer's part: makes the copy a {@link MediaJob} asks for, acknowledges it when
   * done or hopeless (WeChat forgot the media, it is too large), retries it with backoff
   * otherwise, as long as the queue retries push jobs.
   *
   * @param message the queue message
   * @param env the bindings
   * @param retries the backoff for a number of attempts, and the deliveries the queue makes
   */
  async consume(
    message: QueueMessageLike,
    env: Env,
    retries: { delaySeconds(attempts: number): number; maxAttempts: number },
  ): Promise<void> {
    const task = taskOfJob(message.body);
    const bucket = this.#settings.bucket(env);
    if (task === undefined || bucket === undefined) {
      this.#settings.logger.warn(JSON.stringify({
        event: "kefu-edge.media_job_refused",
        reason: task === undefined ? "malformed" : "no_bucket",
      }));
      message.ack();
      return;
    }
    const outcome = await this.#attempt(env, bucket, task, message.attempts, retries.maxAttempts);
    if (outcome === "retry") message.retry({ delaySeconds: retries.delaySeconds(message.attempts) });
    else message.ack();
  }

  /**
   * The copy of a media_id, when there is one. A bucket that fails is logged and counts as
   * no copy (the caller asks WeChat).
   *
   * @param env the bindings
   * @param appId the mini program
   * @param mediaId the media_id
   * @returns the object with its body, or `undefined`
   */
  async find(env: Env, appId: string, mediaId: string): Promise<MediaObjectBodyLike | undefined> {
    const bucket = this.#settings.bucket(env);
    if (bucket === undefined) return undefined;
    try {
      const key = (await bucket.head(mediaIndexKey(appId, mediaId)))?.customMetadata?.key;
      if (key === undefined) return undefined;
      return await bucket.get(key) ?? undefined;
    } catch (err) {
      this.#settings.logger.warn(JSON.stringify({
        event: "kefu-edge.media_copy_unreadable",
        error: describeError(err, secretValues(env)),
      }));
      return undefined;
    }
  }

  #waitingFor(bucket: MediaBucketLike): Waiting {
    let waiting = this.#waiting.get(bucket);
    if (waiting === undefined) this.#waiting.set(bucket, waiting = new Waiting());
    return waiting;
  }

  #wrap(store: ConversationStore, bucket: MediaBucketLike): ConversationStore {
    const waiting = this.#waitingFor(bucket);
    const { now, logger } = this.#settings;
    const held = (ref: ConversationRef, key: string) => `${ref.appId}\u0000${ref.openId}\u0000${key}`;
    const overrides: Partial<ConversationStore> = {
      accept: async (ref, input) => {
        const result = await store.accept(ref, input);
        const mediaId = input.entry.mediaId;
        const copyable = mediaId !== undefined && isKeyPart(mediaId) && isKeyPart(ref.openId) && isKeyPart(ref.appId);
        if (result.seq !== undefined && copyable && input.entry.sender === "user") {
          const [oldest] = waiting.held;
          if (oldest !== undefined && waiting.held.size >= MAX_WAITING) {
            // Too many pushes unanswered at once: the oldest goes now rather than never.
            waiting.held.delete(oldest[0]);
            waiting.add(oldest[1].task, logger);
          }
          waiting.held.set(held(ref, input.key), {
            task: { kind: "user", ...ref, seq: result.seq, mediaId, receivedAt: now() },
            since: now(),
          });
        }
        return result;
      },
      // The push is being answered once its claim is marked (done, queued) or released; a
      // lease renewed while the handler runs (WeChat still waiting) settles nothing.
      replaceClaim: async (ref, key, expected, value, ttlSeconds) => {
        try {
          return await store.replaceClaim(ref, key, expected, value, ttlSeconds);
        } finally {
          const found = value !== null && STILL_HELD.test(value) ? undefined : waiting.held.get(held(ref, key));
          if (found !== undefined) {
            waiting.held.delete(held(ref, key));
            waiting.add(found.task, logger);
          }
        }
      },
      purge: async (ref) => {
        await store.purge(ref);
        // Copies are made only of users whose ids fit in a key: nobody else has any.
        if (isKeyPart(ref.appId) && isKeyPart(ref.openId)) await purgeCopies(bucket, ref.appId, ref.openId);
      },
    };
    // Every other operation (and any the store adds) is the store's own, on the store.
    return new Proxy(store, {
      get(target, property) {
        if (typeof property === "string" && Object.hasOwn(overrides, property)) {
          return overrides[property as keyof ConversationStore];
        }
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** One try of a copy: `done` (made, or needless), `gave_up` (hopeless, logged) or `retry` (logged). */
  async #attempt(
    env: Env,
    bucket: MediaBucketLike,
    task: MediaTask,
    attempt: number,
    maxAttempts = 1,
  ): Promise<"done" | "gave_up" | "retry"> {
    try {
      if (task.kind === "upload") await this.#keepUpload(env, bucket, task);
      else await this.#copyUserMedia(env, bucket, task);
      return "done";
    } catch (err) {
      const retry = attempt < maxAttempts && !hopeless(err);
      this.#log(env, task, err, { attempt, retry });
      return retry ? "retry" : "gave_up";
    }
  }

  async #copyUserMedia(env: Env, bucket: MediaBucketLike, task: UserMediaTask): Promise<void> {
    const conversations = this.#settings.conversations(env);
    if (conversations === undefined) return; // no history to show it in
    if (this.#settings.now() >= task.receivedAt + MEDIA_LIFETIME_MS) throw new MediaExpiredError();
    const upstream = await this.#settings.miniProgram(env).customerServiceMessage.getTempMedia(task.mediaId);
    const key = userMediaKey(task.appId, task.openId, task.mediaId);
    const filename = filenameFromContentDisposition(upstream.headers.get("content-disposition"));
    await putCopy(bucket, key, upstream, this.#settings.maxBytes, filename);
    await bucket.put(mediaIndexKey(task.appId, task.mediaId), new Uint8Array(0), { customMetadata: { key } });
    const ref = { appId: task.appId, openId: task.openId };
    let recorded: boolean;
    try {
      recorded = await conversations.recordMediaCopy(ref, { seq: task.seq, mediaId: task.mediaId, key });
    } catch (err) {
      // Not recorded, so nothing would delete it with the entry: no copy is left behind.
      await deleteCopies(bucket, [key]).catch(() => {});
      throw err;
    }
    // The entry is gone (the user was purged meanwhile, or it passed retention): so is the copy.
    if (!recorded) await deleteCopies(bucket, [key]);
  }

  async #keepUpload(env: Env, bucket: MediaBucketLike, task: UploadTask): Promise<void> {
    if (!isKeyPart(task.appId) || !isKeyPart(task.mediaId)) return; // not an id WeChat gives
    const key = uploadKey(task.appId, task.createdAt, task.mediaId);
    await bucket.put(key, task.file, {
      httpMetadata: { contentType: servedType(task.file.type) },
      customMetadata: { filename: capFilename(task.file.name) },
    });
    await bucket.put(mediaIndexKey(task.appId, task.mediaId), new Uint8Array(0), { customMetadata: { key } });
    const days = lenientVar(env, "HISTORY_DAYS") ?? DEFAULT_CONVERSATION_SETTINGS.historyDays;
    await sweepUploads(bucket, task.appId, this.#settings.now() - days * 86_400_000);
  }

  #log(
    env: Env,
    task: MediaTask,
    err: unknown,
    details: { attempt: number; retry: boolean; note?: string },
  ): void {
    // No media_id, no openid, no content: the copy's kind, the try and why.
    this.#settings.logger.warn(JSON.stringify({
      event: "kefu-edge.media_copy_failed",
      media: task.kind,
      attempt: details.attempt,
      retry: details.retry,
      ...(details.note === undefined ? {} : { note: details.note }),
      error: describeError(err, secretValues(env)),
    }));
  }
}

/** WeChat keeps a user's media 3 days: a copy tried later has nothing to copy. */
class MediaExpiredError extends Error {
  constructor() {
    super("WeChat keeps media for 3 days: this one is gone");
    this.name = "MediaExpiredError";
  }
}

/** Whether trying again cannot help: WeChat forgot the media (40007), it is too large, or malformed. */
function hopeless(err: unknown): boolean {
  return err instanceof MediaExpiredError || err instanceof MediaTooLargeError || err instanceof ValidationError ||
    (err instanceof WeChatApiError && err.errcode === 40007);
}

function taskOfJob(body: unknown): UserMediaTask | undefined {
  const job = body as Partial<MediaJob> | null;
  if (typeof job !== "object" || job === null || job.kind !== MEDIA_JOB_KIND || job.v !== 1) return undefined;
  const { appId, openId, seq, mediaId, receivedAt } = job;
  if (!isKeyPart(appId) || !isKeyPart(openId) || !isKeyPart(mediaId)) return undefined;
  if (!Number.isSafeInteger(seq) || seq! < 1 || typeof receivedAt !== "number" || !Number.isFinite(receivedAt)) {
    return undefined;
  }
  return { kind: "user", appId, openId, seq: seq!, mediaId, receivedAt };
}

/**
 * Whether a queue message is a media copy (not a push job).
 *
 * @param body the message's body
 * @returns whether it carries the media job's `kind`
 * @example
 * ```ts
 * import { isMediaJob } from "./media_copies.ts";
 * console.log(isMediaJob({ kind: "kefu-edge.media-copy" }), isMediaJob({ v: 2 })); // true false
 * ```
 */
export function isMediaJob(body: unknown): boolean {
  return typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === MEDIA_JOB_KIND;
}

/** Workers' FixedLengthStream, where there is one: a stream R2 can take, of a length said beforehand. */
const FixedLengthStream = (globalThis as {
  FixedLengthStream?: new (length: number) => TransformStream<Uint8Array, Uint8Array>;
}).FixedLengthStream;

/**
 * Puts WeChat's media body in the bucket: streamed when WeChat says its length (and the runtime
 * can tell R2 the length of a stream), else read whole, up to `maxBytes`.
 */
async function putCopy(
  bucket: MediaBucketLike,
  key: string,
  upstream: Response,
  maxBytes: number,
  filename: string | undefined,
): Promise<void> {
  const header = upstream.headers.get("content-length");
  const length = header !== null && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
  if (length !== undefined && length > maxBytes) {
    await upstream.body?.cancel().catch(() => {});
    throw new MediaTooLargeError(length, maxBytes);
  }
  const options = {
    httpMetadata: { contentType: servedType(upstream.headers.get("content-type")) },
    customMetadata: filename === undefined ? {} : { filename: capFilename(filename) },
  };
  if (upstream.body !== null && length !== undefined && FixedLengthStream !== undefined) {
    const fixed = new FixedLengthStream(length);
    // A body that ends early or runs long fails the pipe, and with it the put.
    const piped = upstream.body.pipeTo(fixed.writable);
    const [put] = await Promise.allSettled([bucket.put(key, fixed.readable, options), piped]);
    if (put.status === "rejected") throw put.reason;
    await piped;
    return;
  }
  const body: MediaBody = upstream.body === null
    ? new Uint8Array(0)
    : await readStream(upstream.body, maxBytes, (seen) => new MediaTooLargeError(seen, maxBytes));
  await bucket.put(key, body, options);
}

/**
 * Deletes every copy of one user's media (and their index objects), a listing page at a time.
 *
 * @param bucket the bucket
 * @param appId the mini program
 * @param openId the user
 * @example
 * ```ts
 * import { purgeCopies } from "./media_copies.ts";
 * const keys = new Set(["media/wx1/o1/M1", "ids/wx1/M1", "media/wx1/o2/M2", "ids/wx1/M2"]);
 * const bucket = {
 *   list: async ({ prefix = "" } = {}) => ({
 *     objects: [...keys].filter((key) => key.startsWith(prefix)).map((key) => ({ key, size: 0, uploaded: new Date() })),
 *     truncated: false,
 *   }),
 *   delete: async (deleted: string | string[]) => [deleted].flat().forEach((key) => keys.delete(key)),
 *   head: async () => null,
 *   get: async () => null,
 *   put: async () => undefined,
 * };
 * await purgeCopies(bucket, "wx1", "o1");
 * console.log([...keys]); // ["media/wx1/o2/M2", "ids/wx1/M2"]
 * ```
 */
export async function purgeCopies(bucket: MediaBucketLike, appId: string, openId: string): Promise<void> {
  const prefix = userMediaPrefix(appId, openId);
  // Listed again from the start after each page is deleted: no cursor over a changing listing.
  for (let pages = 0; pages < 1000; pages++) {
    const page = await bucket.list({ prefix, limit: 500 });
    if (page.objects.length === 0) return;
    await deleteCopies(bucket, page.objects.map((object) => object.key));
    if (!page.truncated) return;
  }
}

/** Deletes the uploads kept since before `cutoff` (ms): the first ones listed, oldest first. */
async function sweepUploads(bucket: MediaBucketLike, appId: string, cutoff: number): Promise<void> {
  for (let pages = 0; pages < 10; pages++) {
    const page = await bucket.list({ prefix: uploadPrefix(appId), limit: 200 });
    const expired = page.objects.filter((object) => (uploadedAtOf(object.key) ?? Number.POSITIVE_INFINITY) < cutoff);
    if (expired.length > 0) await deleteCopies(bucket, expired.map((object) => object.key));
    if (expired.length < page.objects.length || !page.truncated) return;
  }
}
