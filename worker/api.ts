/**
 * The `/api` sub-app: the authenticated HTTP API over the customer-service calls, mounted by
 * `createApp` with `app.route("/api", …)`. Every body and parameter is checked against the
 * schemas in `schemas.ts` (the same field schemas the SDK uses) before anything reaches
 * WeChat.
 *
 * @module
 */
// The tiny preset (PatternRouter) keeps the bundle small; the API has a handful of routes.
import { Hono } from "hono/tiny";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
import type { KeyValueStore, MiniProgram, SendOptions, SendPayloads } from "../mod.ts";
import type { AppEnv } from "./types.ts";
import { requireApiKey } from "./auth.ts";
import { type Env, optionalVar } from "./env.ts";
import { HttpError } from "./errors.ts";
import { type IdempotencySettings, idempotent } from "./idempotency.ts";
import { copyResponse, mediaResponse } from "./media.ts";
import type { MediaCopies } from "./media_copies.ts";
import { executionContext } from "./background.ts";
import {
  jsonBody,
  mediaParamsSchema,
  readUpload,
  rejectInvalid,
  type SendMessageBody,
  sendMessageSchema,
  subscribeMessageBodySchema,
  typingSchema,
  userParamsSchema,
} from "./schemas.ts";
import type { Needs } from "./wechat.ts";
import { conversationRoutes, type ConversationRouteSettings, senderOf } from "./conversations/mod.ts";
import { deadLetterRoutes, type DeadLetterRouteSettings } from "./dead_letters/mod.ts";

/** What the API routes need from the app. */
export interface ApiSettings {
  /** The MiniProgram of an env, for what a route needs. */
  miniProgram(env: Env, needs: Needs): MiniProgram;
  /** Where idempotency records go for an env (the push store). */
  idempotencyStore(env: Env): KeyValueStore;
  /** Largest accepted upload, in bytes. */
  maxUploadBytes: number;
  /** The conversations of an env (`/api/conversations`, `/api/users/:openId/messages`, `/handoff`, `DELETE /api/users/:openId`). */
  conversations?: ConversationRouteSettings["conversations"] | undefined;
  /** Where dead letters are kept and the queue they are replayed onto (`/api/dead-letters`). */
  deadLetters: DeadLetterRouteSettings;
  /** Copies of media: served by `GET /media/:mediaId`; uploads put in the bucket after the answer. */
  media?: MediaCopies | undefined;
}

/** Who may call the routes, when they are not the bearer-key `/api` (the agent inbox). */
export interface ApiAccess {
  /**
   * Lets a request in (or throws an `HttpError`); runs before anything else. An agent it sets
   * on the context (`c.set("agent", name)`) is the sender of every send and handoff, whatever
   * the request says.
   */
  guard: MiddlewareHandler<AppEnv>;
  /**
   * Only what an agent does in a conversation: the list, history, handoff, window, sends (always
   * window-checked first), typing and media. Raw subscribe messages, dead letters and deleting a
   * user stay with the bearer key.
   */
  agentOnly: true;
}

/** Room for the multipart boundaries and part headers around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
const API: Needs = { secret: true, push: false };
const NO_ENV: Env = {};

/**
 * Builds the `/api` routes: `POST /messages`, `POST /typing`, `GET /users/:openId/window`,
 * `POST /subscribe-messages`, `POST /media`, `GET /media/:mediaId` and `/dead-letters`, each
 * behind the bearer key and a configuration check.
 *
 * @param settings how the routes reach the mini program, the idempotency store and the upload limit
 * @param access who may call instead of the bearer key, and the agent's subset of the routes (the inbox)
 * @returns the sub-app, to mount at `/api`
 * @example Mounted as createApp mounts it
 * ```ts
 * import { Hono } from "hono/tiny";
 * import { MemoryStore, MiniProgram } from "@kefu/edge";
 * import { type AppEnv, memoryDeadLetters } from "@kefu/edge/worker";
 * import { apiRoutes } from "./api.ts";
 * import { answerErrors } from "./errors.ts";
 * const mp = new MiniProgram({ appId: "wx1", appSecret: "secret" });
 * const deadLetters = { store: () => memoryDeadLetters(), queue: () => undefined };
 * const api = apiRoutes({ miniProgram: () => mp, idempotencyStore: () => new MemoryStore(), maxUploadBytes: 1024, deadLetters });
 * const app = new Hono<AppEnv>().route("/api", api).onError(answerErrors(console));
 * const res = await app.request("/api/typing", { method: "POST" }, { API_KEY: "key-0123456789" });
 * console.log(res.status, res.headers.get("www-authenticate")); // 401 "Bearer realm=\"kefu-edge\""
 * ```
 */
