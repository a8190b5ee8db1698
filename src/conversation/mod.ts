/**
 * Conversations: one per user of a mini program, with its history, send window, handoff state
 * and push claims, kept by a {@link ConversationStore}.
 *
 * @module
 */
export * from "./types.ts";
export { type MemoryConversationOptions, MemoryConversationStore } from "./memory.ts";
export {
  type ConversationSettings,
  type ConversationSettingsOptions,
  DEFAULT_CONVERSATION_SETTINGS,
} from "../internal/conversation_rules.ts";
export { type ChatTurn, chatTurns, type ConversationContext } from "./context.ts";
