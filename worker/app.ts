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
  type KeyValueStore,
  MemoryStore,
  type MiniProgram,
  type RetryOptions,
  type SendPayloads,
} from "../mod.ts";
import { requireApiKey } from "./auth.ts";
import { afterResponse, type WaitUntil } from "./background.ts";
import { type Env, secretValues } from "./env.ts";
import { describeError, HttpError, toHttpError } from "./errors.ts";
import { mediaResponse } from "./media.ts";
import { type AppPushHandler, defaultHandlerSettings, defaultPushHandler } from "./push_handler.ts";
import {
  mediaParamsSchema,
  readUpload,
  rejectInvalid,
  type SendMessageBody,
  sendMessageSchema,
  typingSchema,
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
  /** Handles every verified push message; replaces the env-configured default handler. */
  onMessage?: AppPushHandler;
  /** Transport for every outbound request (WeChat API, forwards); default `globalThis.fetch`. Tests inject one. */
  fetch?: typeof fetch;
  /** Token store for an env; default `WECHAT_KV` when bound, else one in-memory store per app. */
  store?: (env: Env) => KeyValueStore;
  /** Push dedupe store for an env; default the token store. */
  dedupeStore?: (env: Env) => KeyValueStore;
  /** Supplies the in-process emulator as the upstream when `WECHAT_EMULATOR=on` (local development). */
  emulator?: EmulatorUpstream;
  /** Largest accepted upload, in bytes; default 10 MiB. */
  maxUploadBytes?: number;
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
export function createApp(options: AppOptions = {}): HonoApp<AppEnv> {
  const logger = options.logger ?? console;
  const fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const memory = new MemoryStore({ now });
  const store = options.store ?? ((env: Env) => (env.WECHAT_KV ? new CloudflareKvStore(env.WECHAT_KV) : memory));
  const programs = miniProgramCache({
    store,
    dedupeStore: options.dedupeStore ?? store,
    fetch: options.fetch,
    emulator: options.emulator,
    now: options.now,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    maxUploadBytes,
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

  app.all("/wechat/callback", async (c) => {
    const env = envOf(c);
    const mp = programs.get(env, PUSH);
    const handler = options.onMessage ??
      defaultPushHandler(defaultHandlerSettings(env), { fetch: fetchFn, now, logger });
    const later: Array<() => Promise<unknown>> = [];
    const response = await mp.push.handle(c.req.raw, (message, context) =>
      handler(message, {
        ...context,
        env,
        miniProgram: mp,
        afterResponse: (task) => void later.push(task),
      }));
    if (response.ok) {
      const ctx = executionContext(c);
      for (const task of later) afterResponse(ctx, () => task().catch((err) => logTaskFailure(logger, err, env)));
    }
    return response;
  });

  app.use("/api/*", requireApiKey(), needWeChat);

  app.post(
    "/api/messages",
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", sendMessageSchema, rejectInvalid),
    async (c) => c.json(await send(programs.get(envOf(c), API), c.req.valid("json"))),
  );

  app.post(
    "/api/typing",
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", typingSchema, rejectInvalid),
    async (c) => {
      const { touser, command } = c.req.valid("json");
      return c.json(await programs.get(envOf(c), API).customerServiceMessage.setTyping(touser, command));
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

  app.onError((err, c) => {
    const answer = toHttpError(err);
    if (answer.status >= 500) {
      const line = describeError(err, secretValues(envOf(c)));
      logger.error(`kefu-edge: ${c.req.method} ${new URL(c.req.url).pathname} answered ${answer.status}: ${line}`);
    }
    return answer.toResponse();
  });

  return app;
}

function jsonTooLarge(): never {
  throw new HttpError(413, "payload_too_large", `Request body is larger than ${MAX_JSON_BYTES} bytes`);
}

function send(mp: MiniProgram, body: SendMessageBody) {
  const payload = (body as unknown as Record<string, unknown>)[body.msgtype];
  return mp.customerServiceMessage.send(body.touser, body.msgtype, payload as SendPayloads[typeof body.msgtype]);
}

// Hono throws when the runtime gave no execution context (plain Deno/Bun servers).
function executionContext(c: Context<AppEnv>): WaitUntil | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

function logTaskFailure(logger: AppLogger, err: unknown, env: Env): void {
  logger.warn(`kefu-edge: background task failed: ${describeError(err, secretValues(env))}`);
}
