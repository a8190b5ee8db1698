/**
 * `PushReceiver`: answers WeChat's message push (URL verification and deliveries) as a
 * fetch handler — verify, decrypt, parse, deduplicate, run the handler, reply.
 *
 * @module
 */
import { PushVerificationError, ValidationError } from "../errors.ts";
import type { KeyValueStore } from "../stores/key_value_store.ts";
import { MemoryStore } from "../stores/memory_store.ts";
import { readStream } from "../internal/bytes.ts";
import { sleep, withDeadline } from "../internal/deadline.ts";
import type { Logger } from "../logger.ts";
import { decryptStartingWith, MessageCrypto, pushSignature } from "./crypto.ts";
import { constantTimeEqual } from "../internal/constant_time.ts";
import { sha1Hex } from "../runtime/crypto.ts";
import { derivedHmacKey, hmacSha256Hex } from "../internal/hmac.ts";
import { canonicalJson } from "../internal/canonical_json.ts";
import { errorResponse, JSON_HEADERS } from "../internal/error_response.ts";
import { userPart } from "../internal/store_keys.ts";
import { badRequest, detectFormat, parseEnvelope, parseFields, type PushFormat, typePushMessage } from "./parse.ts";
import {
  Claims,
  type ClaimState,
  markValue,
  noFaults,
  noteFault,
  parseState,
  remainingMs,
  type StoreFaults,
} from "../internal/push_claims.ts";
import { ConversationClaims, conversationUser, purgedUser } from "../conversation/claims.ts";
import type { ConversationStore, HandoffState } from "../conversation/types.ts";
import { type ConversationContext, conversationContext } from "../conversation/context.ts";
import type { SendOptions } from "../customer_service/schemas.ts";
import { actionOf, type SendWindowTracker } from "../customer_service/send_window.ts";
import { envelopeBody, Reply, replyXml } from "./reply.ts";
import type { PushMessage } from "./types.ts";

/** The `push` option of `MiniProgram`: the message-push settings from the admin console. */
export interface PushOptions {
  /** The push Token. */
  token: string;
  /** The EncodingAESKey (43 characters of [A-Za-z0-9]); needed for compatible and safe mode. */
  encodingAESKey?: string | undefined;
  /** Where handled messages are marked; default a {@link MemoryStore}. Share one (KV) across isolates. */
  dedupeStore?: KeyValueStore | undefined;
  /** Largest accepted distance between the request's timestamp and `now()`; default 300. */
  maxSkewSeconds?: number | undefined;
  /** Largest accepted body; default 64 KiB. Larger bodies are answered 413. */
  maxBodyBytes?: number | undefined;
  /**
   * The deduplication key of a message, replacing the default (`MsgId` with the sender,
   * or a hash of every field for events). It is stored under kefu-edge's prefix, per AppID
   * and sender.
   */
  dedupeKey?: ((message: PushMessage) => string) | undefined;
  /**
   * How long a claim protects a message without being renewed, in seconds; default 5. The
   * delivery running the handler renews it every 40% of that while it runs, so a holder
   * that dies (an isolate evicted mid-handler) frees the message within this time, before
   * WeChat's next try, and that try runs the handler.
   */
  leaseSeconds?: number | undefined;
  /**
   * Longest wait for one call to the dedupe store, in ms; default 1500. A call that takes
   * longer counts as failed: a claim then counts as won (the handler runs, at least once).
   */
  storeTimeoutMs?: number | undefined;
  /**
   * Longest time one delivery may take before it is answered 503 (WeChat retries), in ms;
   * default 4500, under WeChat's 5 s. The handler is not stopped, but this delivery no longer
   * waits for it nor renews its claim, and WeChat's retries do not join it.
   */
  deliveryBudgetMs?: number | undefined;
  /**
   * How long a delivery that finds the message claimed by another one waits for its outcome
   * before answering non-success (so WeChat retries), in ms; default 1500.
   */
  claimWaitMs?: number | undefined;
  /**
   * With conversations: call the handler for the messages of a conversation a person answers
   * (`human`) or was asked for (`waiting`) too, instead of only keeping them in the history, for
   * a bridge that shows every message to the people who answer (the worker's Chatwoot bridge).
   * The handler then keeps the bot out itself (`context.conversation.handoff()`). Default `false`.
   */
  handleWhileHeld?: boolean | undefined;
}

/** Settings of {@link PushReceiver}: the push options plus what the mini program supplies. */
export interface PushReceiverOptions extends Partial<PushOptions> {
  /** The mini program's AppID, which safe-mode messages must end with. */
  appId: string;
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
  /** Receives warnings (a failing store, a failing handler); never given message content. */
  logger?: Logger | undefined;
  /** The send-window tracker: each verified user action (a message, a session entry) opens the window. */
  windows?: SendWindowTracker | undefined;
  /**
   * The conversations: each user's pushes are claimed, appended to the history and open the
   * window in one operation there; while a person answers (`human`) or one was asked for
   * (`waiting`), the handler is not called; WeChat's deletion events purge the user.
   */
  conversations?: ConversationStore | undefined;
  /** How `context.conversation.reply` sends text as the bot (the MiniProgram's `sendText`). */
  replyText?: ((openId: string, text: string, options: SendOptions) => Promise<unknown[]>) | undefined;
}

/** What a push handler learns besides the message. */
export interface PushHandlerContext {
  /** The request (its body has been read); absent when the handler runs from a queue. */
  request?: Request | undefined;
  /** 1 for the first run of this message's handler, counting runs from a queue's retries. */
  attempt: number;
  /** Whether the message came encrypted (compatible or safe mode). */
  encrypted: boolean;
  /** The format of the body. */
  format: PushFormat;
  /**
   * An id of this message, the same on every retry WeChat makes of it (40 hex digits, a
   * hash of the deduplication key): pass it on to your own systems so they can deduplicate.
   */
  deliveryId: string;
  /**
   * The user's conversation, with conversations configured (`MiniProgram({ conversations })`):
   * its history and chat turns, who answers, `requestHuman(reason)`, and `reply(text)` as the bot.
   */
  conversation?: ConversationContext | undefined;
}

/**
 * Handles one pushed message. Return nothing to answer `success`, or a {@link Reply}.
 * A thrown error answers 500, and WeChat retries.
 */
export type PushHandler = (
  message: PushMessage,
  context: PushHandlerContext,
) => void | Reply | undefined | Promise<void | Reply | undefined>;

