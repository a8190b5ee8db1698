/**
 * Delivery: how a verified push reaches its handler exactly once. Its dedupe key; its claim
 * (a short lease, renewed while the handler runs, in the dedupe store or the user's
 * conversation); a deadline on every store call and an overall budget under WeChat's 5 s; the
 * done mark or queued marker that answers WeChat's retries; and, in queue mode, the job put
 * on the queue and the consumer's run of it. The push receiver composes it with verification.
 *
 * @module
 */
import { ValidationError } from "../errors.ts";
import type { KeyValueStore } from "../stores/key_value_store.ts";
import { sleep, withDeadline } from "../internal/deadline.ts";
import type { Logger } from "../logger.ts";
import { constantTimeEqual } from "../internal/constant_time.ts";
import { sha1Hex } from "../runtime/crypto.ts";
import { derivedHmacKey, type HmacKey, hmacSha256Hex } from "../internal/hmac.ts";
import { canonicalJson } from "../internal/canonical_json.ts";
import { userPart } from "../internal/store_keys.ts";
import {
  Claims,
  type ClaimState,
  markValue,
  noFaults,
  noteFault,
  parseState,
  remainingMs,
  type StoreFaults,
} from "./claims.ts";
import { ConversationClaims, conversationUser, orderKey, purgedUser } from "../conversation/claims.ts";
import type { ConversationStore, HandoffState } from "../conversation/types.ts";
import { type ConversationContext, conversationContext } from "../conversation/context.ts";
import type { SendOptions } from "../customer_service/schemas.ts";
import { actionOf, type SendWindowTracker } from "../customer_service/send_window.ts";
import { Reply } from "./reply.ts";
import type { PushMessage } from "./types.ts";
import type {
  ProcessQueuedOptions,
  ProcessResult,
  PushHandler,
  PushHandlerContext,
  PushJob,
  QueuedPushOptions,
} from "./handler_types.ts";

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

// A queued message is marked handled for as long as a queue may still redeliver it
// (Cloudflare Queues keep a message up to 4 days by default).
const QUEUED_MARK_TTL_SECONDS = 4 * 24 * 3600;
const CLAIM_POLL_MS = 100;
// While a job is put on the queue: long enough for the enqueue deadline and the write of the
// queued mark, short enough that a delivery cut off in between frees the message before
// WeChat's next try (5 s later).
const ENQUEUING_SECONDS = 4;
const JOB_KEY_LABEL = "kefu-edge push job v2";
// What a queue's consumer takes a push from: its job is in the queue (the consumer holds it),
// so a marker that says so, or one still waiting for the queue's answer, gives way to its run.
const RUN_TAKES_OVER: readonly string[] = ["queued:", "enqueuing:", "dead:"];
/**
 * A user's message waits for an earlier one still pending until that one is this late for its
 * next step (its claim running out, its queue retry coming), then goes ahead: in queue mode the
 * wait follows the earlier message's retries, so a backend outage keeps the order.
 */
export const ORDER_GRACE_MS = 60_000;

/** What came of one delivery, shared by concurrent duplicates in an isolate. */
export type Outcome =
  | { ok: true; reply: Reply | undefined }
  | { ok: false; busy: boolean; timedOut?: boolean };

// One flight per store and key for the whole isolate, so that receivers sharing a
// store (several MiniProgram instances) still run the handler once for a message.
const flights = new WeakMap<KeyValueStore, Map<string, Promise<Outcome>>>();

/** One verified push on its way to the handler. */
export interface Delivery {
  /** Its dedupe key (see {@link PushDelivery.keyOf}). */
  key: string;
  /** The verified message. */
  message: PushMessage;
  /** The handler's context (shared by the delivery's duplicates in this isolate). */
  context: PushHandlerContext;
}

/** How a delivery is handled: run the handler now, or claim, enqueue and answer. */
export type DeliveryMode = { kind: "handle"; handler: PushHandler } | { kind: "queue"; options: QueuedPushOptions };

