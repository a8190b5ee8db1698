/**
 * The OpenAPI 3.1 document of the worker's routes, built from the zod schemas the routes
 * validate with (zod's own JSON Schema output, draft 2020-12, which is what OpenAPI 3.1
 * uses). `npm run openapi` (scripts/openapi.ts) writes it to `public/openapi.json`, served at
 * `GET /openapi.json` (on Workers as a static asset, by the Deno, Bun and Node servers from the
 * package); a test fails when that file is not what this module builds.
 *
 * Why at build time: zod's JSON Schema generator and the Hono OpenAPI packages cost the
 * deployed bundle 6.6 KiB (the generator) to 80–100 KiB (the packages) gzip, against a
 * 50 KiB budget; the generated document is a static file and costs the script nothing.
 *
 * A build step, so it lives here and not in `worker/`: the worker never imports it, and the
 * package does not ship it.
 *
 * @module
 */
// Private helpers (a documented exception, see src/internal/README.md): the package's one
// zod and the field schemas the routes check the same fields with.
import * as z from "../src/internal/zod.ts";
import {
  aiMsgContextSchema,
  businessIdSchema,
  mediaIdSchema,
  mediaTypeSchema,
  openIdSchema,
} from "../src/internal/field_schemas.ts";
import {
  MSG_TYPES,
  sendSchemas,
  type SendWindow,
  type SubscribeMessageResult,
  type UploadTempMediaResult,
  type WeChatResult,
} from "../mod.ts";
import type { ErrorBody } from "../worker/errors.ts";
import { deadLetterListQuerySchema, deadLetterParamsSchema } from "../worker/dead_letters/mod.ts";
import { conversationListQuerySchema, handoffBodySchema, historyQuerySchema } from "../worker/conversations/mod.ts";
import { IDEMPOTENCY_TTL_SECONDS } from "../worker/idempotency.ts";
import {
  MAX_JSON_BYTES,
  mediaParamsSchema,
  sendMessageSchema,
  subscribeMessageBodySchema,
  typingSchema,
  userParamsSchema,
} from "../worker/schemas.ts";
import type { OpenApiDocument } from "../worker/types.ts";

// ------------------------------------------------------------- answers the SDK returns

const weChatResultSchema = z.object({
  errcode: z.number().check(z.describe("0 on success")),
  errmsg: z.string().check(z.describe("`ok` on success")),
});

const uploadResultSchema = z.object({
  type: z.string().check(z.describe("The media type, `image`")),
  media_id: z.string().check(z.describe("Valid for 3 days, for `image` and `miniprogrampage` messages")),
  created_at: z.number().check(z.describe("Upload time, seconds since the epoch")),
});

const subscribeResultSchema = z.object({
  errcode: z.number(),
  errmsg: z.string(),
  msgid: z.optional(z.string().check(z.describe("The sent message's id, a 64-bit integer with all its digits"))),
});

const sendWindowSchema = z.object({
  kind: z.enum(["message", "session"]).check(
    z.describe("What opened it: a user message (5 sends in 48 h) or a session entry (2 in 1 min)"),
  ),
  remaining: z.number().check(z.describe("Sends still allowed")),
  expiresAt: z.number().check(z.describe("When it closes, ms since the epoch")),
});

const windowAnswerSchema = z.object({
  window: z.nullable(sendWindowSchema).check(z.describe("`null`: no window known (closed, or never opened)")),
});

const handoffStates = z.enum(["bot", "waiting", "human", "closed"]);

