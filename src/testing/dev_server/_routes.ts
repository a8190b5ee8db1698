/**
 * Private to the dev server (`withEmulator`): the `/_emulator/` routes, a Hono sub-app. They
 * answer only while `WECHAT_EMULATOR` is exactly `on` and the request is addressed to a
 * loopback host; otherwise every one of them answers 404 like an unknown route.
 *
 * A user action (`messages`, `images`, `miniprogrampages`, `session`) makes the emulated
 * WeChat build the signed push it would send and deliver it to the app's own
 * `/wechat/callback`, in process: signature checks, decryption, dedupe and the push handler
 * run for real, and the user's send window opens for `/api/messages`. The answer says what
 * was pushed, how the app answered, and what the user received meanwhile (a welcome text).
 *
 * A state-changing request (POST, PUT, PATCH, DELETE) is refused with 403 `cross_origin_refused` when
 * it carries an `Origin` other than its own: a page on another site cannot act as a user
 * through the browser of someone running the dev server. Without `Origin` (curl, scripts) it
 * goes through.
 *
 * The chat page itself is static files (`assets/`), served by `wrangler dev --assets`; it
 * reads its configuration from `GET /_emulator/config` and waits for changes on
 * `GET /_emulator/updates`.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
import * as z from "../../internal/zod.ts";
import type { InboxEntry, PushAction, PushFields } from "../types.ts";
import { MESSAGE_TYPES, type MessageView, type MsgType } from "../_messages.ts";
import { type SendWindow, WINDOW_GRANTS } from "../../customer_service/send_window.ts";
import { openIdSchema } from "../../internal/field_schemas.ts";
import { normaliseType, WECHAT_IMAGE_TYPES } from "../../internal/media_types.ts";
import {
  answerErrors,
  type AppEnv,
  type AppLogger,
  type Env,
  executionContext,
  HttpError,
  jsonBody,
  type KefuApp,
  lenientVar,
  rejectInvalid,
  userParamsSchema,
  wechatSettings,
} from "../../../worker/dev_seam.ts";
import type { EmulatorSession, EmulatorUpstreams } from "./_upstream.ts";
import { type Exchange, type SentEntry, truncate } from "./_log.ts";

/** Largest image an emulated user can send, in bytes (WeChat's temporary media limit). */
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** How long a step waits for the work the app does after answering the push (a welcome text). */
const BACKGROUND_WAIT_MS = 5000;
/** Longest wait of `GET /_emulator/updates`, in seconds, before it answers with no change. */
export const LONG_POLL_SECONDS = 25;
/** While someone is typing, `updates` answers at least this often, so the page sees typing end. */
const TYPING_RECHECK_MS = 1000;
/** After a change wakes it, `updates` waits this long so that one answer carries a whole step. */
const COALESCE_MS = 150;

