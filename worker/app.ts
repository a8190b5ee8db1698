/**
 * The kefu-edge Hono app: health, the WeChat push endpoint and the authenticated
 * `/api` over the customer-service calls. Runs on Workers, Deno, Bun and Node.
 *
 * @module
 */
// The tiny preset (PatternRouter) keeps the bundle small; the app has a handful of routes.
import { Hono } from "hono/tiny";
import {
  CloudflareKvStore,
  type ConversationStore,
  DEFAULT_MAX_UPLOAD_BYTES,
  DurableObjectConversationStore,
  DurableObjectStore,
  type KeyValueStore,
  MemoryStore,
  purgedUser,
  type PushOptions,
  type RetryOptions,
} from "../mod.ts";
import { apiRoutes } from "./api.ts";
import { type Env, lenientVar, optionalVar } from "./env.ts";
import { ChatwootBridge, type ChatwootOptions } from "./chatwoot/mod.ts";
import { answerErrors, HttpError } from "./errors.ts";
import {
  type AppPushHandler,
  type AppReplyDecider,
  defaultHandlerSettings,
  defaultPushHandler,
  defaultReplyDecider,
} from "./push_handler.ts";
import { consumePushes, type PushRuntime, wechatRoutes } from "./push_route.ts";
import type { QueueBatchLike, QueueLike } from "./queue_types.ts";
import type { AppEnv, AppLogger, KefuApp } from "./types.ts";
import type { EmulatorUpstream } from "./upstream.ts";
import { type DeadLetterStore, kvDeadLetters, type KvListNamespace, memoryDeadLetters } from "./dead_letters/mod.ts";
import { miniProgramCache, type Needs } from "./wechat.ts";
import { MediaCopies } from "./media_copies.ts";
import type { MediaBucketLike } from "./media_keys.ts";
import { type BotAppOptions, botCache } from "./bot/mod.ts";
import { inboxRoutes } from "./inbox/mod.ts";

