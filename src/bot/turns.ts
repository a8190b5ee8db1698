/**
 * What the AI bot sends the model and reads back: its default texts, the turns that fit a
 * token budget, handoff keywords, and an answer cleaned of thinking and of the handoff marker.
 *
 * @module
 */
import type { ChatTurn } from "../conversation/context.ts";
import type { ChatMessage, ChatTool } from "./chat_model.ts";

/** The default system prompt: an AI assistant of this mini program that asks for a person when it cannot help. */
export const DEFAULT_SYSTEM_PROMPT: string = [
  "你是本小程序的 AI 客服助手，通过微信客服消息回答用户的问题。",
  "请用简洁、礼貌的中文回答，每次回复尽量不超过 300 字；不知道的事情如实说明，不要编造订单、价格、物流等信息。",
  "你是 AI，不是真人；用户问起时如实说明。",
  "遇到以下情况请调用 handoff_to_human 工具转接人工客服：用户要求人工、投诉或情绪激动、涉及退款、账户安全、",
  "需要查询或修改用户的订单与个人信息、或你无法解决的问题。",
  "如果无法调用工具，请只回复 [[HANDOFF]]。",
].join("");

/** The words that hand the conversation to a person when a user writes one of them as the whole message. */
export const DEFAULT_HANDOFF_KEYWORDS: readonly string[] = ["人工", "转人工", "人工客服", "转人工客服", "客服", "真人"];

/** What the user is told when the conversation goes to a person. */
export const DEFAULT_HANDOFF_TEXT = "已为您转接人工客服，请稍候，客服会尽快回复您。";

/** What closes an answer that needs more messages than the send window has left. */
export const DEFAULT_CONTINUE_TEXT = "（内容较长，回复任意内容我接着说）";

/**
 * What a model without tools writes to hand the conversation to a person: an answer containing
 * it is not sent; the conversation goes to `waiting`.
 */
export const HANDOFF_MARKER = "[[HANDOFF]]";

/** The tool offered to the model: calling it hands the conversation to a person. */
export const HANDOFF_TOOL: ChatTool = {
  name: "handoff_to_human",
  description: "把对话转给人工客服。用户要求人工、投诉、涉及退款或账户安全、或你无法解决问题时调用。",
  parameters: {
    type: "object",
    properties: { reason: { type: "string", description: "转人工的原因，一句话" } },
    required: ["reason"],
  },
};

/**
 * A rough token count of a text, for the context budget: one per CJK character, one per four
 * other characters. Real tokenizers differ by model; the budget leaves room for that.
 *
 * @param text any text
 * @returns the estimate
 * @example
 * ```ts
 * import { estimateTokens } from "@kefu/edge";
 * console.log(estimateTokens("你好"), estimateTokens("hello world!")); // 2 3
 * ```
 */
export function estimateTokens(text: string): number {
  let wide = 0;
  let narrow = 0;
  for (const char of text) {
    if (/[\u2E80-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\uFF00-\uFFEF]/.test(char) || char.length > 1) wide++;
    else narrow++;
  }
  return wide + Math.ceil(narrow / 4);
}

/** What each message costs besides its text (role, separators), in tokens. */
const PER_MESSAGE_TOKENS = 4;

/**
 * The messages for the model: the system prompt, then the newest turns, oldest first, as many
 * as fit `maxTokens` (the newest turn always goes, cut to fit when it alone is too long).
 *
 * @param systemPrompt the instructions
 * @param turns the conversation, oldest first
 * @param maxTokens the budget, estimated with {@link estimateTokens}
 * @returns the messages
 */
export function messagesFor(systemPrompt: string, turns: readonly ChatTurn[], maxTokens: number): ChatMessage[] {
  let left = maxTokens - estimateTokens(systemPrompt) - PER_MESSAGE_TOKENS;
  const kept: ChatMessage[] = [];
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns[i]!;
    const cost = estimateTokens(turn.content) + PER_MESSAGE_TOKENS;
    if (cost > left) {
      if (kept.length === 0) kept.push({ role: turn.role, content: cut(turn.content, Math.max(1, left)) });
      break;
    }
    left -= cost;
    kept.push({ role: turn.role, content: turn.content });
  }
  return [{ role: "system", content: systemPrompt }, ...kept.reverse()];
}

function cut(text: string, tokens: number): string {
  let out = "";
  for (const char of text) {
    if (estimateTokens(out + char) > tokens) break;
    out += char;
  }
  return out;
}

/**
 * A message as keywords are compared: lower case, without blanks and punctuation.
 *
 * @param text a user's message
 * @returns its normalized form
 */
export function normalizeKeyword(text: string): string {
  return text.toLowerCase().replace(/[\s\p{P}\p{S}]/gu, "");
}

/**
 * The model's text, cleaned: `<think>…</think>` blocks some models write before the answer are
 * removed, and a handoff marker found.
 *
 * @param content the answer's text
 * @returns the text to send, and whether the model asked for a person
 * @example
 * ```ts
 * import { cleanAnswer } from "@kefu/edge";
 * console.log(cleanAnswer("<think>用户要人工</think>好的。[[HANDOFF]]")); // { text: "好的。", handoff: true }
 * ```
 */
export function cleanAnswer(content: string): { text: string; handoff: boolean } {
  const visible = content.replace(/<think>[\s\S]*?(?:<\/think>|$)/g, "");
  const handoff = visible.includes(HANDOFF_MARKER);
  return { text: visible.split(HANDOFF_MARKER).join("").trim(), handoff };
}
