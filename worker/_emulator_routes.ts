/**
 * Private to the dev entry (`worker/dev.ts`): the `/_emulator/` routes. They exist
 * only while `WECHAT_EMULATOR=on`; otherwise every one of them answers 404 like an
 * unknown route.
 *
 * A user action (`messages`, `images`, `session`) makes the emulated WeChat build the
 * signed push it would send and deliver it to this same app's `/wechat/callback`, in
 * process: signature checks, decryption, dedupe and the push handler run for real, and
 * the user's send window opens for `/api/messages`. The answer says what was pushed,
 * how the app answered, and what the user received meanwhile (a welcome text).
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
import * as z from "../src/_zod.ts";
import { openIdSchema } from "../src/customer_service/schemas.ts";
import type { InboxEntry, PushAction, PushFields, SendWindow } from "../src/testing/mod.ts";
import type { AppEnv } from "./app.ts";
import { type Env, type EnvVar, optionalVar } from "./env.ts";
import { HttpError } from "./errors.ts";
import { rejectInvalid } from "./schemas.ts";
import { wechatSettings } from "./wechat.ts";
import type { EmulatorSession, EmulatorUpstreams } from "./emulator.ts";
import { type Exchange, type SentEntry, truncate } from "./_emulator_log.ts";
import { PAGE_SCRIPT, PAGE_STYLE, type PageConfig, pageHeaders, pageHtml } from "./_emulator_page.ts";

/** Largest image an emulated user can send, in bytes (WeChat's temporary media limit). */
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** How long a step waits for the work the app does after answering the push (a welcome text). */
const BACKGROUND_WAIT_MS = 5000;
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif"]);

const paramsSchema = z.object({ openId: openIdSchema });
const nonEmpty = z.string().check(z.refine((s) => s.trim() !== "", "must not be empty"));
const messageSchema = z.strictObject({
  text: nonEmpty.check(z.maxLength(2048, "must be at most 2048 characters")),
});
const sessionSchema = z.strictObject({
  sessionFrom: z.optional(z.string().check(z.maxLength(1024, "must be at most 1024 characters"))),
});
const exchangesQuery = z.object({ after: z._default(z.coerce.number().check(z.int(), z.minimum(0)), 0) });

/** An entry of a user's conversation: what they did, what they received, and WeChat's notices. */
export type ConversationEntry = ({ from: "user" } & SentEntry) | ({ from: "service" | "wechat" } & InboxEntry);

/**
 * Adds the `/_emulator/` routes to `app` (the dev entry's app): the chat simulator page
 * and its JSON API.
 *
 * @param app the app built by `createApp`; pushes are delivered to its own `fetch`
 * @param upstream the emulator upstream the app was built with, so both share one emulator
 * @example
 * ```ts ignore
 * const upstream = emulatorUpstream();
 * const app = createApp({ emulator: upstream.select });
 * registerEmulatorRoutes(app, upstream);
 * ```
 */
