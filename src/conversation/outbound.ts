/**
 * What the SDK's sends do in the user's conversation: before a customer-service message, a
 * window message is held (and a bot's message is refused once a person answers); after it,
 * the message is recorded with who sent it and how it went.
 *
 * @module
 */
import { HandedOffError, OutOfWindowError, WeChatApiError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { ConversationStore, EntryContent, Sender } from "./types.ts";

/** An outbound entry's outcome for what a call threw: WeChat's errcode, or `unknown` (it may have gone out). */
export function outcomeOf(err: unknown): number | "unknown" {
  return err instanceof WeChatApiError ? err.errcode : "unknown";
}

/**
 * Holds, checks and records the SDK's sends in the users' conversations. `MiniProgram` builds
 * one from its `conversations` option; build one yourself only to construct a
 * `CustomerServiceMessage` or `SubscribeMessage` without a `MiniProgram`.
 *
 * @example
 * ```ts
 * import { MemoryConversationStore, OutboundRecorder } from "@kefu/edge";
 * const conversations = new MemoryConversationStore();
 * const recorder = new OutboundRecorder(conversations, "wx123", console);
 * console.log(recorder.ref("o9AgO5Kd5ggOC-bXrbNODIiE3bGY")); // { appId: "wx123", openId: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY" }
 * ```
 */
export class OutboundRecorder {
  readonly #store: ConversationStore;
  readonly #appId: string;
  readonly #logger: Logger;

  /**
   * Records into `store`, for the mini program `appId`.
   *
   * @param store the conversations
   * @param appId the mini program
   * @param logger receives a store that fails (the send still goes out)
   */
  constructor(store: ConversationStore, appId: string, logger: Logger) {
    this.#store = store;
    this.#appId = appId;
    this.#logger = logger;
  }

  /** The conversations. */
  get store(): ConversationStore {
    return this.#store;
  }

  /** The user's conversation coordinates. */
  ref(openId: string): { appId: string; openId: string } {
    return { appId: this.#appId, openId };
  }

  /**
   * Before a customer-service message: holds a window message for it. A bot's message is
   * refused with {@link HandedOffError} while a person answers; with `checkWindow`, a send the
   * window is known to refuse throws {@link OutOfWindowError}. A failing store lets the send go.
   *
   * @returns whether a window message is held for the send
   */
  async before(openId: string, sender: Sender, checkWindow: boolean): Promise<boolean> {
    let reservation;
    try {
      reservation = await this.#store.reserve(this.ref(openId), { onlyIn: sender === "bot" ? ["bot"] : undefined });
    } catch (err) {
      this.#warn("reserve", err);
      return false;
    }
    if (reservation.decision === "state") throw new HandedOffError(openId, reservation.handoff.state);
    if (reservation.decision === "deleted") throw new HandedOffError(openId, "deleted");
    if (reservation.decision === "closed" && checkWindow) throw new OutOfWindowError(openId, reservation.window);
    return reservation.decision === "ok" && reservation.window !== undefined;
  }

  /** After a call: records it, with its outcome; a failing store is logged. */
  async after(
    openId: string,
    entry: EntryContent,
    options: { spend: boolean; reserved: boolean },
  ): Promise<void> {
    try {
      await this.#store.recordOutbound(this.ref(openId), { entry, ...options });
    } catch (err) {
      this.#warn("record", err);
    }
  }

  #warn(operation: string, err: unknown): void {
    const error = err instanceof Error ? err.name : typeof err;
    this.#logger.warn(JSON.stringify({ event: "kefu-edge.conversation_store_failed", operation, error }));
  }
}

/** The entry of a customer-service message, in the conversation's terms. */
export function messageEntry(
  msgtype: string,
  body: Record<string, unknown>,
  sender: Sender,
  outcome: "ok" | "unknown" | number,
): EntryContent {
  const text = (name: string) => (typeof body[name] === "string" ? body[name] as string : undefined);
  const base = { sender, type: "message" as const, msgType: msgtype, outcome };
  switch (msgtype) {
    case "text":
      return { ...base, text: text("content") };
    case "image":
      return { ...base, mediaId: text("media_id") };
    case "link":
      return { ...base, title: text("title"), text: text("description"), url: text("url") };
    case "miniprogrampage":
      return { ...base, title: text("title"), pagePath: text("pagepath"), mediaId: text("thumb_media_id") };
    default:
      return base;
  }
}
