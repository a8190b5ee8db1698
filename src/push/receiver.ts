/**
 * `PushReceiver`: answers WeChat's message push (URL verification and deliveries) as a
 * fetch handler. It composes verification (`verify.ts`: signatures, decryption, the echo)
 * with delivery (`delivery.ts`: claims, leases, deadlines, done marks, queue jobs) and writes
 * the answer (the passive reply, encrypted in safe mode).
 *
 * @module
 */
import { PushVerificationError } from "../errors.ts";
import type { KeyValueStore } from "../stores/key_value_store.ts";
import { MemoryStore } from "../stores/memory_store.ts";
import type { Logger } from "../logger.ts";
import { sha1Hex } from "../runtime/crypto.ts";
import { errorResponse, JSON_HEADERS } from "../internal/error_response.ts";
import type { PushFormat } from "./parse.ts";
import { noFaults } from "./claims.ts";
import type { ConversationStore } from "../conversation/types.ts";
import type { SendOptions } from "../customer_service/schemas.ts";
import type { SendWindowTracker } from "../customer_service/send_window.ts";
import { ValidationError } from "../errors.ts";
import { envelopeBody, replyXml } from "./reply.ts";
import type { PushMessage } from "./types.ts";
import { nonNegative, PushVerifier } from "./verify.ts";
import {
  DEFAULT_CLAIM_WAIT_MS,
  DEFAULT_DELIVERY_BUDGET_MS,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_STORE_TIMEOUT_MS,
  type Delivery,
  type DeliveryMode,
  type Outcome,
  PushDelivery,
} from "./delivery.ts";
import type {
  ProcessQueuedOptions,
  ProcessResult,
  PushHandler,
  PushHandlerContext,
  PushJob,
  QueuedPushOptions,
} from "./handler_types.ts";

export {
  DEDUPE_KEY_PREFIX,
  DEFAULT_CLAIM_WAIT_MS,
  DEFAULT_DELIVERY_BUDGET_MS,
  DEFAULT_ENQUEUE_TIMEOUT_MS,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_REPLY_BUDGET_MS,
  DEFAULT_STORE_TIMEOUT_MS,
} from "./delivery.ts";
export type {
  ProcessOutcome,
  ProcessQueuedOptions,
  ProcessResult,
  PushHandler,
  PushHandlerContext,
  PushJob,
  QueuedPushOptions,
  ReplyDecider,
} from "./handler_types.ts";
export { DEFAULT_MAX_PUSH_BODY_BYTES, DEFAULT_MAX_SKEW_SECONDS } from "./verify.ts";

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

