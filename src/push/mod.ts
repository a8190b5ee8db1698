/**
 * Message push (消息推送): signatures, safe-mode AES, JSON and XML parsing, replies and
 * deduplication of WeChat's retries.
 *
 * @module
 */
export {
  constantTimeEqual,
  type EncryptOptions,
  MessageCrypto,
  type MessageCryptoOptions,
  pushSignature,
} from "./crypto.ts";
export { detectFormat, parseEnvelope, parseFields, parsePushMessage, type PushFormat, toPushMessage } from "./parse.ts";
export { type EncryptedEnvelope, envelopeBody, Reply, type ReplyType, replyXml } from "./reply.ts";
export {
  DEDUPE_KEY_PREFIX,
  DEFAULT_CLAIM_WAIT_MS,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_MAX_PUSH_BODY_BYTES,
  DEFAULT_MAX_SKEW_SECONDS,
  DEFAULT_REPLY_BUDGET_MS,
  type ProcessOutcome,
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