const mediaParams = z.object({ mediaId: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a media_id")) });
const nonEmpty = (max: number) =>
  z.string().check(
    z.refine((s) => s.trim() !== "", "must not be empty"),
    z.maxLength(max, `must be at most ${max} characters`),
  );
const count = (max?: number) =>
  z.coerce.number().check(z.int(), z.minimum(0), ...(max === undefined ? [] : [z.maximum(max)]));
const messageSchema = z.strictObject({ text: nonEmpty(2048) });
const sessionSchema = z.strictObject({
  sessionFrom: z.optional(z.string().check(z.maxLength(1024, "must be at most 1024 characters"))),
});
const miniProgramPageSchema = z.strictObject({
  title: nonEmpty(256),
  pagePath: nonEmpty(1024),
  appId: z.optional(
    z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be an AppID (letters, digits, - and _)")),
  ),
});
const subscriptionSchema = z.strictObject({
  templateId: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a template id")),
  status: z.optional(z.enum(["accept", "reject"])),
  longTerm: z.optional(z.boolean()),
});
const exchangesQuery = z.object({ after: z._default(count(), 0) });
const updatesQuery = z.object({
  version: z.optional(count()),
  after: z._default(count(), 0),
  openId: z.optional(openIdSchema),
  wait: z._default(count(LONG_POLL_SECONDS), LONG_POLL_SECONDS),
});

/** An entry of a user's conversation: what they did, what they received, and WeChat's notices. */
export type ConversationEntry = ({ from: "user" } & SentEntry) | ({ from: "service" | "wechat" } & InboxEntry);

/** What the chat page is told about the running configuration (dev values only). */
export interface PageConfig {
  /** `WECHAT_APPID`. */
  appId: string | null;
  /**
   * `API_KEY`, prefilled in the page's API key field for its `/api` calls (replies, typing).
   * Shown on purpose: this answer exists only in emulator mode, to loopback requests.
   */
  apiKey: string | null;
  /** `safe` with `WECHAT_AES_KEY`, else `plain`. */
  pushMode: "safe" | "plain";
  /** The format the emulated WeChat pushes in. */
  pushFormat: "xml" | "json";
  /** `WELCOME_TEXT`. */
  welcomeText: string | null;
  /** `TRANSFER_TO_KF=on`. */
  transfer: boolean;
  /** How the page shows each outbound message type (the emulator's table). */
  messageTypes: Record<MsgType, MessageView>;
  /** Messages a send window allows, by what opened it. */
  windowLimits: Record<SendWindow["kind"], number>;
}

/** What the `/_emulator/` routes work with. */
export interface EmulatorRoutesOptions {
  /** The app the pushes go to (its own `fetch`, with the env the routes got). */
  app: KefuApp;
  /** The emulators the app was handed, so both share one emulator per configuration. */
  upstream: EmulatorUpstreams;
  /** The app's work after an answer that the routes wait for (queued pushes consumed in process). */
  background?: () => Promise<unknown>[];
  /** Where 5xx answers are logged; default `console`. */
  logger?: AppLogger;
}

/**
 * The `/_emulator/` routes as a sub-app, to mount with `wrapper.route("/_emulator", routes)`.
 *
 * @param options the app, its emulator upstream and its background work
 * @returns the sub-app
 * @example Mount the routes
 * ```ts
 * import { Hono } from "hono";
 * import { type AppEnv, createApp } from "@kefu/edge/worker";
 * import { emulatorUpstream } from "./_upstream.ts";
 * import { emulatorRoutes } from "./_routes.ts";
 * const upstream = emulatorUpstream();
 * const app = createApp({ emulator: upstream.select });
 * const wrapper = new Hono<AppEnv>().route("/_emulator", emulatorRoutes({ app, upstream }));
 * const env = { WECHAT_EMULATOR: "on", WECHAT_APPID: "wx123", WECHAT_SECRET: "secret", WECHAT_TOKEN: "TOKEN" };
 * const res = await wrapper.request("http://localhost/_emulator/config", {}, env);
 * console.log((await res.json()).appId); // "wx123"
 * ```
 */
export function emulatorRoutes(options: EmulatorRoutesOptions): Hono<AppEnv> {
  const { app, upstream } = options;
  const background = options.background ?? (() => []);
  const logger = options.logger ?? console;
  const gate: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!emulatorOn(envOf(c)) || !fromLoopback(c)) throw new HttpError(404, "not_found", "No such route");
    await next();
  };
  // Not hono/csrf: it looks only at form-like content types (a raw image or JSON POST would
  // pass unchecked) and answers plain text; this checks every state-changing request and
  // answers in the app's JSON shape.
  const sameOrigin: MiddlewareHandler<AppEnv> = async (c, next) => {
    const origin = c.req.header("origin");
    if (!SAFE_METHODS.has(c.req.method) && origin !== undefined && !ownOrigins(c).includes(origin)) {
      logger.warn(JSON.stringify({
        event: "kefu-edge.dev_route_refused",
        reason: "cross_origin",
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        origin: origin.slice(0, 200),
      }));
      throw new HttpError(403, "cross_origin_refused", "Cross-origin requests may not change the emulator's state");
    }
    await next();
  };
  const sessionOf = (c: Context<AppEnv>): EmulatorSession =>
    upstream.session(wechatSettings(envOf(c), { secret: true, push: true }));
  const params = zValidator("param", userParamsSchema, rejectInvalid);
  const act = (c: Context<AppEnv>, openId: string, action: Action) =>
    step(c, app, background, sessionOf(c), openId, action);

  const routes = new Hono<AppEnv>();
  routes.use("*", gate, sameOrigin);

  routes.get("/config", (c) => c.json(pageConfig(envOf(c)), 200, { "cache-control": "no-store" }));

  routes.get("/users", (c) => c.json({ users: users(sessionOf(c)) }));

  routes.post("/users/:openId/messages", params, ...jsonBody(messageSchema), (c) => {
    const { openId } = c.req.valid("param");
    const { text } = c.req.valid("json");
    return act(c, openId, {
      push: (user) => user.says(text),
      sent: (at) => ({ kind: "text", text, at }),
    }).then((result) => c.json(result));
  });

  routes.post(
    "/users/:openId/images",
    bodyLimit({ maxSize: MAX_IMAGE_BYTES + MULTIPART_OVERHEAD_BYTES, onError: tooLarge }),
    params,
    async (c) => {
      const { openId } = c.req.valid("param");
      const { bytes, contentType } = await readImage(c);
      return c.json(
        await act(c, openId, {
          push: (user) => user.sendsImage(bytes, contentType),
          sent: (at, push) => ({ kind: "image", mediaId: String(push.message.MediaId), at }),
        }),
      );
    },
  );

  routes.post("/users/:openId/miniprogrampages", params, ...jsonBody(miniProgramPageSchema), async (c) => {
    const { openId } = c.req.valid("param");
    const { title, pagePath, appId } = c.req.valid("json");
    return c.json(
      await act(c, openId, {
        push: (user) => user.sendsMiniProgramPage({ title, pagePath, ...(appId === undefined ? {} : { appId }) }),
        sent: (at, push) => ({
          kind: "miniprogrampage",
          title,
          pagePath,
          appId: String(push.message.AppId),
          thumbMediaId: String(push.message.ThumbMediaId),
          at,
        }),
      }),
    );
  });

  routes.post("/users/:openId/session", params, ...jsonBody(sessionSchema), async (c) => {
    const { openId } = c.req.valid("param");
    const sessionFrom = c.req.valid("json").sessionFrom ?? "";
    return c.json(
      await act(c, openId, {
        push: (user) => user.entersSession(sessionFrom),
        sent: (at) => ({ kind: "session", sessionFrom, at }),
      }),
    );
  });

  // The user answers the subscription popup (wx.requestSubscribeMessage) for a template.
  routes.post("/users/:openId/subscriptions", params, ...jsonBody(subscriptionSchema), async (c) => {
    const { openId } = c.req.valid("param");
    const { templateId, status = "accept", longTerm = false } = c.req.valid("json");
    return c.json(
      await act(c, openId, {
        push: (user) => user.subscribes({ templateId, status, longTerm }),
        sent: (at) => ({ kind: "subscription", templateId, status, longTerm, at }),
      }),
    );
  });

  // WeChat reports each subscribe message's outcome with subscribe_msg_sent_event: delivers
  // those pending for the user (after the service sent some through /api/subscribe-messages).
  routes.post("/users/:openId/subscribe-sent-events", params, async (c) => {
    const { openId } = c.req.valid("param");
    const session = sessionOf(c);
    const pushes = await session.emulator.user(openId).takeSubscribeSentEvents();
    const results = [];
    for (const push of pushes) {
      results.push(await step(c, app, background, session, openId, { push: () => Promise.resolve(push) }));
    }
    return c.json({ delivered: results.length, results });
  });

  routes.get("/users/:openId/inbox", params, (c) => {
    const { openId } = c.req.valid("param");
    const session = sessionOf(c);
    return c.json({ openId, ...userStatus(session, openId), inbox: session.emulator.inbox(openId) });
  });

  routes.get("/users/:openId/conversation", params, (c) => {
    const { openId } = c.req.valid("param");
    const session = sessionOf(c);
    return c.json({ openId, ...status(session, openId), entries: conversation(session, openId) });
  });

  routes.get("/exchanges", zValidator("query", exchangesQuery, rejectInvalid), (c) => {
    const { after } = c.req.valid("query");
    return c.json({ exchanges: sessionOf(c).exchanges.since(after) });
  });

  // The images of the conversation, straight from the emulated WeChat: what the user sees is
  // not the app's traffic, so showing it neither calls the app nor fills the exchange log.
  routes.get("/media/:mediaId", zValidator("param", mediaParams, rejectInvalid), (c) => {
    const media = sessionOf(c).emulator.media.get(c.req.valid("param").mediaId);
    if (media === undefined) throw new HttpError(404, "not_found", "No such media");
    const type = WECHAT_IMAGE_TYPES.has(media.contentType) ? media.contentType : "application/octet-stream";
    return c.body(media.bytes.slice().buffer, 200, {
      "content-type": type,
      // A media_id always names the same bytes.
      "cache-control": "private, max-age=86400, immutable",
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'",
    });
  });

  // The page's long poll: answers at once when something changed since `version`, else when
  // something does (a push, an API call, a user action), when a window or typing state ends
  // on its own, or after `wait` seconds — one request per change instead of polling.
  routes.get("/updates", zValidator("query", updatesQuery, rejectInvalid), async (c) => {
    const { version, after, openId, wait } = c.req.valid("query");
    const session = sessionOf(c);
    if (version !== undefined && version === session.changes.version) {
      const ms = Math.min(wait * 1000, untilTimedChange(session));
      await session.changes.after(version, ms, c.req.raw.signal);
      if (session.changes.version !== version) await sleep(COALESCE_MS);
    }
    return c.json(
      {
        version: session.changes.version,
        now: session.emulator.now(),
        users: users(session),
        conversation: openId === undefined
          ? null
          : { openId, ...status(session, openId), entries: conversation(session, openId) },
        exchanges: session.exchanges.since(after),
      },
      200,
      { "cache-control": "no-store" },
    );
  });

  routes.onError(answerErrors(logger));

  return routes;
}

