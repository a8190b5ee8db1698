/**
 * The zod schemas of the fields that the SDK's calls and the worker's routes both check:
 * user and media ids, business ids, the AI-generated label, typing commands, media types,
 * URLs and non-empty text. One definition each, so the HTTP API refuses exactly what the SDK
 * refuses, with the same words. Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */
import * as z from "./zod.ts";
import type { AiMsgContext, MediaType, TypingCommand } from "../customer_service/schemas.ts";

/**
 * Text with something besides blanks in it. Checked, never rewritten: leading spaces and
 * indentation in a message are the user's.
 *
 * @example A blank title
 * ```ts
 * import { nonEmptySchema } from "./field_schemas.ts";
 * console.log(nonEmptySchema.safeParse("  ").success, nonEmptySchema.safeParse(" hi").success); // false true
 * ```
 */
export const nonEmptySchema: z.ZodMiniType<string> = z.string().check(
  z.refine((s) => s.trim() !== "", "must not be empty"),
);

/**
 * An absolute `http:` or `https:` URL.
 *
 * @example A `javascript:` URL
 * ```ts
 * import { httpUrlSchema } from "./field_schemas.ts";
 * console.log(httpUrlSchema.safeParse("javascript:alert(1)").success); // false
 * ```
 */
export const httpUrlSchema: z.ZodMiniType<string> = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

function parsedUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/**
 * The base WeChat's API paths are appended to (the SDK's `baseUrl`, the worker's
 * `WECHAT_API_BASE`): an absolute http(s) URL with no query, fragment or credentials. A path
 * is kept (`https://proxy.example/wechat`). Credentials are refused because a fetch of a URL
 * that carries them fails on every runtime: such a base would fail every call.
 *
 * @example Credentials in the URL
 * ```ts
 * import { apiBaseSchema } from "./field_schemas.ts";
 * console.log(apiBaseSchema.safeParse("https://user:pass@proxy.example").success); // false
 * ```
 */
export const apiBaseSchema: z.ZodMiniType<string> = z.string().check(
  z.refine((text) => /^https?:$/.test(parsedUrl(text)?.protocol ?? ""), "must be an absolute http(s) URL"),
  z.refine((text) => {
    const url = parsedUrl(text);
    return url === undefined || (url.search === "" && url.hash === "" && url.username === "" && url.password === "");
  }, "must not carry a query, a fragment or credentials"),
);

const id = (what: string) =>
  z.string().check(z.regex(/^[A-Za-z0-9_-]{1,256}$/, `must be ${what} (letters, digits, - and _)`));

/**
 * An OpenID: WeChat's are 28 characters of [A-Za-z0-9_-].
 *
 * @example A path where an OpenID should be
 * ```ts
 * import { openIdSchema } from "./field_schemas.ts";
 * console.log(openIdSchema.safeParse("../etc").success); // false
 * ```
 */
export const openIdSchema: z.ZodMiniType<string> = id("an OpenID");

/**
 * A media_id as WeChat issues it.
 *
 * @example
 * ```ts
 * import { mediaIdSchema } from "./field_schemas.ts";
 * console.log(mediaIdSchema.safeParse("MEDIA_ID-1").success); // true
 * ```
 */
export const mediaIdSchema: z.ZodMiniType<string> = id("a media_id");

/**
 * A 客服子商户 id (`businessid`).
 *
 * @example
 * ```ts
 * import { businessIdSchema } from "./field_schemas.ts";
 * console.log(businessIdSchema.safeParse("shop_1").success); // true
 * ```
 */
export const businessIdSchema: z.ZodMiniType<string> = z.string().check(
  z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a business id"),
);

/**
 * `aimsgcontext`: `{ is_ai_msg: 1 }`, or `{ msgid }` still accepted (see {@link AiMsgContext}).
 *
 * @example
 * ```ts
 * import { aiMsgContextSchema } from "./field_schemas.ts";
 * console.log(aiMsgContextSchema.safeParse({ is_ai_msg: 1 }).success); // true
 * ```
 */
export const aiMsgContextSchema: z.ZodMiniType<AiMsgContext> = z.union([
  z.strictObject({ is_ai_msg: z.literal(1) }),
  z.strictObject({ msgid: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a message id")) }),
], { error: "must be { is_ai_msg: 1 } (or { msgid })" });

/**
 * `setTyping` commands.
 *
 * @example
 * ```ts
 * import { typingCommandSchema } from "./field_schemas.ts";
 * console.log(typingCommandSchema.safeParse("typing").success); // false
 * ```
 */
export const typingCommandSchema: z.ZodMiniType<TypingCommand> = z.enum(["Typing", "CancelTyping"]);

/**
 * uploadTempMedia types.
 *
 * @example
 * ```ts
 * import { mediaTypeSchema } from "./field_schemas.ts";
 * console.log(mediaTypeSchema.safeParse("image").success); // true
 * ```
 */
export const mediaTypeSchema: z.ZodMiniType<MediaType> = z.enum(["image"]);