/** Options of {@link createApp}. */
export interface AppOptions {
  /**
   * Handles every verified push message, exactly once; replaces the env-configured default
   * handler. With a queue bound it runs in the queue's consumer, after WeChat was answered.
   */
  onMessage?: AppPushHandler | undefined;
  /**
   * Decides the passive reply (`transfer_customer_service`) while WeChat waits; replaces the
   * `TRANSFER_TO_KF` default. With a queue bound it has 3 s, before the message is enqueued.
   */
  onReply?: AppReplyDecider | undefined;
  /**
   * The queue verified pushes go to for an env; default the `KEFU_QUEUE` binding. Return
   * `undefined` to handle pushes while WeChat waits.
   */
  queue?: ((env: Env) => QueueLike | undefined) | undefined;
  /** The name of the dead-letter queue this worker consumes; default any queue whose name ends in `-dlq`. */
  deadLetterQueue?: string | undefined;
  /**
   * Where dead letters are kept for an env; default `WECHAT_KV` when bound (listed by prefix),
   * else this isolate's memory.
   */
  deadLetters?: ((env: Env) => DeadLetterStore) | undefined;
  /**
   * Each user's conversation (history, send window, who answers, push claims) for an env;
   * default the `KEFU_STORE` Durable Objects when bound (history kept `HISTORY_DAYS`), else
   * none: pushes are claimed in the push store and nothing is kept. With it, the push
   * handler is not called while a person answers, and `/api/users/:openId/messages`,
   * `/handoff` and `DELETE /api/users/:openId` work.
   */
  conversations?: ((env: Env) => ConversationStore | undefined) | undefined;
  /**
   * The AI bot's settings beyond its variables (`BOT_URL`, `BOT_MODEL`, `BOT_API_KEY`...): the
   * content check's handling of `review` and of its own failures, texts, turns... Used when
   * `BOT_URL` is set and `onMessage` is not.
   */
  bot?: BotAppOptions | undefined;
  /** Claim settings of the push receiver (`leaseSeconds`, `claimWaitMs`, `dedupeKey`). */
  push?: Pick<PushOptions, "leaseSeconds" | "claimWaitMs" | "dedupeKey"> | undefined;
  /** Transport for every outbound request (WeChat API, forwards); default `globalThis.fetch`. Tests inject one. */
  fetch?: typeof fetch | undefined;
  /** Token store for an env; default `WECHAT_KV` when bound, else one in-memory store per app. */
  store?: ((env: Env) => KeyValueStore) | undefined;
  /**
   * The R2 bucket copies of media are kept in, for an env; default the `KEFU_MEDIA` binding.
   * With it (and conversations), a user's image is copied there after WeChat was answered and
   * its history entry keeps the copy's key; uploads are kept there too; `GET /api/media/:mediaId`
   * serves copies; purges and `HISTORY_DAYS` delete them.
   */
  media?: ((env: Env) => MediaBucketLike | undefined) | undefined;
  /**
   * Push claims and dedupe marks for an env; default the `KEFU_STORE` Durable Objects when
   * bound (atomic: exactly once across isolates), else the token store (a warning says that
   * Workers KV makes deduplication best effort).
   */
  dedupeStore?: ((env: Env) => KeyValueStore) | undefined;
  /** Supplies the in-process emulator as the upstream when `WECHAT_EMULATOR=on` (local development). */
  emulator?: EmulatorUpstream | undefined;
  /**
   * Settings of the Chatwoot bridge (retries, time limits, typing throttle, the subscribe message
   * sent instead of a reply the send window refused); the bridge itself is on when `CHATWOOT_URL`
   * is set (see docs/chatwoot.md).
   */
  chatwoot?: ChatwootOptions | undefined;
  /** Largest accepted upload, in bytes; default 10 MiB. */
  maxUploadBytes?: number | undefined;
  /** `GET /api/media/:mediaId` ends a download WeChat stops sending for this long, in ms; default 30,000. */
  mediaIdleTimeoutMs?: number | undefined;
  /** Time limit of each WeChat call, in ms; default the SDK's (10 s). */
  timeoutMs?: number | undefined;
  /** Retries of idempotent WeChat calls; default the SDK's. */
  retry?: RetryOptions | undefined;
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
  /** Default `console`. */
  logger?: AppLogger | undefined;
}

const PUSH: Needs = { secret: false, push: true };
const API: Needs = { secret: true, push: false };
const NO_ENV: Env = {};

/**
 * Builds the app. Build it once per isolate (module scope): it caches one
 * MiniProgram per configuration, and with it the access token.
 *
 * @param options push handler, stores, upstream transport, limits, clock, logger
 * @returns the Hono app; serve it with `export default app` (Workers), `Deno.serve(app.fetch)`...
 * @example Your own worker with your own push handler
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * import { Reply } from "@kefu/edge";
 * const app = createApp({
 *   onMessage: (message) => {
 *     if (message.MsgType === "text") return Reply.transferCustomerService();
 *   },
 * });
 * // export default app;
 * const env = { WECHAT_APPID: "wx123", WECHAT_SECRET: "secret", WECHAT_TOKEN: "TOKEN" }; // wrangler.toml, secrets
 * console.log((await app.request("/health", {}, env)).status); // 200
 * // No API_KEY: /api fails closed.
 * console.log((await app.request("/api/messages", { method: "POST" }, env)).status); // 503
 * ```
 */