/**
 * A verified message waiting in a queue for its handler (see {@link PushReceiver.handleQueued}):
 * plain JSON, so any queue can carry it.
 */
export interface PushJob {
  /** The format version of the job (2: signed). */
  v: 2;
  /** The message's deduplication key in the store. */
  key: string;
  /** The message's delivery id (see {@link PushHandlerContext.deliveryId}). */
  deliveryId: string;
  /** The verified message. */
  message: PushMessage;
  /** Whether it came encrypted. */
  encrypted: boolean;
  /** The body format it came in. */
  format: PushFormat;
  /** When it was received, ms. */
  receivedAt: number;
  /**
   * HMAC-SHA256 of the job's other fields, under a key derived from the push token: a job
   * that was not made by a receiver with this token is refused, so access to the queue
   * alone cannot run the handler on a forged message or mark a real one handled.
   */
  sig: string;
}

/**
 * Decides a passive reply (`transfer_customer_service`) at once, while WeChat waits, in
 * queue mode: the handler itself runs later, when WeChat has been answered.
 */
export type ReplyDecider = (
  message: PushMessage,
  context: PushHandlerContext,
) => Reply | undefined | void | Promise<Reply | undefined | void>;

/** Settings of {@link PushReceiver.handleQueued}. */
export interface QueuedPushOptions {
  /** Puts a verified, claimed message on the queue; a rejection answers non-success so WeChat retries. */
  enqueue(job: PushJob): Promise<void>;
  /**
   * Longest wait for `enqueue`, in ms; default 2000. A call that has not settled by then is
   * taken as failed: WeChat is answered non-success and its retry enqueues again (a job that
   * landed after all is then a duplicate, which the consumer's done check absorbs).
   */
  enqueueTimeoutMs?: number | undefined;
  /** The passive reply, decided before answering; default none (`success`). */
  reply?: ReplyDecider | undefined;
  /** Longest time `reply` may take, in ms, before `success` is answered without it; default 3000. */
  replyBudgetMs?: number | undefined;
}

/** What {@link PushReceiver.processQueued} did with a job. */
export type ProcessOutcome =
  /** The handler ran and succeeded; the message is marked handled. */
  | "done"
  /** The message was already handled: nothing ran. */
  | "duplicate"
  /** Another consumer is running this message's handler right now: retry the job after `retryAfterSeconds`. */
  | "busy"
  /** Not a job of this receiver (malformed, forged, or from an older version): nothing ran; don't retry it. */
  | "refused";

/** The result of {@link PushReceiver.processQueued}. */
export interface ProcessResult {
  /** What was done. */
  outcome: ProcessOutcome;
  /** `busy`: when the other consumer's claim runs out if it is not renewed (its holder died), in seconds. */
  retryAfterSeconds?: number | undefined;
  /** `refused`: why (`malformed`, `unsigned`, `foreign_key`, `key_mismatch`, `bad_signature`). */
  reason?: string | undefined;
}

/** Default for {@link PushOptions.maxSkewSeconds}. */
export const DEFAULT_MAX_SKEW_SECONDS = 300;
/** Default for {@link PushOptions.maxBodyBytes}: 64 KiB. */
export const DEFAULT_MAX_PUSH_BODY_BYTES = 64 * 1024;
/** Prefix of every dedupe mark in the store. */
export const DEDUPE_KEY_PREFIX = "kefu-edge:push:";
/** Default for {@link QueuedPushOptions.replyBudgetMs}. */
export const DEFAULT_REPLY_BUDGET_MS = 3000;

/** Default for {@link PushOptions.leaseSeconds}. */
export const DEFAULT_LEASE_SECONDS = 5;
/** Default for {@link PushOptions.storeTimeoutMs}. */
export const DEFAULT_STORE_TIMEOUT_MS = 1500;
/** Default for {@link PushOptions.deliveryBudgetMs}. */
export const DEFAULT_DELIVERY_BUDGET_MS = 4500;
/** Default for {@link QueuedPushOptions.enqueueTimeoutMs}. */
export const DEFAULT_ENQUEUE_TIMEOUT_MS = 2000;
/** Default for {@link PushOptions.claimWaitMs}. */
export const DEFAULT_CLAIM_WAIT_MS = 1500;

// WeChat retries for about 15 s, but a captured request stays acceptable until its
// timestamp is maxSkew old and may be used up to maxSkew early: the mark must outlive
// both for a replay to be caught, with a minute to spare.
const MIN_DEDUPE_TTL_SECONDS = 300;
// A queued message is marked handled for as long as a queue may still redeliver it
// (Cloudflare Queues keep a message up to 4 days by default).
const QUEUED_MARK_TTL_SECONDS = 4 * 24 * 3600;
const CLAIM_POLL_MS = 100;
// While a job is put on the queue: long enough for the enqueue deadline and the write of the
// queued mark, short enough that a delivery cut off in between frees the message before
// WeChat's next try (5 s later).
const ENQUEUING_SECONDS = 4;
const JOB_KEY_LABEL = "kefu-edge push job v2";

/** What came of one delivery, shared by concurrent duplicates in an isolate. */
type Outcome =
  | { ok: true; reply: Reply | undefined }
  | { ok: false; busy: boolean; timedOut?: boolean };

// One flight per store and key for the whole isolate, so that receivers sharing a
// store (several MiniProgram instances) still run the handler once for a message.
const flights = new WeakMap<KeyValueStore, Map<string, Promise<Outcome>>>();

interface Delivery {
  key: string;
  message: PushMessage;
  context: PushHandlerContext;
  nonce: string;
}

/** How a delivery is handled: run the handler now, or claim, enqueue and answer. */
type Mode = { kind: "handle"; handler: PushHandler } | { kind: "queue"; options: QueuedPushOptions };

/**
 * Receives WeChat's message push. `mp.push` is one; `handle` is a fetch handler for any
 * runtime. Every refusal is a 4xx JSON `{ "error": { "code", "message" } }`; bad input
 * never throws. Without a push token it answers 503 to everything (fail closed).
 *
 * @example A fetch handler in safe mode
 * ```ts
 * import { MiniProgram, Reply } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const push = { token: "TOKEN", encodingAESKey: "EncodingAESKey43CharactersLong0123456789abc" };
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push });
 * // `export default { fetch: handler }` on Workers, or given to the server on Deno, Bun or Node
 * const handler = (request: Request) =>
 *   mp.push.handle(request, (msg) => {
 *     if (msg.MsgType === "text") return Reply.transferCustomerService();
 *   });
 *
 * // The emulated WeChat signs, encrypts and delivers a user's message, and decrypts the reply:
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push });
 * const outcome = await (await wechat.user("OPENID").says("Hello")).deliver(handler);
 * console.log(outcome.ok, outcome.encrypted, outcome.reply?.includes("transfer_customer_service")); // true true true
 * ```
 */
