/**
 * The outbound message types of customer-service calls, in WeChat's field names: one table,
 * {@link sendSchemas}, holds the zod schema of each `msgtype`'s payload, and everything else
 * derives from it: {@link MSG_TYPES}, the `msgtype` check of `send`, the worker's
 * `POST /api/messages` body. The payload types are written out (JSR needs explicit types on
 * the public API) and the compiler checks that each equals what its schema infers, so the
 * two cannot drift.
 *
 * Adding a message type: its payload interface and its line in {@link SendPayloads}, its
 * schema in the table below; then its entry in the emulator's table
 * (`src/testing/_messages.ts`, which the compiler asks for) and a line in the README.
 *
 * @module
 */
import * as z from "../internal/zod.ts";
import {
  aiMsgContextSchema,
  businessIdSchema,
  httpUrlSchema,
  mediaIdSchema,
  nonEmptySchema,
} from "../internal/field_schemas.ts";

/** `text` payload: `content`, which may carry mini-program `<a>` links. */
export interface TextPayload {
  /** The text. May contain `<a href data-miniprogram-appid data-miniprogram-path>` links. */
  content: string;
}
/** `image` payload: a `media_id` from uploadTempMedia. */
export interface ImagePayload {
  /** A media_id from uploadTempMedia. */
  media_id: string;
}
/** `link` payload: an article card. Images: JPG/PNG, 640×320 large or 80×80 small. */
export interface LinkPayload {
  /** Card title. */
  title: string;
  /** Card description. */
  description: string;
  /** The http(s) URL the card opens. */
  url: string;
  /** The http(s) URL of the card image. */
  thumb_url: string;
}
/** `miniprogrampage` payload: a mini-program card; `pagepath` may carry a query. */
export interface MiniProgramPagePayload {
  /** Card title. */
  title: string;
  /** The page to open, as in app.json; may carry a query (`pages/index/index?foo=bar`). */
  pagepath: string;
  /** media_id of the cover image (520×416 recommended). */
  thumb_media_id: string;
}
/** The payload type of each `msgtype`. */
export interface SendPayloads {
  /** Payload of `msgtype: "text"`. */
  text: TextPayload;
  /** Payload of `msgtype: "image"`. */
  image: ImagePayload;
  /** Payload of `msgtype: "link"`. */
  link: LinkPayload;
  /** Payload of `msgtype: "miniprogrampage"`. */
  miniprogrampage: MiniProgramPagePayload;
}
/** Message types `send` supports: the keys of {@link SendPayloads}, listed in {@link MSG_TYPES}. */
export type MsgType = keyof SendPayloads;
/** `setTyping` command. */
export type TypingCommand = "Typing" | "CancelTyping";
/** uploadTempMedia type (WeChat: images only). */
export type MediaType = "image";

// The table: one strict object per msgtype (an unknown field is refused, named in full).
const payloadSchemas = {
  text: z.strictObject({ content: nonEmptySchema }),
  image: z.strictObject({ media_id: mediaIdSchema }),
  link: z.strictObject({
    title: nonEmptySchema,
    description: nonEmptySchema,
    url: httpUrlSchema,
    thumb_url: httpUrlSchema,
  }),
  miniprogrampage: z.strictObject({ title: nonEmptySchema, pagepath: nonEmptySchema, thumb_media_id: mediaIdSchema }),
};

/**
 * The zod/mini schema of each `msgtype`'s payload: what `send` accepts, field by field, with
 * the same messages. Validate a payload with it before you queue or store it, to refuse early
 * what `send` would refuse (`send` also measures a text against `maxTextBytes`).
 *
 * @example Check a payload before queueing it
 * ```ts
 * import { sendSchemas } from "@kefu/edge";
 * console.log(sendSchemas.link.safeParse({ title: "Docs", description: "Read me", url: "ftp://x", thumb_url: "https://x/t.png" }).success); // false
 * console.log(sendSchemas.text.safeParse({ content: "Hello" }).success); // true
 * ```
 */
export const sendSchemas: { readonly [K in MsgType]: z.ZodMiniType<SendPayloads[K]> } = payloadSchemas;

/**
 * Every `msgtype` `send` supports, in the order of {@link sendSchemas}.
 *
 * @example
 * ```ts
 * import { MSG_TYPES } from "@kefu/edge";
 * console.log(MSG_TYPES.join(", ")); // text, image, link, miniprogrampage
 * ```
 */
