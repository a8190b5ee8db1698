/**
 * kefu-edge's Hono app (`@kefu/edge/worker`): build your own worker, server or
 * test around it, with your own push handler and stores.
 *
 * @example A worker with its own push handler
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * import { Reply } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 *
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * const app = createApp({
 *   fetch: wechat.fetch, // only here, to call the emulator: a deployed worker calls api.weixin.qq.com
 *   onMessage: (message, { afterResponse, miniProgram }) => {
 *     if (message.MsgType === "event" && message.Event === "user_enter_tempsession") {
 *       afterResponse(() => miniProgram.customerServiceMessage.send(message.FromUserName, "text", { content: "Hi!" }));
 *       return;
 *     }
 *     return Reply.transferCustomerService();
 *   },
 * });
 * // export default app; (tokens in WECHAT_KV when bound)
 *
 * // The emulated WeChat pushes a user's message to it, with the worker's variables:
 * const env = { WECHAT_APPID: "wx123", WECHAT_SECRET: "secret", WECHAT_TOKEN: "TOKEN" };
 * const outcome = await (await wechat.user("OPENID").says("I need a human")).deliver((req) => app.fetch(req, env));
 * console.log(outcome.reply?.includes("transfer_customer_service")); // true
 * ```
 *
 * @module
 */
export { type AppOptions, createApp } from "./app.ts";
export type { AppEnv, AppLogger, KefuApp } from "./types.ts";
export { QUEUE_MAX_RETRIES, RETRY_MAX_SECONDS, retryDelaySeconds, retryHorizonSeconds } from "./push_route.ts";
export type { QueueBatchLike, QueueLike, QueueMessageLike } from "./queue_types.ts";
export type { MediaBody, MediaBucketLike, MediaObjectBodyLike, MediaObjectLike } from "./media_keys.ts";
export {
  agentNameSchema,
  conversationRoutes,
  type ConversationRouteSettings,
  type HandoffBody,
  handoffBodySchema,
  historyQuerySchema,
  senderOf,
} from "./conversations/mod.ts";
export {
  DEAD_LETTER_PREFIX,
  type DeadLetter,
  deadLetterOf,
  type DeadLetterPage,
  deadLetterRoutes,
  type DeadLetterRouteSettings,
  type DeadLetterStore,
  deadLetterUser,
  DEFAULT_DEAD_LETTER_DAYS,
  denoKvDeadLetters,
  type DenoKvListLike,
  kvDeadLetters,
  type KvListNamespace,
  memoryDeadLetters,
} from "./dead_letters/mod.ts";
export {
  CHATWOOT_DELIVERY_HEADER,
  CHATWOOT_MAX_SKEW_SECONDS,
  CHATWOOT_SIGNATURE_HEADER,
  CHATWOOT_TIMESTAMP_HEADER,
  type ChatwootOptions,
  type ChatwootSettings,
  chatwootSettings,
  type ChatwootSubscribeFallback,
  type ChatwootWebhookCheck,
  verifyChatwootWebhook,
} from "./chatwoot/mod.ts";
export { type AssetsLike, ConfigError, type ConfigProblem, type Env, type EnvVar } from "./env.ts";
export type { BotAppOptions } from "./bot/mod.ts";
export { type ErrorBody, HttpError } from "./errors.ts";
export {
  DEFAULT_MAX_FORWARD_BYTES,
  FORWARD_DELIVERY_HEADER,
  FORWARD_SIGNATURE_HEADER,
  FORWARD_TIMESTAMP_HEADER,
  ForwardError,
  signForward,
  type VerifiedForward,
  verifyForward,
  type VerifyForwardOptions,
} from "./forward.ts";
export type { AppPushContext, AppPushHandler, AppReplyDecider } from "./push_handler.ts";
export type { EmulatorUpstream, Upstream, UpstreamSettings } from "./upstream.ts";
export { backgroundContext, type WaitUntil } from "./background.ts";
