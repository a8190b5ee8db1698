/**
 * What a push handler is given and returns, and the queue's side of a push: the job put on
 * the queue, the passive-reply decision made while WeChat waits, and what the consumer's run
 * of a job answers. Shared by the receiver and its delivery.
 *
 * @module
 */
import type { ConversationContext } from "../conversation/context.ts";
import type { PushFormat } from "./parse.ts";
import type { Reply } from "./reply.ts";
import type { PushMessage } from "./types.ts";

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
  /**
   * Keeps work alive after the answer (`ctx.waitUntil` on Workers). With it, the marker that
   * answers WeChat's retries is written after WeChat is answered (still only once the queue
   * has the job), so WeChat waits for one store call instead of two; without it, before.
   */
  waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
  /** Longest time `reply` may take, in ms, before `success` is answered without it; default 3000. */
  replyBudgetMs?: number | undefined;
}

/** Settings of {@link PushReceiver.processQueued}. */
export interface ProcessQueuedOptions {
  /** How many times the queue has delivered the job (1 the first time). */
  attempt?: number | undefined;
  /**
   * When the queue delivers the job again if the handler fails, in seconds (the delay you pass
   * to the queue's retry): the user's later messages wait for it until then, to keep their order.
   */
  retryDelaySeconds?: number | undefined;
}

/** What {@link PushReceiver.processQueued} did with a job. */
export type ProcessOutcome =
  /** The handler ran and succeeded; the message is marked handled. */
  | "done"
  /** The message was already handled: nothing ran. */
  | "duplicate"
  /**
   * Another consumer is running this message's handler right now, or (`reason: "order"`) an
   * earlier message of the same user is still pending: retry the job after `retryAfterSeconds`.
   */
  | "busy"
  /** Not a job of this receiver (malformed, forged, or from an older version): nothing ran; don't retry it. */
  | "refused";

/** The result of {@link PushReceiver.processQueued}. */
export interface ProcessResult {
  /** What was done. */
  outcome: ProcessOutcome;
  /**
   * `busy`: when to deliver the job again, in seconds: when the other consumer's claim runs out
   * if it is not renewed (its holder died), or when the earlier message it waits for is due.
   */
  retryAfterSeconds?: number | undefined;
  /**
   * `refused`: why (`malformed`, `unsigned`, `foreign_key`, `key_mismatch`, `bad_signature`);
   * `busy`: `order` when an earlier message of the same user is still pending.
   */
  reason?: string | undefined;
}