const conversationEntrySchema = z.object({
  seq: z.number().check(z.describe("Its place in the conversation: pass it as `before` to page")),
  at: z.number().check(z.describe("When, ms since the epoch")),
  sender: z.string().check(z.describe("`user`, `bot`, `api`, `system` or `agent:<name>`")),
  type: z.enum(["message", "event", "typing", "subscribe", "handoff"]),
  msgType: z.optional(z.string().check(z.describe("`text`, `image`, `miniprogrampage`, `link`, or the event"))),
  text: z.optional(z.string()),
  mediaId: z.optional(z.string().check(z.describe("An image's media_id (valid 3 days from `at`)"))),
  mediaExpiresAt: z.optional(
    z.number().check(z.describe("A user's media: when WeChat forgets `mediaId`, ms (3 days after it arrived)")),
  ),
  mediaKey: z.optional(
    z.string().check(
      z.describe(
        "Where the worker keeps a copy of the media (an object of its `KEFU_MEDIA` R2 bucket), once copied: " +
          "`GET /api/media/{mediaId}` serves it as long as the entry is kept",
      ),
    ),
  ),
  title: z.optional(z.string()),
  pagePath: z.optional(z.string()),
  url: z.optional(z.string()),
  outcome: z.optional(
    z.union([z.literal("ok"), z.literal("unknown"), z.number()]).check(
      z.describe("A send's outcome: `ok`, WeChat's errcode, or `unknown` (no answer: it may have gone out)"),
    ),
  ),
  deliveryId: z.optional(z.string()),
  from: z.optional(handoffStates),
  to: z.optional(handoffStates),
  agent: z.optional(z.string()),
  reason: z.optional(z.string()),
});

const historyPageSchema = z.object({
  entries: z.array(conversationEntrySchema).check(z.describe("Newest first")),
  before: z.nullable(z.number()).check(z.describe("Pass as `before` for the next page; `null` on the last one")),
});

const handoffSchema = z.object({
  state: handoffStates,
  since: z.number().check(z.describe("Since when, ms since the epoch")),
  agent: z.optional(z.string().check(z.describe("The agent who has it, or who made the last change"))),
  reason: z.optional(z.string()),
});

const conversationSummarySchema = z.object({
  openId: z.string().check(z.describe("The user's OpenID")),
  lastMessage: z.nullable(
    z.object({
      seq: z.number().check(z.describe("The entry's `seq` in the user's history")),
      at: z.number().check(z.describe("When, ms since the epoch")),
      sender: z.string().check(z.describe("`user`, `bot`, `api` or `agent:<name>`")),
      msgType: z.optional(z.string().check(z.describe("`text`, `image`, `miniprogrampage`, `link`"))),
      text: z.string().check(
        z.describe(
          "A preview: a text's first 80 characters (ending in `…` when cut); images, cards and links in words",
        ),
      ),
    }),
  ).check(z.describe("The last message either way (sends WeChat refused left out); `null` before any")),
  unread: z.number().check(z.describe("The user's messages since the last reply of the bot, an agent or your service")),
  window: z.nullable(sendWindowSchema).check(z.describe("`null`: no window open")),
  handoff: z.object({
    state: handoffStates,
    since: z.number().check(z.describe("Since when, ms since the epoch")),
    agent: z.optional(z.string().check(z.describe("The agent who has it"))),
  }),
  lastActivityAt: z.number().check(z.describe("When anything last happened in it, ms since the epoch")),
});

const conversationPageSchema = z.object({
  conversations: z.array(conversationSummarySchema).check(z.describe("Most recent activity first")),
  nextCursor: z.nullable(z.string()).check(
    z.describe("Pass as `cursor` for the next page; `null` on the last one"),
  ),
});

const deadLetterSummarySchema = z.object({
  id: z.string().check(z.describe("The message's delivery id (`X-Kefu-Delivery`)")),
  msgType: z.optional(z.string().check(z.describe("The push's `MsgType`"))),
  event: z.optional(z.string().check(z.describe("The event's name, for events"))),
  attempts: z.optional(z.number().check(z.describe("How many times the handler ran and failed"))),
  deadAt: z.number().check(z.describe("When it was kept, ms since the epoch")),
  expiresAt: z.number().check(z.describe("When it will be deleted (`DEAD_LETTER_DAYS`), ms since the epoch")),
});

const deadLetterPageSchema = z.object({
  letters: z.array(deadLetterSummarySchema),
  cursor: z.nullable(z.string()).check(z.describe("Pass as `cursor` for the next page; `null` on the last one")),
});

const deadLetterSchema = z.extend(deadLetterSummarySchema, {
  job: z.unknown().check(z.describe("The queued job: the verified message (the user's text and openid) and its key")),
});