/** Settings of {@link PushDelivery}, resolved by the receiver from its options. */
export interface PushDeliveryOptions {
  /** The mini program's AppID: dedupe keys and jobs are per AppID. */
  appId: string;
  /** The push token, from which the key that signs queue jobs is derived. */
  token: string | undefined;
  /** Where claims and marks live when a push has no conversation. */
  store: KeyValueStore;
  /** How long a claim protects a message without being renewed, in seconds. */
  leaseSeconds: number;
  /** Longest wait for one store call, in ms. */
  storeTimeoutMs: number;
  /** Longest time one delivery may take before it is answered 503, in ms. */
  deliveryBudgetMs: number;
  /** How long a delivery that finds the message claimed waits for its outcome, in ms. */
  claimWaitMs: number;
  /** How long a done mark (and a plain-mode query) is kept, in seconds. */
  dedupeTtlSeconds: number;
  /** A custom deduplication key of a message. */
  dedupeKey: ((message: PushMessage) => string) | undefined;
  /** Clock in ms. */
  now: () => number;
  /** Receives warnings; never given message content. */
  logger: Logger;
  /** The send-window tracker, when pushes are kept outside conversations. */
  windows: SendWindowTracker | undefined;
  /** The conversations, when kept. */
  conversations: ConversationStore | undefined;
  /** How `context.conversation.reply` sends text as the bot. */
  replyText: (openId: string, text: string, options: SendOptions) => Promise<unknown[]>;
  /** Call the handler for messages a person holds too (see `PushOptions.handleWhileHeld`). */
  handleWhileHeld?: boolean | undefined;
}

/**
 * Delivers verified pushes to the handler exactly once: claims, leases, deadlines, done marks
 * and queue jobs. The push receiver makes one and hands it each verified message.
 *
 * @example A message delivered once, however often it arrives
 * ```ts
 * import { MemoryStore } from "@kefu/edge";
 * import { DEFAULT_DELIVERY_BUDGET_MS, PushDelivery } from "./delivery.ts";
 * const delivery = new PushDelivery({
 *   appId: "wx123", token: "TOKEN", store: new MemoryStore(), leaseSeconds: 5, storeTimeoutMs: 1500,
 *   deliveryBudgetMs: DEFAULT_DELIVERY_BUDGET_MS, claimWaitMs: 1500, dedupeTtlSeconds: 660, dedupeKey: undefined,
 *   now: Date.now, logger: console, windows: undefined, conversations: undefined, replyText: async () => [],
 * });
 * const message = { ToUserName: "gh_1", FromUserName: "OPENID", CreateTime: 1, MsgType: "text", MsgId: "1" };
 * const key = delivery.keyOf(message);
 * const context = { attempt: 1, encrypted: false, format: "xml" as const, deliveryId: "d1" };
 * let runs = 0;
 * const mode = { kind: "handle" as const, handler: () => void runs++ };
 * for (let i = 0; i < 3; i++) await delivery.dispatch({ key, message, context }, mode, { operations: [] }, Date.now());
 * console.log(runs); // 1
 * ```
 */
export class PushDelivery {
  readonly #appId: string;
  readonly #token: string | undefined;
  readonly #store: KeyValueStore;
  readonly #claims: Claims;
  readonly #dedupeTtlSeconds: number;
  readonly #leaseSeconds: number;
  readonly #claimWaitMs: number;
  readonly #deliveryBudgetMs: number;
  readonly #storeTimeoutMs: number;
  readonly #dedupeKey: ((message: PushMessage) => string) | undefined;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #windows: SendWindowTracker | undefined;
  readonly #conversations: ConversationStore | undefined;
  readonly #replyText: (openId: string, text: string, options: SendOptions) => Promise<unknown[]>;
  readonly #handleWhileHeld: boolean;
  #jobKey: Promise<HmacKey> | undefined;

  /** @param options the resolved settings */
  constructor(options: PushDeliveryOptions) {
    this.#appId = options.appId;
    this.#token = options.token;
    this.#store = options.store;
    this.#claims = new Claims(options.store, { timeoutMs: options.storeTimeoutMs, now: options.now });
    this.#dedupeTtlSeconds = options.dedupeTtlSeconds;
    this.#leaseSeconds = options.leaseSeconds;
    this.#claimWaitMs = options.claimWaitMs;
    this.#deliveryBudgetMs = options.deliveryBudgetMs;
    this.#storeTimeoutMs = options.storeTimeoutMs;
    this.#dedupeKey = options.dedupeKey;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#windows = options.windows;
    this.#conversations = options.conversations;
    this.#replyText = options.replyText;
    this.#handleWhileHeld = options.handleWhileHeld === true;
  }

  /** The longest time one delivery may take before it is answered 503, in ms. */
  get budgetMs(): number {
    return this.#deliveryBudgetMs;
  }