/** The answer of a user action. */
export interface StepResult {
  /** The user. */
  openId: string;
  /** The message WeChat pushed, before encryption; `MsgId` is a decimal string. */
  push: PushFields;
  /** How the app answered the push. */
  delivery: {
    ok: boolean;
    attempts: number;
    status: number | null;
    /** The app's reply (decrypted in safe mode), or `null` for `success`. */
    reply: string | null;
    encrypted: boolean;
    failures: readonly { attempt: number; reason: string; detail: string }[];
  };
  /** What the user received while the push was handled, including work done after the answer. */
  received: InboxEntry[];
}

/** A user action: the push it makes, and how it shows in the conversation. */
interface Action {
  push(user: ReturnType<EmulatorSession["emulator"]["user"]>): Promise<PushAction>;
  sent?(at: number, push: PushAction): SentEntry;
}

// One user action: record it, deliver the push to the app with WeChat's retry rules,
// log each attempt, then wait (bounded) for the app's after-answer work.
async function step(
  c: Context<AppEnv>,
  app: KefuApp,
  background: () => Promise<unknown>[],
  session: EmulatorSession,
  openId: string,
  action: Action,
): Promise<StepResult> {
  const { emulator, exchanges } = session;
  const before = emulator.inbox(openId).length;
  const push = await action.push(emulator.user(openId));
  if (action.sent !== undefined) session.sent.add(openId, action.sent(emulator.now(), push));
  const tasks: Promise<unknown>[] = [];
  const outer = executionContext(c);
  const ctx = {
    waitUntil(promise: Promise<unknown>): void {
      tasks.push(promise);
      outer?.waitUntil(promise);
    },
    passThroughOnException(): void {},
    props: {},
  };
  let last: Exchange | undefined;
  let attempt = 0;
  const outcome = await push.deliver(async (request) => {
    attempt++;
    const url = new URL(request.url);
    const at = emulator.now();
    const body = await request.clone().text();
    const response = await app.fetch(request, envOf(c), ctx);
    const text = await response.clone().text();
    const notes = url.searchParams.get("encrypt_type") === "aes"
      ? [`Message before encryption: ${JSON.stringify(push.message)}`]
      : [];
    last = exchanges.add({
      at,
      kind: "push",
      openId,
      title: `push: ${pushTitle(push.message)}${attempt > 1 ? ` (attempt ${attempt})` : ""}`,
      request: { line: `POST ${url.pathname}${url.search}`, ...typeOf(request), body: truncate(body) },
      response: { line: `HTTP ${response.status}`, ...typeOf(response), body: truncate(text) },
      notes,
    });
    return response;
  });
  if (last !== undefined && outcome.reply !== undefined) {
    exchanges.note(last, `Reply${outcome.encrypted ? " after decryption" : ""}: ${truncate(outcome.reply)}`);
  }
  if (!outcome.ok) {
    exchanges.add({
      at: emulator.now(),
      kind: "push",
      openId,
      title: `push: ${pushTitle(push.message)} not delivered after ${outcome.attempts} attempts`,
      request: { line: "WeChat gave up", body: "" },
      notes: outcome.failures.map((f) => `Attempt ${f.attempt}: ${f.reason} (${f.detail})`),
    });
  }
  // The work after the answer: waitUntil tasks, and queued pushes consumed in process.
  await settle([...tasks, ...background()], BACKGROUND_WAIT_MS);
  return {
    openId,
    push: push.message,
    delivery: {
      ok: outcome.ok,
      attempts: outcome.attempts,
      status: outcome.status ?? null,
      reply: outcome.reply ?? null,
      encrypted: outcome.encrypted,
      failures: outcome.failures,
    },
    received: emulator.inbox(openId).slice(before),
  };
}