export class PushReceiver {
  readonly #appId: string;
  readonly #token: string | undefined;
  readonly #crypto: MessageCrypto | undefined;
  readonly #store: KeyValueStore;
  readonly #claims: Claims;
  readonly #maxSkewSeconds: number;
  readonly #maxBodyBytes: number;
  readonly #dedupeTtlSeconds: number;
  readonly #leaseSeconds: number;
  readonly #claimWaitMs: number;
  readonly #deliveryBudgetMs: number;
  readonly #dedupeKey: ((message: PushMessage) => string) | undefined;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #windows: SendWindowTracker | undefined;
  readonly #conversations: ConversationStore | undefined;
  readonly #replyText: (openId: string, text: string, options: SendOptions) => Promise<unknown[]>;
  readonly #storeTimeoutMs: number;
  readonly #handleWhileHeld: boolean;
  #jobKey: Promise<CryptoKey> | undefined;

  /**
   * Creates the receiver; `MiniProgram` does this for you from its `push` option.
   *
   * @param options the push settings, the AppID, the clock and the logger
   * @throws {ValidationError} for an invalid EncodingAESKey, skew or body limit
   */
  constructor(options: PushReceiverOptions) {
    this.#appId = options.appId;
    this.#token = typeof options.token === "string" && options.token !== "" ? options.token : undefined;
    const aesKey = options.encodingAESKey;
    this.#crypto = this.#token === undefined || aesKey === undefined || aesKey === ""
      ? undefined
      : new MessageCrypto({ token: this.#token, encodingAESKey: aesKey, appId: options.appId });
    this.#maxSkewSeconds = nonNegative("push.maxSkewSeconds", options.maxSkewSeconds, DEFAULT_MAX_SKEW_SECONDS);
    this.#maxBodyBytes = nonNegative("push.maxBodyBytes", options.maxBodyBytes, DEFAULT_MAX_PUSH_BODY_BYTES);
    this.#dedupeTtlSeconds = Math.max(MIN_DEDUPE_TTL_SECONDS, 2 * this.#maxSkewSeconds + 60);
    this.#leaseSeconds = Math.max(
      0.1,
      nonNegative("push.leaseSeconds", options.leaseSeconds, DEFAULT_LEASE_SECONDS),
    );
    this.#claimWaitMs = nonNegative("push.claimWaitMs", options.claimWaitMs, DEFAULT_CLAIM_WAIT_MS);
    this.#deliveryBudgetMs = nonNegative("push.deliveryBudgetMs", options.deliveryBudgetMs, DEFAULT_DELIVERY_BUDGET_MS);
    const storeTimeoutMs = nonNegative("push.storeTimeoutMs", options.storeTimeoutMs, DEFAULT_STORE_TIMEOUT_MS);
    if (options.dedupeKey !== undefined && typeof options.dedupeKey !== "function") {
      throw new ValidationError("push.dedupeKey", "must be a function of the message");
    }
    this.#dedupeKey = options.dedupeKey;
    this.#now = options.now ?? Date.now;
    this.#store = options.dedupeStore ?? new MemoryStore({ now: this.#now });
    this.#logger = options.logger ?? console;
    this.#claims = new Claims(this.#store, { timeoutMs: storeTimeoutMs, now: this.#now });
    this.#windows = options.windows;
    this.#conversations = options.conversations;
    this.#replyText = options.replyText ??
      (() => Promise.reject(new ValidationError("push.replyText", "not configured: replies go through a MiniProgram")));
    this.#storeTimeoutMs = storeTimeoutMs;
    this.#handleWhileHeld = options.handleWhileHeld === true;
  }

  /** Whether a push token is configured; when not, every request is answered 503. */
  get configured(): boolean {
    return this.#token !== undefined;
  }

  /**
   * Answers one request from WeChat: GET is URL verification, POST a message delivery.
   *
   * @param request the incoming request
   * @param handler runs once per message (retries are deduplicated)
   * @returns the response to send; never rejects
   * @example Each message once, however often WeChat retries it
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const seen: string[] = [];
   * const handler = (request: Request) => mp.push.handle(request, (msg) => void seen.push(msg.MsgType));
   *
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const push = await wechat.user("OPENID").says("Hello");
   * await push.deliver(handler);
   * await push.deliver(handler); // WeChat's retry of the same message
   * console.log(seen); // ["text"]
   * ```
   */
  handle(request: Request, handler: PushHandler): Promise<Response> {
    return this.#entry(request, { kind: "handle", handler });
  }

  /**
   * Queue mode: answers WeChat as soon as a verified message is claimed and enqueued, so a
   * slow handler never makes WeChat retry or show "该小程序客服暂时无法提供服务". A passive
   * reply can still be decided at once (`reply`); the handler runs later in the queue's
   * consumer through {@link PushReceiver.processQueued}. WeChat's retries of a queued message
   * are answered alike without enqueueing it again.
   *
   * @param request the incoming request
   * @param options `enqueue` (required), `reply` and `replyBudgetMs`
   * @returns the response to send; never rejects
   * @example Answer at once, handle later
   * ```ts
   * import { MiniProgram, type PushJob } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const queue: PushJob[] = []; // on Workers: enqueue: (job) => env.KEFU_QUEUE.send(job)
   * const handler = (request: Request) => mp.push.handleQueued(request, { enqueue: async (job) => void queue.push(job) });
   *
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const outcome = await (await wechat.user("OPENID").says("Hello")).deliver(handler);
   * console.log(outcome.responseText, queue[0]?.message.MsgType); // "success" "text"
   * ```
   */
  handleQueued(request: Request, options: QueuedPushOptions): Promise<Response> {
    return this.#entry(request, { kind: "queue", options });
  }

  /**
   * Runs the handler of a job that {@link PushReceiver.handleQueued} enqueued, at most once
   * per message however often the queue delivers the job: a message already handled is
   * `duplicate`; one whose handler runs in another consumer right now is `busy`, to retry
   * after `retryAfterSeconds` (when that consumer's claim runs out if it died); a job this
   * receiver did not make (forged, altered, or from a version before jobs were signed) is
   * `refused`, to acknowledge without retrying. A failing handler rejects, and the job should
   * be retried; the message stays unhandled until one run succeeds.
   *
   * @param job the job, as enqueued
   * @param handler the push handler (its passive replies are ignored: WeChat was answered already)
   * @param options `attempt`: how many times the queue has delivered the job (1 the first time)
   * @returns what was done
   * @throws what the handler threw
   * @example A queue consumer
   * ```ts
   * import { MiniProgram, type PushHandler, type PushJob } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const jobs: PushJob[] = [];
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * await (await wechat.user("OPENID").says("Hello")).deliver((request) =>
   *   mp.push.handleQueued(request, { enqueue: async (job) => void jobs.push(job) })
   * );
   *
   * // On Workers, the body of `async queue(batch)`: m.ack() after done, duplicate or refused;
   * // m.retry({ delaySeconds: retryAfterSeconds }) when busy; m.retry() with backoff when it threw.
   * const handler: PushHandler = (message) => void console.log(message.MsgType); // "text"
   * const job = jobs[0]!;
   * console.log((await mp.push.processQueued(job, handler, { attempt: 1 })).outcome); // "done"
   * console.log((await mp.push.processQueued(job, handler, { attempt: 2 })).outcome); // "duplicate"
   * ```
   */
  async processQueued(job: PushJob, handler: PushHandler, options: { attempt?: number } = {}): Promise<ProcessResult> {
    const refusal = await this.#checkJob(job);
    if (refusal !== undefined) {
      const deliveryId = typeof job?.deliveryId === "string" ? job.deliveryId.slice(0, 64) : undefined;
      this.#logger.warn(JSON.stringify({ event: "kefu-edge.job_refused", reason: refusal, deliveryId }));
      return { outcome: "refused", reason: refusal };
    }
    const faults = noFaults();
    const marks = this.#claimsFor(job.message, job.deliveryId).claims;
    try {
      const raw = await marks.readRaw(job.key, faults);
      const current = parseState(raw);
      if (current.state === "done") return { outcome: "duplicate" };
      const runKey = `${job.key}:run`;
      const ttlSeconds = this.#leaseSeconds;
      const lease = this.#claims.lease(ttlSeconds);
      if (!await this.#claims.claim(runKey, lease.value, { ttlSeconds }, faults)) {
        // Another consumer runs it, or ran it and died: its lease, no longer renewed then,
        // runs out within leaseSeconds. Come back when it would have.
        const holder = await this.#claims.read(runKey, faults);
        const wait = remainingMs(holder, this.#now(), ttlSeconds * 1000);
        return { outcome: "busy", retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) };
      }
      const reply = current.state === "queued" ? current.reply : undefined;
      const plain: PushHandlerContext = {
        encrypted: job.encrypted,
        format: job.format,
        deliveryId: job.deliveryId,
        attempt: options.attempt ?? 1,
      };
      const openId = this.#conversations === undefined ? undefined : conversationUser(job.message);
      const context = openId === undefined
        ? plain
        : this.#withConversation(plain, { appId: this.#appId, openId }, undefined);
      let result: unknown;
      try {
        const run = Promise.resolve().then(() => handler(job.message, context));
        result = await this.#claims.hold(runKey, lease, ttlSeconds, faults, run);
      } catch (err) {
        // Counted on the queued marker, for the dead-letter log; then free for the retry.
        const failed = markValue("queued", reply, options.attempt ?? 1);
        await this.#mark(marks, job.key, raw, failed, QUEUED_MARK_TTL_SECONDS, faults);
        await this.#claims.release(runKey, lease.value, faults);
        throw err;
      }
      if (result instanceof Reply) {
        this.#logger.warn(`Push handler replied ${result.type} from the queue: WeChat was answered already`);
      }
      // The done mark is checked before the run lease, which then runs out on its own.
      await this.#mark(marks, job.key, raw, markValue("done", reply), QUEUED_MARK_TTL_SECONDS, faults);
      return { outcome: "done" };
    } finally {
      this.#logFaults(faults, job.deliveryId);
    }
  }

  /**
   * Why a job is refused, or `undefined` for a job this receiver made: the current format, a
   * key under kefu-edge's prefix for this AppID that is the message's own dedupe key, its
   * delivery id, and a valid signature.
   */
  async #checkJob(job: PushJob): Promise<string | undefined> {
    if (typeof job !== "object" || job === null || typeof job.message !== "object" || job.message === null) {
      return "malformed";
    }
    if ((job as { v?: unknown }).v === 1) return "unsigned";
    if (job.v !== 2 || typeof job.key !== "string" || typeof job.sig !== "string") return "malformed";
    if (!job.key.startsWith(`${DEDUPE_KEY_PREFIX}${this.#appId}:`)) return "foreign_key";
    let key: string;
    try {
      key = this.#keyOf(job.message);
    } catch {
      return "malformed";
    }
    if (key !== job.key || job.deliveryId !== sha1Hex(key)) return "key_mismatch";
    if (!constantTimeEqual(job.sig, await this.#signJob(job))) return "bad_signature";
    return undefined;
  }

  /** The signature of a job's fields (all but `sig`), under a key derived from the push token. */
  async #signJob(job: Omit<PushJob, "sig">): Promise<string> {
    this.#jobKey ??= derivedHmacKey(this.#token!, JOB_KEY_LABEL);
    const { key, deliveryId, message, encrypted, format, receivedAt } = job;
    const fields = canonicalJson({ v: 2, key, deliveryId, message, encrypted, format, receivedAt });
    return await hmacSha256Hex(await this.#jobKey, fields);
  }

  /**
   * How many times the consumer's handler has failed on a queued job so far (what
   * {@link PushReceiver.processQueued} recorded), or `undefined` when that is not known: for the
   * dead-letter log and list.
   *
   * @param job the job
   * @returns the number of failed attempts recorded
   * @example
   * ```ts
   * import { MiniProgram, type PushJob } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const jobs: PushJob[] = [];
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * await (await wechat.user("OPENID").says("Hello")).deliver((request) =>
   *   mp.push.handleQueued(request, { enqueue: async (job) => void jobs.push(job) })
   * );
   * const down = () => { throw new Error("backend down"); };
   * await mp.push.processQueued(jobs[0]!, down, { attempt: 1 }).catch(() => {});
   * await mp.push.processQueued(jobs[0]!, down, { attempt: 2 }).catch(() => {});
   * console.log(await mp.push.failedAttempts(jobs[0]!)); // 2
   * ```
   */
  async failedAttempts(job: PushJob): Promise<number | undefined> {
    if (typeof job?.key !== "string") return undefined;
    const state = await this.#claimsFor(job.message, job.deliveryId).claims.read(job.key, noFaults());
    return state.state === "queued" ? state.failedAttempts : undefined;
  }

  async #entry(request: Request, mode: Mode): Promise<Response> {
    try {
      return await this.#handle(request, mode);
    } catch (err) {
      if (err instanceof PushVerificationError) {
        this.#logRefusal(request, err);
        const headers = err.reason === "unsupported_method" ? { allow: "GET, POST" } : undefined;
        return errorResponse(err.status, { code: err.reason, message: err.message }, headers);
      }
      this.#logger.warn(`Push receiver failed: ${errorName(err)}`);
      return errorResponse(500, { code: "internal_error", message: "The push receiver failed" });
    }
  }

  /**
   * One line per refusal, as JSON so log search can filter on it: the reason and the
   * message (which names the failed check), and the request's timestamp and nonce to find
   * it in WeChat's console. Never the body, a signature, the token or the key.
   */
  #logRefusal(request: Request, err: PushVerificationError): void {
    let query: URLSearchParams | undefined;
    try {
      query = new URL(request.url).searchParams;
    } catch {
      query = undefined;
    }
    const line: Record<string, unknown> = {
      event: "kefu-edge.push_refused",
      status: err.status,
      reason: err.reason,
      message: err.message,
      method: request.method,
    };
    for (const name of ["timestamp", "nonce"] as const) {
      const value = query?.get(name);
      if (value) line[name] = value.slice(0, 64);
    }
    this.#logger.warn(JSON.stringify(line));
  }