  /**
   * The message's key in the store: per AppID and sender, so a store can keep each user's apart.
   *
   * @param message a verified message
   * @returns its dedupe key
   * @throws {ValidationError} when a custom `dedupeKey` returns no string
   */
  keyOf(message: PushMessage): string {
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
   *
   * @param timestamp the query's timestamp
   * @param nonce the query's nonce
   * @param body the body it came with
   * @param faults the delivery's store failures
   * @returns whether the query may go on with this body (`false`: it came with another one)
   */
  async bindQuery(timestamp: string, nonce: string, body: string, faults: StoreFaults): Promise<boolean> {
    const key = `${DEDUPE_KEY_PREFIX}${this.#appId}:query:${sha1Hex(`${timestamp}\n${nonce}`)}`;
    const digest = sha1Hex(body);
    const ttl = { ttlSeconds: this.#dedupeTtlSeconds };
    // Like the dedupe marks: a failing store must not refuse WeChat's own messages, so a
    // query that cannot be checked (noted with the delivery's store faults) goes through.
    if (await this.#claims.claim(key, digest, ttl, faults, "query")) return true;
    const seen = await this.#claims.readRaw(key, faults, "query");
    return seen === null || seen === digest;
  }

  /**
   * Delivers a verified push within the budget: runs the handler once (`handle`), or claims
   * and enqueues it (`queue`). Concurrent duplicates within one isolate join one flight;
   * across isolates the store's claim decides. Each delivery waits for the flight within its
   * own budget: past it, it is answered 503 and the flight leaves the map, so WeChat's next
   * try starts afresh rather than joining a flight that may never end (a hung store, a
   * handler that never returns).
   *
   * @param delivery the push
   * @param mode the handler, or the queue
   * @param faults the delivery's store failures so far (logged once, with the delivery)
   * @param startedAt when the request arrived (real time, ms): the budget counts from there
   * @returns what came of it
   */
  async dispatch(delivery: Delivery, mode: DeliveryMode, faults: StoreFaults, startedAt: number): Promise<Outcome> {
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

  /**
   * Runs the handler of a queued job at most once per message (see
   * {@link PushReceiver.processQueued}).
   *
   * @param job the job, as enqueued
   * @param handler the push handler
   * @param options `attempt`: how many times the queue has delivered the job
   * @returns what was done
   * @throws what the handler threw
   */
  async processQueued(job: PushJob, handler: PushHandler, options: ProcessQueuedOptions = {}): Promise<ProcessResult> {
    const refusal = await this.#checkJob(job);
    if (refusal !== undefined) {
      const deliveryId = typeof job?.deliveryId === "string" ? job.deliveryId.slice(0, 64) : undefined;
      this.#logger.warn(JSON.stringify({ event: "kefu-edge.job_refused", reason: refusal, deliveryId }));
      return { outcome: "refused", reason: refusal };
    }
    const faults = noFaults();
    const context: PushHandlerContext = {
      encrypted: job.encrypted,
      format: job.format,
      deliveryId: job.deliveryId,
      attempt: options.attempt ?? 1,
    };
    try {
      const { claims, conversation } = this.#claimsFor(job.message, job.deliveryId, {
        takeOver: RUN_TAKES_OVER,
        wait: true,
      });
      return conversation === undefined
        ? await this.#runFromStore(job, handler, context, faults)
        : await this.#runInConversation(job, handler, context, faults, claims, conversation, options.retryDelaySeconds);
    } finally {
      this.#logFaults(faults, job.deliveryId);
    }
  }

  /**
   * A queued job in its user's conversation, in two calls: one operation takes the push from
   * its `queued` (or still `enqueuing`) marker with a lease and returns the window, another
   * marks it done (or, after a failure, queued again with the attempts counted). The lease is
   * renewed while the handler runs, so a consumer that dies frees the push within leaseSeconds.
   */
  async #runInConversation(
    job: PushJob,
    handler: PushHandler,
    plain: PushHandlerContext,
    faults: StoreFaults,
    claims: Claims,
    conversation: ConversationClaims,
    retryDelaySeconds: number | undefined,
  ): Promise<ProcessResult> {
    const ttlSeconds = this.#leaseSeconds;
    const lease = claims.lease(ttlSeconds);
    if (!await claims.claim(job.key, lease.value, { ttlSeconds }, faults, "run")) {
      const accepted = conversation.accepted;
      if (accepted?.outcome === "waiting") {
        // An earlier message of the user is still pending: come back once it is due to have moved.
        const wait = Math.max(0, (accepted.retryAt ?? this.#now()) - this.#now());
        return { outcome: "busy", reason: "order", retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000) + 1) };
      }
      const holder = parseState(accepted?.current ?? null);
      if (holder.state === "done") return { outcome: "duplicate" };
      // Another consumer runs it, or ran it and died: its lease, no longer renewed then,
      // runs out within leaseSeconds. Come back when it would have.
      const wait = remainingMs(holder, this.#now(), ttlSeconds * 1000);
      return { outcome: "busy", retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) };
    }
    this.#logPassed(conversation, job.deliveryId);
    const previous = parseState(conversation.accepted?.current ?? null);
    const reply = previous.state === "queued" || previous.state === "enqueuing" ? previous.reply : undefined;
    const context = this.#withConversation(plain, conversation.ref, conversation.accepted?.window);
    let result: unknown;
    try {
      const run = Promise.resolve().then(() => handler(job.message, context));
      result = await claims.hold(job.key, lease, ttlSeconds, faults, run);
    } catch (err) {
      // Queued again, with the attempts counted for the dead-letter log and when the queue
      // brings it back (the user's later messages wait for it until then): free for the retry.
      const retryAt = retryDelaySeconds === undefined ? undefined : this.#now() + retryDelaySeconds * 1000;
      const failed = markValue("queued", reply, plain.attempt, retryAt);
      await this.#mark(claims, job.key, lease.value, failed, QUEUED_MARK_TTL_SECONDS, faults);
      throw err;
    }
    this.#warnQueuedReply(result);
    await this.#mark(claims, job.key, lease.value, markValue("done", reply), QUEUED_MARK_TTL_SECONDS, faults);
    return { outcome: "done" };
  }

  /**
   * A queued job without a conversation: the push's marker is read, a second claim
   * (`<key>:run`) is the consumer's lease, and the marker is marked done.
   */
  async #runFromStore(
    job: PushJob,
    handler: PushHandler,
    context: PushHandlerContext,
    faults: StoreFaults,
  ): Promise<ProcessResult> {
    const marks = this.#claims;
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
    let result: unknown;
    try {
      const run = Promise.resolve().then(() => handler(job.message, context));
      result = await this.#claims.hold(runKey, lease, ttlSeconds, faults, run);
    } catch (err) {
      // Counted on the queued marker, for the dead-letter log; then free for the retry.
      const failed = markValue("queued", reply, context.attempt);
      await this.#mark(marks, job.key, raw, failed, QUEUED_MARK_TTL_SECONDS, faults);
      await this.#claims.release(runKey, lease.value, faults);
      throw err;
    }
    this.#warnQueuedReply(result);
    // The done mark is checked before the run lease, which then runs out on its own.
    await this.#mark(marks, job.key, raw, markValue("done", reply), QUEUED_MARK_TTL_SECONDS, faults);
    return { outcome: "done" };
  }