export function registerEmulatorRoutes(
  app: Hono<AppEnv>,
  upstream: EmulatorUpstreams,
  options: { background?: () => Promise<unknown>[] } = {},
): void {
  const background = options.background ?? (() => []);
  const gate: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!emulatorOn(envOf(c)) || !fromLoopback(c)) throw new HttpError(404, "not_found", "No such route");
    await next();
  };
  const sessionOf = (c: Context<AppEnv>): EmulatorSession =>
    upstream.session(wechatSettings(envOf(c), { secret: true, push: true }));
  const params = zValidator("param", paramsSchema, rejectInvalid);
  const json = <T extends z.ZodMiniType>(schema: T) =>
    [
      bodyLimit({ maxSize: 64 * 1024, onError: tooLarge }),
      zValidator("json", schema, rejectInvalid),
    ] as const;

  app.use("/_emulator", gate);
  app.use("/_emulator/*", gate);

  // The router treats a trailing slash as optional: one route, and the bare path redirects
  // so that the page has a single address.
  app.get("/_emulator/", (c) => {
    if (!c.req.path.endsWith("/")) return c.redirect("/_emulator/", 308);
    return c.html(pageHtml(pageConfig(envOf(c))), 200, pageHeaders());
  });
  app.get("/_emulator/page.js", (c) => c.body(PAGE_SCRIPT, 200, pageHeaders("text/javascript; charset=utf-8")));
  app.get("/_emulator/page.css", (c) => c.body(PAGE_STYLE, 200, pageHeaders("text/css; charset=utf-8")));

  app.get("/_emulator/users", (c) => {
    const session = sessionOf(c);
    return c.json({ users: session.sent.users().map((openId) => ({ openId, ...userStatus(session, openId) })) });
  });

  app.post("/_emulator/users/:openId/messages", params, ...json(messageSchema), async (c) => {
    const { openId } = c.req.valid("param");
    const { text } = c.req.valid("json");
    const session = sessionOf(c);
    const user = session.emulator.user(openId);
    return c.json(
      await step(c, app, background, session, openId, () => user.says(text), (at) => ({ kind: "text", text, at })),
    );
  });

  app.post(
    "/_emulator/users/:openId/images",
    bodyLimit({ maxSize: MAX_IMAGE_BYTES + MULTIPART_OVERHEAD_BYTES, onError: tooLarge }),
    params,
    async (c) => {
      const { openId } = c.req.valid("param");
      const { bytes, contentType } = await readImage(c);
      const session = sessionOf(c);
      const user = session.emulator.user(openId);
      return c.json(
        await step(c, app, background, session, openId, () => user.sendsImage(bytes, contentType), (at, push) => ({
          kind: "image",
          mediaId: String(push.message.MediaId),
          at,
        })),
      );
    },
  );

  app.post("/_emulator/users/:openId/session", params, ...json(sessionSchema), async (c) => {
    const { openId } = c.req.valid("param");
    const sessionFrom = c.req.valid("json").sessionFrom ?? "";
    const session = sessionOf(c);
    const user = session.emulator.user(openId);
    return c.json(
      await step(c, app, background, session, openId, () => user.entersSession(sessionFrom), (at) => ({
        kind: "session",
        sessionFrom,
        at,
      })),
    );
  });

  app.get("/_emulator/users/:openId/inbox", params, (c) => {
    const { openId } = c.req.valid("param");
    const session = sessionOf(c);
    return c.json({ openId, ...userStatus(session, openId), inbox: session.emulator.inbox(openId) });
  });

  app.get("/_emulator/users/:openId/conversation", params, (c) => {
    const { openId } = c.req.valid("param");
    const session = sessionOf(c);
    return c.json({ openId, ...userStatus(session, openId), entries: conversation(session, openId) });
  });

  app.get("/_emulator/exchanges", zValidator("query", exchangesQuery, rejectInvalid), (c) => {
    const { after } = c.req.valid("query");
    return c.json({ exchanges: sessionOf(c).exchanges.since(after) });
  });
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

// One user action: record it, deliver the push to the app with WeChat's retry rules,
// log each attempt, then wait (bounded) for the app's after-answer work.
async function step(
  c: Context<AppEnv>,
  app: Hono<AppEnv>,
  background: () => Promise<unknown>[],
  session: EmulatorSession,
  openId: string,
  act: () => Promise<PushAction>,
  sent: (at: number, push: PushAction) => SentEntry,
): Promise<StepResult> {
  const { emulator, exchanges } = session;
  const before = emulator.inbox(openId).length;
  const push = await act();
  session.sent.add(openId, sent(emulator.now(), push));
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
    last.notes.push(`Reply${outcome.encrypted ? " after decryption" : ""}: ${truncate(outcome.reply)}`);
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

async function settle(tasks: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  try {
    await Promise.race([Promise.allSettled(tasks), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Only users who acted through these routes exist in the emulator: asking about anyone
// else must not create them (WeChat answers 40003 for an OpenID it does not know).
function userStatus(session: EmulatorSession, openId: string): { window: SendWindow | null; typing: boolean } {
  if (session.sent.of(openId).length === 0) return { window: null, typing: false };
  const user = session.emulator.user(openId);
  return { window: user.window ?? null, typing: user.typing };
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
    contentType = header.split(";")[0]?.trim().toLowerCase() ?? "";
  }
  if (!IMAGE_TYPES.has(contentType)) {
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
  return lenient(env, "WECHAT_EMULATOR") === "on";
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

function lenient<K extends EnvVar>(env: Env, name: K) {
  try {
    return optionalVar(env, name);
  } catch {
    return undefined;
  }
}

function pageConfig(env: Env): PageConfig {
  return {
    appId: lenient(env, "WECHAT_APPID") ?? null,
    apiKey: lenient(env, "API_KEY") ?? null,
    pushMode: lenient(env, "WECHAT_AES_KEY") === undefined ? "plain" : "safe",
    pushFormat: "xml",
    welcomeText: lenient(env, "WELCOME_TEXT") ?? null,
    transfer: lenient(env, "TRANSFER_TO_KF") === "on",
  };
}

// Hono throws when the runtime gave no execution context (plain Deno/Bun servers).
function executionContext(c: Context<AppEnv>): { waitUntil(promise: Promise<unknown>): void } | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}