export const MSG_TYPES: readonly MsgType[] = Object.keys(payloadSchemas) as MsgType[];

/** `msgtype` values. */
export const msgTypeSchema: z.ZodMiniType<MsgType> = z.enum(MSG_TYPES as readonly [MsgType, ...MsgType[]]);

// Compile-time proof that the written types are exactly what the table infers, for every
// msgtype and no other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Inferred = { [K in MsgType]: Same<z.infer<(typeof payloadSchemas)[K]>, SendPayloads[K]> };
const _inferred: Same<keyof typeof payloadSchemas, MsgType> & (false extends Inferred[MsgType] ? false : true) = true;
void _inferred;

/**
 * `aimsgcontext` of a send: marks the message as AI-generated (WeChat shows "内容由第三方AI生成"
 * under it). Use `{ is_ai_msg: 1 }` ({@link AI_MSG_CONTEXT}), the documented shape.
 * [UNCERTAIN] `{ msgid }` (the user message it answers) comes from a single SDK and no WeChat
 * page; it is still accepted and sent as given, for code written against it.
 */
export type AiMsgContext = { is_ai_msg: 1 } | { msgid: string };

/**
 * The `aimsgcontext` that labels a message as AI-generated: `{ is_ai_msg: 1 }`.
 *
 * @example Label an AI answer
 * ```ts
 * import { AI_MSG_CONTEXT, MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
 * await wechat.user("OPENID").says("几点开门？");
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 *
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "早上九点。" }, { aiMsgContext: AI_MSG_CONTEXT });
 * const [entry] = wechat.inbox("OPENID");
 * console.log(entry?.kind === "message" && entry.aiMsgContext); // { is_ai_msg: 1 }
 * ```
 */
export const AI_MSG_CONTEXT: { readonly is_ai_msg: 1 } = Object.freeze({ is_ai_msg: 1 as const });

/** The fourth argument of `send`. */
export interface SendOptions {
  /**
   * Refuse the send with `OutOfWindowError`, before any network call, when the send-window
   * tracker knows the user's window is closed or spent; default the MiniProgram's `checkWindow`.
   */
  checkWindow?: boolean | undefined;
  /** A 客服子商户 id: the message goes to `/cgi-bin/message/custom/business/send` with `businessid`. */
  businessId?: string | undefined;
  /** Marks the message as AI-generated (`aimsgcontext`): pass {@link AI_MSG_CONTEXT}, `{ is_ai_msg: 1 }`. */
  aiMsgContext?: AiMsgContext | undefined;
  /**
   * Who sends it, for the conversation's history (with `conversations` configured): `bot`,
   * `api` (the default) or `agent:<name>`. A `bot` message is refused with `HandedOffError`
   * while a person answers the conversation.
   */
  sender?: "bot" | "api" | `agent:${string}` | undefined;
}

/** The third argument of `setTyping`. */
export interface TypingOptions {
  /** A 客服子商户 id: the command goes to `/cgi-bin/message/custom/business/typing` with `businessid`. */
  businessId?: string | undefined;
  /** Who shows it, for the conversation's history: `bot`, `api` (the default) or `agent:<name>`. */
  sender?: "bot" | "api" | `agent:${string}` | undefined;
}

/** Who an outbound message is from: `bot`, `api` or `agent:<name>` (1–64 characters, no control characters). */
export const senderSchema: z.ZodMiniType<"bot" | "api" | `agent:${string}`> = z.string().check(
  // deno-lint-ignore no-control-regex
  z.regex(/^(?:bot|api|agent:[^\x00-\x1f\x7f]{1,64})$/, 'must be "bot", "api" or "agent:<name>"'),
) as unknown as z.ZodMiniType<"bot" | "api" | `agent:${string}`>;

/** Schema of {@link SendOptions}. */
export const sendOptionsSchema: z.ZodMiniType<SendOptions> = z.strictObject({
  checkWindow: z.optional(z.boolean()),
  businessId: z.optional(businessIdSchema),
  aiMsgContext: z.optional(aiMsgContextSchema),
  sender: z.optional(senderSchema),
}) as unknown as z.ZodMiniType<SendOptions>;

/** Schema of {@link TypingOptions}. */
export const typingOptionsSchema: z.ZodMiniType<TypingOptions> = z.strictObject({
  businessId: z.optional(businessIdSchema),
  sender: z.optional(senderSchema),
}) as unknown as z.ZodMiniType<TypingOptions>;
