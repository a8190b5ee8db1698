/**
 * zod schemas of the worker's inputs, built on the core's payload schemas so the
 * API accepts exactly what the SDK sends, and the hook that turns a zod failure
 * into a 400 naming the field.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { zValidator } from "@hono/zod-validator";
// Private helpers (a documented exception, see src/internal/README.md): the package's one
// zod, the field schemas the SDK checks the same fields with, the zod-issue field mapper and
// the media-type normaliser, so that the API refuses what the SDK refuses, in the same words.
import * as z from "../src/internal/zod.ts";
import {
  aiMsgContextSchema,
  businessIdSchema,
  mediaIdSchema,
  mediaTypeSchema,
  openIdSchema,
  typingCommandSchema,
} from "../src/internal/field_schemas.ts";
import { issueField } from "../src/internal/validate.ts";
import { normaliseType } from "../src/internal/media_types.ts";
import {
  type AiMsgContext,
  type MediaType,
  MSG_TYPES,
  type MsgType,
  type SendPayloads,
  sendSchemas,
  type SubscribeMessagePayload,
  subscribeMessageSchema,
  type TypingCommand,
} from "../mod.ts";
import { HttpError } from "./errors.ts";

/** Fields of `POST /api/messages` besides the message itself. */
export interface SendMessageExtras {
  /** A 客服子商户 id (WeChat's `businessid`): sent through the business path. */
  businessid?: string;
  /** WeChat's `aimsgcontext`: marks the message as AI-generated. */
  aimsgcontext?: AiMsgContext;
  /** Refuse with 409 `out_of_window` when the tracker knows the window is closed or spent; default `CHECK_WINDOW`. */
  checkWindow?: boolean;
}

/** Body of `POST /api/messages`: `touser`, `msgtype`, exactly the object for it, and the optional extras. */
export type SendMessageBody = {
  [K in MsgType]: { touser: string; msgtype: K } & { [P in K]: SendPayloads[K] } & SendMessageExtras;
}[MsgType];

const message = <K extends MsgType>(msgtype: K) =>
  z.strictObject({
    touser: openIdSchema,
    msgtype: z.literal(msgtype),
    [msgtype]: sendSchemas[msgtype],
    businessid: z.optional(businessIdSchema),
    aimsgcontext: z.optional(aiMsgContextSchema),
    checkWindow: z.optional(z.boolean()),
  });

/**
 * Schema of {@link SendMessageBody}: one strict object per message type of the core's table
 * (`MSG_TYPES`), told apart by `msgtype`.
 *
 * @example
 * ```ts
 * import { sendMessageSchema } from "./schemas.ts";
 * const body = { touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", msgtype: "text", text: { content: "hi" } };
 * console.log(sendMessageSchema.safeParse(body).success); // true
 * ```
 */
export const sendMessageSchema: z.ZodMiniType<SendMessageBody> = z.discriminatedUnion(
  "msgtype",
  MSG_TYPES.map(message) as unknown as [ReturnType<typeof message>, ...ReturnType<typeof message>[]],
  {
    error: (issue) =>
      issue.code === "invalid_union" ? `must be one of ${MSG_TYPES.map((t) => `"${t}"`).join(", ")}` : undefined,
  },
) as unknown as z.ZodMiniType<SendMessageBody>;

/** Body of `POST /api/typing`. */
export interface TypingBody {
  touser: string;
  command: TypingCommand;
  /** A 客服子商户 id (WeChat's `businessid`). */
  businessid?: string;
}

/**
 * Schema of {@link TypingBody}.
 *
 * @example
 * ```ts
 * import { typingSchema } from "./schemas.ts";
 * console.log(typingSchema.safeParse({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }).success); // true
 * ```
 */
export const typingSchema: z.ZodMiniType<TypingBody> = z.strictObject({
  touser: openIdSchema,
  command: typingCommandSchema,
  businessid: z.optional(businessIdSchema),
}) as unknown as z.ZodMiniType<TypingBody>;