// WeChat retries for about 15 s, but a captured request stays acceptable until its
// timestamp is maxSkew old and may be used up to maxSkew early: the mark must outlive
// both for a replay to be caught, with a minute to spare.
const MIN_DEDUPE_TTL_SECONDS = 300;

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
  readonly #verifier: PushVerifier;
  readonly #delivery: PushDelivery;
  readonly #logger: Logger;
  readonly #now: () => number;

  /**
   * Creates the receiver; `MiniProgram` does this for you from its `push` option.
   *
   * @param options the push settings, the AppID, the clock and the logger
   * @throws {ValidationError} for an invalid EncodingAESKey, skew or body limit
   */
  constructor(options: PushReceiverOptions) {
    const now = options.now ?? Date.now;
    this.#now = now;
    this.#logger = options.logger ?? console;
    this.#verifier = new PushVerifier({
      token: options.token,
      encodingAESKey: options.encodingAESKey,
      appId: options.appId,
      maxSkewSeconds: options.maxSkewSeconds,
      maxBodyBytes: options.maxBodyBytes,
      now,
    });
    const leaseSeconds = nonNegative("push.leaseSeconds", options.leaseSeconds, DEFAULT_LEASE_SECONDS);
    if (options.dedupeKey !== undefined && typeof options.dedupeKey !== "function") {
      throw new ValidationError("push.dedupeKey", "must be a function of the message");
    }
    this.#delivery = new PushDelivery({
      appId: options.appId,
      token: this.#verifier.configured ? options.token : undefined,
      store: options.dedupeStore ?? new MemoryStore({ now }),
      leaseSeconds: Math.max(0.1, leaseSeconds),
      claimWaitMs: nonNegative("push.claimWaitMs", options.claimWaitMs, DEFAULT_CLAIM_WAIT_MS),
      deliveryBudgetMs: nonNegative("push.deliveryBudgetMs", options.deliveryBudgetMs, DEFAULT_DELIVERY_BUDGET_MS),
      storeTimeoutMs: nonNegative("push.storeTimeoutMs", options.storeTimeoutMs, DEFAULT_STORE_TIMEOUT_MS),
      dedupeTtlSeconds: Math.max(MIN_DEDUPE_TTL_SECONDS, 2 * this.#verifier.maxSkewSeconds + 60),
      dedupeKey: options.dedupeKey,
      now,
      logger: this.#logger,
      windows: options.windows,
      conversations: options.conversations,
      replyText: options.replyText ??
        (() =>
          Promise.reject(new ValidationError("push.replyText", "not configured: replies go through a MiniProgram"))),
      handleWhileHeld: options.handleWhileHeld,
    });
  }

  /** Whether a push token is configured; when not, every request is answered 503. */
  get configured(): boolean {
    return this.#verifier.configured;
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
   * @param options `attempt`: how many times the queue has delivered the job (1 the first time);
   *   `retryDelaySeconds`: when the queue delivers it again if the handler fails
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
  processQueued(job: PushJob, handler: PushHandler, options: ProcessQueuedOptions = {}): Promise<ProcessResult> {
    return this.#delivery.processQueued(job, handler, options);
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
  failedAttempts(job: PushJob): Promise<number | undefined> {
    return this.#delivery.failedAttempts(job);
  }
  /**
   * Marks a queued job that reached the dead-letter queue, for a dead-letter consumer: the
   * user's later messages, which wait for earlier ones still pending to keep their order, stop
   * waiting for it; a replay of the job still runs its handler once.
   *
   * @param job the job
   * @returns how many times the consumer's handler failed on it (see {@link PushReceiver.failedAttempts})
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
   * await mp.push.processQueued(jobs[0]!, () => { throw new Error("backend down"); }).catch(() => {});
   * console.log(await mp.push.deadLettered(jobs[0]!)); // 1
   * // A replay of the dead letter runs the handler, once.
   * console.log((await mp.push.processQueued(jobs[0]!, () => {})).outcome); // "done"
   * ```
   */
  deadLettered(job: PushJob): Promise<number | undefined> {
    return this.#delivery.deadLettered(job);
  }

  async #entry(request: Request, mode: DeliveryMode): Promise<Response> {
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

  async #handle(request: Request, mode: DeliveryMode): Promise<Response> {
    const startedAt = Date.now(); // the budget runs on real time, whatever clock `now` is
    const verified = await this.#verifier.verify(request);
    if (verified.kind === "unconfigured") {
      return errorResponse(503, { code: "push_not_configured", message: verified.message });
    }
    if (verified.kind === "echo") return new Response(verified.echostr, { headers: TEXT_HEADERS });
    const { message, mismatch, encrypted, format, timestamp, nonce } = verified;
    if (mismatch !== undefined) {
      // Verified, so never refused: it reaches the handler untyped, and the log says why.
      this.#logger.warn(
        JSON.stringify({ event: "kefu-edge.push_untyped", kind: mismatch.kind, field: mismatch.field }),
      );
    }
    const faults = noFaults();
    if (!encrypted && !await this.#delivery.bindQuery(timestamp, nonce, verified.body, faults)) {
      throw new PushVerificationError("nonce_reused", "Query reused: this timestamp and nonce came with another body");
    }
    const key = this.#delivery.keyOf(message);
    const delivery: Delivery = { key, message, context: handlerContext(request, encrypted, format, key) };
    const outcome = await this.#delivery.dispatch(delivery, mode, faults, startedAt);
    return await this.#answer(outcome, delivery, nonce);
  }

  async #answer(outcome: Outcome, delivery: Delivery, nonce: string): Promise<Response> {
    if (!outcome.ok && outcome.timedOut === true) {
      const message = `Not finished within ${this.#delivery.budgetMs} ms: WeChat will retry`;
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
    const crypto = this.#verifier.crypto!;
    const encrypt = await crypto.encrypt(xml);
    const timeStamp = String(createTime);
    const envelope = {
      Encrypt: encrypt,
      MsgSignature: await crypto.signature(timeStamp, nonce, encrypt),
      TimeStamp: timeStamp,
      Nonce: nonce,
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

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
