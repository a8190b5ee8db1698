/**
 * The agent inbox: a page in the worker where people see every conversation live, take over
 * from the bot and answer inside the send window (see docs/inbox.md). `createApp` mounts it at
 * `/inbox`; it answers 503 until Cloudflare Access (`ACCESS_TEAM_DOMAIN`, `ACCESS_AUD`) or
 * agents' passwords (`INBOX_AGENTS`) are configured.
 *
 * - `GET /inbox/` the page; `/inbox/login` its sign-in (passwords);
 * - `/inbox/api/…` the agent's part of `/api` (the list, history, handoff, window, sends, typing,
 *   media), as the agent signed in, plus the session, a text's parts and the subscribe-message
 *   fallback;
 * - `GET /inbox/live` the WebSocket that tells the page which conversation changed.
 *
 * @module
 */
import { Hono } from "hono/tiny";
import type { MiddlewareHandler } from "hono";
import { type MiniProgram, splitText, WeChatApiError } from "../../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the package's one zod,
// and the name of an app's directory object.
import * as z from "../../src/internal/zod.ts";
import { directoryObjectName } from "../../src/internal/conversation_list.ts";
import { apiRoutes, type ApiSettings } from "../api.ts";
import { type Env, lenientVar, requireVar } from "../env.ts";
import { HttpError } from "../errors.ts";
import { jsonBody, rejectInvalid, typingSchema, userParamsSchema } from "../schemas.ts";
import { templateFallback } from "../subscribe_fallback.ts";
import type { AppEnv, AppLogger } from "../types.ts";
import { zValidator } from "@hono/zod-validator";
import { type InboxAgent, inboxAuth } from "./auth.ts";
import { SECURITY_HEADERS, serveAsset } from "./assets.ts";
import { EXPIRES_HEADER, LIVE_PATH } from "./live.ts";

export { CLOSE_EXPIRED, type HubSocket, type HubState, LiveHub, type LiveMessage } from "./live.ts";
export { type AttemptResult, InboxTables } from "./tables.ts";
export { agentNameProblem, hashPassword, parseInboxAgents, verifyPassword } from "./passwords.ts";

/** What the inbox needs from the app. */
export interface InboxSettings {
  /** The settings `/api` is built with: the inbox serves the agent's part of the same routes. */
  api: ApiSettings;
  /** The mini program of an env (typing and subscribe messages). */
  miniProgram(env: Env): MiniProgram;
  /** Transport for Access's signing keys. */
  fetch: typeof fetch;
  /** Clock, ms. */
  now(): number;
  /** Where refusals are logged. */
  logger: AppLogger;
}

/** How long WeChat shows "typing…" (and refuses another with 45081). */
const TYPING_MS = 15_000;
const NO_ENV: Env = {};
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// The inbox's page files: a name, one dot, a type the page uses.
const FILE = "/:file{[a-z0-9_-]+\\.(?:js|css|svg|png|ico|woff2)}";

const textPartsSchema: z.ZodMiniType<{ content: string }> = z.strictObject({
  content: z.string().check(z.maxLength(20_000, "must be at most 20000 characters")),
});
const fallbackSchema: z.ZodMiniType<{ text: string }> = z.strictObject({
  text: z.string().check(z.minLength(1, "must not be empty"), z.maxLength(2000, "must be at most 2000 characters")),
});

/**
 * Builds the inbox's routes, to mount at `/inbox`.
 *
 * @param settings the app's `/api` settings, its mini program, transport, clock and logger
 * @returns the sub-app
 * @example Fails closed until agents are configured
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * const app = createApp();
 * const res = await app.request("/inbox/", {}, { WECHAT_APPID: "wx1", WECHAT_SECRET: "s" });
 * console.log(res.status, (await res.json()).error.code); // 503 "inbox_not_configured"
 * ```
 */