export function createApp(options: AppOptions = {}): KefuApp {
  const logger = options.logger ?? console;
  const fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const memory = new MemoryStore({ now });
  const store = options.store ?? ((env: Env) => (env.WECHAT_KV ? new CloudflareKvStore(env.WECHAT_KV) : memory));
  const dedupeStore = options.dedupeStore ?? defaultDedupeStore(store);
  const storeOf = options.conversations ?? defaultConversations();
  const mediaCopies: MediaCopies = new MediaCopies({
    bucket: options.media ?? ((env) => env.KEFU_MEDIA ?? undefined),
    miniProgram: (env) => programs.get(env, API),
    conversations: (env) => conversations(env),
    queue: (env) => (options.queue ?? ((e: Env) => e.KEFU_QUEUE))(env),
    maxBytes: maxUploadBytes,
    now,
    logger,
  });
  // With a bucket, the conversations note users' media for copies and purge copies with users.
  const conversations = (env: Env) => mediaCopies.conversations(storeOf(env), env);
  const programs = miniProgramCache({
    store,
    dedupeStore,
    fetch: options.fetch,
    emulator: options.emulator,
    now: options.now,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    maxUploadBytes,
    mediaIdleTimeoutMs: options.mediaIdleTimeoutMs,
    push: options.push,
    conversations,
    uploads: (env) => mediaCopies.uploadHook(env),
    // The Chatwoot bridge mirrors every message, those a person answers too.
    handleWhileHeld: (env) => lenientVar(env, "CHATWOOT_URL") !== undefined,
    logger,
  });
  const keptInMemory = memoryDeadLetters(now);
  const deadLetters = options.deadLetters ??
    ((env: Env) => env.WECHAT_KV ? kvDeadLetters(env.WECHAT_KV as unknown as KvListNamespace) : keptInMemory);
  const bots = botCache({ fetch: fetchFn, logger, options: options.bot, conversations });
  let warnedBestEffort = false;
  const queue = options.queue ?? ((env: Env) => env.KEFU_QUEUE);
  const chatwoot = new ChatwootBridge({
    conversations: (env) => conversations(env),
    store: dedupeStore,
    queue,
    miniProgram: (env) => programs.get(env, API),
    maxMediaBytes: maxUploadBytes,
    fetch: fetchFn,
    now,
    logger,
    options: options.chatwoot,
  });
  const push: PushRuntime = {
    // Your onMessage replaces the env-configured behaviour (forward, bot, welcome, transfer) whole.
    handlers: (env) => {
      // A half-configured bridge answers 503 naming what is missing, before anything is handled.
      const bridged = chatwoot.enabled(env);
      const purging = (onMessage: AppPushHandler) => {
        const handler = purgingDeadLetters(onMessage, () => deadLetters(env), logger);
        return bridged ? chatwoot.wrap(handler) : handler;
      };
      const replying = (onReply: AppReplyDecider | undefined) => bridged ? chatwoot.wrapReply(onReply) : onReply;
      if (options.onMessage !== undefined) {
        return { onMessage: purging(options.onMessage), onReply: replying(options.onReply) };
      }
      const settings = defaultHandlerSettings(env);
      const handler = defaultPushHandler(settings, { fetch: fetchFn, now, logger });
      const bot = bots.get(env);
      if (bot === undefined) {
        return { onMessage: purging(handler), onReply: replying(options.onReply ?? defaultReplyDecider(settings)) };
      }
      // The bot answers users; the welcome text still greets them. TRANSFER_TO_KF is the bot's
      // handoff then, not a transfer of every message.
      return {
        onMessage: purging(async (message, context) => {
          await handler(message, context);
          return await bot.onMessage(message, context);
        }),
        onReply: replying(options.onReply ?? bot.onReply),
      };
    },
    miniProgram: (env) => {
      const mp = programs.get(env, PUSH);
      if (!warnedBestEffort && dedupeStore(env).setIfAbsent === undefined) {
        warnedBestEffort = true;
        logger.warn(
          "kefu-edge: push deduplication is best effort: the store has no atomic setIfAbsent (Workers KV is " +
            "eventually consistent), so a retry landing on another isolate may run the handler twice; bind KEFU_STORE",
        );
      }
      return mp;
    },
    deadLetters,
    logger,
    queue,
    deadLetterQueue: options.deadLetterQueue,
    media: mediaCopies,
    otherJobs: (message, env, dead) => chatwoot.consume(message, env, dead),
  };

  const app = new Hono<AppEnv>();
  app.get("/health", (c) => c.json({ status: "ok" }, 200, { "cache-control": "no-store" }));
  // The OpenAPI document is a static file (public/openapi.json, `npm run openapi`), so the script does
  // not carry it: on Workers the assets layer answers before the worker, the Deno, Bun and Node
  // servers serve it themselves (worker/servers.ts). Reaching here: the assets when bound.
  app.get("/openapi.json", (c) => {
    const assets = c.env?.ASSETS;
    if (assets === undefined) {
      throw new HttpError(404, "not_found", "The OpenAPI document is public/openapi.json: serve it as a static asset");
    }
    return assets.fetch(c.req.raw);
  });
  app.route("/wechat", wechatRoutes(push));
  app.route("/chatwoot", chatwoot.routes());
  // Changes made over /api (a handoff, a send, a deletion) reach Chatwoot too.
  app.use("/api/*", chatwoot.afterApi);
  const api = {
    miniProgram: (env: Env, needs: Needs) => programs.get(env, needs),
    idempotencyStore: dedupeStore,
    maxUploadBytes,
    deadLetters: { store: deadLetters, queue: push.queue },
    conversations,
    media: mediaCopies,
  };
  app.route("/api", apiRoutes(api));
  // Changes agents make in the inbox reach Chatwoot too, when both are used.
  app.use("/inbox/api/*", chatwoot.afterApi);
  app.route(
    "/inbox",
    inboxRoutes({ api, miniProgram: (env) => programs.get(env, API), fetch: fetchFn, now, logger }),
  );
  app.notFound(() => new HttpError(404, "not_found", "No such route").toResponse());
  app.onError(answerErrors(logger));

  return Object.assign(app, {
    queue: (batch: QueueBatchLike, env: Env) => consumePushes(batch, env ?? NO_ENV, push),
  });
}

