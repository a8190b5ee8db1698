/**
 * kefu-edge: WeChat Mini Program customer-service messages (客服消息) for the edge.
 * One Web-standard core for Cloudflare Workers, Deno, Bun and Node.
 *
 * @example Send a message
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 *
 * // An offline WeChat; without `fetch` the SDK calls api.weixin.qq.com.
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
 * await wechat.user("OPENID").says("Hi"); // the user's message opens the send window
 *
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 * console.log(await mp.customerServiceMessage.send("OPENID", "text", { content: "Hello World" })); // { errcode: 0, errmsg: "ok" }
 * ```
 *
 * @module
 */
export { MiniProgram, type MiniProgramOptions, type SendOrSubscribeResult } from "./src/mini_program.ts";
export {
  SubscribeMessage,
  type SubscribeMessagePayload,
  type SubscribeMessageResult,
  subscribeMessageSchema,
} from "./src/subscribe/subscribe_message.ts";
export { AccessToken, type TokenResponse, type TokenSource } from "./src/token/access_token.ts";
export type { Logger } from "./src/logger.ts";
export type { RetryOptions } from "./src/http/client.ts";
export {
  CustomerServiceMessage,
  type CustomerServiceMessageOptions,
  DEFAULT_MAX_UPLOAD_BYTES,
  DEFAULT_MEDIA_IDLE_TIMEOUT_MS,
  type GetTempMediaOptions,
  type SendTextOptions,
  type UploadBody,
  type UploadForm,
  type UploadTempMediaResult,
  type WeChatResult,
  type WithTypingOptions,
} from "./src/customer_service/customer_service_message.ts";
export { filenameFromContentDisposition } from "./src/customer_service/media.ts";
export {
  DEFAULT_MAX_TEXT_BYTES,
  miniProgramLink,
  type MiniProgramLinkOptions,
  splitText,
  type SplitTextOptions,
  utf8Length,
} from "./src/customer_service/text.ts";
export {
  type AcceptInput,
  type AcceptResult,
  type ChatTurn,
  chatTurns,
  type ConversationContext,
  type ConversationEntry,
  type ConversationRef,
  type ConversationSettings,
  type ConversationStore,
  type ConversationSummary,
  DEFAULT_CONVERSATION_SETTINGS,
  type EntryContent,
  type Handoff,
  HANDOFF_STATES,
  type HandoffChange,
  type HandoffResult,
  type HandoffState,
  type HistoryPage,
  type MemoryConversationOptions,
  MemoryConversationStore,
  type OutboundInput,
  type Reservation,
  type Sender,
} from "./src/conversation/mod.ts";
export {
  actionOf,
  openWindow,
  type SendWindow,
  SendWindowTracker,
  WINDOW_GRANTS,
  type WindowAction,
} from "./src/customer_service/send_window.ts";
export {
  type AiMsgContext,
  type ImagePayload,
  type LinkPayload,
  type MediaType,
  type MiniProgramPagePayload,
  MSG_TYPES,
  type MsgType,
  type SendOptions,
  type SendPayloads,
  sendSchemas,
  type TextPayload,
  type TypingCommand,
  type TypingOptions,
} from "./src/customer_service/schemas.ts";
export {
  type EncryptOptions,
  type ImageMessage,
  isPushMessage,
  type KnownPushMessages,
  MessageCrypto,
  type MessageCryptoOptions,
  type MiniProgramPageMessage,
  type OtherPushMessage,
  type ProcessOutcome,
  type ProcessQueuedOptions,
  type ProcessResult,
  type PushEcho,
  type PushFormat,
  type PushHandler,
  type PushHandlerContext,
  type PushJob,
  type PushMessage,
  type PushMessageBase,
  type PushOptions,
  PushReceiver,
  type PushReceiverOptions,
  type PushRefusal,
  type PushRefusalReason,
  type QueuedPushOptions,
  Reply,
  type ReplyDecider,
  type ReplyType,
  type SubscribeMsgChangeEvent,
  type SubscribeMsgChangeItem,
  type SubscribeMsgPopupEvent,
  type SubscribeMsgPopupItem,
  type SubscribeMsgSentEvent,
  type SubscribeMsgSentItem,
  type TextMessage,
  type UserEnterTempSessionEvent,
  type VerifiedMessage,
  verifyPush,
  type VerifyPushOptions,
  type VerifyPushResult,
} from "./src/push/mod.ts";
export {
  CloudflareKvStore,
  type ConversationObject,
  type DenoKvAtomicLike,
  type DenoKvConversationLike,
  type DenoKvConversationOptions,
  DenoKvConversationStore,
  type DenoKvEntryLike,
  type DenoKvKey,
  type DenoKvLike,
  DenoKvStore,
  DurableObjectConversationStore,
  type DurableObjectNamespaceLike,
  DurableObjectStore,
  type KeyValueStore,
  KV_MIN_TTL_SECONDS,
  type KvNamespaceLike,
  MemoryStore,
  objectNameOf,
  type SetOptions,
  type StoreOperation,
} from "./src/stores/mod.ts";
export {
  ErrCode,
  HandedOffError,
  isAlreadyTyping,
  isApiUnauthorized,
  isAppIdOpenIdMismatch,
  isContentTooLong,
  isDailyQuotaExceeded,
  isInvalidMediaId,
  isInvalidOpenId,
  isInvalidTemplateData,
  isInvalidTemplateId,
  isInvalidTypingCommand,
  isIpNotWhitelisted,
  isMinuteQuotaExceeded,
  isOutOfWindow,
  isQuotaExceeded,
  isSubscriptionRefused,
  isSystemBusy,
  isTypingWithoutInteraction,
  MediaTooLargeError,
  OutOfWindowError,
  PushVerificationError,
  type PushVerificationReason,
  redact,
  TOKEN_INVALID_CODES,
  TokenSourceError,
  ValidationError,
  WeChatApiError,
  type WeChatApiErrorInit,
  WeChatError,
  type WeChatErrorOptions,
  WeChatHttpError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "./src/errors.ts";
