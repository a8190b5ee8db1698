/**
 * The parts of a Cloudflare Queues binding the worker uses: the producer (`KEFU_QUEUE`) and
 * the batches its consumer receives. Written here, not taken from `@cloudflare/workers-types`,
 * so the worker runs on Deno and Bun too, with any queue of this shape.
 *
 * Apart from `types.ts` because `env.ts` needs them and `types.ts` needs `env.ts`: this file
 * imports nothing, so the worker's files import one another without a cycle.
 *
 * @module
 */

/** The part of a Queue producer binding the worker uses. */
export interface QueueLike {
  /** Sends one message. */
  send(body: unknown, options?: { contentType?: "json" }): Promise<unknown>;
}

/** One message of a queue batch, as the consumer sees it. */
export interface QueueMessageLike {
  /** The message id. */
  readonly id: string;
  /** What was sent. */
  readonly body: unknown;
  /** How many times it has been delivered, this time included. */
  readonly attempts: number;
  /** Done with it. */
  ack(): void;
  /** Deliver it again later. */
  retry(options?: { delaySeconds?: number }): void;
}

/** A batch delivered to the worker's `queue` handler. */
export interface QueueBatchLike {
  /** The name of the queue. */
  readonly queue: string;
  /** The messages. */
  readonly messages: readonly QueueMessageLike[];
}