const replayAnswerSchema = z.object({ id: z.string(), replayed: z.literal(true) });

const errorBodySchema = z.object({
  error: z.object({
    code: z.string().check(z.describe("Machine-readable code, e.g. `validation_error`, `wechat_api_error`")),
    message: z.string().check(z.describe("Human-readable text, safe to show: never a stack, token or secret")),
    errcode: z.optional(z.number().check(z.describe("WeChat's errcode, when WeChat answered with one"))),
    field: z.optional(z.string().check(z.describe("The offending input field, for validation errors"))),
    variable: z.optional(z.string().check(z.describe("The configuration variable, for configuration errors"))),
    window: z.optional(z.nullable(sendWindowSchema)),
  }),
});

// The documented shapes are the SDK's own types: a change to either fails the type check.
// (zod types an optional field `?: T | undefined`; the SDK's types say `?: T`.)
type Defined<T> = T extends object ? { [K in keyof T]: Defined<Exclude<T[K], undefined>> } : T;
type Same<A, B> = [Defined<A>] extends [Defined<B>] ? ([Defined<B>] extends [Defined<A>] ? true : false) : false;
const shapesMatch: [
  Same<z.infer<typeof weChatResultSchema>, WeChatResult>,
  Same<z.infer<typeof uploadResultSchema>, UploadTempMediaResult>,
  Same<z.infer<typeof subscribeResultSchema>, SubscribeMessageResult>,
  Same<z.infer<typeof sendWindowSchema>, Omit<SendWindow, never>>,
  Same<z.infer<typeof errorBodySchema>, ErrorBody>,
] = [true, true, true, true, true];
void shapesMatch;

// ------------------------------------------------------------- the document

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const jsonContent = (schema: unknown) => ({ "application/json": { schema } });

/** Error answers by status, each naming its codes; every one is an `Error` body, described once. */
const ERRORS = {
  400: [
    "BadRequest",
    "`validation_error` (`error.field` names the field) or `bad_request` (a body that does not parse)",
  ],
  401: ["Unauthorized", "`unauthorized`: no `Authorization: Bearer <API_KEY>`, or another key"],
  409: [
    "Conflict",
    "`out_of_window` (`error.window`: the send window is closed or spent; nothing was sent) or " +
    "`idempotency_in_progress` (a request with this `Idempotency-Key` is still running; `Retry-After`), or " +
    "`handoff_conflict` (another agent has taken the conversation over)",
  ],
  413: [
    "PayloadTooLarge",
    `\`payload_too_large\`: a JSON body over ${MAX_JSON_BYTES} bytes, or media over the upload limit`,
  ],
  404: ["NotFound", "`not_found`: no such user's conversation (never seen, or purged), or no such dead letter"],
  415: [
    "UnsupportedMediaType",
    "`unsupported_media_type`: the body was not sent with `Content-Type: application/json`",
  ],
  422: ["IdempotencyKeyReused", "`idempotency_key_reused`: this `Idempotency-Key` came with another body"],
  500: ["InternalError", "`internal_error`"],
  502: [
    "BadGateway",
    "`wechat_api_error` (`error.errcode`: WeChat's errcode, e.g. 45015 outside the window), " +
    "`upstream_http_error`, `upstream_unreachable` or `upstream_invalid_response`; `chatwoot_unreachable` " +
    "(deleted in kefu-edge, not yet in Chatwoot: send it again)",
  ],
  503: [
    "ServiceUnavailable",
    "`config_missing` or `config_invalid` (`error.variable` names the variable), `queue_not_configured` " +
    "(a dead-letter replay without a queue bound) or `conversations_not_configured` (no conversation store)",
  ],
  504: ["GatewayTimeout", "`upstream_timeout`: WeChat did not answer in time"],
} as const;
type ErrorStatus = keyof typeof ERRORS;

function errors(...statuses: ErrorStatus[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((status) => [String(status), { $ref: `#/components/responses/${ERRORS[status][0]}` }]),
  );
}

