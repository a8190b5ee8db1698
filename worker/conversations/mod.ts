/**
 * The conversation routes of `/api` (behind the API's bearer key): the app's conversations, a
 * user's history, who answers the conversation (the bot, or a person who took it over), and
 * deleting everything of a user.
 *
 * - `GET /api/conversations?state=&limit=&cursor=`: the app's conversations, most recent
 *   activity first, each with a preview of its last message, its unread count, window and
 *   handoff (`state`: `waiting`, `human`, `bot`, `closed` or `all`, the default; `limit` 1–200,
 *   default 50; `cursor`: the `nextCursor` of the page before);
 * - `GET /api/users/:openId/messages?before=&limit=`: the history, newest first (`limit` 1–200,
 *   default 50; `before`: the `seq` a previous page ended at);
 * - `GET /api/users/:openId/handoff` and `PUT /api/users/:openId/handoff`
 *   `{ "state": "bot" | "waiting" | "human" | "closed", "agent"?, "reason"? }`: a second agent
 *   taking over what another holds gets 409 `handoff_conflict`;
 * - `DELETE /api/users/:openId`: purges the user's conversation, and what `purgeAlso` deletes
 *   (204, idempotent).
 *
 * Unknown users get 404 `not_found`; without a conversation store, 503 naming what to bind.
 *
 * @module
 */
import { Hono } from "hono/tiny";
import { zValidator } from "@hono/zod-validator";
// Private helper (a documented exception, see src/internal/README.md): the package's one zod.
import * as z from "../../src/internal/zod.ts";
import {
  CONVERSATION_FILTERS,
  type ConversationFilter,
  type ConversationRef,
  type ConversationStore,
  HANDOFF_STATES,
  type HandoffState,
} from "../../mod.ts";
import type { AppEnv } from "../types.ts";
import type { Env } from "../env.ts";
import { HttpError } from "../errors.ts";
import { jsonBody, rejectInvalid, userParamsSchema } from "../schemas.ts";

/** What the conversation routes need from the app. */
export interface ConversationRouteSettings {
  /** The env's conversations, or `undefined` when none are kept. */
  conversations(env: Env): ConversationStore | undefined;
  /** The env's AppID. */
  appId(env: Env): string;
  /** What else `DELETE /api/users/:openId` deletes of the user (the app: their dead letters). */
  purgeAlso?: ((env: Env, openId: string) => Promise<void>) | undefined;
  /**
   * The agent inbox's subset: no `DELETE /users/:openId`, and the handoff's agent is the one
   * signed in (`c.get("agent")`), never the body's.
   */
  agentOnly?: boolean | undefined;
}

/** A page's `limit` in a query: 1 to 200. */
const limitSchema = z.string().check(z.regex(/^(?:[1-9]\d?|1\d\d|200)$/, "must be a whole number from 1 to 200"));

/** The query of a history page. */
export const historyQuerySchema: z.ZodMiniType<{ before?: string | undefined; limit?: string | undefined }> = z
  .object({
    before: z.optional(z.string().check(z.regex(/^[1-9]\d{0,14}$/, "must be a positive whole number (a seq)"))),
    limit: z.optional(limitSchema),
  });

/** The query of `GET /api/conversations`. */
export interface ConversationListQuery {
  /** Only conversations in this state; default `all`. */
  state?: ConversationFilter | undefined;
  /** Conversations per page, 1–200; default 50. */
  limit?: string | undefined;
  /** The `nextCursor` of the page before. */
  cursor?: string | undefined;
}

/** Schema of {@link ConversationListQuery}. */
export const conversationListQuerySchema: z.ZodMiniType<ConversationListQuery> = z.object({
  state: z.optional(
    z.enum(CONVERSATION_FILTERS as [ConversationFilter, ...ConversationFilter[]], {
      error: `must be one of ${CONVERSATION_FILTERS.map((s) => `"${s}"`).join(", ")}`,
    }),
  ),
  limit: z.optional(limitSchema),
  cursor: z.optional(
    z.string().check(
      z.maxLength(400, "must be the nextCursor of a page, unchanged"),
      z.regex(/^[A-Za-z0-9_-]+$/, "must be the nextCursor of a page, unchanged"),
    ),
  ),
}) as unknown as z.ZodMiniType<ConversationListQuery>;

/** The body of `PUT /api/users/:openId/handoff`. */
export interface HandoffBody {
  /** The new state. */
  state: HandoffState;
  /** The agent making the change (a person's name or email). */
  agent?: string | undefined;
  /** Why, in a few words. */
  reason?: string | undefined;
}

// deno-lint-ignore no-control-regex
const NO_CONTROL = /^[^\x00-\x1f\x7f]+$/;

/** An agent's name: 1–64 characters, no control characters. */
export const agentNameSchema: z.ZodMiniType<string> = z.string().check(
  z.minLength(1, "must not be empty"),
  z.maxLength(64, "must be at most 64 characters"),
  z.regex(NO_CONTROL, "must not contain control characters"),
);

/** Schema of {@link HandoffBody}. */
export const handoffBodySchema: z.ZodMiniType<HandoffBody> = z.strictObject({
  state: z.enum(HANDOFF_STATES as [HandoffState, ...HandoffState[]], {
    error: `must be one of ${HANDOFF_STATES.map((s) => `"${s}"`).join(", ")}`,
  }),
  agent: z.optional(agentNameSchema),
  reason: z.optional(z.string().check(z.maxLength(200, "must be at most 200 characters"), z.regex(NO_CONTROL))),
}) as unknown as z.ZodMiniType<HandoffBody>;

