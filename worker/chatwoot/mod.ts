/**
 * The Chatwoot bridge: a team's Chatwoot becomes the inbox where agents answer mini-program
 * users. With `CHATWOOT_URL` set (and `CHATWOOT_ACCOUNT_ID`, `CHATWOOT_INBOX_ID`,
 * `CHATWOOT_API_TOKEN`):
 *
 * - WeChat → Chatwoot: each user's conversation is mirrored into an API inbox, in order and once
 *   per entry (the user's messages, images and events; what the bot and your service sent; handoff
 *   changes as the conversation's status). With a queue bound the mirroring runs in the queue's
 *   consumer with retries, so a Chatwoot outage delays it and loses nothing; without one it runs
 *   after WeChat was answered, and what failed is mirrored with the next run.
 * - Chatwoot → WeChat: `POST /chatwoot/webhook` (signed with `CHATWOOT_WEBHOOK_SECRET`; closed
 *   without it) sends agents' replies to the user, shows their typing, and follows assignments and
 *   status changes (see `webhook.ts`).
 *
 * The bridge needs the conversations (`KEFU_STORE`): history, handoff state and its own memory
 * live there.
 *
 * @module
 */
import { Hono } from "hono/tiny";
import type { MiddlewareHandler } from "hono";
import {
  type ConversationStore,
  type KeyValueStore,
  type MiniProgram,
  purgedUser,
  type PushMessage,
  type SubscribeMessagePayload,
} from "../../mod.ts";
// Private helper (a documented exception, see src/internal/README.md): the bounded body read
// the push receiver uses too.
import { readStream } from "../../src/internal/bytes.ts";
import type { AppEnv, AppLogger } from "../types.ts";
import { ConfigError, type Env, optionalVar, requireVar, secretValues } from "../env.ts";
import { describeError, HttpError } from "../errors.ts";
import { ChatwootError } from "./client.ts";
import { afterResponse, executionContext } from "../background.ts";
import type { AppPushHandler, AppReplyDecider } from "../push_handler.ts";
import { retryDelaySeconds } from "../push_route.ts";
import type { QueueLike, QueueMessageLike } from "../queue_types.ts";
import { ChatwootClient } from "./client.ts";
import { ChatwootMirror } from "./mirror.ts";
import { type ChatwootSubscribeFallback, templateFallback } from "../subscribe_fallback.ts";
import { BridgeState } from "./state.ts";
import { handleWebhook, verifyChatwootWebhook } from "./webhook.ts";

export type { ChatwootSubscribeFallback } from "../subscribe_fallback.ts";
export {
  CHATWOOT_DELIVERY_HEADER,
  CHATWOOT_MAX_SKEW_SECONDS,
  CHATWOOT_SIGNATURE_HEADER,
  CHATWOOT_TIMESTAMP_HEADER,
  type ChatwootWebhookCheck,
  verifyChatwootWebhook,
} from "./webhook.ts";

/** Settings of the bridge for `createApp({ chatwoot })`; every one has a default. */
export interface ChatwootOptions {
  /** The first backoff of a Chatwoot call answered 429 or 5xx, in ms, doubled each try (3 tries); default 500. */
  retryBaseMs?: number | undefined;
  /** Time limit of each Chatwoot call, in ms; default 10,000. */
  timeoutMs?: number | undefined;
  /**
   * How long the webhook's answer waits for the send to WeChat, in ms; default 4,000 (Chatwoot
   * waits 5 s). A send still running then goes on after the answer.
   */
  webhookBudgetMs?: number | undefined;
  /** Shortest time between two typing indicators shown to one user, in ms; default 10,000. */
  typingIntervalMs?: number | undefined;
  /**
   * A subscribe message sent instead of an agent's reply the send window refused (the user
   * wrote more than 48 hours ago, never wrote, or the replies allowed since are used up): called
   * with the user and the reply's text; `undefined` sends none. Takes the place of
   * `CHATWOOT_SUBSCRIBE_TEMPLATE`. Default: that variable's template, or none.
   */
  subscribeFallback?: ChatwootSubscribeFallback | undefined;
}

