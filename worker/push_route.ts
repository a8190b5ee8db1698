/**
 * `/wechat/callback` and the queue consumer: how the worker turns a verified push into a
 * run of the push handler, exactly once.
 *
 * - Without a queue (`KEFU_QUEUE` unbound): the handler runs while WeChat waits (5 s), its
 *   `afterResponse` tasks after the answer (`waitUntil`, cut 30 s after it).
 * - With a queue: the message is claimed, enqueued and answered at once (a passive reply
 *   decided by `onReply` within its budget); the consumer runs the handler with retries and
 *   backoff, and its `afterResponse` tasks after it, with no 30 s cap; what never succeeds
 *   reaches the dead-letter queue, whose consumer logs it and keeps it 7 days in the store.
 *
 * @module
 */
// The tiny preset (PatternRouter) keeps the bundle small.
import { Hono } from "hono/tiny";
import type { MiniProgram, PushHandler, PushJob, PushMessage } from "../mod.ts";
import type { AppEnv, AppLogger } from "./types.ts";
import { afterResponse, executionContext, type WaitUntil } from "./background.ts";
import { type Env, secretValues } from "./env.ts";
import { describeError } from "./errors.ts";
import type { AppPushContext, AppPushHandler, AppReplyDecider } from "./push_handler.ts";
import type { QueueBatchLike, QueueLike, QueueMessageLike } from "./queue_types.ts";

/** Seconds before the first retry of a failed handler; doubled each attempt. */
export const RETRY_BASE_SECONDS = 5;
/** Longest delay between two attempts. */
export const RETRY_MAX_SECONDS = 300;
/** How long a dead letter stays in the store for inspection and replay. */
export const DEAD_LETTER_TTL_SECONDS = 7 * 24 * 3600;
/** Prefix of the dead letters kept in the store. */
export const DEAD_LETTER_PREFIX = "kefu-edge:dead-letter:";

/**
 * The delay before attempt `attempts + 1`: exponential from 5 s, capped at 5 minutes.
 *
 * @param attempts deliveries so far
 * @returns seconds
 * @example
 * ```ts
 * import { retryDelaySeconds } from "@kefu/edge/worker";
 * console.log(retryDelaySeconds(1), retryDelaySeconds(3), retryDelaySeconds(20)); // 5 20 300
 * ```
 */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
}

/** What the route and the consumer share. */
export interface PushRuntime {
  /** The handler and reply decision for an env. */
  handlers(env: Env): { onMessage: AppPushHandler; onReply: AppReplyDecider | undefined };
  /** The mini program for an env (push settings required). */
  miniProgram(env: Env): MiniProgram;
  /** The dedupe store of an env, where dead letters are kept too. */
  deadLetters(env: Env): { set(key: string, value: string, options: { ttlSeconds: number }): Promise<void> };
  logger: AppLogger;
  /** The queue of an env; `undefined`: synchronous handling. */
  queue(env: Env): QueueLike | undefined;
  /** The name of the dead-letter queue; default: a queue whose name ends in `-dlq`. */
  deadLetterQueue: string | undefined;
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
    return await mp.push.handleQueued(request, {
      enqueue: async (job) => void await queue.send(job, { contentType: "json" }),
      reply: onReply === undefined ? undefined : (message, context) => onReply(message, { ...context, env }),
    });
  }
  const later: Array<() => Promise<unknown>> = [];
  const handler: PushHandler = async (message, context) => {
    const reply = await onMessage(message, appContext(context, env, mp, later));
    return reply ?? await onReply?.(message, { ...context, env });
  };
  const response = await mp.push.handle(request, handler);
  if (response.ok) {
    for (const task of later) afterResponse(ctx, () => task().catch((err) => logTaskFailure(runtime.logger, err, env)));
  }
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
    if (dead) await keepDeadLetter(message, env, runtime);
    else await consumeOne(message, env, runtime);
  }
}

async function consumeOne(message: QueueMessageLike, env: Env, runtime: PushRuntime): Promise<void> {
  const job = message.body as PushJob;
  const later: Array<() => Promise<unknown>> = [];
  try {
    const mp = runtime.miniProgram(env);
    const { onMessage } = runtime.handlers(env);
    const outcome = await mp.push.processQueued(
      job,
      (pushed, context) => onMessage(pushed, appContext(context, env, mp, later)),
      { attempt: message.attempts },
    );
    if (outcome === "busy") {
      message.retry({ delaySeconds: RETRY_BASE_SECONDS });
      return;
    }
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
  const job = message.body as Partial<PushJob> | null;
  const deliveryId = typeof job?.deliveryId === "string" ? job.deliveryId : message.id;
  const pushed = (job?.message ?? {}) as Partial<PushMessage>;
  runtime.logger.error(JSON.stringify({
    event: "kefu-edge.dead_letter",
    deliveryId,
    msgType: pushed.MsgType,
    messageEvent: pushed.Event,
    attempts: message.attempts,
    kept: `${DEAD_LETTER_PREFIX}${deliveryId}`,
  }));
  try {
    await runtime.deadLetters(env).set(`${DEAD_LETTER_PREFIX}${deliveryId}`, JSON.stringify(message.body), {
      ttlSeconds: DEAD_LETTER_TTL_SECONDS,
    });
    message.ack();
  } catch (err) {
    // Not kept: leave it in the dead-letter queue rather than lose it.
    runtime.logger.error(`kefu-edge: dead letter ${deliveryId} not kept: ${describeError(err, secretValues(env))}`);
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
