/**
 * What a push handler sees of the user's conversation: the history (also in the compact form a
 * chat model takes), who answers, a way to ask for a person, and replies recorded as the bot's.
 *
 * @module
 */
import type { SendWindow } from "../customer_service/send_window.ts";
import type { SendOptions } from "../customer_service/schemas.ts";
import type { ConversationEntry, ConversationRef, ConversationStore, Handoff, HandoffResult } from "./types.ts";
import { describeEntry } from "../internal/conversation_list.ts";

/** One turn of a conversation as a chat model takes it. */
export interface ChatTurn {
  /** `user` for the user's messages; `assistant` for what the bot, agents or your service sent. */
  role: "user" | "assistant";
  /** The text; images, cards and links described in words. */
  content: string;
  /** When, ms since the epoch. */
  at: number;
}

/**
 * The chat-model form of history entries: the user's messages as `user`, the messages the bot,
 * agents and your service sent (and that went out) as `assistant`, oldest first; images, cards
 * and links described in words; events, typing, subscribe messages and handoffs left out.
 *
 * @param entries history entries, in any order (a history page is newest first)
 * @returns the turns, oldest first
 * @example
 * ```ts
 * import { chatTurns } from "@kefu/edge";
 * const turns = chatTurns([
 *   { seq: 2, at: 2, sender: "bot", type: "message", msgType: "text", text: "您好！", outcome: "ok" },
 *   { seq: 1, at: 1, sender: "user", type: "message", msgType: "image", mediaId: "M" },
 * ]);
 * console.log(turns.map((t) => `${t.role}: ${t.content}`)); // ["user: [图片]", "assistant: 您好！"]
 * ```
 */
export function chatTurns(entries: readonly ConversationEntry[]): ChatTurn[] {
  const turns: ChatTurn[] = [];
  for (const entry of [...entries].sort((a, b) => a.seq - b.seq)) {
    if (entry.type !== "message") continue;
    const fromUser = entry.sender === "user";
    // A send WeChat refused never reached the user.
    if (!fromUser && typeof entry.outcome === "number") continue;
    const content = describeEntry(entry);
    if (content !== "") turns.push({ role: fromUser ? "user" : "assistant", content, at: entry.at });
  }
  return turns;
}

/** The user's conversation, as the push handler's context carries it (`context.conversation`). */
export interface ConversationContext {
  /** The user. */
  readonly openId: string;
  /** The send window when the push was accepted (in a queue's consumer: when the consumer took it). */
  readonly window: SendWindow | undefined;
  /** The history, newest first, up to `limit` entries (default 20, at most 200). */
  history(limit?: number): Promise<ConversationEntry[]>;
  /** The last `limit` entries (default 20) as chat turns, oldest first: see {@link chatTurns}. */
  chat(limit?: number): Promise<ChatTurn[]>;
  /** Who answers now. */
  handoff(): Promise<Handoff | null>;
  /** Asks for a person: the conversation goes to `waiting` (recorded as the bot's request, with `reason`). */
  requestHuman(reason: string): Promise<HandoffResult>;
  /**
   * Sends text as the bot (split into as many messages as it takes), recorded as `bot`; refused
   * with `HandedOffError` once a person answers.
   */
  reply(text: string, options?: Omit<SendOptions, "sender">): Promise<unknown[]>;
}

/** Builds a {@link ConversationContext}. */
export function conversationContext(
  store: ConversationStore,
  ref: ConversationRef,
  window: SendWindow | undefined,
  reply: (openId: string, text: string, options: SendOptions) => Promise<unknown[]>,
): ConversationContext {
  const page = async (limit: number) =>
    (await store.history(ref, { limit: Math.max(1, Math.min(200, Math.floor(limit))) }))?.entries ?? [];
  return {
    openId: ref.openId,
    window,
    history: (limit = 20) => page(limit),
    chat: async (limit = 20) => chatTurns(await page(limit)),
    handoff: () => store.handoff(ref),
    requestHuman: (reason) => store.setHandoff(ref, { state: "waiting", by: "bot", reason, from: ["bot"] }),
    reply: (text, options = {}) => reply(ref.openId, text, { ...options, sender: "bot" }),
  };
}