/** The bridge's settings, read from the worker's variables. */
export interface ChatwootSettings {
  /** `CHATWOOT_URL`. */
  url: string;
  /** `CHATWOOT_ACCOUNT_ID`. */
  accountId: number;
  /** `CHATWOOT_INBOX_ID`. */
  inboxId: number;
  /** `CHATWOOT_API_TOKEN`. */
  token: string;
  /** `CHATWOOT_SUBSCRIBE_TEMPLATE`, when set. */
  subscribeTemplate?: SubscribeMessagePayload | undefined;
}

/**
 * The bridge's settings, or `undefined` when `CHATWOOT_URL` is not set (the bridge is off).
 *
 * @param env the worker's variables
 * @returns the settings
 * @throws {ConfigError} naming the variable when one is malformed, or missing beside `CHATWOOT_URL`
 * @example
 * ```ts
 * import { chatwootSettings } from "@kefu/edge/worker";
 * console.log(chatwootSettings({})); // undefined
 * const env = { CHATWOOT_URL: "https://chat.example.com", CHATWOOT_ACCOUNT_ID: "3", CHATWOOT_INBOX_ID: "7" };
 * try {
 *   chatwootSettings(env);
 * } catch (err) {
 *   console.log((err as Error).message); // "Missing configuration: CHATWOOT_API_TOKEN is not set"
 * }
 * ```
 */
export function chatwootSettings(env: Env): ChatwootSettings | undefined {
  const url = optionalVar(env, "CHATWOOT_URL");
  if (url === undefined) return undefined;
  return {
    url,
    accountId: requireVar(env, "CHATWOOT_ACCOUNT_ID"),
    inboxId: requireVar(env, "CHATWOOT_INBOX_ID"),
    token: requireVar(env, "CHATWOOT_API_TOKEN"),
    subscribeTemplate: optionalVar(env, "CHATWOOT_SUBSCRIBE_TEMPLATE"),
  };
}

/** The queue message that asks the consumer to mirror one user's conversation. */
export interface ChatwootSyncJob {
  /** What it is. */
  kind: "kefu-edge.chatwoot-sync";
  /** The mini program. */
  appId: string;
  /** The user. */
  openId: string;
}

const SYNC_KIND = "kefu-edge.chatwoot-sync";
const MAX_WEBHOOK_BYTES = 1024 * 1024;
const OPENID = /^[A-Za-z0-9_-]{1,64}$/;
const BUSY_RETRY_SECONDS = 2;

/** What the bridge needs from the app. */
export interface BridgeDeps {
  /** The conversations of an env. */
  conversations(env: Env): ConversationStore | undefined;
  /** Where the bridge keeps its memory for an env (the app's atomic store). */
  store(env: Env): KeyValueStore;
  /** The queue of an env, if bound. */
  queue(env: Env): QueueLike | undefined;
  /** The mini program of an env, for calls to WeChat (needs `WECHAT_SECRET`). */
  miniProgram(env: Env): MiniProgram;
  /** The largest image passed between WeChat and Chatwoot, in bytes. */
  maxMediaBytes: number;
  /** Transport to Chatwoot. */
  fetch: typeof fetch;
  /** Clock, ms. */
  now(): number;
  /** Where failures are logged. */
  logger: AppLogger;
  /** Timing settings. */
  options?: ChatwootOptions | undefined;
}

interface Parts {
  settings: ChatwootSettings;
  appId: string;
  client: ChatwootClient;
  state: BridgeState;
  conversations: ConversationStore;
  /** The createApp option's, else `CHATWOOT_SUBSCRIBE_TEMPLATE`'s, else none. */
  subscribeFallback: ChatwootSubscribeFallback | undefined;
}

/**
 * The bridge, as `createApp` wires it: a wrapper of the push handler, the webhook route, the
 * queue consumer of its mirroring jobs, and the hook after `/api` changes.
 *
 * @example The bridge is off until CHATWOOT_URL is set
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * const app = createApp();
 * const res = await app.request("/chatwoot/webhook", { method: "POST", body: "{}" }, {});
 * console.log(res.status, (await res.json()).error.variable); // 503 "CHATWOOT_WEBHOOK_SECRET"
 * ```
 */
export class ChatwootBridge {
  readonly #deps: BridgeDeps;
  readonly #parts = new WeakMap<object, Map<string, Parts>>();
  readonly #typing = new Map<string, number>();

