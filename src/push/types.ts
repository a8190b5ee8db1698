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
 * A message pushed by WeChat: one of the typed kinds of {@link KnownPushMessages}, or any
 * other message or event ({@link OtherPushMessage}). TypeScript cannot narrow it by
 * `MsgType` alone because other types pass through as {@link OtherPushMessage}; use
 * {@link isPushMessage} to narrow.
 */
export type PushMessage = KnownPushMessages[keyof KnownPushMessages] | OtherPushMessage;

/**
 * The typed messages, by `MsgType` (or `Event`, for events): the one list of typed kinds.
 * {@link PushMessage} and {@link isPushMessage} take their kinds from it, and the receiver's
 * checks of each kind (the private `PUSH_KINDS` below) must match it, or the package does not
 * compile.
 */
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
 * @param kind a key of {@link KnownPushMessages}: a `MsgType` (`text`, `image`, `miniprogrampage`)
 *   or, for events, the `Event` (`user_enter_tempsession`, `subscribe_msg_popup_event`, …)
 * @returns whether `message` is of that kind
 * @example
 * ```ts
 * import { isPushMessage, type PushMessage } from "@kefu/edge";
 * const msg: PushMessage = { ToUserName: "gh_1", FromUserName: "o1", CreateTime: 1, MsgType: "text", Content: "hi", MsgId: "1" };
 * if (isPushMessage(msg, "text")) console.log(msg.Content); // "hi"
 * ```
 */
export function isPushMessage<K extends keyof KnownPushMessages>(
  message: PushMessage,
  kind: K,
): message is KnownPushMessages[K] {
  const typed = typedKind(message);
  // A message of the kind that lacks one of its fields stays an OtherPushMessage.
  return typed?.name === kind && missingField(message, typed) === undefined;
}

// ---------------------------------------------------------------------------------------
// Private to the push module (not exported by mod.ts): what the receiver checks of each
// typed kind, held to the types above by the compiler.

/** The fields every push has, which the parser checks for every kind. */
type CommonField = "ToUserName" | "FromUserName" | "CreateTime" | "MsgType" | "Event";

/** The named fields of `T`, without its index signature. */
type NamedField<T> = keyof { [F in keyof T as string extends F ? never : number extends F ? never : F]: 0 };

/** The fields a typed kind requires beyond the common ones: those the parser checks. */
type KindField<T> = {
  [F in NamedField<T>]-?: F extends CommonField ? never : Record<never, never> extends Pick<T, F> ? never : F;
}[NamedField<T>];

/**
 * How the parser checks a field: `text`; `id`, a 64-bit integer as 1 to 20 digits; `list`, an
 * array of objects (a subscribe event's `List`). A field of any other type cannot be checked,
 * so a kind with one has no possible entry: the compiler refuses it.
 */
type FieldCheck<T, F extends keyof T> = F extends "MsgId" ? "id"
  : T[F] extends string ? "text"
  : T[F] extends readonly object[] ? "list"
  : never;

/**
 * The receiver's checks of one typed kind `K` with the type `T`:
 * - `fields`: every field the kind requires, each with its check (no more, no fewer);
 * - `event`: `true` for an event (the key is its `Event`), absent for a message (the key is
 *   its `MsgType`): a key that is neither makes the entry impossible;
 * - `listElement`: for a kind with a `List`, the element the XML form wraps it in.
 */
export type PushKindChecks<K extends string, T> =
  & { readonly fields: { readonly [F in KindField<T>]: FieldCheck<T, F> } }
  & (T extends { MsgType: "event"; Event: K } ? { readonly event: true }
    : T extends { MsgType: K } ? { readonly event?: never }
    : never)
  & (T extends { List: readonly object[] } ? { readonly listElement: string } : { readonly listElement?: never });

/**
 * The receiver's checks of every typed kind, one entry per key of {@link KnownPushMessages}:
 * a kind added there without its entry, or an entry whose fields are not exactly the kind's,
 * does not compile.
 */