  #warnQueuedReply(result: unknown): void {
    if (result instanceof Reply) {
      this.#logger.warn(`Push handler replied ${result.type} from the queue: WeChat was answered already`);
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
      key = this.keyOf(job.message);
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
   * How many times the consumer's handler has failed on a queued job so far (see
   * {@link PushReceiver.failedAttempts}).
   *
   * @param job the job
   * @returns the number of failed attempts recorded, or `undefined`
   */
  async failedAttempts(job: PushJob): Promise<number | undefined> {
    if (typeof job?.key !== "string") return undefined;
    const state = await this.#claimsFor(job.message, job.deliveryId).claims.read(job.key, noFaults());
    return state.state === "queued" ? state.failedAttempts : undefined;
  }

  /**
   * Marks a queued job that reached the dead-letter queue (see {@link PushReceiver.deadLettered}):
   * the user's later messages stop waiting for it; a replay still runs it once.
   *
   * @param job the job
   * @returns the number of failed attempts recorded, or `undefined`
   */
  async deadLettered(job: PushJob): Promise<number | undefined> {
    if (typeof job?.key !== "string" || typeof job.message !== "object" || job.message === null) return undefined;
    const faults = noFaults();
    const { claims } = this.#claimsFor(job.message, job.deliveryId);
    const raw = await claims.readRaw(job.key, faults);
    const state = parseState(raw);
    if (raw !== null && state.state === "queued" && state.dead !== true) {
      const dead = markValue("dead", state.reply, state.failedAttempts ?? 0);
      await claims.replace(job.key, raw, dead, { ttlSeconds: QUEUED_MARK_TTL_SECONDS }, faults, "mark");
    }
    this.#logFaults(faults, job.deliveryId);
    return state.state === "queued" ? state.failedAttempts : undefined;
  }