  /** @param deps what the bridge needs from the app */
  constructor(deps: BridgeDeps) {
    this.#deps = deps;
  }

  /**
   * Whether the bridge is on for an env (`CHATWOOT_URL` set); a partial configuration throws.
   *
   * @throws {ConfigError} naming the variable that is missing or malformed
   */
  enabled(env: Env): boolean {
    return chatwootSettings(env) !== undefined;
  }

  /**
   * Wraps the push handler: every message is mirrored (queued, or after WeChat was answered),
   * and the handler runs only while the bot answers (a person holds the conversation otherwise).
   */
  wrap(onMessage: AppPushHandler): AppPushHandler {
    return async (message, context) => {
      const env = context.env;
      if (!this.enabled(env)) return await onMessage(message, context);
      const parts = this.#partsOf(env);
      const purged = purgedUser(message);
      if (purged !== undefined) {
        // WeChat asks to delete the user's data: their contact in Chatwoot too.
        await this.#mirror(env, parts).forget(purged);
        return await onMessage(message, context);
      }
      const openId = senderOf(message);
      if (openId === undefined) return await onMessage(message, context);
      const queue = this.#deps.queue(env);
      // Queued first, so the user's message reaches Chatwoot whatever the bot does.
      if (queue !== undefined) await this.#enqueue(queue, parts.appId, openId);
      const handoff = await parts.conversations.handoff({ appId: parts.appId, openId });
      const held = handoff?.state === "human" || handoff?.state === "waiting";
      const result = held ? undefined : await onMessage(message, context);
      // Again once the bot has answered: its replies follow the user's message into Chatwoot.
      context.afterResponse(() =>
        queue === undefined ? this.#syncLogged(env, openId) : this.#enqueue(queue, parts.appId, openId)
      );
      return result;
    };
  }

  /**
   * Wraps the passive reply decision (`TRANSFER_TO_KF`, your `onReply`): no passive reply for a
   * message a person holds, which the handler now sees too (it did not before the bridge).
   */
  wrapReply(onReply: AppReplyDecider | undefined): AppReplyDecider | undefined {
    if (onReply === undefined) return undefined;
    return async (message, context) => {
      const state = (await context.conversation?.handoff())?.state;
      return state === "human" || state === "waiting" ? undefined : await onReply(message, context);
    };
  }

