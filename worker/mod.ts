/**
 * kefu-edge's Hono app (`@kefu/edge/worker`): build your own worker, server or
 * test around it, with your own push handler and stores.
 *
 * @example A worker with its own push handler
 * ```ts ignore
 * import { createApp } from "@kefu/edge/worker";
 * import { CloudflareKvStore, Reply } from "@kefu/edge";
 *
 * export default createApp({
 *   store: (env) => new CloudflareKvStore(env.WECHAT_KV!),
 *   onMessage: (message, { afterResponse, miniProgram }) => {
 *     if (message.MsgType === "event" && message.Event === "user_enter_tempsession") {
 *       afterResponse(() => miniProgram.customerServiceMessage.send(message.FromUserName, "text", { content: "Hi!" }));
 *       return;
 *     }
 *     return Reply.transferCustomerService();
 *   },
 * });
 * ```
 *
 * @module
 */
export { type AppEnv, type AppLogger, type AppOptions, createApp, type KefuApp } from "./app.ts";
export { KefuStore, type KefuStoreState } from "./store_object.ts";
export {
  DEAD_LETTER_PREFIX,
  DEAD_LETTER_TTL_SECONDS,
  type QueueBatchLike,
  type QueueLike,
  type QueueMessageLike,
  retryDelaySeconds,
} from "./push_route.ts";
export { ConfigError, type ConfigProblem, type Env, type EnvVar } from "./env.ts";
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
