/**
 * `/wechat/callback` and the queue consumer: how the worker turns a verified push into a
 * run of the push handler, exactly once.
 *
 * - Without a queue (`KEFU_QUEUE` unbound): the handler runs while WeChat waits (5 s), its
 *   `afterResponse` tasks after the answer (`waitUntil`, cut 30 s after it).
 * - With a queue: the message is claimed, enqueued and answered at once (a passive reply
 *   decided by `onReply` within its budget); the consumer runs the handler with retries and
 *   backoff (5 s doubling to 20 minutes, 100 retries: about 31 hours, so a backend down for a
 *   day loses nothing), and its `afterResponse` tasks after it, with no 30 s cap; what never
 *   succeeds reaches the dead-letter queue, whose consumer logs it and keeps it
 *   `DEAD_LETTER_DAYS` (7 by default) for `/api/dead-letters` to list and replay.
 *
 * @module
 */
// The tiny preset (PatternRouter) keeps the bundle small.
import { Hono } from "hono/tiny";
import type { MiniProgram, PushHandler, PushJob } from "../mod.ts";
import type { AppEnv, AppLogger } from "./types.ts";
import { afterResponse, executionContext, type WaitUntil } from "./background.ts";
import { type Env, lenientVar, secretValues } from "./env.ts";
import { deadLetterOf, type DeadLetterStore, DEFAULT_DEAD_LETTER_DAYS } from "./dead_letters/mod.ts";
import { describeError } from "./errors.ts";
import type { AppPushContext, AppPushHandler, AppReplyDecider } from "./push_handler.ts";
import type { QueueBatchLike, QueueLike, QueueMessageLike } from "./queue_types.ts";
import { isMediaJob, type MediaCopies } from "./media_copies.ts";

/** Seconds before the first retry of a failed handler; doubled each attempt. */
export const RETRY_BASE_SECONDS = 5;
/**
 * Longest delay between two attempts: 20 minutes. With the shipped `max_retries = 100` the
 * retries span about 31 hours (see {@link retryHorizonSeconds}): a backend down for a whole
 * day gets every message once it is back, at most 20 minutes later.
 */
export const RETRY_MAX_SECONDS = 1200;
/** The shipped consumer's `max_retries` (wrangler.toml); Cloudflare Queues allow up to 100. */
export const QUEUE_MAX_RETRIES = 100;

/**
 * The delay before attempt `attempts + 1`: exponential from 5 s, capped at 20 minutes.
 *
 * @param attempts deliveries so far
 * @returns seconds
 * @example
 * ```ts
 * import { retryDelaySeconds } from "@kefu/edge/worker";
 * console.log(retryDelaySeconds(1), retryDelaySeconds(3), retryDelaySeconds(20)); // 5 20 1200
 * ```
 */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
}

/**
 * How long a message is retried before it is dead-lettered: the delays of `retries` retries.
 *
 * @param retries the consumer's `max_retries`
 * @returns seconds from the first attempt to the last
 * @example
 * ```ts
 * import { retryHorizonSeconds } from "@kefu/edge/worker";
 * console.log(Math.round(retryHorizonSeconds(100) / 3600)); // 31
 * ```
 */
export function retryHorizonSeconds(retries: number = QUEUE_MAX_RETRIES): number {
  let total = 0;
  for (let attempts = 1; attempts <= retries; attempts++) total += retryDelaySeconds(attempts);
  return total;
}

/** What the route and the consumer share. */
export interface PushRuntime {
  /** The handler and reply decision for an env. */
  handlers(env: Env): { onMessage: AppPushHandler; onReply: AppReplyDecider | undefined };
  /** The mini program for an env (push settings required). */
  miniProgram(env: Env): MiniProgram;
  /** Where an env's dead letters are kept. */
  deadLetters(env: Env): DeadLetterStore;
  logger: AppLogger;
  /** The queue of an env; `undefined`: synchronous handling. */
  queue(env: Env): QueueLike | undefined;
  /** The name of the dead-letter queue; default: a queue whose name ends in `-dlq`. */
  deadLetterQueue: string | undefined;
  /** Copies of media (users' images, uploads), made after the answer or in the consumer. */
  media?: MediaCopies | undefined;
  /**
   * Runs a queue message that is not a push (the Chatwoot bridge's mirroring jobs) and resolves
   * `true`, or resolves `false` to leave it to the push consumer.
   */
  otherJobs?: ((message: QueueMessageLike, env: Env, dead: boolean) => Promise<boolean>) | undefined;
}

