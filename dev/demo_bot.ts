/**
 * The demo bot of `npm start` (not published): a few scripted answers, so that the chat
 * simulator and the agent inbox have a bot to watch and take over from without a model. It is
 * written as a team writes its own `onMessage`, with what `kefu-edge/worker` exports:
 * - a user entering the session gets `WELCOME_TEXT` (as the default handler sends it);
 * - 你好 / hello → a greeting; 价格 / price → a canned price; any other text → how to reach a person;
 * - 人工 or 转人工 → "A person will answer you here shortly.", and the conversation waits for
 *   a person (`requestHuman`): it shows as `waiting` in the inbox, and the bot is not called
 *   for the user's messages until an agent hands it back.
 *
 * Everything it sends goes through `context.conversation.reply`, recorded as the bot's; a
 * reply the conversation refuses (a person took over meanwhile) is dropped.
 *
 * @module
 */
import type { AppPushContext, AppPushHandler } from "../worker/mod.ts";
import { isPushMessage, type PushMessage } from "../mod.ts";

/** What the demo bot says. */
export const DEMO_TEXTS = {
  greeting: "Hello! I'm the kefu-edge demo bot. Ask me about the price, or write 人工 to talk to a person.",
  price: "The demo plan costs nothing: this is a scripted answer from the dev server's demo bot.",
  fallback: "I'm a demo bot: write 人工 or 转人工 to talk to a person",
  handoff: "A person will answer you here shortly.",
} as const;

/** Why the demo bot asks for a person (the handoff's reason in the history). */
export const DEMO_HANDOFF_REASON = "user asked for a person";

/**
 * The demo bot's answer to a text: which of {@link DEMO_TEXTS}, and whether it asks for a person.
 *
 * @param text what the user wrote
 * @returns the answer's key in {@link DEMO_TEXTS}
 * @example
 * ```ts
 * import { demoAnswer } from "./demo_bot.ts";
 * console.log(demoAnswer("转人工"), demoAnswer("Hello there"), demoAnswer("价格多少"), demoAnswer("?")); // "handoff" "greeting" "price" "fallback"
 * ```
 */
export function demoAnswer(text: string): keyof typeof DEMO_TEXTS {
  const said = text.toLowerCase();
  if (said.includes("人工")) return "handoff";
  if (said.includes("你好") || /\bhello\b/.test(said)) return "greeting";
  if (said.includes("价格") || /\bprices?\b/.test(said)) return "price";
  return "fallback";
}

/**
 * Builds the demo bot's push handler.
 *
 * @param welcomeText the text a user entering the session gets (`WELCOME_TEXT`), if any, from the env
 * @returns the handler, for `createApp({ onMessage })`
 * @example
 * ```ts
 * import { demoBot } from "./demo_bot.ts";
 * console.log(typeof demoBot((env) => env.WELCOME_TEXT)); // "function"
 * ```
 */
export function demoBot(welcomeText: (env: AppPushContext["env"]) => string | undefined): AppPushHandler {
  return async (message: PushMessage, context: AppPushContext) => {
    const conversation = context.conversation;
    // Without conversations (KEFU_STORE unbound) there is nothing to record replies in or hand off.
    if (conversation === undefined) return;
    if (isPushMessage(message, "user_enter_tempsession")) {
      const welcome = welcomeText(context.env);
      if (welcome !== undefined && welcome !== "") await quietly(conversation.reply(welcome));
      return;
    }
    if (!isPushMessage(message, "text")) return;
    const answer = demoAnswer(message.Content);
    // Told first: once the conversation waits for a person, the bot may not reply.
    await quietly(conversation.reply(DEMO_TEXTS[answer]));
    if (answer === "handoff") await conversation.requestHuman(DEMO_HANDOFF_REASON);
  };
}

// A reply refused because a person answers now (or WeChat refused it: it is in the history,
// failed) is not worth a retry of the whole push.
async function quietly(sending: Promise<unknown>): Promise<void> {
  try {
    await sending;
  } catch (err) {
    console.warn(JSON.stringify({ event: "kefu-edge.demo_bot_reply_failed", error: (err as Error).name }));
  }
}