  async #handle(request: Request, mode: Mode): Promise<Response> {
    if (this.#token === undefined) {
      return errorResponse(503, {
        code: "push_not_configured",
        message: "Message push is not configured: no push token",
      });
    }
    if (request.method !== "GET" && request.method !== "POST") {
      throw new PushVerificationError("unsupported_method", "Method not allowed: use GET or POST");
    }
    const query = queryOf(request.url);
    const signed = {
      signature: requireParam(query, "signature"),
      timestamp: requireParam(query, "timestamp"),
      nonce: requireParam(query, "nonce"),
    };
    if (request.method === "GET") {
      // URL verification: plaintext even in safe mode, and nothing but the echo.
      const echostr = requireParam(query, "echostr");
      this.#verify(signed.signature, signed.timestamp, signed.nonce);
      return new Response(echostr, { headers: TEXT_HEADERS });
    }
    return await this.#receive(request, query, signed, mode);
  }

  /** A delivery: everything about the query is checked before the body is read. */
  async #receive(
    request: Request,
    query: URLSearchParams,
    { signature, timestamp, nonce }: { signature: string; timestamp: string; nonce: string },
    mode: Mode,
  ): Promise<Response> {
    const startedAt = Date.now(); // the budget runs on real time, whatever clock `now` is
    if (!/^\d{1,12}$/.test(timestamp)) throw badRequest("Invalid query parameter: timestamp");
    this.#verify(signature, timestamp, nonce);
    this.#checkSkew(timestamp);
    const encrypted = isEncrypted(query.get("encrypt_type"));
    if (!encrypted && this.#crypto !== undefined) {
      // `signature` covers the token, timestamp and nonce, none of the body: with a key
      // configured only msg_signature (over Encrypt) proves a body came from WeChat, and
      // compatible mode sends encrypt_type=aes as well, so no real push lands here.
      throw new PushVerificationError(
        "encryption_required",
        "Encryption required: an EncodingAESKey is configured, so only encrypt_type=aes with msg_signature is accepted",
      );
    }
    const msgSignature = encrypted ? requireParam(query, "msg_signature") : "";
    if (encrypted && this.#crypto === undefined) {
      return errorResponse(503, {
        code: "push_not_configured",
        message: "Message push is not configured: no EncodingAESKey",
      });
    }
    const body = await readBody(request, this.#maxBodyBytes);
    const format = requireFormat(body);
    const fields = encrypted
      ? await this.#open(parseEnvelope(body, format), format, msgSignature, timestamp, nonce)
      : parseFields(body, format);
    const { message, mismatch } = typePushMessage(fields);
    if (mismatch !== undefined) {
      // Verified, so never refused: it reaches the handler untyped, and the log says why.
      this.#logger.warn(
        JSON.stringify({ event: "kefu-edge.push_untyped", kind: mismatch.kind, field: mismatch.field }),
      );
    }
    const faults = noFaults();
    if (!encrypted) await this.#claimQuery(timestamp, nonce, body, faults);
    const key = this.#keyOf(message);
    const context = handlerContext(request, encrypted, format, key);
    const delivery: Delivery = { key, message, context, nonce };
    const outcome = await this.#dispatch(delivery, mode, faults, startedAt);
    return await this.#answer(outcome, delivery);
  }

  /** The message's key in the store: per AppID and sender, so a store can keep each user's apart. */
  #keyOf(message: PushMessage): string {
    const user = userPart(message.FromUserName);
    const base = `${DEDUPE_KEY_PREFIX}${this.#appId}:${user}`;
    if (this.#dedupeKey !== undefined) {
      const custom = this.#dedupeKey(message);
      if (typeof custom !== "string" || custom === "") {
        throw new ValidationError("push.dedupeKey", "must return a non-empty string");
      }
      return `${base}:custom:${sha1Hex(custom)}`;
    }
    // WeChat advises MsgId for messages; events have none, and several may share a sender
    // and a second (wxa_media_check results differ only in trace_id), so an event is keyed
    // by all its fields: distinct events differ, WeChat's retries of one are identical.
    if (typeof message.MsgId === "string" && /^\d{1,20}$/.test(message.MsgId)) return `${base}:msg:${message.MsgId}`;
    return `${base}:event:${sha1Hex(canonicalJson(message))}`;
  }

  /**
   * Plain mode: `signature` does not cover the body, so anyone holding one signed query
   * (from a log, a proxy, a URL-verification GET) could attach any body to it while its
   * timestamp is fresh. A query is therefore accepted for one body only: the first body
   * seen with a (timestamp, nonce) pair is remembered for the skew window, and the same
   * pair with another body is refused. WeChat's retries repeat the body, so they pass.
   */
  async #claimQuery(timestamp: string, nonce: string, body: string, faults: StoreFaults): Promise<void> {
    const key = `${DEDUPE_KEY_PREFIX}${this.#appId}:query:${sha1Hex(`${timestamp}\n${nonce}`)}`;
    const digest = sha1Hex(body);
    const ttl = { ttlSeconds: this.#dedupeTtlSeconds };
    // Like the dedupe marks: a failing store must not refuse WeChat's own messages, so a
    // query that cannot be checked (noted with the delivery's store faults) goes through.
    if (await this.#claims.claim(key, digest, ttl, faults, "query")) return;
    const seen = await this.#claims.readRaw(key, faults, "query");
    if (seen !== null && seen !== digest) {
      throw new PushVerificationError("nonce_reused", "Query reused: this timestamp and nonce came with another body");
    }
  }

  #verify(received: string, timestamp: string, nonce: string, encrypt?: string): void {
    const expected = pushSignature(this.#token!, timestamp, nonce, encrypt);
    if (!constantTimeEqual(received.toLowerCase(), expected)) {
      const which = encrypt === undefined ? "signature" : "msg_signature";
      throw new PushVerificationError("bad_signature", `Signature mismatch: ${which}`);
    }
  }

  #checkSkew(timestamp: string): void {
    const skew = Math.abs(this.#now() / 1000 - Number(timestamp));
    if (!(skew <= this.#maxSkewSeconds)) {
      throw new PushVerificationError("stale_timestamp", "Timestamp is too far from the current time");
    }
  }

  /** Safe and compatible mode: check msg_signature over Encrypt, then decrypt and parse the inner message. */
  async #open(
    envelope: Record<string, unknown>,
    format: PushFormat,
    msgSignature: string,
    timestamp: string,
    nonce: string,
  ): Promise<Record<string, unknown>> {
    const encrypt = envelope.Encrypt;
    if (typeof encrypt !== "string" || encrypt === "") throw badRequest("Missing Encrypt in an encrypted body");
    this.#verify(msgSignature, timestamp, nonce, encrypt);
    const inner = await decryptStartingWith(this.#crypto!, encrypt, MESSAGE_START[format]);
    return parseFields(inner, requireFormat(inner));
  }

  // Concurrent duplicates within one isolate join one flight; across isolates the store's
  // claim decides. Each delivery waits for the flight within its own budget: past it, it is
  // answered 503 and the flight leaves the map, so WeChat's next try starts afresh rather
  // than joining a flight that may never end (a hung store, a handler that never returns).
  async #dispatch(delivery: Delivery, mode: Mode, faults: StoreFaults, startedAt: number): Promise<Outcome> {
    let inFlight = flights.get(this.#store);
    if (inFlight === undefined) flights.set(this.#store, inFlight = new Map());
    let flight = inFlight.get(delivery.key);
    let answered: (() => void) | undefined;
    if (flight === undefined) {
      const done = new Promise<void>((resolve) => answered = resolve);
      const started = mode.kind === "handle"
        ? this.#runOnce(delivery, mode.handler, faults, done)
        : this.#enqueueOnce(delivery, mode.options, faults);
      const own: Promise<Outcome> = started.finally(() => {
        if (inFlight.get(delivery.key) === own) inFlight.delete(delivery.key);
        this.#logFaults(faults, delivery.context.deliveryId);
      });
      inFlight.set(delivery.key, flight = own);
    } else {
      // Joined another delivery's flight: only this request's own checks can have failed.
      this.#logFaults(faults, delivery.context.deliveryId);
    }
    const left = this.#deliveryBudgetMs - (Date.now() - startedAt);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, busy: true, timedOut: true }), Math.max(0, left));
    });
    try {
      const outcome = await Promise.race([flight, late]);
      if (outcome.ok === false && outcome.timedOut === true) {
        if (inFlight.get(delivery.key) === flight) inFlight.delete(delivery.key);
        this.#logger.warn(JSON.stringify({
          event: "kefu-edge.push_timeout",
          deliveryId: delivery.context.deliveryId,
          budgetMs: this.#deliveryBudgetMs,
        }));
      }
      return outcome;
    } finally {
      clearTimeout(timer);
      answered?.();
    }
  }

  async #runOnce(delivery: Delivery, handler: PushHandler, faults: StoreFaults, answered: Promise<void>) {
    const { key } = delivery;
    const { claims, conversation } = this.#claimsFor(delivery.message, delivery.context.deliveryId);
    const ttlSeconds = this.#leaseSeconds;
    const lease = claims.lease(ttlSeconds);
    // Claim first: a new message (the common case) then costs one store operation.
    for (let polls = 0;; polls++) {
      if (await claims.claim(key, lease.value, { ttlSeconds }, faults)) break;
      const current = await claims.read(key, faults);
      const settled = answerOf(current);
      if (settled !== undefined) return settled;
      // Another delivery holds the message: wait a little for its outcome.
      if (polls * CLAIM_POLL_MS >= this.#claimWaitMs) return { ok: false, busy: true } satisfies Outcome;
      await sleep(CLAIM_POLL_MS);
    }
    if (conversation === undefined) await this.#recordAction(delivery.message, faults);
    const done = (reply: Reply | undefined) =>
      this.#mark(claims, key, lease.value, markValue("done", reply), this.#dedupeTtlSeconds, faults);
    const release = () => claims.release(key, lease.value, faults);
    if (!await this.#purge(delivery.message, release)) return { ok: false, busy: false } satisfies Outcome;
    // A person answers (or was asked for): the message is kept in the history, the bot stays out.
    if (heldByPerson(conversation?.accepted?.handoff.state) && !this.#handleWhileHeld) {
      await done(undefined);
      return { ok: true, reply: undefined } satisfies Outcome;
    }
    const context = conversation === undefined
      ? delivery.context
      : this.#withConversation(delivery.context, conversation.ref, conversation.accepted?.window);
    let result: unknown;
    try {
      const run = Promise.resolve().then(() => handler(delivery.message, context));
      result = await claims.hold(key, lease, ttlSeconds, faults, run, answered);
    } catch (err) {
      this.#logger.warn(`Push handler failed: ${errorName(err)}`);
      await release();
      return { ok: false, busy: false } satisfies Outcome;
    }
    if (result !== undefined && result !== null && !(result instanceof Reply)) {
      this.#logger.warn("Push handler returned neither nothing nor a Reply");
      await release();
      return { ok: false, busy: false } satisfies Outcome;
    }
    const reply = result ?? undefined;
    await done(reply);
    return { ok: true, reply } satisfies Outcome;
  }

  /**
   * Where a push's claims live: in its user's conversation when conversations are kept (so
   * claiming it also appends it and opens the window, in one operation), else the dedupe store.
   */
  #claimsFor(message: PushMessage, deliveryId: string): { claims: Claims; conversation?: ConversationClaims } {
    const openId = this.#conversations === undefined ? undefined : conversationUser(message);
    if (openId === undefined) return { claims: this.#claims };
    const ref = { appId: this.#appId, openId };
    const conversation = new ConversationClaims(this.#conversations!, ref, message, deliveryId);
    const claims = new Claims(conversation, { timeoutMs: this.#storeTimeoutMs, now: this.#now });
    return { claims, conversation };
  }

  /** The handler's context with the user's conversation (the delivery's own context is shared with its duplicates). */
  #withConversation(
    context: PushHandlerContext,
    ref: { appId: string; openId: string },
    window: SendWindowLike,
  ): PushHandlerContext {
    const conversation = conversationContext(this.#conversations!, ref, window, this.#replyText);
    return { ...context, conversation };
  }

  /**
   * Marks a push (done, queued) from the claim this delivery holds: one compare-and-set. A
   * claim that was lost meanwhile (another delivery holds it now) is left to its holder.
   */
  async #mark(
    claims: Claims,
    key: string,
    held: string | null,
    value: string,
    ttlSeconds: number,
    faults: StoreFaults,
  ): Promise<void> {
    if (held === null) return await claims.write(key, value, { ttlSeconds }, faults);
    await claims.replace(key, held, value, { ttlSeconds }, faults, "mark");
  }

  /**
   * WeChat's deletion events (`user_authorization_revoke`, `user_authorization_cancellation`)
   * purge the user's conversation before the handler runs; a purge that fails releases the
   * push (`release`), so WeChat's retry purges again. Resolves whether to go on.
   */
  async #purge(message: PushMessage, release: () => Promise<void>): Promise<boolean> {
    const openId = this.#conversations === undefined ? undefined : purgedUser(message);
    if (openId === undefined) return true;
    try {
      await withDeadline(this.#conversations!.purge({ appId: this.#appId, openId }), this.#storeTimeoutMs, "Purge");
      this.#logger.warn(JSON.stringify({ event: "kefu-edge.user_purged", reason: String(message.Event) }));
      return true;
    } catch (err) {
      this.#logger.warn(JSON.stringify({ event: "kefu-edge.purge_failed", error: errorName(err) }));
      await release();
      return false;
    }
  }

  /**
   * Queue mode: a short `enqueuing` claim, the job put on the queue within its deadline, then
   * the `queued` marker that answers WeChat's retries. The marker exists only once the queue
   * has the job; a delivery cut off before that leaves a claim that runs out within seconds,
   * and WeChat's next try enqueues again.
   */
  async #enqueueOnce(delivery: Delivery, options: QueuedPushOptions, faults: StoreFaults): Promise<Outcome> {
    const { key } = delivery;
    const { claims, conversation } = this.#claimsFor(delivery.message, delivery.context.deliveryId);
    const reply = await this.#decideReply(delivery, options);
    const claim = claims.enqueuing(ENQUEUING_SECONDS, reply);
    for (let polls = 0;; polls++) {
      if (await claims.claim(key, claim, { ttlSeconds: ENQUEUING_SECONDS }, faults)) break;
      const current = await claims.read(key, faults);
      const settled = answerOf(current);
      if (settled !== undefined) return settled;
      // A synchronous holder (a deploy mixing modes) handles it: WeChat may stop retrying.
      if (current.state === "lease") return { ok: true, reply: undefined };
      // Another delivery is enqueueing it: wait a little for the queue's answer.
      if (polls * CLAIM_POLL_MS >= this.#claimWaitMs) return { ok: false, busy: true };
      await sleep(CLAIM_POLL_MS);
    }
    if (conversation === undefined) await this.#recordAction(delivery.message, faults);
    if (!await this.#purge(delivery.message, () => claims.release(key, claim, faults))) {
      return { ok: false, busy: false };
    }
    if (heldByPerson(conversation?.accepted?.handoff.state) && !this.#handleWhileHeld) {
      // Kept in the history for the person who answers; nothing for the bot's queue.
      await this.#mark(claims, key, claim, markValue("done", reply), QUEUED_MARK_TTL_SECONDS, faults);
      return { ok: true, reply };
    }
    const receivedAt = this.#now();
    const unsigned = {
      v: 2 as const,
      key,
      deliveryId: delivery.context.deliveryId,
      message: delivery.message,
      encrypted: delivery.context.encrypted,
      format: delivery.context.format,
      receivedAt,
    };
    const timeoutMs = options.enqueueTimeoutMs ?? DEFAULT_ENQUEUE_TIMEOUT_MS;
    try {
      const job: PushJob = { ...unsigned, sig: await this.#signJob(unsigned) };
      await withDeadline(Promise.resolve().then(() => options.enqueue(job)), timeoutMs, "The queue");
    } catch (err) {
      this.#logger.warn(JSON.stringify({
        event: "kefu-edge.enqueue_failed",
        deliveryId: delivery.context.deliveryId,
        error: errorName(err),
      }));
      await claims.release(key, claim, faults);
      return { ok: false, busy: false };
    }
    await this.#mark(claims, key, claim, markValue("queued", reply), QUEUED_MARK_TTL_SECONDS, faults);
    return { ok: true, reply };
  }

  async #decideReply(delivery: Delivery, options: QueuedPushOptions): Promise<Reply | undefined> {
    if (options.reply === undefined) return undefined;
    const budget = options.replyBudgetMs ?? DEFAULT_REPLY_BUDGET_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), budget));
    try {
      const decided = await Promise.race([
        Promise.resolve().then(() => options.reply!(delivery.message, delivery.context)),
        late,
      ]);
      if (decided === "late") {
        this.#logger.warn(`Push reply decision took over ${budget} ms: answered success without a reply`);
        return undefined;
      }
      if (decided !== undefined && decided !== null && !(decided instanceof Reply)) {
        this.#logger.warn("Push reply decision returned neither nothing nor a Reply: ignored");
        return undefined;
      }
      return decided ?? undefined;
    } catch (err) {
      // The message is still handled by the queue: only the passive reply is lost.
      this.#logger.warn(`Push reply decision failed: ${errorName(err)}`);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The user's message or session entry opens their send window, before the handler can
   * reply. Within the store deadline: a window not recorded is logged with the delivery.
   */
  async #recordAction(message: PushMessage, faults: StoreFaults): Promise<void> {
    const action = this.#windows === undefined ? undefined : actionOf(message);
    if (action === undefined || typeof message.FromUserName !== "string") return;
    let failed = false;
    const onStoreError = (_operation: string, err: unknown) => {
      if (!failed) noteFault(faults, "window", err);
      failed = true;
    };
    const recorded = this.#windows!.record(message.FromUserName, action, message.CreateTime * 1000, onStoreError);
    try {
      await withDeadline(recorded, this.#claims.deadlineFor(faults), "The send window store");
    } catch (err) {
      onStoreError("record", err);
    }
  }

  /** One line for all of a delivery's failed store operations, naming the delivery, never the user. */
  #logFaults(faults: StoreFaults, deliveryId: string): void {
    if (faults.operations.length === 0) return;
    this.#logger.warn(JSON.stringify({
      event: "kefu-edge.store_failed",
      deliveryId,
      operations: faults.operations,
      error: faults.error,
      // What a failed claim means: the handler ran without one (at least once).
      effect: faults.operations.includes("claim") ? "handled_without_claim" : "handled",
    }));
    faults.operations = [];
  }

  async #answer(outcome: Outcome, delivery: Delivery): Promise<Response> {
    if (!outcome.ok && outcome.timedOut === true) {
      const message = `Not finished within ${this.#deliveryBudgetMs} ms: WeChat will retry`;
      return errorResponse(503, { code: "delivery_timeout", message }, { "retry-after": "1" });
    }
    if (!outcome.ok && outcome.busy) {
      const message = "The message is being handled by another delivery: WeChat will retry";
      return errorResponse(503, { code: "in_progress", message }, { "retry-after": "1" });
    }
    if (!outcome.ok) {
      return errorResponse(500, { code: "handler_failed", message: "The push handler failed: WeChat will retry" });
    }
    const { reply } = outcome;
    if (reply === undefined) return success();
    if (delivery.message.MsgType === "event") {
      // WeChat forwards only user messages; a transfer reply to an event is ignored at best.
      this.#logger.warn(`Push handler replied ${reply.type} to an event: answered success instead`);
      return success();
    }
    const createTime = Math.floor(this.#now() / 1000);
    const xml = replyXml(reply, delivery.message, createTime);
    if (!delivery.context.encrypted) return new Response(xml, { headers: XML_HEADERS });
    const crypto = this.#crypto!;
    const encrypt = await crypto.encrypt(xml);
    const timeStamp = String(createTime);
    const envelope = {
      Encrypt: encrypt,
      MsgSignature: await crypto.signature(timeStamp, delivery.nonce, encrypt),
      TimeStamp: timeStamp,
      Nonce: delivery.nonce,
    };
    const json = delivery.context.format === "json";
    return new Response(envelopeBody(delivery.context.format, envelope), {
      headers: json ? JSON_HEADERS : XML_HEADERS,
    });
  }
}

