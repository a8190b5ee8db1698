/**
 * The messages WeChat pushes to a mini program's server, in WeChat's own field names.
 *
 * @module
 */

/** Fields every push carries, plus whatever else WeChat sent (kept, never dropped). */
export interface PushMessageBase {
  /** The mini program's original id (`gh_…`). */
  ToUserName: string;
  /** The sender's openid. */
  FromUserName: string;
  /** Seconds since the epoch. */
  CreateTime: number;
  /** The message type, e.g. `text` or `event`. */
  MsgType: string;
  /** The message id: a 64-bit integer, kept as a string with all its digits. */
  MsgId?: string;
  /** The sub-merchant id, in sub-merchant sessions. */
  BusinessId?: string;
  /** Any other field, as sent: strings in XML (nested elements as objects), JSON values in JSON. */
  [field: string]: unknown;
}

/** A text message from the user. */
export interface TextMessage extends PushMessageBase {
  /** A text message. */
  MsgType: "text";
  /** The text. */
  Content: string;
  /** The message id: a 64-bit integer, kept as a string with all its digits. */
  MsgId: string;
}

/** An image from the user. */
export interface ImageMessage extends PushMessageBase {
  /** An image message. */
  MsgType: "image";
  /** A system-generated URL of the image. */
  PicUrl: string;
  /** Usable with `getTempMedia`. */
  MediaId: string;
  /** The message id: a 64-bit integer, kept as a string with all its digits. */
  MsgId: string;
}

/** A mini program card sent by the user. */
export interface MiniProgramPageMessage extends PushMessageBase {
  /** A mini-program card. */
  MsgType: "miniprogrampage";
  /** The card's title. */
  Title: string;
  /** The AppID of the mini program on the card. */
  AppId: string;
  /** The page the card opens. */
  PagePath: string;
  /** A temporary CDN URL of the cover. */
  ThumbUrl: string;
  /** A temporary media id of the cover. */
  ThumbMediaId: string;
  /** The message id: a 64-bit integer, kept as a string with all its digits. */
  MsgId: string;
}

/** The user entered the customer-service session (from a contact button). */
export interface UserEnterTempSessionEvent extends PushMessageBase {
  /** An event. */
  MsgType: "event";
  /** The user opened the customer-service session. */
  Event: "user_enter_tempsession";
  /** The contact button's `session-from` attribute. */
  SessionFrom: string;
}

/** Any other message or event, passed through with all its fields. */
export interface OtherPushMessage extends PushMessageBase {
  /** Present on events. */
  Event?: string;
}

/**
 * A message pushed by WeChat, keyed by `MsgType` (and `Event`). TypeScript cannot
 * narrow it by `MsgType` alone because other types pass through as {@link OtherPushMessage};
 * use {@link isPushMessage} to narrow.
 */
export type PushMessage =
  | TextMessage
  | ImageMessage
  | MiniProgramPageMessage
  | UserEnterTempSessionEvent
  | OtherPushMessage;

/** The typed messages, by `MsgType` (or `Event`, for events). */
export interface KnownPushMessages {
  /** A text message. */
  text: TextMessage;
  /** An image message. */
  image: ImageMessage;
  /** A mini-program card. */
  miniprogrampage: MiniProgramPageMessage;
  /** The user entered the session. */
  user_enter_tempsession: UserEnterTempSessionEvent;
}

/**
 * Narrows a {@link PushMessage} to one of the typed kinds. The receiver has already
 * checked the kind's fields, so the narrowed fields are there.
 *
 * @param message the message given to the push handler
 * @param kind a `MsgType` (`text`, `image`, `miniprogrampage`) or the event `user_enter_tempsession`
 * @returns whether `message` is of that kind
 * @example
 * ```ts
 * import { isPushMessage, type PushMessage } from "./types.ts";
 * const msg: PushMessage = { ToUserName: "gh_1", FromUserName: "o1", CreateTime: 1, MsgType: "text", Content: "hi", MsgId: "1" };
 * if (isPushMessage(msg, "text")) console.log(msg.Content); // "hi"
 * ```
 */
export function isPushMessage<K extends keyof KnownPushMessages>(
  message: PushMessage,
  kind: K,
): message is KnownPushMessages[K] {
  if (kind === "user_enter_tempsession") return message.MsgType === "event" && message.Event === kind;
  return message.MsgType === kind;
}