  async #runOnce(
    delivery: Delivery,
    handler: PushHandler,
    faults: StoreFaults,
    answered: Promise<void>,
  ): Promise<Outcome> {
    const { key } = delivery;
    const { claims, conversation } = this.#claimsFor(delivery.message, delivery.context.deliveryId, { wait: true });
    const ttlSeconds = this.#leaseSeconds;
    const lease = claims.lease(ttlSeconds);
    const waitingSince = Date.now();
    // Claim first: a new message (the common case) then costs one store operation.
    for (let held = 0;;) {
      if (await claims.claim(key, lease.value, { ttlSeconds }, faults)) break;
      if (conversation?.accepted?.outcome === "waiting") {
        // An earlier message of the user is still being handled: WeChat's 5 s leave no more
        // than claimWaitMs to wait for it; after that this one goes ahead (logged).
        if (Date.now() - waitingSince + CLAIM_POLL_MS >= this.#claimWaitMs) conversation.order!.wait = false;
        await sleep(CLAIM_POLL_MS);
        continue;
      }
      const current = await this.#holder(claims, conversation, key, faults);
      const settled = answerOf(current);
      if (settled !== undefined) return settled;
      // Another delivery holds the message: wait a little for its outcome.
      if (held++ * CLAIM_POLL_MS >= this.#claimWaitMs) return { ok: false, busy: true } satisfies Outcome;
      await sleep(CLAIM_POLL_MS);
    }
    if (conversation === undefined) await this.#recordAction(delivery.message, faults);
    else this.#logPassed(conversation, delivery.context.deliveryId);
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
  #claimsFor(
    message: PushMessage,
    deliveryId: string,
    options: { takeOver?: readonly string[]; wait?: boolean } = {},
  ): { claims: Claims; conversation?: ConversationClaims } {
    const openId = this.#conversations === undefined ? undefined : conversationUser(message);
    if (openId === undefined) return { claims: this.#claims };
    const ref = { appId: this.#appId, openId };
    const key = orderKey(message);
    const order = key === undefined ? undefined : { key, wait: options.wait ?? false, graceMs: ORDER_GRACE_MS };
    const conversation = new ConversationClaims(this.#conversations!, ref, message, deliveryId, {
      takeOver: options.takeOver,
      order,
    });
    const claims = new Claims(conversation, { timeoutMs: this.#storeTimeoutMs, now: this.#now });
    return { claims, conversation };
  }

  /** One line when a message went ahead of earlier ones of its user still pending (never the user or content). */
  #logPassed(conversation: ConversationClaims, deliveryId: string): void {
    const passed = conversation.accepted?.passed;
    if (passed === undefined || passed === 0) return;
    this.#logger.warn(JSON.stringify({ event: "kefu-edge.order_skipped", deliveryId, passed }));
  }

  /**
   * Who holds a push that could not be claimed: what accepting it into the conversation found
   * (no second call), else read from the store.
   */
  async #holder(
    claims: Claims,
    conversation: ConversationClaims | undefined,
    key: string,
    faults: StoreFaults,
  ): Promise<ClaimState> {
    const found = conversation?.accepted;
    if (found?.outcome === "taken" && found.current !== undefined) return parseState(found.current);
    return await claims.read(key, faults);
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
      const current = await this.#holder(claims, conversation, key, faults);
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
      await this.#markAfterAnswer(delivery, options, claims, claim, markValue("done", reply), faults);
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
    await this.#markAfterAnswer(delivery, options, claims, claim, markValue("queued", reply), faults);
    return { ok: true, reply };
  }

  /**
   * Replaces the `enqueuing` claim with the marker that answers WeChat's retries, once the
   * queue has the job (or nothing is left to queue). With `waitUntil` it is written after
   * WeChat is answered, so WeChat waits for one store call, not two: WeChat retries only what
   * got no answer, and a retry meanwhile finds the `enqueuing` claim and waits for the marker.
   * A marker never written leaves that claim to run out (the queue's consumer takes the push
   * from it, and a retry after it enqueues again: a duplicate the consumer's done check absorbs).
   */
  async #markAfterAnswer(
    delivery: Delivery,
    options: QueuedPushOptions,
    claims: Claims,
    claim: string,
    value: string,
    faults: StoreFaults,
  ): Promise<void> {
    const { key } = delivery;
    if (options.waitUntil === undefined) {
      return await this.#mark(claims, key, claim, value, QUEUED_MARK_TTL_SECONDS, faults);
    }
    // On a later task: the answer is handed back first. Its own failures, its own log line.
    const late = noFaults();
    const marked = new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(() => this.#mark(claims, key, claim, value, QUEUED_MARK_TTL_SECONDS, late))
      .finally(() => this.#logFaults(late, delivery.context.deliveryId));
    options.waitUntil(marked);
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

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