function pushTitle(message: PushFields): string {
  return message.MsgType === "event" ? `event ${String(message.Event)}` : String(message.MsgType);
}

function typeOf(message: Request | Response): { contentType?: string } {
  const type = message.headers.get("content-type");
  return type === null ? {} : { contentType: type };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function settle(tasks: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([Promise.allSettled(tasks), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface UserStatus {
  /** Whether the user acted: until then WeChat does not know the OpenID (sends answer 40003). */
  known: boolean;
  window: SendWindow | null;
  typing: boolean;
}

// Only users who acted through these routes exist in the emulator: asking about anyone
// else must not create them (WeChat answers 40003 for an OpenID it does not know).
function status(session: EmulatorSession, openId: string): UserStatus {
  if (session.sent.of(openId).length === 0) return { known: false, window: null, typing: false };
  const user = session.emulator.user(openId);
  return { known: true, window: user.window ?? null, typing: user.typing };
}

function userStatus(session: EmulatorSession, openId: string): Omit<UserStatus, "known"> {
  const { window, typing } = status(session, openId);
  return { window, typing };
}

function users(session: EmulatorSession): ({ openId: string } & Omit<UserStatus, "known">)[] {
  return session.sent.users().map((openId) => ({ openId, ...userStatus(session, openId) }));
}

// How long until a state changes with no event: a window closes, typing ends.
function untilTimedChange(session: EmulatorSession): number {
  const now = session.emulator.now();
  let ms = Number.POSITIVE_INFINITY;
  for (const openId of session.sent.users()) {
    const { window, typing } = status(session, openId);
    if (typing) ms = Math.min(ms, TYPING_RECHECK_MS);
    if (window !== null) ms = Math.min(ms, Math.max(0, window.expiresAt - now) + 50);
  }
  return ms;
}

function conversation(session: EmulatorSession, openId: string): ConversationEntry[] {
  const entries: ConversationEntry[] = [
    ...session.sent.of(openId).map((entry): ConversationEntry => ({ from: "user", ...entry })),
    ...session.emulator.inbox(openId).map((entry): ConversationEntry =>
      entry.kind === "notice" ? { from: "wechat", ...entry } : { from: "service", ...entry }
    ),
  ];
  // Stable: on equal times the user's action (listed first) comes before its effects.
  return entries.sort((a, b) => a.at - b.at);
}

async function readImage(c: Context<AppEnv>): Promise<{ bytes: Uint8Array; contentType: string }> {
  const header = c.req.header("content-type") ?? "";
  let bytes: Uint8Array;
  let contentType: string;
  if (/^multipart\/form-data/i.test(header)) {
    let file: unknown;
    try {
      file = (await c.req.formData()).get("media");
    } catch {
      throw new HttpError(400, "validation_error", "Invalid body: malformed multipart form", { field: "body" });
    }
    if (!(file instanceof File)) {
      throw new HttpError(400, "validation_error", "Invalid media: must be a file part", { field: "media" });
    }
    bytes = new Uint8Array(await file.arrayBuffer());
    contentType = file.type.toLowerCase();
  } else {
    bytes = new Uint8Array(await c.req.arrayBuffer());
    contentType = normaliseType(header);
  }
  if (!WECHAT_IMAGE_TYPES.has(contentType)) {
    throw new HttpError(400, "validation_error", "Invalid content-type: must be image/jpeg, image/png or image/gif", {
      field: "content-type",
    });
  }
  if (bytes.byteLength === 0) {
    throw new HttpError(400, "validation_error", "Invalid media: file is empty", { field: "media" });
  }
  return { bytes, contentType };
}

function tooLarge(): never {
  throw new HttpError(413, "payload_too_large", "Request body is too large");
}

function envOf(c: Context<AppEnv>): Env {
  return c.env ?? {};
}

/**
 * Whether `WECHAT_EMULATOR` is `on`; anything else, malformed values included, is off.
 *
 * @param env the bindings
 * @returns `true` only for `on`
 */
export function emulatorOn(env: Env): boolean {
  return lenientVar(env, "WECHAT_EMULATOR") === "on";
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// The request's own origin: its URL's, and the one its Host names (what the browser used).
function ownOrigins(c: Context<AppEnv>): string[] {
  const url = new URL(c.req.url);
  const host = c.req.header("host");
  return host === undefined ? [url.origin] : [url.origin, `${url.protocol}//${host}`];
}

const LOOPBACK_NAMES = new Set(["localhost", "[::1]"]);

/**
 * Whether the request was addressed to this machine (its Host is a loopback name or
 * address): the dev routes drive a fake WeChat, and a page on another site that reaches
 * the dev server through DNS rebinding carries its own name in Host.
 *
 * @param c the request context
 * @returns `true` for `localhost`, `127.x.x.x` and `[::1]`, with any port
 */
export function fromLoopback(c: Context<AppEnv>): boolean {
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return LOOPBACK_NAMES.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function pageConfig(env: Env): PageConfig {
  return {
    appId: lenientVar(env, "WECHAT_APPID") ?? null,
    apiKey: lenientVar(env, "API_KEY") ?? null,
    pushMode: lenientVar(env, "WECHAT_AES_KEY") === undefined ? "plain" : "safe",
    pushFormat: "xml",
    welcomeText: lenientVar(env, "WELCOME_TEXT") ?? null,
    transfer: lenientVar(env, "TRANSFER_TO_KF") === "on",
    messageTypes: Object.fromEntries(
      Object.entries(MESSAGE_TYPES).map(([name, spec]) => [name, spec.view]),
    ) as Record<MsgType, MessageView>,
    windowLimits: { message: WINDOW_GRANTS.message.count, session: WINDOW_GRANTS.session.count },
  };
}
