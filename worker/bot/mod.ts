/**
 * The worker's AI bot: with `BOT_URL` set (and no `onMessage` of your own), `aiBot` answers
 * users, configured by env — `BOT_URL`, `BOT_MODEL`, `BOT_API_KEY`, `BOT_SYSTEM_PROMPT`,
 * `BOT_TIMEOUT_MS`, `BOT_FALLBACK_TEXT`, `AI_LABEL`, `BOT_CONTENT_CHECK`, and `TRANSFER_TO_KF`
 * for handing over to WeChat's own tool. With a queue bound it runs in the queue's consumer;
 * without, after WeChat has been answered (`waitUntil`).
 *
 * @module
 */
import { aiBot, type AiBotOptions, type ConversationStore, DEFAULT_BOT_TIMEOUT_MS } from "../../mod.ts";
import { ConfigError, type Env, optionalVar, requireVar } from "../env.ts";
import type { AppPushHandler, AppReplyDecider } from "../push_handler.ts";
import type { AppLogger } from "../types.ts";

/**
 * What `createApp({ bot })` may set beyond the variables: the content check's `review` and
 * failure handling, texts, turns, a subscribe fallback... (`BOT_*` variables win where both
 * name a setting).
 */
export type BotAppOptions = Omit<AiBotOptions, "baseUrl" | "model" | "apiKey" | "miniProgram" | "logger">;

/** The bot's settings as the variables give them. */
export interface BotEnvSettings {
  /** `BOT_URL`. */
  baseUrl: string;
  /** `BOT_MODEL`. */
  model: string;
  /** `BOT_API_KEY`. */
  apiKey: string | undefined;
  /** `BOT_SYSTEM_PROMPT`. */
  systemPrompt: string | undefined;
  /** `BOT_TIMEOUT_MS`, default 25,000. */
  timeoutMs: number;
  /** `BOT_FALLBACK_TEXT`. */
  fallbackText: string | undefined;
  /** `AI_LABEL` (default on). */
  aiLabel: boolean;
  /** `BOT_CONTENT_CHECK` (default off). */
  contentCheck: boolean;
  /** `TRANSFER_TO_KF`. */
  transferToKf: boolean;
}

/**
 * Reads the bot's variables: `undefined` without `BOT_URL`.
 *
 * @param env the bindings
 * @returns the settings, or `undefined` when the bot is off
 * @throws {ConfigError} for a malformed variable, `BOT_MODEL` missing, or `BOT_URL` with `FORWARD_URL`
 * @example
 * ```ts
 * import { botEnvSettings } from "./mod.ts";
 * const settings = botEnvSettings({ BOT_URL: "https://api.deepseek.com/v1", BOT_MODEL: "deepseek-chat" });
 * console.log(settings?.timeoutMs, settings?.aiLabel); // 25000 true
 * ```
 */
export function botEnvSettings(env: Env): BotEnvSettings | undefined {
  const baseUrl = optionalVar(env, "BOT_URL");
  if (baseUrl === undefined) return undefined;
  // Two answerers would both reply to every user: one of them must go.
  if (optionalVar(env, "FORWARD_URL") !== undefined) {
    throw new ConfigError(
      "BOT_URL",
      "invalid",
      "cannot be set together with FORWARD_URL: only one of them answers users",
    );
  }
  return {
    baseUrl,
    model: requireVar(env, "BOT_MODEL"),
    apiKey: optionalVar(env, "BOT_API_KEY"),
    systemPrompt: optionalVar(env, "BOT_SYSTEM_PROMPT"),
    timeoutMs: optionalVar(env, "BOT_TIMEOUT_MS") ?? DEFAULT_BOT_TIMEOUT_MS,
    fallbackText: optionalVar(env, "BOT_FALLBACK_TEXT"),
    aiLabel: optionalVar(env, "AI_LABEL") !== "off",
    contentCheck: optionalVar(env, "BOT_CONTENT_CHECK") === "on",
    transferToKf: optionalVar(env, "TRANSFER_TO_KF") === "on",
  };
}

/** What the app needs to build the bot for an env. */
export interface BotDeps {
  /** The fetch the model is called with. */
  fetch: typeof fetch;
  /** The app's logger. */
  logger: AppLogger;
  /** `createApp({ bot })`. */
  options: BotAppOptions | undefined;
  /** The env's conversations: the bot needs them. */
  conversations: (env: Env) => ConversationStore | undefined;
}

/** The bot's push handler and passive-reply decision for an env. */
export interface BotHandlers {
  /** Answers user messages (after WeChat's answer, or in the queue's consumer). */
  onMessage: AppPushHandler;
  /** With `TRANSFER_TO_KF=on`: `transfer_customer_service` for a handoff keyword, while WeChat waits. */
  onReply: AppReplyDecider | undefined;
}

/**
 * The bots of an app, one per configuration (the settings are validated once per env).
 *
 * @param deps the model's fetch, the logger, `createApp`'s bot options, the conversations
 * @returns `get(env)`: the env's bot, or `undefined` when `BOT_URL` is unset
 * @example
 * ```ts
 * import { MemoryConversationStore } from "@kefu/edge";
 * import { botCache } from "./mod.ts";
 * const conversations = new MemoryConversationStore();
 * const bots = botCache({ fetch, logger: console, options: undefined, conversations: () => conversations });
 * console.log(bots.get({}), typeof bots.get({ BOT_URL: "http://127.0.0.1:11434/v1", BOT_MODEL: "qwen3" })?.onMessage); // undefined "function"
 * ```
 */
export function botCache(deps: BotDeps): { get(env: Env): BotHandlers | undefined } {
  const bots = new Map<string, BotHandlers>();
  return {
    get(env) {
      const settings = botEnvSettings(env);
      if (settings === undefined) return undefined;
      // Said here, by name, rather than by a bot that answers nothing.
      if (deps.conversations(env) === undefined) {
        throw new ConfigError(
          "BOT_URL",
          "invalid",
          "needs conversations: bind KEFU_STORE (the Durable Objects), or run the Deno server",
        );
      }
      // Kept in this isolate's memory only; the key is part of the configuration.
      const key = JSON.stringify(settings);
      let found = bots.get(key);
      if (found === undefined) {
        const bot = aiBot({
          fetch: deps.fetch,
          ...deps.options,
          ...fromEnv(settings, deps.options),
          logger: deps.logger,
        });
        found = {
          onMessage: (message, context) => bot(message, context),
          onReply: settings.transferToKf ? (message) => bot.decideReply(message) : undefined,
        };
        if (bots.size >= 8) bots.delete(bots.keys().next().value!);
        bots.set(key, found);
      }
      return found;
    },
  };
}

function fromEnv(settings: BotEnvSettings, options: BotAppOptions | undefined): AiBotOptions {
  const { contentCheck, ...rest } = settings;
  // BOT_CONTENT_CHECK decides whether it runs; createApp's bot options may tune how.
  const tuned = typeof options?.contentCheck === "object" ? options.contentCheck : true;
  return Object.fromEntries(
    Object.entries({ ...rest, contentCheck: contentCheck ? tuned : false }).filter(([, v]) => v !== undefined),
  ) as unknown as AiBotOptions;
}
