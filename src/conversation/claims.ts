/**
 * The push receiver's claims on a message, kept in the message's conversation: claiming a push
 * is accepting it (one atomic operation that also appends it to the history and opens the
 * send window), and the other claim operations replace the conversation's claim on it.
 *
 * @module
 */
import type { KeyValueStore, SetOptions } from "../stores/key_value_store.ts";
import { actionOf } from "../customer_service/send_window.ts";
import type { PushMessage } from "../push/types.ts";
import type { AcceptInput, AcceptResult, ConversationRef, ConversationStore, EntryContent } from "./types.ts";

/**
 * Where a push stands in the order its user sent: `CreateTime`, then `MsgId`, as a string
 * that sorts alike; `undefined` for pushes that are not the user's messages (events).
 *
 * @param message a verified push
 * @returns the sort key
 */
export function orderKey(message: PushMessage): string | undefined {
  const msgId = message.MsgId;
  if (typeof msgId !== "string" || !/^\d{1,20}$/.test(msgId)) return undefined;
  if (!Number.isSafeInteger(message.CreateTime) || message.CreateTime < 0) return undefined;
  return `${String(message.CreateTime).padStart(16, "0")}:${msgId.padStart(20, "0")}`;
}

/** The user a push belongs to, or `undefined` for pushes kept outside conversations. */
export function conversationUser(message: PushMessage): string | undefined {
  if (typeof message.FromUserName !== "string" || message.FromUserName === "") return undefined;
  // WeChat's deletion requests come from the platform's account, about the user in OpenID.
  if (message.MsgType === "event" && DELETION_EVENTS.has(String(message.Event))) return undefined;
  return message.FromUserName;
}

/** The events by which WeChat asks for a user's data to be deleted. */
export const DELETION_EVENTS: ReadonlySet<string> = new Set([
  "user_authorization_revoke",
  "user_authorization_cancellation",
]);

/**
 * The user whose data a push asks to delete, or `undefined`: the `OpenID` field of
 * `user_authorization_revoke` and `user_authorization_cancellation` (WeChat's doc: there
 * `FromUserName` is the platform's push account). [UNCERTAIN] `RevokeInfo` names what was
 * revoked (a phone number, the nickname...), and a conversation may hold any of it: the safe
 * reading is taken, and the whole conversation is deleted.
 *
 * @param message a verified push
 * @returns the OpenID to purge
 * @example Delete what your own systems keep of the user, in your push handler
 * ```ts
 * import { purgedUser } from "@kefu/edge";
 * const message = {
 *   ToUserName: "gh_platform", FromUserName: "oPlatformAccount", CreateTime: 1700000000,
 *   MsgType: "event", Event: "user_authorization_revoke", OpenID: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", RevokeInfo: "301",
 * } as const;
 * console.log(purgedUser(message)); // "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
 * ```
 */
export function purgedUser(message: PushMessage): string | undefined {
  if (message.MsgType !== "event" || !DELETION_EVENTS.has(String(message.Event))) return undefined;
  const openId = (message as Record<string, unknown>).OpenID;
  return typeof openId === "string" && openId !== "" ? openId : undefined;
}

/** What a push adds to the history. */
export function inboundEntry(message: PushMessage, deliveryId: string): EntryContent {
  const fields = message as Record<string, unknown>;
  const text = (name: string) => (typeof fields[name] === "string" ? fields[name] as string : undefined);
  const base = { sender: "user" as const, deliveryId };
  if (message.MsgType === "event") return { ...base, type: "event", msgType: text("Event") };
  switch (message.MsgType) {
    case "text":
      return { ...base, type: "message", msgType: "text", text: text("Content") };
    case "image":
      return { ...base, type: "message", msgType: "image", mediaId: text("MediaId") };
    case "miniprogrampage":
      return {
        ...base,
        type: "message",
        msgType: "miniprogrampage",
        title: text("Title"),
        pagePath: text("PagePath"),
        mediaId: text("ThumbMediaId"),
      };
    default:
      return { ...base, type: "message", msgType: message.MsgType };
  }
}

/**
 * A push's claim operations in its conversation, shaped as the key-value store the receiver's
 * claims run over: `setIfAbsent` accepts the push (and keeps what accepting found in
 * `accepted`), `get` reads the claim, `compareAndSet` replaces it.
 */
export class ConversationClaims implements KeyValueStore {
  readonly #store: ConversationStore;
  /** The push's conversation. */
  readonly ref: ConversationRef;
  readonly #message: PushMessage;
  readonly #deliveryId: string;
  readonly #takeOver: readonly string[] | undefined;
  /** The push's place in the user's order, and whether accepting it waits for earlier ones (see `AcceptInput.order`). */
  order: AcceptInput["order"];
  /** What accepting the push found: who answers the conversation, its window, the claim found. */
  accepted: AcceptResult | undefined;

  /**
   * @param store the conversations
   * @param ref the push's conversation
   * @param message the push
   * @param deliveryId its delivery id
   * @param options `takeOver`: live claims that accepting may take the place of, by how they
   *   start; `order`: the push's place in the user's order
   */
  constructor(
    store: ConversationStore,
    ref: ConversationRef,
    message: PushMessage,
    deliveryId: string,
    options: { takeOver?: readonly string[] | undefined; order?: AcceptInput["order"] } = {},
  ) {
    this.#store = store;
    this.ref = ref;
    this.#message = message;
    this.#deliveryId = deliveryId;
    this.#takeOver = options.takeOver;
    this.order = options.order;
  }

  /** The push's claim. */
  get(key: string): Promise<string | null> {
    return this.#store.claim(this.ref, key);
  }

  /** Accepts the push into its conversation with this claim (in the place of a claim `takeOver` names). */
  async setIfAbsent(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const action = actionOf(this.#message);
    const result = await this.#store.accept(this.ref, {
      key,
      claim: value,
      ttlSeconds: options.ttlSeconds ?? 60,
      entry: inboundEntry(this.#message, this.#deliveryId),
      action: action === undefined ? undefined : { kind: action, at: this.#message.CreateTime * 1000 },
      takeOver: this.#takeOver,
      order: this.order,
    });
    this.accepted = result;
    return result.outcome === "claimed";
  }

  /** Replaces the claim if it still holds `expected`. */
  compareAndSet(key: string, expected: string, value: string | null, options: SetOptions = {}): Promise<boolean> {
    return this.#store.replaceClaim(this.ref, key, expected, value, options.ttlSeconds ?? 60);
  }

  /** Replaces whatever claim is there (a mark written after the lease): from the value read. */
  async set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const current = await this.get(key);
    if (current !== null) await this.compareAndSet(key, current, value, options);
  }

  /** Frees the claim. */
  async delete(key: string): Promise<void> {
    const current = await this.get(key);
    if (current !== null) await this.compareAndSet(key, current, null);
  }
}