/** The errors of every `/api` route: auth, configuration, and the app's own failure. */
const API_ERRORS: ErrorStatus[] = [401, 500, 503];
/** The errors of a route that calls WeChat. */
const UPSTREAM_ERRORS: ErrorStatus[] = [502, 504];

const idempotencyKey = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description: `Any 1 to 255 visible ASCII characters. The first result is kept ${IDEMPOTENCY_TTL_SECONDS / 3600} h ` +
    "and returned for a repeat with the same body (with `Idempotent-Replayed: true`), so a retry never sends twice.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
};

const replayed = {
  "Idempotent-Replayed": {
    description: "`true` when this is the kept result of an earlier request with the same `Idempotency-Key`",
    schema: { type: "string", const: "true" },
  },
};

/** A JSON `POST` of `/api`: the body, the result, and the errors it can meet. */
function apiPost(
  summary: string,
  description: string,
  body: string,
  result: string,
  extra: ErrorStatus[] = [],
): Record<string, unknown> {
  return {
    tags: ["API"],
    summary,
    description,
    security: [{ bearer: [] }],
    parameters: [idempotencyKey],
    requestBody: { required: true, content: jsonContent(ref(body)) },
    responses: {
      "200": { description: "WeChat's answer", headers: replayed, content: jsonContent(ref(result)) },
      ...errors(400, 413, 415, 422, ...extra, ...API_ERRORS, ...UPSTREAM_ERRORS),
    },
  };
}

/** A path parameter from the route's own params schema. */
function pathParameter(name: string, schema: z.ZodMiniType, description: string) {
  const params = toJsonSchemas({ params: schema }).params as { properties: Record<string, unknown> };
  return { name, in: "path", required: true, description, schema: params.properties[name] };
}

/** An optional query parameter from the route's own query schema. */
function queryParameter(name: string, schema: z.ZodMiniType) {
  const query = toJsonSchemas({ query: schema }).query as { properties: Record<string, unknown> };
  return { name, in: "query", required: false, schema: query.properties[name] };
}

type JsonSchemas = Record<string, Record<string, unknown>>;

/** JSON Schemas of named zod schemas, as input (what a client sends), referring to each other by component. */
function toJsonSchemas(named: Record<string, z.ZodMiniType>, shared: Record<string, z.ZodMiniType> = {}): JsonSchemas {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries({ ...shared, ...named })) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: "draft-2020-12",
    io: "input",
    // A refinement (a text's byte length, say) has no JSON Schema; the route still checks it.
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  });
  const out: JsonSchemas = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _, $id: __, ...rest } = schema as Record<string, unknown>;
    out[id] = rest;
  }
  return out;
}

/**
 * Builds the OpenAPI 3.1 document of the app's routes.
 *
 * @param version the package version, for `info.version`
 * @returns the document
 */