export function apiRoutes(settings: ApiSettings, access?: ApiAccess): Hono<AppEnv> {
  const { maxUploadBytes } = settings;
  const mp = (env: Env | undefined) => settings.miniProgram(env ?? NO_ENV, API);
  const tooLarge = () => {
    throw new HttpError(413, "payload_too_large", `Media is larger than the ${maxUploadBytes}-byte limit`, {
      field: "media",
    });
  };
  // Checked before any body is read: a misconfigured worker answers 503 at once.
  const needWeChat: MiddlewareHandler<AppEnv> = async (c, next) => {
    mp(c.env);
    await next();
  };
  const once: IdempotencySettings = { store: settings.idempotencyStore, appId: (env) => mp(env).appId };

  const api = new Hono<AppEnv>();
  api.use("*", access?.guard ?? requireApiKey(), needWeChat);
  // An agent signed in to the inbox is the sender; the bearer key's caller may name one.
  const senderFor = (c: Context<AppEnv>) => {
    const agent = c.get("agent");
    return agent === undefined ? senderOf(c.req.header("x-kefu-agent")) : `agent:${agent}` as const;
  };
  if (settings.media !== undefined) {
    const media = settings.media;
    // Copies waiting (an upload this request made) are made once it is answered.
    api.use("*", async (c, next) => {
      await next();
      media.afterAnswer(c.env ?? NO_ENV, executionContext(c));
    });
  }

  api.post("/messages", ...jsonBody(sendMessageSchema), idempotent("messages", once), async (c) => {
    // The inbox checks the window before every send: a refused reply never reaches WeChat.
    const checkWindow = optionalVar(c.env ?? NO_ENV, "CHECK_WINDOW") === "on";
    return c.json(await send(mp(c.env), c.req.valid("json"), checkWindow, senderFor(c), access !== undefined));
  });

  api.post("/typing", ...jsonBody(typingSchema), idempotent("typing", once), async (c) => {
    const { touser, command, businessid } = c.req.valid("json");
    return c.json(
      await mp(c.env).customerServiceMessage.setTyping(touser, command, {
        businessId: businessid,
        sender: senderFor(c),
      }),
    );
  });

  api.get("/users/:openId/window", zValidator("param", userParamsSchema, rejectInvalid), async (c) => {
    const { openId } = c.req.valid("param");
    const window = await mp(c.env).customerServiceMessage.window(openId);
    return c.json({ window: window ?? null }, 200, { "cache-control": "no-store" });
  });

  if (access === undefined) {
    api.post(
      "/subscribe-messages",
      ...jsonBody(subscribeMessageBodySchema),
      idempotent("subscribe-messages", once),
      async (c) => {
        const { touser, ...message } = c.req.valid("json");
        return c.json(await mp(c.env).subscribeMessage.send(touser, message));
      },
    );
    api.route("/dead-letters", deadLetterRoutes(settings.deadLetters));
  }

  api.post(
    "/media",
    bodyLimit({ maxSize: maxUploadBytes + MULTIPART_OVERHEAD_BYTES, onError: tooLarge }),
    async (c) => {
      // Not zValidator("form"): it would keep a copy of the whole body until the answer.
      const { media, type } = await readUpload(c.req.raw);
      if (media.size > maxUploadBytes) tooLarge();
      return c.json(await mp(c.env).customerServiceMessage.uploadTempMedia(type, media, { filename: media.name }));
    },
  );

  api.route(
    "/",
    conversationRoutes({
      conversations: (env) => settings.conversations?.(env),
      appId: (env) => mp(env).appId,
      // The user's dead letters hold their messages too.
      purgeAlso: async (env, openId) => void await settings.deadLetters.store(env).purgeUser(openId),
      agentOnly: access !== undefined,
    }),
  );

  api.get("/media/:mediaId", zValidator("param", mediaParamsSchema, rejectInvalid), async (c) => {
    const { mediaId } = c.req.valid("param");
    const program = mp(c.env);
    const copy = await settings.media?.find(c.env ?? NO_ENV, program.appId, mediaId);
    if (copy !== undefined) return copyResponse(copy, mediaId);
    return mediaResponse(await program.customerServiceMessage.getTempMedia(mediaId), mediaId);
  });

  return api;
}

function send(
  mp: MiniProgram,
  body: SendMessageBody,
  checkWindowByDefault: boolean,
  sender: SendOptions["sender"],
  alwaysCheck: boolean,
) {
  const payload = (body as unknown as Record<string, unknown>)[body.msgtype];
  const options: SendOptions = {
    sender,
    checkWindow: alwaysCheck || (body.checkWindow ?? checkWindowByDefault),
    businessId: body.businessid,
    aiMsgContext: body.aimsgcontext,
  };
  return mp.customerServiceMessage.send(
    body.touser,
    body.msgtype,
    payload as SendPayloads[typeof body.msgtype],
    options,
  );
}