const TEXT_HEADERS = { ...JSON_HEADERS, "content-type": "text/plain; charset=utf-8" };

/**
 * WeChat's "handled" answer. A constant body reflects nothing, so it goes without the
 * sniffing and caching headers (the echo of a URL verification keeps them) and with a
 * string body's default type, text/plain;charset=UTF-8: building a headers list is most of
 * what a Response costs on Deno (about 2.5 µs a push).
 */
function success(): Response {
  return new Response("success");
}
const XML_HEADERS = { ...JSON_HEADERS, "content-type": "text/xml; charset=utf-8" };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** How WeChat's messages start, which lets decryption take one WebCrypto call instead of two. */
const MESSAGE_START: Record<PushFormat, string> = { json: '{"ToUserName":"', xml: "<xml><ToUserName>" };

function requireParam(query: URLSearchParams, name: string): string {
  const value = query.get(name);
  if (value === null || value === "") throw badRequest(`Missing query parameter: ${name}`);
  return value;
}

function requireFormat(body: string): PushFormat {
  const format = detectFormat(body);
  if (format === undefined) throw badRequest(body.trim() === "" ? "Body is empty" : "Body is neither JSON nor XML");
  return format;
}

/** `aes` is compatible or safe mode; absent or `raw` is plain mode; anything else is refused. */
function isEncrypted(encryptType: string | null): boolean {
  if (encryptType === null || encryptType === "" || encryptType === "raw") return false;
  if (encryptType === "aes") return true;
  throw badRequest("Unsupported encrypt_type: expected aes or raw");
}