export function buildOpenApiDocument(version: string): OpenApiDocument {
  const payloads = Object.fromEntries(
    MSG_TYPES.map((type) => [`${pascal(type)}Payload`, sendSchemas[type] as z.ZodMiniType]),
  );
  const schemas = toJsonSchemas({
    OpenId: openIdSchema,
    MediaId: mediaIdSchema,
    BusinessId: businessIdSchema,
    AiMsgContext: aiMsgContextSchema as z.ZodMiniType,
    ...payloads,
    SendMessageBody: sendMessageSchema as z.ZodMiniType,
    TypingBody: typingSchema as z.ZodMiniType,
    SubscribeMessageBody: subscribeMessageBodySchema as z.ZodMiniType,
    WeChatResult: weChatResultSchema,
    UploadTempMediaResult: uploadResultSchema,
    SubscribeMessageResult: subscribeResultSchema,
    SendWindow: sendWindowSchema,
    WindowAnswer: windowAnswerSchema,
    ConversationEntry: conversationEntrySchema,
    HistoryPage: historyPageSchema,
    Handoff: handoffSchema,
    HandoffBody: handoffBodySchema as z.ZodMiniType,
    ConversationSummary: conversationSummarySchema,
    ConversationPage: conversationPageSchema,
    DeadLetterSummary: deadLetterSummarySchema,
    DeadLetterPage: deadLetterPageSchema,
    DeadLetter: deadLetterSchema,
    ReplayAnswer: replayAnswerSchema,
    Error: errorBodySchema,
  });
  // `msgtype` tells the message types apart.
  const send = schemas.SendMessageBody!;
  schemas.SendMessageBody = { ...send, discriminator: { propertyName: "msgtype" } };
  const mediaType = toJsonSchemas({ type: mediaTypeSchema as z.ZodMiniType }).type;

  const pushQuery = [
    ["signature", "SHA-1 of the Token, timestamp and nonce (URL verification and plain mode)"],
    ["timestamp", "Unix seconds; more than 300 s from the server's clock is refused"],
    ["nonce", "WeChat's random value"],
    ["encrypt_type", "`aes` in safe mode (required when an EncodingAESKey is configured)"],
    ["msg_signature", "SHA-1 of the Token, timestamp, nonce and the encrypted body (safe mode)"],
    ["openid", "The user's OpenID (not trusted: the signed body says who sent it)"],
  ].map(([name, description]) => ({ name, in: "query", required: false, description, schema: { type: "string" } }));
  const pushRefusals = {
    "400": {
      description: "`bad_request` or `undecryptable`: a body that does not parse or decrypt",
      content: jsonContent(ref("Error")),
    },
    "401": {
      description: "`bad_signature`, `stale_timestamp`, `encryption_required` (plaintext while a key is configured) " +
        "or `nonce_reused` (plain mode: another body on a used timestamp and nonce)",
      content: jsonContent(ref("Error")),
    },
    "403": { description: "`bad_appid`: encrypted for another AppID", content: jsonContent(ref("Error")) },
  };

  return {
    openapi: "3.1.0",
    info: {
      title: "kefu-edge",
      version,
      summary: "WeChat Mini Program customer-service messages (客服消息) over HTTP",
      description: "The HTTP API of the kefu-edge worker: send customer-service and subscribe messages, typing, " +
        "temporary media and the send window, authenticated by `Authorization: Bearer <API_KEY>`; and the " +
        "message-push endpoint WeChat calls, authenticated by WeChat's signatures.",
      license: { name: "MIT", identifier: "MIT" },
    },
    tags: [
      { name: "API", description: "Your service calls these, with the API key" },
      { name: "Push", description: "WeChat calls this (开发管理 → 消息推送)" },
      { name: "Chatwoot", description: "Chatwoot calls this (the API inbox's webhook), when the bridge is on" },
      { name: "Service", description: "Health and this document" },
    ],
    paths: {
      "/health": {
        get: {
          tags: ["Service"],
          summary: "Liveness",
          responses: {
            "200": {
              description: "The worker is up",
              content: jsonContent({
                type: "object",
                properties: { status: { const: "ok" } },
                required: ["status"],
              }),
            },
          },
        },
      },
      "/openapi.json": {
        get: {
          tags: ["Service"],
          summary: "This document",
          responses: { "200": { description: "OpenAPI 3.1", content: jsonContent({ type: "object" }) } },
        },
      },
      "/wechat/callback": {
        get: {
          tags: ["Push"],
          summary: "URL verification",
          description: "WeChat's check when you save the push settings: the app answers `echostr` when `signature` " +
            "matches the Token.",
          parameters: [
            ...pushQuery.slice(0, 3).map((p) => ({ ...p, required: true })),
            {
              name: "echostr",
              in: "query",
              required: true,
              description: "Echoed back",
              schema: { type: "string" },
            },
          ],
          responses: {
            "200": { description: "`echostr`", content: { "text/plain": { schema: { type: "string" } } } },
            ...pushRefusals,
          },
        },
        post: {
          tags: ["Push"],
          summary: "A message or event pushed by WeChat",
          description: "Verified, deduplicated (each message runs the handler once, across isolates when the " +
            "Durable Object is bound) and answered within WeChat's 5 s. With the queue bound, the message is " +
            "enqueued and answered at once. The body is WeChat's, in XML or JSON as configured, plain or encrypted.",
          parameters: pushQuery,
          requestBody: {
            required: true,
            content: {
              "text/xml": { schema: { type: "string" } },
              "application/json": { schema: { type: "object" } },
            },
          },
          responses: {
            "200": {
              description: "`success`, or a passive reply (`transfer_customer_service`) in the push's format",
              content: {
                "text/plain": { schema: { const: "success" } },
                "text/xml": { schema: { type: "string" } },
                "application/json": { schema: { type: "object" } },
              },
            },
            ...pushRefusals,
            "405": { description: "`unsupported_method`", content: jsonContent(ref("Error")) },
            "413": { description: "`too_large`: the body is over the limit", content: jsonContent(ref("Error")) },
            "500": {
              description: "`handler_failed` or `internal_error`: WeChat retries",
              content: jsonContent(ref("Error")),
            },
            "503": {
              description: "`in_progress` (another delivery of the message is being handled; `Retry-After`), or a " +
                "configuration error",
              content: jsonContent(ref("Error")),
            },
          },
        },
      },
      "/chatwoot/webhook": {
        post: {
          tags: ["Chatwoot"],
          summary: "A webhook delivery from Chatwoot",
          description: "The Chatwoot bridge (on with `CHATWOOT_URL`; see docs/chatwoot.md). Signed by Chatwoot " +
            "with the inbox's webhook secret (`CHATWOOT_WEBHOOK_SECRET`): `X-Chatwoot-Signature: sha256=<hex>` " +
            "of `<X-Chatwoot-Timestamp>.<body>`, within 5 minutes of now. An agent's reply (outgoing, not private) " +
            "is sent to the user once, after the send window was checked (a refusal marks the message failed " +
            "in Chatwoot, with the reason); typing shows as typing; an assignment takes the conversation over, " +
            "`pending` hands it back to the bot, `resolved` closes it. Echoes of what the bridge wrote and " +
            "repeated deliveries are acknowledged and not acted on.",
          parameters: [
            ["X-Chatwoot-Signature", "`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>`"],
            ["X-Chatwoot-Timestamp", "Unix seconds; more than 300 s from the worker's clock is refused"],
            ["X-Chatwoot-Delivery", "The delivery's id, the same on Chatwoot's retries"],
          ].map(([name, description]) => ({
            name,
            in: "header",
            required: name !== "X-Chatwoot-Delivery",
            description,
            schema: { type: "string" },
          })),
          requestBody: { required: true, content: { "application/json": { schema: { type: "object" } } } },
          responses: {
            "200": {
              description: "Handled: `status` says what was done (`sent`, `failed`, `typing`, `handoff`, " +
                "`accepted` when the send goes on after the answer, or `ignored:<why>`)",
              content: jsonContent({
                type: "object",
                properties: { status: { type: "string" } },
                required: ["status"],
              }),
            },
            "400": { description: "`bad_request`: the body is not a JSON object", content: jsonContent(ref("Error")) },
            "401": {
              description: "`bad_signature` (forged, altered or unsigned) or `stale_timestamp`",
              content: jsonContent(ref("Error")),
            },
            "413": { description: "`payload_too_large`: over 1 MiB", content: jsonContent(ref("Error")) },
            ...errors(500),
            "503": {
              description: "`config_missing` or `config_invalid` (`error.variable`): without " +
                "`CHATWOOT_WEBHOOK_SECRET` the route is closed",
              content: jsonContent(ref("Error")),
            },
          },
        },
      },
      "/api/messages": {
        post: apiPost(
          "Send a customer-service message",
          `One of ${MSG_TYPES.map((t) => `\`${t}\``).join(", ")}, to a user whose send window is open. ` +
            "`businessid` sends through a 客服子商户, `aimsgcontext` labels an AI answer, `checkWindow` (default " +
            "`CHECK_WINDOW`) refuses with 409 when the window is known to be closed or spent.",
          "SendMessageBody",
          "WeChatResult",
          [409],
        ),
      },
      "/api/typing": {
        post: apiPost(
          "Typing indicator",
          "`Typing` shows it to the user (for up to 15 s), `CancelTyping` ends it.",
          "TypingBody",
          "WeChatResult",
          [409],
        ),
      },
      "/api/subscribe-messages": {
        post: apiPost(
          "Send a subscribe message",
          "For users outside the send window who accepted the template (一次性订阅 or 长期订阅).",
          "SubscribeMessageBody",
          "SubscribeMessageResult",
          [409],
        ),
      },
      "/api/users/{openId}/window": {
        get: {
          tags: ["API"],
          summary: "The user's send window",
          description: "As far as the worker has seen it: opened by the user's messages and session entries, spent " +
            "by sends, closed by WeChat's 45015 and 45047.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("openId", userParamsSchema as z.ZodMiniType, "The user's OpenID")],
          responses: {
            "200": { description: "The window", content: jsonContent(ref("WindowAnswer")) },
            ...errors(400, ...API_ERRORS),
          },
        },
      },
      "/api/conversations": {
        get: {
          tags: ["API"],
          summary: "The app's conversations",
          description: "Most recent activity first, each with a preview of its last message, its unread count, " +
            "window and handoff. A walk (a first page and the pages its cursors lead to) lists the conversations " +
            "as they stood when its first page was read: each one once, at the place it had then, with what it " +
            "holds when its page is read; new activity during the walk does not move a conversation within it, " +
            "conversations that begin during it are not in it, purged ones leave it. A cursor is good for 15 " +
            "minutes. `state` is applied when each page is read; a page may hold fewer than `limit` while " +
            "`nextCursor` is not null.",
          security: [{ bearer: [] }],
          parameters: ["state", "limit", "cursor"].map((name) =>
            queryParameter(name, conversationListQuerySchema as z.ZodMiniType)
          ),
          responses: {
            "200": { description: "A page of conversations", content: jsonContent(ref("ConversationPage")) },
            ...errors(400, ...API_ERRORS),
          },
        },
      },
      "/api/users/{openId}/messages": {
        get: {
          tags: ["API"],
          summary: "A user's conversation history",
          description: "Newest first: the user's messages and events, what the bot, agents and your service sent " +
            "(with who and how it went), and handoff changes. Kept `HISTORY_DAYS` (30 by default).",
          security: [{ bearer: [] }],
          parameters: [
            pathParameter("openId", userParamsSchema as z.ZodMiniType, "The user's OpenID"),
            ...["before", "limit"].map((name) => queryParameter(name, historyQuerySchema)),
          ],
          responses: {
            "200": { description: "A page of history", content: jsonContent(ref("HistoryPage")) },
            ...errors(400, 404, ...API_ERRORS),
          },
        },
      },
      "/api/users/{openId}/handoff": {
        get: {
          tags: ["API"],
          summary: "Who answers the conversation",
          description: "`bot`, `waiting` (a person was asked for), `human` (a person took it over: the bot's " +
            "handler is not called) or `closed`.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("openId", userParamsSchema as z.ZodMiniType, "The user's OpenID")],
          responses: {
            "200": { description: "The handoff state", content: jsonContent(ref("Handoff")) },
            ...errors(400, 404, ...API_ERRORS),
          },
        },
        put: {
          tags: ["API"],
          summary: "Change who answers the conversation",
          description: "Recorded in the history with the agent and the reason. Taking over (`human`) what another " +
            "agent holds is refused with 409 `handoff_conflict`.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("openId", userParamsSchema as z.ZodMiniType, "The user's OpenID")],
          requestBody: { required: true, content: jsonContent(ref("HandoffBody")) },
          responses: {
            "200": { description: "The handoff state now", content: jsonContent(ref("Handoff")) },
            ...errors(400, 404, 409, 413, ...API_ERRORS),
          },
        },
      },
      "/api/users/{openId}": {
        delete: {
          tags: ["API"],
          summary: "Delete everything of a user",
          description: "The conversation's history, window and handoff state, and with the Chatwoot bridge on " +
            "the user's contact in Chatwoot; the user leaves `GET /api/conversations`. Idempotent. WeChat's " +
            "`user_authorization_revoke` and `user_authorization_cancellation` events do the same by themselves.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("openId", userParamsSchema as z.ZodMiniType, "The user's OpenID")],
          responses: {
            "204": { description: "Deleted (or there was nothing)" },
            ...errors(400, ...API_ERRORS, 502),
          },
        },
      },
      "/api/dead-letters": {
        get: {
          tags: ["API"],
          summary: "Dead letters",
          description: "Queued pushes whose handler never succeeded within the queue's retries (about 31 hours), " +
            "kept `DEAD_LETTER_DAYS` (7 by default). A page at a time, without the messages.",
          security: [{ bearer: [] }],
          parameters: ["limit", "cursor"].map((name) => queryParameter(name, deadLetterListQuerySchema)),
          responses: {
            "200": { description: "A page of dead letters", content: jsonContent(ref("DeadLetterPage")) },
            ...errors(400, ...API_ERRORS),
          },
        },
      },
      "/api/dead-letters/{id}": {
        get: {
          tags: ["API"],
          summary: "One dead letter",
          description: "With its job: the verified message, which holds the user's message and openid.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("id", deadLetterParamsSchema as z.ZodMiniType, "The delivery id")],
          responses: {
            "200": { description: "The dead letter", content: jsonContent(ref("DeadLetter")) },
            ...errors(400, 404, ...API_ERRORS),
          },
        },
      },
      "/api/dead-letters/{id}/replay": {
        post: {
          tags: ["API"],
          summary: "Replay a dead letter",
          description: "Puts the job back on the queue and removes the letter. The consumer's done check still " +
            "runs the handler at most once for the message, however often it is replayed.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("id", deadLetterParamsSchema as z.ZodMiniType, "The delivery id")],
          responses: {
            "202": { description: "Queued again", content: jsonContent(ref("ReplayAnswer")) },
            ...errors(400, 404, ...API_ERRORS),
          },
        },
      },
      "/api/media": {
        post: {
          tags: ["API"],
          summary: "Upload temporary media",
          description: "Streams the file to WeChat's temporary media (valid 3 days). With the `KEFU_MEDIA` R2 " +
            "bucket bound, the file is also kept there under its media_id after the answer, for " +
            "`GET /api/media/{mediaId}` past WeChat's 3 days (deleted after `HISTORY_DAYS`).",
          security: [{ bearer: [] }],
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: {
                    media: { type: "string", contentMediaType: "application/octet-stream", description: "The file" },
                    type: { ...mediaType, default: "image" },
                  },
                  required: ["media"],
                },
              },
            },
          },
          responses: {
            "200": { description: "WeChat's answer", content: jsonContent(ref("UploadTempMediaResult")) },
            ...errors(400, 413, ...API_ERRORS, ...UPSTREAM_ERRORS),
          },
        },
      },
      "/api/media/{mediaId}": {
        get: {
          tags: ["API"],
          summary: "Download temporary media",
          description: "The copy in the `KEFU_MEDIA` R2 bucket when there is one (a user's image copied after " +
            "its push, an upload), with its stored type and length; else streamed from WeChat as it arrives " +
            "(WeChat keeps media 3 days, then answers 40007). Images, audio and video keep their type; " +
            "anything else is `application/octet-stream`; always `X-Content-Type-Options: nosniff` and " +
            "`Cache-Control: private`.",
          security: [{ bearer: [] }],
          parameters: [pathParameter("mediaId", mediaParamsSchema as z.ZodMiniType, "A media_id")],
          responses: {
            "200": {
              description: "The media bytes",
              content: {
                "image/*": { schema: {} },
                "audio/*": { schema: {} },
                "video/*": { schema: {} },
                "application/octet-stream": { schema: {} },
              },
            },
            ...errors(400, ...API_ERRORS, ...UPSTREAM_ERRORS),
          },
        },
      },
    },
    components: {
      responses: Object.fromEntries(
        Object.values(ERRORS).map(([name, description]) => [name, { description, content: jsonContent(ref("Error")) }]),
      ),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <API_KEY>`" },
      },
      schemas,
    },
  };
}

function pascal(type: string): string {
  return type === "miniprogrampage" ? "MiniProgramPage" : type[0]!.toUpperCase() + type.slice(1);
}
