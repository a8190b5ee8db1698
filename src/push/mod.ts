/**
 * Message push (消息推送): signatures, safe-mode AES, JSON and XML parsing, replies and
 * deduplication of WeChat's retries. This entry exports the push module's public names
 * only; `mod.ts` re-exports each of them.
 *
 * @module
 */
export { type EncryptOptions, MessageCrypto, type MessageCryptoOptions } from "./crypto.ts";
export type { PushFormat } from "./parse.ts";
export { Reply, type ReplyType } from "./reply.ts";
export {
  type ProcessOutcome,
  type ProcessQueuedOptions,
  type ProcessResult,
  type PushHandler,
  type PushHandlerContext,
  type PushJob,
  type PushOptions,
  PushReceiver,
  type PushReceiverOptions,
  type QueuedPushOptions,
  type ReplyDecider,
} from "./receiver.ts";
export {
  type PushEcho,
  type PushRefusal,
  type PushRefusalReason,
  type VerifiedMessage,
  verifyPush,
  type VerifyPushOptions,
  type VerifyPushResult,
} from "./verify.ts";
export {
  type ImageMessage,
  isPushMessage,
  type KnownPushMessages,
  type MiniProgramPageMessage,
  type OtherPushMessage,
  type PushMessage,
  type PushMessageBase,
  type SubscribeMsgChangeEvent,
  type SubscribeMsgChangeItem,
  type SubscribeMsgPopupEvent,
  type SubscribeMsgPopupItem,
  type SubscribeMsgSentEvent,
  type SubscribeMsgSentItem,
  type TextMessage,
  type UserEnterTempSessionEvent,
} from "./types.ts";