export function inboxRoutes(settings: InboxSettings): Hono<AppEnv> {
  const auth = inboxAuth({ fetch: settings.fetch, now: settings.now, logger: settings.logger });
  const typingShown = new Map<string, number>();

  const signedIn = async (c: Parameters<MiddlewareHandler<AppEnv>>[0]): Promise<InboxAgent> => {
    const agent = await auth.agent(c);
    if (agent === undefined) throw new HttpError(401, "unauthorized", "Sign in to the inbox");
    return agent;
  };
  // Lets a signed-in agent in (writes: with their CSRF token, from this site), as `c.get("agent")`.
  const guard: MiddlewareHandler<AppEnv> = async (c, next) => {
    const agent = await signedIn(c);
    if (!SAFE_METHODS.has(c.req.method)) await auth.checkWrite(c, agent);
    c.set("agent", agent.name);
    await next();
  };

  const inbox = new Hono<AppEnv>();
  // Closed (503 naming what to set) until Access or agents are configured; every answer, errors
  // included, carries the page's security headers.
  inbox.use("*", async (c, next) => {
    auth.check(c.env ?? NO_ENV);
    await next();
    if (c.res.status === 101) return;
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  });
  inbox.route("/", auth.routes());

  inbox.get("/", async (c) => {
    if (!c.req.path.endsWith("/")) return c.redirect("/inbox/", 308);
    const agent = await auth.agent(c);
    if (agent !== undefined) return await serveAsset(c, "/inbox/");
    const browser = (c.req.header("accept") ?? "").includes("text/html");
    if (auth.check(c.env ?? NO_ENV) === "password" && browser) return c.redirect("/inbox/login", 303);
    throw new HttpError(401, "unauthorized", "Sign in to the inbox");
  });
  // Scripts and styles hold nothing secret: the sign-in page needs them before anyone is in.
  inbox.get(FILE, (c) => serveAsset(c, c.req.path));

  inbox.get("/live", async (c) => {
    const agent = await signedIn(c);
    auth.checkUpgrade(c);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(426, "upgrade_required", "Connect with a WebSocket", {}, { upgrade: "websocket" });
    }
    const env = c.env ?? NO_ENV;
    const namespace = env.KEFU_STORE!;
    const directory = namespace.get(namespace.idFromName(directoryObjectName(requireVar(env, "WECHAT_APPID"))));
    const headers = new Headers(c.req.raw.headers);
    headers.delete("cookie");
    headers.delete("cf-access-jwt-assertion");
    headers.set(EXPIRES_HEADER, String(agent.expiresAt ?? ""));
    return await directory.fetch(`https://inbox.invalid${LIVE_PATH}`, { headers });
  });

  inbox.get("/api/session", async (c) => {
    const agent = await signedIn(c);
    const env = c.env ?? NO_ENV;
    return c.json({
      agent: agent.name,
      via: agent.via,
      csrfToken: agent.csrfToken,
      expiresAt: agent.expiresAt,
      subscribeFallback: lenientVar(env, "INBOX_SUBSCRIBE_TEMPLATE") !== undefined,
      appId: requireVar(env, "WECHAT_APPID"),
    });
  });

  // What a text is sent as: its UTF-8 bytes and the parts the send splits it into.
  inbox.post("/api/text-parts", guard, ...jsonBody(textPartsSchema), (c) => {
    const { content } = c.req.valid("json");
    return c.json({ bytes: new TextEncoder().encode(content).byteLength, parts: splitText(content) });
  });

  // "Typing…" while the agent types: WeChat shows it 15 s and refuses another meanwhile (45081).
  inbox.post("/api/typing", guard, ...jsonBody(typingSchema), async (c) => {
    const { touser, command, businessid } = c.req.valid("json");
    const now = settings.now();
    const key = `${touser}\n${businessid ?? ""}`;
    if (command === "Typing" && now - (typingShown.get(key) ?? -Infinity) < TYPING_MS) {
      return c.json({ skipped: true });
    }
    try {
      await settings.miniProgram(c.env ?? NO_ENV).customerServiceMessage.setTyping(touser, command, {
        businessId: businessid,
        sender: `agent:${c.get("agent")}`,
      });
    } catch (err) {
      // Another isolate showed it a moment ago: the user sees "typing…" either way.
      if (err instanceof WeChatApiError && err.errcode === 45081) return c.json({ skipped: true });
      throw err;
    }
    if (command === "Typing") {
      if (typingShown.size >= 10_000) typingShown.delete(typingShown.keys().next().value!);
      typingShown.set(key, now);
    } else {
      typingShown.delete(key);
    }
    return c.json({ skipped: false });
  });

  // Outside the send window: a subscribe message (if the user accepted the template) says an answer waits.
  inbox.post(
    "/api/users/:openId/subscribe",
    guard,
    zValidator("param", userParamsSchema, rejectInvalid),
    ...jsonBody(fallbackSchema),
    async (c) => {
      const env = c.env ?? NO_ENV;
      const template = requireVar(env, "INBOX_SUBSCRIBE_TEMPLATE");
      const { openId } = c.req.valid("param");
      const message = templateFallback(template)(openId, c.req.valid("json").text);
      return c.json(
        await settings.miniProgram(env).subscribeMessage.send(openId, message, { sender: `agent:${c.get("agent")}` }),
      );
    },
  );

  inbox.route("/api", apiRoutes(settings.api, { guard, agentOnly: true }));
  return inbox;
}