/**
 * The `/wechat` sub-app, mounted by `createApp` with `app.route("/wechat", …)`: WeChat's URL
 * verification (`GET /callback`) and message push (`POST /callback`).
 *
 * @param runtime the app's shared parts
 * @returns the sub-app
 */
export function wechatRoutes(runtime: PushRuntime): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.all("/callback", (c) => handlePush(c.req.raw, c.env ?? {}, executionContext(c), runtime));
  return routes;
}

/**
 * Answers one request to `/wechat/callback`.
 *
 * @param request the request
 * @param env the bindings
 * @param ctx the execution context, when the runtime gives one
 * @param runtime the app's shared parts
 * @returns the answer for WeChat
 */
export async function handlePush(
  request: Request,
  env: Env,
  ctx: WaitUntil | undefined,
  runtime: PushRuntime,
): Promise<Response> {
  const mp = runtime.miniProgram(env);
  const { onMessage, onReply } = runtime.handlers(env);
  const queue = runtime.queue(env);
  if (queue !== undefined && request.method === "POST") {
    const marks: Promise<unknown>[] = [];
    const response = await mp.push.handleQueued(request, {
      enqueue: async (job) => void await queue.send(job, { contentType: "json" }),
      // The marker that answers WeChat's retries is written after the answer.
      waitUntil: ctx === undefined ? undefined : (promise) => {
        marks.push(promise);
        ctx.waitUntil(promise);
      },
      reply: onReply === undefined ? undefined : (message, context) => onReply(message, { ...context, env }),
    });
    // Copies of media once the marker is written: a copy waits for its push to be settled.
    runtime.media?.afterAnswer(env, ctx, marks.length === 0 ? undefined : Promise.allSettled(marks));
    return response;
  }
  const later: Array<() => Promise<unknown>> = [];
  const handler: PushHandler = async (message, context) => {
    const reply = await onMessage(message, appContext(context, env, mp, later));
    return reply ?? await onReply?.(message, { ...context, env });
  };
  const response = await mp.push.handle(request, handler);
  const tasks = response.ok ? later : [];
  const settled = tasks.map((task) =>
    new Promise<void>((done) =>
      afterResponse(ctx, () => task().catch((err) => logTaskFailure(runtime.logger, err, env)).finally(done))
    )
  );
  // Copies of media after the answer, and after the tasks (which may upload).
  runtime.media?.afterAnswer(env, ctx, settled.length === 0 ? undefined : Promise.all(settled));
  return response;
}

/**
 * The worker's `queue` handler: runs the handler of every queued push exactly once, retries
 * failures with backoff, and logs and keeps what reaches the dead-letter queue.
 *
 * @param batch the delivered batch
 * @param env the bindings
 * @param runtime the app's shared parts
 */
export async function consumePushes(batch: QueueBatchLike, env: Env, runtime: PushRuntime): Promise<void> {
  const dead = runtime.deadLetterQueue === undefined
    ? batch.queue.endsWith("-dlq")
    : batch.queue === runtime.deadLetterQueue;
  for (const message of batch.messages) {
    if (await runtime.otherJobs?.(message, env, dead)) continue;
    if (isMediaJob(message.body)) await consumeMediaJob(message, env, runtime, dead);
    else if (dead) await keepDeadLetter(message, env, runtime);
    else await consumeOne(message, env, runtime);
  }
  // Uploads the handlers made: put in the bucket now, the answer to WeChat is long sent.
  await runtime.media?.drain(env, { queue: false });
}

