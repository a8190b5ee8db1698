/**
 * The messages WeChat pushes to a mini program's server, in WeChat's own field names.
 *
 * @module
 */

/**
 * Fields every push carries, plus whatever else WeChat sent (kept, never dropped). In the
 * rare verified push that lacks one, a text field is `""` and `CreateTime` is 0.
 */
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

/** One template in a {@link SubscribeMsgPopupEvent}: what the user chose in the subscription popup. */
export interface SubscribeMsgPopupItem {
  /** The template. */
  TemplateId: string;
  /** `accept` or `reject` (WeChat may add others). */
  SubscribeStatusString: string;
  /** Where the popup was shown (`1` payment, `2` other pages), as WeChat sends it. */
  PopupScene?: string;
  /** Any other field of the item, as sent. */
  [field: string]: unknown;
}

/** The user answered `wx.requestSubscribeMessage`'s popup, for one or more templates. */
export interface SubscribeMsgPopupEvent extends PushMessageBase {
  /** An event. */
  MsgType: "event";
  /** The subscription popup was answered. */
  Event: "subscribe_msg_popup_event";
  /** One item per template: always an array (WeChat sends an object for one, an array for several). */
  List: SubscribeMsgPopupItem[];
}

/** One template in a {@link SubscribeMsgChangeEvent}. */
export interface SubscribeMsgChangeItem {
  /** The template. */
  TemplateId: string;
  /** `accept` or `reject`. */
  SubscribeStatusString: string;
  /** Any other field of the item, as sent. */
  [field: string]: unknown;
}

/** The user changed a subscription in the mini program's settings. */
export interface SubscribeMsgChangeEvent extends PushMessageBase {
  /** An event. */
  MsgType: "event";
  /** A subscription was changed. */
  Event: "subscribe_msg_change_event";
  /** One item per template: always an array. */
  List: SubscribeMsgChangeItem[];
}

/** One sent message in a {@link SubscribeMsgSentEvent}. */
export interface SubscribeMsgSentItem {
  /** The template. */
  TemplateId: string;
  /** The id of the sent message (a 64-bit integer, kept as a string with all its digits). */
  MsgID: string;
  /** `0` when delivered, else WeChat's code for the failure. */
  ErrorCode: string;
  /** `success`, or why it failed (e.g. `fail_user_refuse`). */
  ErrorStatus: string;
  /** Any other field of the item, as sent. */
  [field: string]: unknown;
}

/** The result of sending subscribe messages. */
export interface SubscribeMsgSentEvent extends PushMessageBase {
  /** An event. */
  MsgType: "event";
  /** Subscribe messages were sent. */
  Event: "subscribe_msg_sent_event";
  /** One item per message: always an array. */
  List: SubscribeMsgSentItem[];
}

/**
 * Any other message or event, passed through with all its fields as sent — including a
 * message of a typed kind that lacks one of that kind's fields (which {@link isPushMessage}
 * then does not narrow).
 */
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
  | SubscribeMsgPopupEvent
  | SubscribeMsgChangeEvent
  | SubscribeMsgSentEvent
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
  /** The user answered a subscription popup. */
  subscribe_msg_popup_event: SubscribeMsgPopupEvent;
  /** The user changed a subscription. */
  subscribe_msg_change_event: SubscribeMsgChangeEvent;
  /** Subscribe messages were sent. */
  subscribe_msg_sent_event: SubscribeMsgSentEvent;
}

/**
 * Narrows a {@link PushMessage} to one of the typed kinds. The receiver has already
 * checked the kind's fields, so the narrowed fields are there.
 *
 * @param message the message given to the push handler
 * @param kind a `MsgType` (`text`, `image`, `miniprogrampage`) or an event (`user_enter_tempsession`,
 *   `subscribe_msg_popup_event`, `subscribe_msg_change_event`, `subscribe_msg_sent_event`)
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
  const key = EVENT_KINDS.has(kind) ? `event:${kind}` : kind;
  if (kindOf(message) !== key) return false;
  // A message of the kind that lacks one of its fields stays an OtherPushMessage.
  return KIND_FIELDS[key]!.every((name) => fitsField(message, name));
}

/**
 * The fields each typed kind must carry as text, by `MsgType` (`event:<Event>` for events).
 * Private to the push module: the parser and {@link isPushMessage} read this one table.
 */
export const KIND_FIELDS: Readonly<Record<string, readonly string[]>> = {
  text: ["Content", "MsgId"],
  image: ["PicUrl", "MediaId", "MsgId"],
  miniprogrampage: ["Title", "AppId", "PagePath", "ThumbUrl", "ThumbMediaId", "MsgId"],
  "event:user_enter_tempsession": ["SessionFrom"],
  "event:subscribe_msg_popup_event": ["List"],
  "event:subscribe_msg_change_event": ["List"],
  "event:subscribe_msg_sent_event": ["List"],
};

/** The typed kinds that are events: {@link isPushMessage} looks them up as `event:<Event>`. */
const EVENT_KINDS: ReadonlySet<string> = new Set([
  "user_enter_tempsession",
  "subscribe_msg_popup_event",
  "subscribe_msg_change_event",
  "subscribe_msg_sent_event",
]);

/**
 * The element the XML form of each subscribe event wraps its `List` in (the JSON form has
 * `List` at the top). Private to the push module.
 */
export const LIST_WRAPPERS: Readonly<Record<string, string>> = {
  "event:subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
  "event:subscribe_msg_change_event": "SubscribeMsgChangeEvent",
  "event:subscribe_msg_sent_event": "SubscribeMsgSentEvent",
};

/** `MsgType`, or `event:<Event>` for events: the key of {@link KIND_FIELDS}. Private to the push module. */
export function kindOf(message: { MsgType?: unknown; Event?: unknown }): string {
  return message.MsgType === "event" ? `event:${String(message.Event)}` : String(message.MsgType);
}

/** Whether `name` holds what its kind needs: text, and for `MsgId` 1 to 20 digits. Private to the push module. */
export function fitsField(message: Record<string, unknown>, name: string): boolean {
  const value = message[name];
  if (name === "List") return Array.isArray(value) && value.every((item) => typeof item === "object" && item !== null);
  return typeof value === "string" && (name !== "MsgId" || /^\d{1,20}$/.test(value));
}
