/**
 * The subscribe-message fallback of the Chatwoot bridge and the agent inbox: when an agent's reply cannot reach the
 * user because the send window is closed (the user wrote more than 48 hours ago, never wrote, or
 * the replies allowed since their last message are used up), a subscribe message (订阅消息) can
 * tell them there is an answer waiting, if they accepted the template in the mini program.
 * Configured with `createApp({ chatwoot: { subscribeFallback } })` or the
 * `CHATWOOT_SUBSCRIBE_TEMPLATE` variable (Chatwoot), and `INBOX_SUBSCRIBE_TEMPLATE` (the inbox).
 *
 * @module
 */
import { type SubscribeMessagePayload, ValidationError, WeChatApiError } from "../mod.ts";

/**
 * Builds the subscribe message sent instead of an agent's reply that the send window refused:
 * `undefined` sends none. `text` is the agent's reply as written (`[图片]` for a reply of pictures
 * only); WeChat's `thing` fields take at most 20 characters (see {@link fitThing}). A function
 * written for the AI bot's `subscribeFallback` (which takes the openid alone) fits too.
 */
export type ChatwootSubscribeFallback = (openId: string, text: string) => SubscribeMessagePayload | undefined;

/** What `{text}` stands for in `CHATWOOT_SUBSCRIBE_TEMPLATE`'s values. */
export const TEXT_PLACEHOLDER = "{text}";

/** The most characters WeChat takes in a subscribe message's `thing` field. */
export const THING_MAX_CHARS = 20;

/**
 * Cuts a text to what a `thing` field of a subscribe message takes: at most 20 characters,
 * the last one `…` when it was longer; line breaks and runs of blanks become one space.
 *
 * @param text the agent's reply
 * @returns at most 20 characters (counted as Unicode code points, as WeChat counts them)
 * @example
 * ```ts
 * import { fitThing } from "./subscribe_fallback.ts";
 * console.log(fitThing("您好，您的订单已经发货了，预计明天下午送达，请注意查收")); // "您好，您的订单已经发货了，预计明天下午…"
 * console.log(fitThing("  在吗？\n我在  ")); // "在吗？ 我在"
 * ```
 */
export function fitThing(text: string): string {
  const chars = Array.from(text.replace(/\s+/g, " ").trim());
  return chars.length <= THING_MAX_CHARS ? chars.join("") : `${chars.slice(0, THING_MAX_CHARS - 1).join("")}…`;
}

/**
 * The fallback `CHATWOOT_SUBSCRIBE_TEMPLATE` configures: the template as given, with `{text}` in
 * each field's value replaced by the agent's reply cut to 20 characters ({@link fitThing}).
 *
 * @param template the validated template
 * @returns the fallback
 * @example
 * ```ts
 * import { templateFallback } from "./subscribe_fallback.ts";
 * const fallback = templateFallback({
 *   template_id: "TEMPLATE_ID",
 *   page: "pages/service/index",
 *   data: { thing1: { value: "{text}" }, thing2: { value: "客服" } },
 * });
 * console.log(fallback("OPENID", "您的退款已经处理好了，请查看账户余额变动").data);
 * // { thing1: { value: "您的退款已经处理好了，请查看账户余额变动" }, thing2: { value: "客服" } }
 * ```
 */
export function templateFallback(
  template: SubscribeMessagePayload,
): (openId: string, text: string) => SubscribeMessagePayload {
  return (_openId, text) => {
    const fitted = fitThing(text);
    const data: Record<string, { value: string }> = {};
    for (const [key, field] of Object.entries(template.data)) {
      data[key] = { value: field.value.replaceAll(TEXT_PLACEHOLDER, fitted) };
    }
    return { ...template, data };
  };
}

/**
 * Why the subscribe message sent instead of an agent's reply failed, in words for the agent.
 *
 * @param err what the send (or the fallback building it) threw
 * @param fallback the words for a failure without a WeChat code
 * @returns a short phrase, starting with WeChat's errcode when there is one
 * @example
 * ```ts
 * import { WeChatApiError } from "@kefu/edge";
 * import { subscribeFailureReason } from "./subscribe_fallback.ts";
 * const err = new WeChatApiError({ errcode: 43101, errmsg: "user refuse to accept the msg", endpoint: "/cgi-bin/message/subscribe/send" });
 * console.log(subscribeFailureReason(err, () => "")); // "43101: the user has not accepted this template (or a one-time acceptance is used up)"
 * ```
 */
export function subscribeFailureReason(err: unknown, fallback: (err: unknown) => string): string {
  if (err instanceof WeChatApiError) {
    switch (err.errcode) {
      case 43101:
        return "43101: the user has not accepted this template (or a one-time acceptance is used up)";
      case 47003:
        return "47003: the template's fields do not fit the template";
      case 40037:
        return "40037: WeChat does not know this template";
      case 41030:
        return "41030: the page is not a page of the mini program";
    }
  }
  // The configured payload, refused by the SDK before any call: the field, never its value.
  if (err instanceof ValidationError) return `the configured subscribe message is invalid (${err.field})`;
  return fallback(err);
}