/** Body of `POST /api/subscribe-messages`: `touser` and the subscribe message, in WeChat's field names. */
export type SubscribeMessageBody = { touser: string } & SubscribeMessagePayload;

/**
 * Schema of {@link SubscribeMessageBody}.
 *
 * @example
 * ```ts
 * import { subscribeMessageBodySchema } from "./schemas.ts";
 * const body = { touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", template_id: "T1", data: { thing1: { value: "Order 42" } } };
 * console.log(subscribeMessageBodySchema.safeParse(body).success); // true
 * ```
 */
export const subscribeMessageBodySchema: z.ZodMiniType<SubscribeMessageBody> = z.extend(
  subscribeMessageSchema as unknown as z.ZodMiniObject,
  { touser: openIdSchema },
) as unknown as z.ZodMiniType<SubscribeMessageBody>;

/** Parameters of `GET /api/users/:openId/window`. */
export interface UserParams {
  openId: string;
}

/**
 * Schema of {@link UserParams}.
 *
 * @example
 * ```ts
 * import { userParamsSchema } from "./schemas.ts";
 * console.log(userParamsSchema.safeParse({ openId: "../x" }).success); // false
 * ```
 */
export const userParamsSchema: z.ZodMiniType<UserParams> = z.object({ openId: openIdSchema });

/** Fields of `POST /api/media` (multipart). */
export interface UploadFields {
  media: File;
  type: MediaType;
}

/**
 * Schema of {@link UploadFields}; `type` defaults to `image`.
 *
 * @example
 * ```ts
 * import { uploadSchema } from "./schemas.ts";
 * const parsed = uploadSchema.safeParse({ media: new File([new Uint8Array([1])], "a.jpg") });
 * console.log(parsed.success && parsed.data.type); // "image"
 * ```
 */
export const uploadSchema: z.ZodMiniType<UploadFields, { media?: unknown; type?: unknown }> = z.object({
  media: z.instanceof(File, { error: "must be a file part" }).check(z.refine((file) => file.size > 0, "file is empty")),
  type: z._default(mediaTypeSchema, "image"),
}) as unknown as z.ZodMiniType<UploadFields, { media?: unknown; type?: unknown }>;

/**
 * Reads and validates a `POST /api/media` body as `zValidator("form", uploadSchema,
 * rejectInvalid)` does (a repeated name becomes an array; a body that is not a form has no
 * fields), but from the request itself: the validator keeps a copy of the whole body for
 * the request's lifetime, 10 MiB more in memory while the upload goes on to WeChat.
 *
 * @param request the incoming request
 * @returns the validated fields
 * @throws {HttpError} 400 `validation_error` naming the field, or `bad_request` for a multipart body that cannot be parsed
 * @example
 * ```ts
 * import { readUpload } from "./schemas.ts";
 * const body = new FormData();
 * body.set("media", new File([new Uint8Array([0xff, 0xd8, 0xff])], "a.jpg"));
 * console.log((await readUpload(new Request("http://x/", { method: "POST", body }))).type); // "image"
 * ```
 */
export async function readUpload(request: Request): Promise<UploadFields> {
  const result = uploadSchema.safeParse(await formFields(request));
  if (!result.success) throw invalidInput(result.error.issues);
  return result.data;
}

async function formFields(request: Request): Promise<Record<string, unknown>> {
  const mediaType = normaliseType(request.headers.get("content-type") ?? "");
  if (mediaType !== "multipart/form-data" && mediaType !== "application/x-www-form-urlencoded") return {};
  let form: FormData;
  try {
    form = await request.formData();
  } catch (err) {
    throw new HttpError(400, "bad_request", `Malformed FormData request. ${err instanceof Error ? err.message : err}`);
  }
  const fields: Record<string, unknown> = Object.create(null);
  form.forEach((value, key) => {
    const seen = fields[key];
    if (key.endsWith("[]")) fields[key] = [...(Array.isArray(seen) ? seen : []), value];
    else if (Array.isArray(seen)) seen.push(value);
    else if (Object.hasOwn(fields, key)) fields[key] = [seen, value];
    else fields[key] = value;
  });
  return fields;
}

