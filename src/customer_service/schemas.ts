/**
 * Payload types and their zod schemas for customer-service calls, in WeChat's
 * field names. The types are written out (JSR needs explicit types on the public
 * API) and the compiler checks that each equals what its schema infers, so the
 * two cannot drift.
 *
 * @module
 */
import * as z from "../internal/zod.ts";

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
/** Message types `send` supports. */
export type MsgType = keyof SendPayloads;
/** `setTyping` command. */
export type TypingCommand = "Typing" | "CancelTyping";
/** uploadTempMedia type (WeChat: images only). */
export type MediaType = "image";

// Checked, never rewritten: leading spaces and indentation in a message are the user's.
const nonEmpty = z.string().check(z.refine((s) => s.trim() !== "", "must not be empty"));
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
const id = (what: string) =>
  z.string().check(z.regex(/^[A-Za-z0-9_-]{1,256}$/, `must be ${what} (letters, digits, - and _)`));

/** An OpenID: WeChat's are 28 characters of [A-Za-z0-9_-]. */
export const openIdSchema: z.ZodMiniType<string> = id("an OpenID");
/** A media_id as WeChat issues it. */
export const mediaIdSchema: z.ZodMiniType<string> = id("a media_id");

const textSchema = z.strictObject({ content: nonEmpty });
const imageSchema = z.strictObject({ media_id: mediaIdSchema });
const linkSchema = z.strictObject({ title: nonEmpty, description: nonEmpty, url: httpUrl, thumb_url: httpUrl });
const miniProgramPageSchema = z.strictObject({ title: nonEmpty, pagepath: nonEmpty, thumb_media_id: mediaIdSchema });

/** The schema of each `msgtype`'s payload. */
export const sendSchemas: { [K in MsgType]: z.ZodMiniType<SendPayloads[K]> } = {
  text: textSchema,
  image: imageSchema,
  link: linkSchema,
  miniprogrampage: miniProgramPageSchema,
};
/** `msgtype` values. */
export const msgTypeSchema: z.ZodMiniType<MsgType> = z.enum(["text", "image", "link", "miniprogrampage"]);
/** `setTyping` commands. */
export const typingCommandSchema: z.ZodMiniType<TypingCommand> = z.enum(["Typing", "CancelTyping"]);
/** uploadTempMedia types. */
export const mediaTypeSchema: z.ZodMiniType<MediaType> = z.enum(["image"]);

// Compile-time proof that the written types are exactly what the schemas infer.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _inferred: [
  Same<z.infer<typeof textSchema>, TextPayload>,
  Same<z.infer<typeof imageSchema>, ImagePayload>,
  Same<z.infer<typeof linkSchema>, LinkPayload>,
  Same<z.infer<typeof miniProgramPageSchema>, MiniProgramPagePayload>,
] = [true, true, true, true];
void _inferred;

/**
 * `aimsgcontext` of a send: marks the message as AI-generated (shown as "内容由第三方AI生成").
 * [UNCERTAIN] its mini-program shape: `{ msgid }` (the user message it answers) is seen in one
 * SDK, `{ is_ai_msg: 1 }` in Official Account code; both are accepted and sent as given.
 */
export type AiMsgContext = { msgid: string } | { is_ai_msg: 1 };

/** The fourth argument of `send`. */
export interface SendOptions {
  /**
   * Refuse the send with `OutOfWindowError`, before any network call, when the send-window
   * tracker knows the user's window is closed or spent; default the MiniProgram's `checkWindow`.
   */
  checkWindow?: boolean | undefined;
  /** A 客服子商户 id: the message goes to `/cgi-bin/message/custom/business/send` with `businessid`. */
  businessId?: string | undefined;
  /** Marks the message as AI-generated (`aimsgcontext`). */
  aiMsgContext?: AiMsgContext | undefined;
}

/** The third argument of `setTyping`. */
export interface TypingOptions {
  /** A 客服子商户 id: the command goes to `/cgi-bin/message/custom/business/typing` with `businessid`. */
  businessId?: string | undefined;
}

const businessIdSchema = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a business id"));

/** Schema of {@link SendOptions}. */
export const sendOptionsSchema: z.ZodMiniType<SendOptions> = z.strictObject({
  checkWindow: z.optional(z.boolean()),
  businessId: z.optional(businessIdSchema),
  aiMsgContext: z.optional(
    z.union([
      z.strictObject({ msgid: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a message id")) }),
      z.strictObject({ is_ai_msg: z.literal(1) }),
    ], { error: "must be { msgid } or { is_ai_msg: 1 }" }),
  ),
}) as unknown as z.ZodMiniType<SendOptions>;

/** Schema of {@link TypingOptions}. */
export const typingOptionsSchema: z.ZodMiniType<TypingOptions> = z.strictObject({
  businessId: z.optional(businessIdSchema),
}) as unknown as z.ZodMiniType<TypingOptions>;