/**
 * The sender an `/api` send is recorded for: `agent:<name>` with an `X-Kefu-Agent` header,
 * else `api`.
 *
 * @param header the `X-Kefu-Agent` header's value, if any
 * @returns the sender
 * @throws {HttpError} 400 naming the header when it is not an agent's name
 * @example
 * ```ts
 * import { senderOf } from "@kefu/edge/worker";
 * console.log(senderOf("alice"), senderOf(undefined)); // "agent:alice" "api"
 * ```
 */
export function senderOf(header: string | undefined | null): "api" | `agent:${string}` {
  if (header === undefined || header === null) return "api";
  const name = agentNameSchema.safeParse(header.trim());
  if (!name.success) {
    throw new HttpError(400, "validation_error", "Invalid X-Kefu-Agent: must be an agent's name (1-64 characters)", {
      field: "X-Kefu-Agent",
    });
  }
  return `agent:${name.data}`;
}

/**
 * Builds the conversation routes (`/conversations` and `/users/…`), to mount at `/api` behind
 * the API key.
 *
 * @param settings the conversations and the AppID of an env
 * @returns the sub-app
 * @example
 * ```ts
 * import { Hono } from "hono/tiny";
 * import { MemoryConversationStore } from "@kefu/edge";
 * import { conversationRoutes, HttpError } from "@kefu/edge/worker";
 * const conversations = new MemoryConversationStore();
 * const routes = conversationRoutes({ conversations: () => conversations, appId: () => "wx1" });
 * // Its errors are HttpErrors: answer them as JSON (createApp does).
 * const app = new Hono().route("/api", routes)
 *   .onError((err) => err instanceof HttpError ? err.toResponse() : Response.json({}, { status: 500 }));
 * const res = await app.request("/api/conversations?state=waiting");
 * console.log(res.status, await res.json()); // 200 { conversations: [], nextCursor: null }
 * const unknown = await app.request("/api/users/o9AgO5Kd5ggOC-bXrbNODIiE3bGY/messages");
 * console.log(unknown.status, (await unknown.json()).error.code); // 404 "not_found"
 * ```
 */
export function conversationRoutes(settings: ConversationRouteSettings): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const noStore = { "cache-control": "no-store" };
  const storeOf = (env: Env | undefined): ConversationStore => {
    const store = settings.conversations(env ?? {});
    if (store === undefined) {
      throw new HttpError(503, "conversations_not_configured", "No conversation store: bind KEFU_STORE", {
        variable: "KEFU_STORE",
      });
    }
    return store;
  };
  const open = (env: Env | undefined, openId: string): { store: ConversationStore; ref: ConversationRef } => ({
    store: storeOf(env),
    ref: { appId: settings.appId(env ?? {}), openId },
  });
  const unknownUser = () => new HttpError(404, "not_found", "No conversation with this user (never seen, or purged)");
  const params = zValidator("param", userParamsSchema, rejectInvalid);

  routes.get("/conversations", zValidator("query", conversationListQuerySchema, rejectInvalid), async (c) => {
    const store = storeOf(c.env);
    const { state, limit, cursor } = c.req.valid("query");
    const page = await store.list(settings.appId(c.env ?? {}), {
      state,
      limit: limit === undefined ? 50 : Number(limit),
      cursor,
    });
    return c.json(page, 200, noStore);
  });

  routes.get("/users/:openId/messages", params, zValidator("query", historyQuerySchema, rejectInvalid), async (c) => {
    const { store, ref } = open(c.env, c.req.valid("param").openId);
    const { before, limit } = c.req.valid("query");
    const page = await store.history(ref, {
      before: before === undefined ? undefined : Number(before),
      limit: limit === undefined ? 50 : Number(limit),
    });
    if (page === null) throw unknownUser();
    return c.json(page, 200, noStore);
  });

  routes.get("/users/:openId/handoff", params, async (c) => {
    const { store, ref } = open(c.env, c.req.valid("param").openId);
    const handoff = await store.handoff(ref);
    if (handoff === null) throw unknownUser();
    return c.json(handoff, 200, noStore);
  });

  routes.put("/users/:openId/handoff", params, ...jsonBody(handoffBodySchema), async (c) => {
    const { store, ref } = open(c.env, c.req.valid("param").openId);
    const { state, reason } = c.req.valid("json");
    // In the inbox, the agent signed in (its guard sets it on every request).
    const agent = c.get("agent") ?? c.req.valid("json").agent;
    if (await store.handoff(ref) === null) throw unknownUser();
    const by = agent === undefined ? "api" : `agent:${agent}` as const;
    // Taking over: only what no other agent holds (one of two agents at once wins).
    const from: HandoffState[] | undefined = state === "human" ? ["bot", "waiting", "closed"] : undefined;
    const result = await store.setHandoff(ref, { state, by, reason, from });
    const held = result.handoff;
    if (!result.changed && state === "human" && (held.state !== "human" || held.agent !== agent)) {
      throw new HttpError(409, "handoff_conflict", "Another agent has taken this conversation over");
    }
    return c.json(held, 200, noStore);
  });

  if (settings.agentOnly) return routes;
  routes.delete("/users/:openId", params, async (c) => {
    const { store, ref } = open(c.env, c.req.valid("param").openId);
    await store.purge(ref);
    await settings.purgeAlso?.(c.env ?? {}, ref.openId);
    return c.body(null, 204);
  });

  return routes;
}