/**
 * Reads at most `limit` bytes, counting what actually arrives: Content-Length only
 * allows an early refusal, it is never trusted to bound the read.
 */
async function readBody(request: Request, limit: number): Promise<string> {
  const tooLarge = () => new PushVerificationError("too_large", `Body exceeds the ${limit}-byte limit`);
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) throw tooLarge();
  if (request.body === null) return "";
  let bytes: Uint8Array;
  try {
    bytes = await readStream(request.body, limit, tooLarge);
  } catch (err) {
    if (err instanceof PushVerificationError) throw err;
    throw badRequest("Cannot read the body");
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest("Body is not UTF-8");
  }
}

/** The query of a request URL, without parsing the rest of it (a Request's URL is always absolute). */
function queryOf(url: string): URLSearchParams {
  const start = url.indexOf("?");
  if (start === -1) return new URLSearchParams();
  const end = url.indexOf("#", start);
  return new URLSearchParams(end === -1 ? url.slice(start + 1) : url.slice(start + 1, end));
}

/** The handler's context; its delivery id is hashed only if something reads it. */
function handlerContext(request: Request, encrypted: boolean, format: PushFormat, key: string): PushHandlerContext {
  let deliveryId: string | undefined;
  return {
    request,
    encrypted,
    format,
    attempt: 1,
    get deliveryId(): string {
      return deliveryId ??= sha1Hex(key);
    },
  };
}

type SendWindowLike = ConversationContext["window"];

/** Whether a person answers the conversation (or was asked for): the bot's handler stays out. */
function heldByPerson(state: HandoffState | undefined): boolean {
  return state === "human" || state === "waiting";
}

/** The answer a claim state already settles: a message handled, or queued. */
function answerOf(state: ClaimState): Outcome | undefined {
  return state.state === "done" || state.state === "queued" ? { ok: true, reply: state.reply } : undefined;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(field, "must be a non-negative number");
  }
  return value;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
