/**
 * The kefu-edge Hono app: health, the WeChat push endpoint and the authenticated
 * `/api` over the customer-service calls. Runs on Workers, Deno, Bun and Node.
 *
 * @module
 */
// The tiny preset (PatternRouter) keeps the bundle small; the app has a handful of routes.
import { Hono } from "hono/tiny";
import type { Context, Hono as HonoApp, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
import {
  CloudflareKvStore,
  DEFAULT_MAX_UPLOAD_BYTES,
  DurableObjectStore,
  type KeyValueStore,
  MemoryStore,
  type MiniProgram,
  type PushOptions,
  type RetryOptions,
  type SendOptions,
  type SendPayloads,
} from "../mod.ts";
import { requireApiKey } from "./auth.ts";
import type { WaitUntil } from "./background.ts";
import { type Env, optionalVar } from "./env.ts";
import { answerErrors, HttpError } from "./errors.ts";
import { type IdempotencySettings, idempotent } from "./idempotency.ts";
import { mediaResponse } from "./media.ts";
import {
  type AppPushHandler,
  type AppReplyDecider,
  defaultHandlerSettings,
  defaultPushHandler,
  defaultReplyDecider,
} from "./push_handler.ts";
import { consumePushes, handlePush, type PushRuntime, type QueueBatchLike, type QueueLike } from "./push_route.ts";
import {
  mediaParamsSchema,
  readUpload,
  rejectInvalid,
  type SendMessageBody,
  sendMessageSchema,
  subscribeMessageBodySchema,
  typingSchema,
  userParamsSchema,
} from "./schemas.ts";
import type { EmulatorUpstream } from "./upstream.ts";
import { miniProgramCache, type Needs } from "./wechat.ts";

/** Where the app writes warnings and errors; never given a token or secret. */
export interface AppLogger {
  /** Something went wrong but the answer was not affected (a failing store, a failed welcome message). */
  warn(message: string): void;
  /** A request was answered with a 5xx. */
  error(message: string): void;
}

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
  /** Claim settings of the push receiver (`leaseSeconds`, `claimWaitMs`, `dedupeKey`). */
  push?: Pick<PushOptions, "leaseSeconds" | "claimWaitMs" | "dedupeKey"> | undefined;
  /** Transport for every outbound request (WeChat API, forwards); default `globalThis.fetch`. Tests inject one. */
  fetch?: typeof fetch;
  /** Token store for an env; default `WECHAT_KV` when bound, else one in-memory store per app. */
  store?: (env: Env) => KeyValueStore;
  /**
   * Push claims and dedupe marks for an env; default the `KEFU_STORE` Durable Objects when
   * bound (atomic: exactly once across isolates), else the token store (a warning says that
   * Workers KV makes deduplication best effort).
   */
  dedupeStore?: ((env: Env) => KeyValueStore) | undefined;
  /** Supplies the in-process emulator as the upstream when `WECHAT_EMULATOR=on` (local development). */
  emulator?: EmulatorUpstream;
  /** Largest accepted upload, in bytes; default 10 MiB. */
  maxUploadBytes?: number;
  /** `GET /api/media/:mediaId` ends a download WeChat stops sending for this long, in ms; default 30,000. */
  mediaIdleTimeoutMs?: number;
  /** Time limit of each WeChat call, in ms; default the SDK's (10 s). */
  timeoutMs?: number;
  /** Retries of idempotent WeChat calls; default the SDK's. */
  retry?: RetryOptions;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
  /** Default `console`. */
  logger?: AppLogger;
}

/** The Hono environment of the app: the worker's bindings. */
export type AppEnv = { Bindings: Env };

/** The app: a Hono app (`fetch`) that is also the worker's `queue` consumer. */
export type KefuApp = HonoApp<AppEnv> & {
  /**
   * The Workers `queue` handler: runs queued pushes' handlers exactly once, with retries, and
   * keeps dead letters.
   */
  queue(batch: QueueBatchLike, env: Env, ctx?: unknown): Promise<void>;
};