// Claims need an atomic store to hold across isolates: the Durable Objects when bound.
function defaultDedupeStore(store: (env: Env) => KeyValueStore): (env: Env) => KeyValueStore {
  const objects = perBinding((namespace: NonNullable<Env["KEFU_STORE"]>) => new DurableObjectStore(namespace));
  return (env) => env.KEFU_STORE === undefined || env.KEFU_STORE === null ? store(env) : objects(env.KEFU_STORE);
}

// Conversations live in the Durable Objects when bound: one object per user, one call per operation.
// A malformed HISTORY_DAYS is a configuration error (503 naming it), never a silent 30 days.
function defaultConversations(): (env: Env) => ConversationStore | undefined {
  const stores = perBinding((_: NonNullable<Env["KEFU_STORE"]>) => new Map<number | undefined, ConversationStore>());
  return (env) => {
    const namespace = env.KEFU_STORE;
    if (namespace === undefined || namespace === null) return undefined;
    const historyDays = optionalVar(env, "HISTORY_DAYS");
    const byDays = stores(namespace);
    let found = byDays.get(historyDays);
    if (found === undefined) {
      byDays.set(historyDays, found = new DurableObjectConversationStore(namespace, { historyDays }));
    }
    return found;
  };
}

/** One value per binding (a namespace stays the same object for an isolate's life), made when first asked for. */
function perBinding<K extends object, V>(make: (binding: K) => V): (binding: K) => V {
  const made = new WeakMap<K, V>();
  return (binding) => {
    let value = made.get(binding);
    if (value === undefined) made.set(binding, value = make(binding));
    return value;
  };
}

// WeChat's deletion events delete the user's dead letters (their messages) before the handler
// runs; a failure fails the run, so WeChat's retry (or the queue's) deletes again.
function purgingDeadLetters(
  onMessage: AppPushHandler,
  letters: () => DeadLetterStore,
  logger: AppLogger,
): AppPushHandler {
  return async (message, context) => {
    const openId = purgedUser(message);
    if (openId !== undefined) {
      const deleted = await letters().purgeUser(openId);
      if (deleted > 0) logger.warn(JSON.stringify({ event: "kefu-edge.dead_letters_purged", count: deleted }));
    }
    return await onMessage(message, context);
  };
}
