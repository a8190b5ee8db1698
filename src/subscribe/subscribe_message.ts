/**
 * Subscribe messages (订阅消息): the way to reach a user outside the customer-service send
 * window. The user must have accepted the template in the mini program
 * (`wx.requestSubscribeMessage`); a one-time acceptance is used up by one send.
 *
 * @module
 */
import * as z from "../internal/zod.ts";
import { validate } from "../internal/validate.ts";
import { type HttpClient, readJson } from "../http/client.ts";
import { idFields } from "../internal/exact_ids.ts";
import { openIdSchema } from "../internal/field_schemas.ts";
import { type OutboundRecorder, outcomeOf } from "../conversation/outbound.ts";
import { senderSchema } from "../customer_service/schemas.ts";

/** What a subscribe message carries, in WeChat's field names. */
export interface SubscribeMessagePayload {
  /** The template, as accepted by the user. */
  template_id: string;
  /** The page the message opens, with an optional query (`pages/order/index?id=42`). */
  page?: string | undefined;
  /** The template's fields: each key of the template with its `{ value }`. */
  data: Record<string, { value: string }>;
  /** Which version of the mini program the message opens; default `formal`. */
  miniprogram_state?: "developer" | "trial" | "formal" | undefined;
  /** The language of the message; default `zh_CN`. */
  lang?: "zh_CN" | "en_US" | "zh_HK" | "zh_TW" | undefined;
}

/** WeChat's answer to a subscribe message. */
export interface SubscribeMessageResult {
  /** 0 on success. */
  errcode: number;
  /** `ok` on success. */
  errmsg: string;
  /** The sent message's id (a 64-bit integer, as a string with all its digits), when WeChat gives one. */
  msgid?: string;
}

const dataKey = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
// The answer's msgid is a 64-bit integer: kept exact.
const MSG_ID = idFields(["msgid"]);

/** Schema of {@link SubscribeMessagePayload}. */
export const subscribeMessageSchema: z.ZodMiniType<SubscribeMessagePayload> = z.strictObject({
  template_id: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a template id")),
  page: z.optional(z.string().check(z.minLength(1, "must not be empty"), z.maxLength(1024, "is too long"))),
  data: z.record(
    z.string().check(z.regex(dataKey, "must be a template field name")),
    z.strictObject({ value: z.string() }),
  ).check(z.refine((data) => Object.keys(data).length > 0, "must name at least one template field")),
  miniprogram_state: z.optional(z.enum(["developer", "trial", "formal"])),
  lang: z.optional(z.enum(["zh_CN", "en_US", "zh_HK", "zh_TW"])),
}) as unknown as z.ZodMiniType<SubscribeMessagePayload>;

/**
 * Sends subscribe messages. Reached as `mp.subscribeMessage`.
 *
 * @example Tell a user their order shipped, days after their last message
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" }); // offline WeChat
 * const user = wechat.user("OPENID");
 * await user.subscribes("TEMPLATE_ID"); // the user accepted the template (wx.requestSubscribeMessage)
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 *
 * await mp.subscribeMessage.send("OPENID", {
 *   template_id: "TEMPLATE_ID",
 *   page: "pages/order/index?id=42",
 *   data: { thing1: { value: "Order 42" }, time2: { value: "2026-12-01 10:00" } },
 * });
 * console.log(user.inbox().map((entry) => entry.kind)); // ["subscribe"]
 * ```
 */
export class SubscribeMessage {
  readonly #http: HttpClient;
  readonly #conversations: OutboundRecorder | undefined;

  /**
   * Creates the module; `MiniProgram` does this for you.
   *
   * @param http the SDK's request pipeline
   */
  constructor(http: HttpClient, options: { conversations?: OutboundRecorder | undefined } = {}) {
    this.#http = http;
    this.#conversations = options.conversations;
  }

  /**
   * Sends a subscribe message (POST /cgi-bin/message/subscribe/send). Not retried after
   * an ambiguous failure (it may have been delivered). WeChat's answers users act on:
   * 43101 (the user refused, or a one-time subscription is used up — see
   * `isSubscriptionRefused`), 47003 (template data), 40037 (template id).
   *
   * @param openId the user's OpenID (`touser`)
   * @param message the template, page, data, state and language
   * @returns WeChat's answer, with the message id when it gives one
   * @throws {ValidationError} naming the field, before any network call
   * @example A one-time subscription allows one message
   * ```ts
   * import { isSubscriptionRefused, MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").subscribes("T");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * const { msgid } = await mp.subscribeMessage.send("OPENID", { template_id: "T", data: { thing1: { value: "Hi" } } });
   * console.log(/^\d+$/.test(msgid ?? "")); // true
   * const again = await mp.subscribeMessage.send("OPENID", { template_id: "T", data: { thing1: { value: "Hi" } } })
   *   .catch((err: unknown) => err);
   * console.log(isSubscriptionRefused(again)); // true
   * ```
   */
  async send(
    openId: string,
    message: SubscribeMessagePayload,
    options: { sender?: "bot" | "api" | `agent:${string}` | undefined } = {},
  ): Promise<SubscribeMessageResult> {
    const touser = validate(openIdSchema, openId, "touser");
    const body = validate(subscribeMessageSchema, message, "");
    const sender = options.sender === undefined ? "api" : validate(senderSchema, options.sender, "options.sender");
    const call = this.#http.call<{ errcode?: number; errmsg?: string; msgid?: unknown }>({
      method: "POST",
      path: "/cgi-bin/message/subscribe/send",
      json: { touser, ...body },
      idempotent: false,
    }, (response, endpoint) => readJson(response, endpoint, MSG_ID));
    const recorder = this.#conversations;
    // Recorded in the conversation (a subscribe message spends no window message).
    const record = (outcome: "ok" | "unknown" | number) =>
      recorder?.after(touser, { sender, type: "subscribe", msgType: body.template_id, outcome }, {
        spend: false,
        reserved: false,
      });
    let result: Awaited<typeof call>;
    try {
      result = await call;
    } catch (err) {
      await record(outcomeOf(err));
      throw err;
    }
    await record("ok");
    const msgid = typeof result.msgid === "string" || typeof result.msgid === "number"
      ? String(result.msgid)
      : undefined;
    return {
      errcode: result.errcode ?? 0,
      errmsg: result.errmsg ?? "ok",
      ...(msgid === undefined ? {} : { msgid }),
    };
  }
}