/** Path parameters of `GET /api/media/:mediaId`. */
export interface MediaParams {
  mediaId: string;
}

/**
 * Schema of {@link MediaParams}: letters, digits, `-` and `_`, 1 to 256 characters.
 *
 * @example
 * ```ts
 * import { mediaParamsSchema } from "./schemas.ts";
 * console.log(mediaParamsSchema.safeParse({ mediaId: "../etc" }).success); // false
 * ```
 */
export const mediaParamsSchema: z.ZodMiniType<MediaParams> = z.object({ mediaId: mediaIdSchema });

/**
 * The hook of every `zValidator`: a failure becomes a 400 `validation_error`
 * whose message and `field` name the first offending field.
 *
 * @param result the validator's result
 * @param _c the request context
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { zValidator } from "@hono/zod-validator";
 * import type { AppEnv } from "@kefu/edge/worker";
 * import { answerErrors } from "./errors.ts";
 * import { rejectInvalid, typingSchema } from "./schemas.ts";
 * const app = new Hono<AppEnv>().post("/typing", zValidator("json", typingSchema, rejectInvalid), (c) => c.text("ok"));
 * app.onError(answerErrors(console));
 * const body = JSON.stringify({ touser: "OPENID", command: "typing" });
 * const res = await app.request("/typing", { method: "POST", headers: { "content-type": "application/json" }, body });
 * console.log(res.status, (await res.json()).error.field); // 400 "command"
 * ```
 */
export function rejectInvalid(
  result: { success: true } | { success: false; error: { issues: z.core.$ZodIssue[] } },
  _c: Context,
): void {
  if (result.success) return;
  throw invalidInput(result.error.issues);
}

function invalidInput(issues: z.core.$ZodIssue[]): HttpError {
  const issue = issues[0];
  const field = issue === undefined ? "body" : issueField(issue);
  return new HttpError(400, "validation_error", `Invalid ${field}: ${issue?.message ?? "invalid value"}`, { field });
}

/** JSON bodies of `/api` are small; this bounds what is read before validation. */
export const MAX_JSON_BYTES = 64 * 1024;

// `application/json` or a `+json` type, parameters allowed: what the JSON validator reads
// (any other body would be validated as `{}` and refused for its first missing field).
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+-]{1,64}$/;

/** 415 `unsupported_media_type`, naming the header, for a body not sent as JSON. */
const requireJson: MiddlewareHandler = async (c, next) => {
  const header = c.req.header("content-type") ?? "";
  if (!JSON_MEDIA_TYPE.test(header.trim())) {
    const sent = header.split(";")[0]!.trim().toLowerCase();
    const received = sent === "" ? "none" : MEDIA_TYPE.test(sent) ? sent : "not a media type";
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Send the body as JSON with Content-Type: application/json (received: ${received})`,
    );
  }
  await next();
};

/**
 * The three checks of a JSON route, in order: the body's type (415 `unsupported_media_type`
 * without `Content-Type: application/json`), its size (413 `payload_too_large` past
 * {@link MAX_JSON_BYTES}, before the body is read whole) and its shape (400
 * `validation_error` naming the field). Spread them into the route.
 *
 * @param schema the body's schema
 * @returns the body-limit middleware and the validator
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { jsonBody, typingSchema } from "./schemas.ts";
 * const app = new Hono().post("/typing", ...jsonBody(typingSchema), (c) => c.json(c.req.valid("json")));
 * const headers = { "content-type": "application/json" };
 * const res = await app.request("/typing", { method: "POST", headers, body: '{"touser":"o1","command":"Typing"}' });
 * console.log(res.status); // 200
 * ```
 */
export function jsonBody<S extends z.ZodMiniType>(schema: S) {
  return [
    requireJson,
    bodyLimit({ maxSize: MAX_JSON_BYTES, onError: jsonTooLarge }),
    zValidator("json", schema, rejectInvalid),
  ] as const;
}

function jsonTooLarge(): never {
  throw new HttpError(413, "payload_too_large", `Request body is larger than ${MAX_JSON_BYTES} bytes`);
}