/** A copy of a user's media from the queue: made, retried with backoff, or (dead-lettered) logged and dropped. */
async function consumeMediaJob(message: QueueMessageLike, env: Env, runtime: PushRuntime, dead: boolean) {
  if (dead || runtime.media === undefined) {
    // A copy is no message: nothing to keep for replay (the entry keeps its media_id).
    runtime.logger.warn(JSON.stringify({ event: "kefu-edge.media_job_dropped", attempt: message.attempts }));
    message.ack();
    return;
  }
  // Retried like a push job (about 31 hours), until WeChat forgets the media (3 days).
  await runtime.media.consume(message, env, { delaySeconds: retryDelaySeconds, maxAttempts: QUEUE_MAX_RETRIES + 1 });
}

async function consumeOne(message: QueueMessageLike, env: Env, runtime: PushRuntime): Promise<void> {
  const job = message.body as PushJob;
  const later: Array<() => Promise<unknown>> = [];
  try {
    const mp = runtime.miniProgram(env);
    const { onMessage } = runtime.handlers(env);
    const result = await mp.push.processQueued(
      job,
      (pushed, context) => onMessage(pushed, appContext(context, env, mp, later)),
      // When it comes back if it fails: the user's later messages wait for it until then.
      { attempt: message.attempts, retryDelaySeconds: retryDelaySeconds(message.attempts) },
    );
    if (result.outcome === "busy") {
      // Another consumer holds it; if it died, its claim runs out in this many seconds.
      message.retry({ delaySeconds: result.retryAfterSeconds ?? RETRY_BASE_SECONDS });
      return;
    }
    // done, duplicate, or refused (a job this worker did not make: logged, never run).
    message.ack();
  } catch (err) {
    // The message stays unhandled; the queue delivers it again, or dead-letters it.
    runtime.logger.warn(JSON.stringify({
      event: "kefu-edge.push_retry",
      deliveryId: typeof job?.deliveryId === "string" ? job.deliveryId : undefined,
      attempt: message.attempts,
      error: describeError(err, secretValues(env)),
    }));
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    return;
  }
  // After the handler succeeded, like waitUntil tasks after an answer: a failure is logged.
  for (const task of later) await task().catch((err) => logTaskFailure(runtime.logger, err, env));
}

async function keepDeadLetter(message: QueueMessageLike, env: Env, runtime: PushRuntime): Promise<void> {
  const job = message.body as PushJob;
  let attempts: number | undefined;
  try {
    // The consumer counts its failed runs on the message's queued marker; marked dead-lettered,
    // the user's later messages stop waiting for it.
    attempts = await runtime.miniProgram(env).push.deadLettered(job);
  } catch {
    attempts = undefined;
  }
  // A malformed setting must not lose the letter: it is kept for the default time then.
  const days = lenientVar(env, "DEAD_LETTER_DAYS") ?? DEFAULT_DEAD_LETTER_DAYS;
  const letter = deadLetterOf(job, message.id, { attempts, days, now: Date.now });
  runtime.logger.error(JSON.stringify({
    event: "kefu-edge.dead_letter",
    deliveryId: letter.id,
    msgType: letter.msgType,
    messageEvent: letter.event,
    attempts: letter.attempts ?? null,
    keptDays: days,
  }));
  try {
    await runtime.deadLetters(env).put(letter);
    message.ack();
  } catch (err) {
    // Not kept: leave it in the dead-letter queue (its own retries) rather than lose it.
    runtime.logger.error(JSON.stringify({
      event: "kefu-edge.dead_letter_not_kept",
      deliveryId: letter.id,
      attempt: message.attempts,
      error: describeError(err, secretValues(env)),
    }));
    message.retry({ delaySeconds: RETRY_MAX_SECONDS });
  }
}

function appContext(
  context: Parameters<PushHandler>[1],
  env: Env,
  miniProgram: MiniProgram,
  later: Array<() => Promise<unknown>>,
): AppPushContext {
  return { ...context, env, miniProgram, afterResponse: (task) => void later.push(task) };
}

function logTaskFailure(logger: AppLogger, err: unknown, env: Env): void {
  logger.warn(`kefu-edge: background task failed: ${describeError(err, secretValues(env))}`);
}