  /**
   * The queue consumer's part: runs a mirroring job (`true`), or leaves a message that is not
   * one to the push consumer (`false`). A job Chatwoot failed is retried with backoff; one that
   * reaches the dead-letter queue is dropped with a log line (the next run mirrors what it would
   * have).
   */
  async consume(message: QueueMessageLike, env: Env, dead: boolean): Promise<boolean> {
    const job = message.body as Partial<ChatwootSyncJob> | null;
    if (typeof job !== "object" || job === null || job.kind !== SYNC_KIND) return false;
    try {
      if (dead || !this.enabled(env)) {
        this.#deps.logger.warn(JSON.stringify({ event: "kefu-edge.chatwoot_sync_dropped", dead }));
        message.ack();
        return true;
      }
      const parts = this.#partsOf(env);
      if (job.appId !== parts.appId || typeof job.openId !== "string" || !OPENID.test(job.openId)) {
        this.#deps.logger.warn(JSON.stringify({ event: "kefu-edge.chatwoot_sync_refused", reason: "foreign_job" }));
        message.ack();
        return true;
      }
      const outcome = await this.#mirror(env, parts).sync(job.openId);
      if (outcome.busy) message.retry({ delaySeconds: BUSY_RETRY_SECONDS });
      else message.ack();
    } catch (err) {
      this.#deps.logger.warn(JSON.stringify({
        event: "kefu-edge.chatwoot_sync_retry",
        attempt: message.attempts,
        error: describeError(err, secretValues(env)),
      }));
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
    return true;
  }

  /** After `/api` changed a user's conversation (a handoff, a send, a deletion): the change reaches Chatwoot. */
  readonly afterApi: MiddlewareHandler<AppEnv> = async (c, next) => {
    await next();
    const method = c.req.method;
    const path = new URL(c.req.url).pathname;
    // The agent inbox's API (`/inbox/api`) makes the same changes as `/api`.
    const apiPath = path.startsWith("/inbox/api/") ? path.slice("/inbox".length) : path;
    const user = /^\/api\/users\/([A-Za-z0-9_-]{1,64})(\/handoff)?$/.exec(apiPath);
    const deleted = user !== null && method === "DELETE" && user[2] === undefined;
    const handedOff = user !== null && method === "PUT" && user[2] !== undefined;
    const sent = method === "POST" && (apiPath === "/api/messages" || apiPath === "/api/subscribe-messages");
    const env = c.env ?? {};
    if (c.res.status >= 400 || !(deleted || handedOff || sent) || !this.enabled(env)) return;
    const parts = this.#partsOf(env);
    if (deleted) {
      try {
        await this.#mirror(env, parts).forget(user[1]!);
      } catch (err) {
        if (!(err instanceof ChatwootError)) throw err;
        throw new HttpError(
          502,
          "chatwoot_unreachable",
          "Deleted in kefu-edge, but Chatwoot did not delete the contact: send the request again",
        );
      }
      return;
    }
    let openId = handedOff ? user[1] : undefined;
    if (sent) {
      // The route's validator read the body: Hono hands back its parsed copy.
      const body = await c.req.json().catch(() => undefined) as { touser?: unknown } | undefined;
      openId = typeof body?.touser === "string" && OPENID.test(body.touser) ? body.touser : undefined;
    }
    if (openId === undefined) return;
    const queue = this.#deps.queue(env);
    if (queue !== undefined) {
      await this.#enqueue(queue, parts.appId, openId).catch((err) => this.#logFailure(env, err));
    } else {
      afterResponse(executionContext(c), () => this.#syncLogged(env, openId));
    }
  };

  /** `POST /chatwoot/webhook`, to mount at `/chatwoot`. */
  routes(): Hono<AppEnv> {
    const routes = new Hono<AppEnv>();
    routes.post("/webhook", async (c) => {
      const env = c.env ?? {};
      // Closed until a secret is set: an unsigned route would let anyone write to users.
      const secret = requireVar(env, "CHATWOOT_WEBHOOK_SECRET");
      if (!this.enabled(env)) throw new ConfigError("CHATWOOT_URL", "missing");
      const parts = this.#partsOf(env);
      const miniProgram = this.#deps.miniProgram(env);
      const body = await readBody(c.req.raw);
      const check = await verifyChatwootWebhook(secret, c.req.raw.headers, body, this.#deps.now());
      if (!check.ok) {
        this.#deps.logger.warn(JSON.stringify({ event: "kefu-edge.chatwoot_webhook_refused", reason: check.reason }));
        throw new HttpError(401, check.reason, REFUSALS[check.reason]);
      }
      let payload: unknown;
      try {
        payload = JSON.parse(body);
      } catch {
        throw new HttpError(400, "bad_request", "The body is not JSON");
      }
      if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
        throw new HttpError(400, "bad_request", "The body is not a JSON object");
      }
      const work = handleWebhook(payload as Record<string, unknown>, check.deliveryId, {
        inboxId: parts.settings.inboxId,
        appId: parts.appId,
        client: parts.client,
        conversations: parts.conversations,
        state: parts.state,
        miniProgram,
        maxMediaBytes: this.#deps.maxMediaBytes,
        now: this.#deps.now,
        typingAllowed: (openId, on) => this.#typingAllowed(openId, on),
        subscribeFallback: parts.subscribeFallback,
        logger: this.#deps.logger,
      });
      const outcome = await withinBudget(work, this.#deps.options?.webhookBudgetMs ?? 4000);
      if (outcome === undefined) {
        // Chatwoot gives up after 5 s and would mark the message failed: answer, and finish after.
        afterResponse(executionContext(c), () => work.catch((err) => this.#logFailure(env, err)));
        return c.json({ status: "accepted" }, 200);
      }
      return c.json({ status: outcome }, 200);
    });
    return routes;
  }

  #partsOf(env: Env): Parts {
    const settings = chatwootSettings(env)!;
    const conversations = this.#deps.conversations(env);
    if (conversations === undefined) throw new ConfigError("KEFU_STORE", "missing");
    const appId = requireVar(env, "WECHAT_APPID");
    let byEnv = this.#parts.get(env);
    if (byEnv === undefined) this.#parts.set(env, byEnv = new Map());
    const key = JSON.stringify([settings, appId]);
    let parts = byEnv.get(key);
    if (parts === undefined || parts.conversations !== conversations) {
      const options = this.#deps.options;
      const client = new ChatwootClient({
        url: settings.url,
        accountId: settings.accountId,
        token: settings.token,
        fetch: this.#deps.fetch,
        timeoutMs: options?.timeoutMs,
        retryBaseMs: options?.retryBaseMs,
      });
      // The bridge's memory outlives the history it mirrors by a week.
      const keepSeconds = ((optionalVar(env, "HISTORY_DAYS") ?? 30) + 7) * 86_400;
      const state = new BridgeState(this.#deps.store(env), appId, { keepSeconds });
      const template = settings.subscribeTemplate;
      const subscribeFallback = options?.subscribeFallback ??
        (template === undefined ? undefined : templateFallback(template));
      byEnv.set(key, parts = { settings, appId, client, state, conversations, subscribeFallback });
    }
    return parts;
  }

  #mirror(env: Env, parts: Parts): ChatwootMirror {
    return new ChatwootMirror({
      appId: parts.appId,
      inboxId: parts.settings.inboxId,
      client: parts.client,
      conversations: parts.conversations,
      state: parts.state,
      media: (mediaId) => this.#deps.miniProgram(env).customerServiceMessage.getTempMedia(mediaId),
      maxMediaBytes: this.#deps.maxMediaBytes,
      logger: this.#deps.logger,
    });
  }

  async #enqueue(queue: QueueLike, appId: string, openId: string): Promise<void> {
    const job: ChatwootSyncJob = { kind: SYNC_KIND, appId, openId };
    await queue.send(job, { contentType: "json" });
  }

  /** Without a queue: mirror now; a failure is logged, and the next run (the next message) catches up. */
  async #syncLogged(env: Env, openId: string): Promise<void> {
    try {
      const mirror = this.#mirror(env, this.#partsOf(env));
      // Another run holds the user: it may have read the history before this push; wait for it, then run.
      for (let tries = 0; tries < 20; tries++) {
        if (!(await mirror.sync(openId)).busy) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } catch (err) {
      this.#logFailure(env, err);
    }
  }

  #logFailure(env: Env, err: unknown): void {
    this.#deps.logger.warn(JSON.stringify({
      event: "kefu-edge.chatwoot_failed",
      error: describeError(err, secretValues(env)),
    }));
  }

  #typingAllowed(openId: string, on: boolean): boolean {
    const interval = this.#deps.options?.typingIntervalMs ?? 10_000;
    const now = this.#deps.now();
    const last = this.#typing.get(openId);
    if (!on) {
      // "Stopped typing" only follows a "typing" actually shown.
      this.#typing.delete(openId);
      return last !== undefined;
    }
    if (last !== undefined && now - last < interval) return false;
    if (this.#typing.size >= 10_000) this.#typing.delete(this.#typing.keys().next().value!);
    this.#typing.set(openId, now);
    return true;
  }
}

const REFUSALS = {
  unsigned: "Unsigned delivery: Chatwoot signs its webhooks with the inbox's webhook secret",
  bad_signature: "Signature mismatch: the delivery was not signed with CHATWOOT_WEBHOOK_SECRET",
  stale_timestamp: "The delivery's timestamp is more than 5 minutes from now",
} as const;

function senderOf(message: PushMessage): string | undefined {
  const sender: unknown = message.FromUserName;
  return typeof sender === "string" && OPENID.test(sender) ? sender : undefined;
}

async function readBody(request: Request): Promise<string> {
  const tooLarge = () => new HttpError(413, "payload_too_large", `The body is larger than ${MAX_WEBHOOK_BYTES} bytes`);
  if (request.body === null) return "";
  const bytes = await readStream(request.body, MAX_WEBHOOK_BYTES, tooLarge);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "bad_request", "The body is not UTF-8");
  }
}

async function withinBudget<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), ms));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