export const PUSH_KINDS: { readonly [K in keyof KnownPushMessages]: PushKindChecks<K, KnownPushMessages[K]> } = {
  text: { fields: { Content: "text", MsgId: "id" } },
  image: { fields: { PicUrl: "text", MediaId: "text", MsgId: "id" } },
  miniprogrampage: {
    fields: { Title: "text", AppId: "text", PagePath: "text", ThumbUrl: "text", ThumbMediaId: "text", MsgId: "id" },
  },
  user_enter_tempsession: { event: true, fields: { SessionFrom: "text" } },
  subscribe_msg_popup_event: { event: true, fields: { List: "list" }, listElement: "SubscribeMsgPopupEvent" },
  subscribe_msg_change_event: { event: true, fields: { List: "list" }, listElement: "SubscribeMsgChangeEvent" },
  subscribe_msg_sent_event: { event: true, fields: { List: "list" }, listElement: "SubscribeMsgSentEvent" },
};

/**
 * The fields of a push of the typed kind `K` besides the common ones (`ToUserName`,
 * `FromUserName`, `CreateTime`) and its `MsgType` / `Event`: what the emulator writes for a
 * user action, held by the compiler to the kind's type.
 */
export type KindFields<K extends keyof KnownPushMessages> = {
  [F in NamedField<KnownPushMessages[K]> as F extends CommonField ? never : F]: KnownPushMessages[K][F];
};

/**
 * The `MsgType`, and for an event the `Event`, that a push of the typed kind carries.
 *
 * @param name the kind
 * @returns its discriminating fields
 * @example
 * ```ts
 * import { kindDiscriminant } from "./types.ts";
 * console.log(kindDiscriminant("user_enter_tempsession")); // { MsgType: "event", Event: "user_enter_tempsession" }
 * ```
 */
export function kindDiscriminant(name: keyof KnownPushMessages): { MsgType: string; Event?: string } {
  const checks: { event?: true } = PUSH_KINDS[name];
  return checks.event === true ? { MsgType: "event", Event: name } : { MsgType: name };
}

/** A typed kind as the parser looks it up: its name, `MsgType` or `event:<Event>`, and its checks. */
export interface TypedKind {
  /** The key of {@link KnownPushMessages}. */
  readonly name: keyof KnownPushMessages;
  /** `MsgType`, or `event:<Event>` for events: how the warning about a mismatch names it. */
  readonly key: string;
  /** The fields the kind requires, with their checks. */
  readonly fields: readonly (readonly [field: string, check: "text" | "id" | "list"])[];
  /** The element the XML form wraps a `List` in. */
  readonly listElement: string | undefined;
}

// The typed kinds by `MsgType`, and the events by `Event`: a `MsgType` that merely reads like
// an event ("event:…") claims no event.
const MESSAGES = new Map<unknown, TypedKind>();
const EVENTS = new Map<unknown, TypedKind>();
for (const name of Object.keys(PUSH_KINDS) as (keyof KnownPushMessages)[]) {
  const checks: { event?: true; fields: Record<string, "text" | "id" | "list">; listElement?: string } =
    PUSH_KINDS[name];
  const event = checks.event === true;
  const key = event ? `event:${name}` : name;
  (event ? EVENTS : MESSAGES).set(name, {
    name,
    key,
    fields: Object.entries(checks.fields),
    listElement: checks.listElement,
  });
}

/** The typed kind `message` claims by its `MsgType` (and `Event`), if any. Private to the push module. */
export function typedKind(message: { MsgType?: unknown; Event?: unknown }): TypedKind | undefined {
  return message.MsgType === "event" ? EVENTS.get(message.Event) : MESSAGES.get(message.MsgType);
}

/**
 * The first field of `kind` that `message` lacks or holds in the wrong shape: text, an id of
 * 1 to 20 digits, or a list of objects. Private to the push module.
 */
export function missingField(message: Record<string, unknown>, kind: TypedKind): string | undefined {
  for (const [name, check] of kind.fields) {
    const value = message[name];
    const fits = check === "list"
      ? Array.isArray(value) && value.every((item) => typeof item === "object" && item !== null)
      : typeof value === "string" && (check === "text" || /^\d{1,20}$/.test(value));
    if (!fits) return name;
  }
  return undefined;
}