/** JSON bodies of `/api` are small; this bounds what is read before validation. */
const MAX_JSON_BYTES = 64 * 1024;
/** Room for the multipart boundaries and part headers around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
const API: Needs = { secret: true, push: false };
const PUSH: Needs = { secret: false, push: true };
const NO_ENV: Env = {};

/**
 * Builds the app. Build it once per isolate (module scope): it caches one
 * MiniProgram per configuration, and with it the access token.
 *
 * @param options push handler, stores, upstream transport, limits, clock, logger
 * @returns the Hono app; serve it with `export default app` (Workers), `Deno.serve(app.fetch)`...
 * @example Your own worker with your own push handler
 * ```ts ignore
 * import { createApp } from "@kefu/edge/worker";
 * import { Reply } from "@kefu/edge";
 * export default createApp({
 *   onMessage: (message, { afterResponse, miniProgram }) => {
 *     if (message.MsgType === "text") return Reply.transferCustomerService();
 *   },
 * });
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
    logger,
  });
  const envOf = (c: Context<AppEnv>): Env => c.env ?? NO_ENV;
  const tooLarge = () => {
    throw new HttpError(413, "payload_too_large", `Media is larger than the ${maxUploadBytes}-byte limit`, {
      field: "media",
    });
  };
  // Checked before any body is read: a misconfigured worker answers 503 at once.
  const needWeChat: MiddlewareHandler<AppEnv> = async (c, next) => {
    programs.get(envOf(c), API);
    await next();
  };

  const app = new Hono<AppEnv>();

  app.get("/health", (c) => c.json({ status: "ok" }, 200, { "cache-control": "no-store" }));

  let warnedBestEffort = false;
  const push: PushRuntime = {
    // Your onMessage replaces the env-configured behaviour (forward, welcome, transfer) whole.
    handlers: (env) => {
      if (options.onMessage !== undefined) return { onMessage: options.onMessage, onReply: options.onReply };
      const settings = defaultHandlerSettings(env);
      return {
        onMessage: defaultPushHandler(settings, { fetch: fetchFn, now, logger }),
        onReply: options.onReply ?? defaultReplyDecider(settings),
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
    deadLetters: dedupeStore,
    logger,
    queue: options.queue ?? ((env) => env.KEFU_QUEUE),
    deadLetterQueue: options.deadLetterQueue,
  };

  app.all("/wechat/callback", (c) => handlePush(c.req.raw, envOf(c), executionContext(c), push));

  app.use("/api/*", requireApiKey(), needWeChat);

  const once: IdempotencySettings = { store: dedupeStore, appId: (env) => programs.get(env, API).appId };

  app.post(
    "/api/messages",
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", sendMessageSchema, rejectInvalid),
    idempotent("messages", once),
    async (c) => {
      const env = envOf(c);
      return c.json(await send(programs.get(env, API), c.req.valid("json"), optionalVar(env, "CHECK_WINDOW") === "on"));
    },
  );

  app.post(
    "/api/typing",
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", typingSchema, rejectInvalid),
    idempotent("typing", once),
    async (c) => {
      const { touser, command, businessid } = c.req.valid("json");
      const options = businessid === undefined ? {} : { businessId: businessid };
      return c.json(await programs.get(envOf(c), API).customerServiceMessage.setTyping(touser, command, options));
    },
  );

  app.get("/api/users/:openId/window", zValidator("param", userParamsSchema, rejectInvalid), async (c) => {
    const { openId } = c.req.valid("param");
    const window = await programs.get(envOf(c), API).customerServiceMessage.window(openId);
    return c.json({ window: window ?? null }, 200, { "cache-control": "no-store" });
  });

  app.post(
    "/api/subscribe-messages",
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", subscribeMessageBodySchema, rejectInvalid),
    idempotent("subscribe-messages", once),
    async (c) => {
      const { touser, ...message } = c.req.valid("json");
      return c.json(await programs.get(envOf(c), API).subscribeMessage.send(touser, message));
    },
  );

  app.post(
    "/api/media",
    bodyLimit({ maxSize: maxUploadBytes + MULTIPART_OVERHEAD_BYTES, onError: tooLarge }),
    async (c) => {
      // Not zValidator("form"): it would keep a copy of the whole body until the answer.
      const { media, type } = await readUpload(c.req.raw);
      if (media.size > maxUploadBytes) tooLarge();
      const mp = programs.get(envOf(c), API);
      return c.json(await mp.customerServiceMessage.uploadTempMedia(type, media, { filename: media.name }));
    },
  );

  app.get("/api/media/:mediaId", zValidator("param", mediaParamsSchema, rejectInvalid), async (c) => {
    const { mediaId } = c.req.valid("param");
    const upstream = await programs.get(envOf(c), API).customerServiceMessage.getTempMedia(mediaId);
    return mediaResponse(upstream, mediaId);
  });

  app.notFound(() => new HttpError(404, "not_found", "No such route").toResponse());

  app.onError(answerErrors(logger));

  return Object.assign(app, {
    queue: (batch: QueueBatchLike, env: Env) => consumePushes(batch, env ?? NO_ENV, push),
  });
}

// Claims need an atomic store to hold across isolates: the Durable Objects when bound.
function defaultDedupeStore(store: (env: Env) => KeyValueStore): (env: Env) => KeyValueStore {
  const objects = new WeakMap<object, DurableObjectStore>();
  return (env) => {
    const namespace = env.KEFU_STORE;
    if (namespace === undefined || namespace === null) return store(env);
    let found = objects.get(namespace);
    if (found === undefined) objects.set(namespace, found = new DurableObjectStore(namespace));
    return found;
  };
}

function jsonTooLarge(): never {
  throw new HttpError(413, "payload_too_large", `Request body is larger than ${MAX_JSON_BYTES} bytes`);
}

function send(mp: MiniProgram, body: SendMessageBody, checkWindowByDefault: boolean) {
  const payload = (body as unknown as Record<string, unknown>)[body.msgtype];
  const options: SendOptions = { checkWindow: body.checkWindow ?? checkWindowByDefault };
  if (body.businessid !== undefined) options.businessId = body.businessid;
  if (body.aimsgcontext !== undefined) options.aiMsgContext = body.aimsgcontext;
  return mp.customerServiceMessage.send(
    body.touser,
    body.msgtype,
    payload as SendPayloads[typeof body.msgtype],
    options,
  );
}

// Hono throws when the runtime gave no execution context (plain Deno/Bun servers).
function executionContext(c: Context<AppEnv>): WaitUntil | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}
