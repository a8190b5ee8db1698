/**
 * `aiBot`: an AI customer-service bot as a push handler. It answers each user message from the
 * conversation so far with an OpenAI-compatible chat model, shows "typing…" while the model
 * thinks, sends the answer in as many labelled messages as it takes within the send window,
 * and hands the conversation to a person when the user asks, the model asks, the model fails
 * or WeChat's content check finds the answer risky.
 *
 * @module
 */
import { HandedOffError, isOutOfWindow, isQuotaExceeded, OutOfWindowError, ValidationError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { MiniProgram } from "../mini_program.ts";
import type { ConversationContext } from "../conversation/context.ts";
import type { ConversationEntry } from "../conversation/types.ts";
import { AI_MSG_CONTEXT } from "../customer_service/schemas.ts";
import type { SendWindow } from "../customer_service/send_window.ts";
import { DEFAULT_MAX_TEXT_BYTES, splitText, utf8Length } from "../customer_service/text.ts";
import { type PushHandlerContext, type PushMessage, Reply } from "../push/mod.ts";
import type { MsgSecCheckScene } from "../security/msg_sec_check.ts";
import type { SubscribeMessagePayload } from "../subscribe/subscribe_message.ts";
import {
  type ChatAnswer,
  chatCompletion,
  chatCompletionsUrl,
  ChatModelError,
  type ChatModelSettings,
} from "./chat_model.ts";
import {
  cleanAnswer,
  DEFAULT_CONTINUE_TEXT,
  DEFAULT_HANDOFF_KEYWORDS,
  DEFAULT_HANDOFF_TEXT,
  DEFAULT_SYSTEM_PROMPT,
  HANDOFF_TOOL,
  messagesFor,
  normalizeKeyword,
} from "./turns.ts";

/** Default {@link AiBotOptions.timeoutMs}: 25 s. */
export const DEFAULT_BOT_TIMEOUT_MS = 25_000;
/** Default {@link AiBotOptions.maxTurns}. */
export const DEFAULT_BOT_TURNS = 20;
/** Default {@link AiBotOptions.maxContextTokens}. */
export const DEFAULT_BOT_CONTEXT_TOKENS = 6000;
/** What a user is asked to write when the model asks for a person in the `transferToKf` mode, after WeChat was answered. */
export const DEFAULT_TRANSFER_TEXT = "这个问题需要人工客服处理，请回复「转人工」，我们会为您转接。";

/** What the bot does with a verdict of the content check. */
export type ContentCheckAction = "send" | "handoff";

/** Settings of the content check before each answer goes out ({@link AiBotOptions.contentCheck}). */
export interface AiBotContentCheck {
  /** WeChat's scene for the check; default `2` (WeChat has none for customer service). */
  scene?: MsgSecCheckScene | undefined;
  /** A `review` verdict: `handoff` (the default: a person looks first) or `send`. */
  onReview?: ContentCheckAction | undefined;
  /** The check itself failing (WeChat down, 61010...): `handoff` (the default: nothing unchecked goes out) or `send`. */
  onError?: ContentCheckAction | undefined;
}

/** Options of {@link aiBot}. */
export interface AiBotOptions {
  /**
   * The model's OpenAI-compatible base URL (`https://api.openai.com/v1`,
   * `https://api.deepseek.com/v1`, `https://dashscope.aliyuncs.com/compatible-mode/v1`, a local
   * `http://127.0.0.1:11434/v1`...); `/chat/completions` is appended.
   */
  baseUrl: string;
  /** The model (`gpt-4o-mini`, `deepseek-chat`, `qwen-plus`...). */
  model: string;
  /** The API key (sent as `Authorization: Bearer …`, never logged); none for a local model that takes none. */
  apiKey?: string | undefined;
  /** The instructions; default {@link DEFAULT_SYSTEM_PROMPT} (Chinese: an AI assistant of this mini program). */
  systemPrompt?: string | undefined;
  /** The mini program to send with; default the handler context's `miniProgram` (the worker's). */
  miniProgram?: MiniProgram | undefined;
  /** The fetch the model is called with; default `globalThis.fetch`. */
  fetch?: typeof fetch | undefined;
  /** Longest wait for the model, ms (1,000–600,000); default 25,000. */
  timeoutMs?: number | undefined;
  /**
   * Sent once, as the bot, when the model fails or times out (the conversation stays with the
   * bot). Unset: the conversation goes to a person instead, and the user is told so.
   */
  fallbackText?: string | undefined;
  /** How many turns of the conversation go to the model (1–100); default 20. */
  maxTurns?: number | undefined;
  /** The estimated tokens the system prompt and the turns may take (at least 200); default 6,000. */
  maxContextTokens?: number | undefined;
  /** Sampling temperature, when set. */
  temperature?: number | undefined;
  /** The longest answer in tokens (`max_tokens`), when set. */
  maxAnswerTokens?: number | undefined;
  /** How often "typing…" is shown again while the model thinks, ms; default 15,000 (how long WeChat shows it). */
  typingRenewMs?: number | undefined;
  /** Labels each message the bot sends as AI-generated (`aimsgcontext`); default true. */
  aiLabel?: boolean | undefined;
  /** A user message that is one of these (blanks and punctuation aside) goes to a person; default {@link DEFAULT_HANDOFF_KEYWORDS}. */
  handoffKeywords?: readonly string[] | undefined;
  /** What the user is told when the conversation goes to a person; default {@link DEFAULT_HANDOFF_TEXT}; `""`: nothing. */
  handoffText?: string | undefined;
  /** Offers the model the `handoff_to_human` tool; default true (off for models that refuse `tools`: the marker still works). */
  handoffTool?: boolean | undefined;
  /**
   * Hands over to WeChat's own customer-service tool (`transfer_customer_service`) instead of
   * the `waiting` state: a keyword message is transferred while WeChat waits; when the model asks
   * for a person after WeChat was answered, the user is asked to write a keyword
   * ({@link AiBotOptions.transferText}).
   */
  transferToKf?: boolean | undefined;
  /** With `transferToKf`: what the user is asked; default {@link DEFAULT_TRANSFER_TEXT}. */
  transferText?: string | undefined;
  /** Closes an answer cut short by the send window; default {@link DEFAULT_CONTINUE_TEXT}. */
  continueText?: string | undefined;
  /** A subscribe message to send instead when the send window has no message left (none: the answer is dropped, logged). */
  subscribeFallback?: ((openId: string) => SubscribeMessagePayload | undefined) | undefined;
  /** Checks each answer with `mp.security.msgSecCheck` before it goes out (`true`: the defaults); default off. */
  contentCheck?: boolean | AiBotContentCheck | undefined;
  /** Where the bot's log lines go (no content, no key); default `console`. */
  logger?: Logger | undefined;
}

/** What the bot reads from the handler's context: the core's, and the worker's `miniProgram` and `afterResponse`. */
export interface AiBotContext extends PushHandlerContext {
  /** The mini program (the worker's context has it). */
  miniProgram?: MiniProgram | undefined;
  /** Runs a task after WeChat was answered (the worker's context has it): the model is called there. */
  afterResponse?: ((task: () => Promise<unknown>) => void) | undefined;
}

/**
 * The bot: a push handler (`mp.push.handle(request, bot)`, `mp.push.processQueued(job, bot)`,
 * or the worker's `createApp({ onMessage: bot })`).
 */
export interface AiBot {
  /**
   * Handles one push: events are left alone; a user message is answered, or handed to a person.
   * Never throws once the model has been asked, so a queue never runs it twice.
   */
  (message: PushMessage, context: AiBotContext): Promise<Reply | undefined>;
  /**
   * The passive reply while WeChat waits, for a queue's reply decision (`onReply`): with
   * `transferToKf`, `transfer_customer_service` for a handoff keyword.
   */
  decideReply(message: PushMessage): Reply | undefined;
}

/** The content check's settings, defaults filled in. */
interface ContentCheck {
  scene: MsgSecCheckScene;
  onReview: ContentCheckAction;
  onError: ContentCheckAction;
}

interface Settings {
  model: Omit<ChatModelSettings, "fetch"> & { fetch?: typeof fetch | undefined };
  systemPrompt: string;
  miniProgram: MiniProgram | undefined;
  fallbackText: string | undefined;
  maxTurns: number;
  maxContextTokens: number;
  typingRenewMs: number;
  label: boolean;
  keywords: ReadonlySet<string>;
  handoffText: string;
  handoffTool: boolean;
  transfer: boolean;
  transferText: string;
  continueText: string;
  subscribeFallback: AiBotOptions["subscribeFallback"];
  check: ContentCheck | undefined;
  logger: Logger;
}

/**
 * Builds the AI bot. It needs the user's conversation (`MiniProgram({ conversations })`, or the
 * worker with `KEFU_STORE`, or the Deno server): without one it answers nothing and logs why.
 *
 * For each user message while the bot answers the conversation: the last `maxTurns` turns
 * (within `maxContextTokens`) go to the model after the system prompt, "typing…" is shown until
 * the answer is ready, and the answer goes out in order, as the bot, labelled AI-generated,
 * within the send window (what does not fit ends with `continueText`). A handoff keyword, the
 * model's `handoff_to_human` call or `[[HANDOFF]]` marker, a failed model without
 * `fallbackText`, and a risky (or, by default, review) verdict of the content check move the
 * conversation to `waiting` and tell the user; the bot is then not called until a person hands
 * it back.
 *
 * While WeChat waits for the answer to a push, the model is called after the answer when the
 * context offers `afterResponse` (the worker's does), else at once; put it behind a queue
 * (`handleQueued`/`processQueued`, the worker's `KEFU_QUEUE`) where a model call of 30 s is fine.
 *
 * @param options the model (`baseUrl`, `model`, `apiKey`), the prompt, and the bot's behaviour
 * @returns the push handler
 * @throws {ValidationError} naming the option that is malformed
 * @example A bot answering from the conversation (a fake model here; yours is one `baseUrl` away)
 * ```ts
 * import { aiBot, MemoryConversationStore, MiniProgram } from "@kefu/edge";
 * import { createEmulator, createFakeChatModel } from "@kefu/edge/testing";
 * const push = { token: "TOKEN" };
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push });
 * const conversations = new MemoryConversationStore();
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch, push, conversations });
 * const model = createFakeChatModel({ answer: () => "您好，订单已发货。" });
 *
 * const bot = aiBot({ baseUrl: "https://api.deepseek.com/v1", model: "deepseek-chat", apiKey: "sk-your-key", miniProgram: mp, fetch: model.fetch });
 * await (await wechat.user("OPENID").says("我的订单呢？")).deliver((request) => mp.push.handle(request, bot));
 * const [, answer] = wechat.inbox("OPENID"); // "typing…", then the answer
 * console.log(answer?.kind === "message" && [answer.message.content, answer.aiMsgContext]); // ["您好，订单已发货。", { is_ai_msg: 1 }]
 * ```
 */
export function aiBot(options: AiBotOptions): AiBot {
  const settings = settingsOf(options);
  const noConversation = once(() =>
    settings.logger.warn(JSON.stringify({
      event: "kefu-edge.bot_without_conversations",
      message: "The AI bot needs conversations (MiniProgram({ conversations }), KEFU_STORE): messages are not answered",
    }))
  );
  const handler = async (message: PushMessage, context: AiBotContext): Promise<Reply | undefined> => {
    const openId = userOf(message);
    if (openId === undefined) return undefined;
    const conversation = context.conversation;
    if (conversation === undefined) {
      noConversation();
      return undefined;
    }
    const mp = settings.miniProgram ?? context.miniProgram;
    if (mp === undefined) {
      throw new ValidationError("miniProgram", "is needed: pass aiBot({ miniProgram }) outside the worker");
    }
    const turn = new Turn(settings, mp, conversation, openId, context);
    const whileWaiting = context.request !== undefined;
    if (isKeyword(message, settings.keywords)) {
      // WeChat's tool gets the message through the passive reply (decideReply in a queue).
      if (settings.transfer) return whileWaiting ? Reply.transferCustomerService() : undefined;
      return await turn.later(() => turn.handOff("keyword"));
    }
    return await turn.later(() => turn.answer(whileWaiting && context.afterResponse === undefined));
  };
  return Object.assign(handler, {
    decideReply: (message: PushMessage) =>
      settings.transfer && isKeyword(message, settings.keywords) ? Reply.transferCustomerService() : undefined,
  });
}

/** One user message being answered. */
class Turn {
  readonly #settings: Settings;
  readonly #mp: MiniProgram;
  readonly #conversation: ConversationContext;
  readonly #openId: string;
  readonly #context: AiBotContext;

  constructor(
    settings: Settings,
    mp: MiniProgram,
    conversation: ConversationContext,
    openId: string,
    context: AiBotContext,
  ) {
    this.#settings = settings;
    this.#mp = mp;
    this.#conversation = conversation;
    this.#openId = openId;
    this.#context = context;
  }

  /** Runs `task` after WeChat's answer when the context can, else now. */
  async later(task: () => Promise<Reply | undefined>): Promise<Reply | undefined> {
    const after = this.#context.afterResponse;
    if (this.#context.request === undefined || after === undefined) return await task();
    after(task);
    return undefined;
  }

  /**
   * Asks the model and sends its answer. `canReply`: WeChat is still waiting for this push, so
   * a transfer can be the passive reply.
   */
  async answer(canReply = false): Promise<Reply | undefined> {
    const handoff = await this.#conversation.handoff();
    // A person took it (or was asked for) since the push was queued, or the user was deleted.
    if (handoff === null || handoff.state !== "bot") return undefined;
    if (this.#context.attempt > 1 && answered(await this.#conversation.history(50), this.#context.deliveryId)) {
      this.#log("kefu-edge.bot_skipped", { reason: "answered_before" });
      return undefined;
    }
    // No message left in the window: not even "typing…" would go out, so the model is not asked.
    if (((await this.#window())?.remaining ?? 1) <= 0) {
      await this.#outOfWindow();
      return undefined;
    }
    const s = this.#settings;
    const turns = (await this.#conversation.chat(Math.min(200, s.maxTurns * 3))).slice(-s.maxTurns);
    const messages = messagesFor(s.systemPrompt, turns, s.maxContextTokens);
    // From here on nothing is thrown: a retry could send the answer twice.
    let answer: ChatAnswer;
    try {
      answer = await this.#mp.customerServiceMessage.withTyping(
        this.#openId,
        () =>
          chatCompletion(
            { ...s.model, fetch: s.model.fetch ?? ((input, init) => globalThis.fetch(input, init)) },
            messages,
            s.handoffTool ? [HANDOFF_TOOL] : [],
          ),
        { sender: "bot", renewEveryMs: s.typingRenewMs },
      );
    } catch (err) {
      return await this.#modelFailed(err, canReply);
    }
    const tool = answer.toolCalls.find((call) => call.name === HANDOFF_TOOL.name);
    const { text, handoff: marked } = cleanAnswer(answer.content);
    if (tool !== undefined || marked) {
      const why = typeof tool?.arguments.reason === "string" ? tool.arguments.reason : "";
      return await this.handOff("model", { canReply, note: why });
    }
    if (text === "") return await this.#modelFailed(new ChatModelError("invalid_answer"), canReply);
    return await this.#deliver(text, canReply);
  }

  /** Hands the conversation to a person (or to WeChat's tool) and tells the user. Never throws. */
  async handOff(
    reason: string,
    options: { canReply?: boolean; note?: string; fields?: Record<string, unknown> } = {},
  ): Promise<Reply | undefined> {
    const s = this.#settings;
    this.#log("kefu-edge.bot_handoff", { reason, ...options.fields });
    if (s.transfer) {
      if (options.canReply === true) return Reply.transferCustomerService();
      await this.#send(s.transferText);
      return undefined;
    }
    if (s.handoffText !== "") await this.#send(s.handoffText);
    const note = options.note === undefined || options.note === "" ? "" : `: ${options.note.slice(0, 200)}`;
    try {
      await this.#conversation.requestHuman(`${reason}${note}`);
    } catch (err) {
      this.#log("kefu-edge.bot_handoff_failed", { error: errorName(err) });
    }
    return undefined;
  }

  async #modelFailed(err: unknown, canReply: boolean): Promise<Reply | undefined> {
    const failure = err instanceof ChatModelError ? err.failure : errorName(err);
    const status = err instanceof ChatModelError ? err.status : undefined;
    const fallback = this.#settings.fallbackText;
    if (fallback === undefined) return await this.handOff("model_failed", { canReply, fields: { failure, status } });
    this.#log("kefu-edge.bot_model_failed", { failure, status });
    await this.#send(fallback);
    return undefined;
  }

  /** Checks and sends the answer, as much of it as the send window takes (a transfer, when the check hands off). */
  async #deliver(text: string, canReply: boolean): Promise<Reply | undefined> {
    const s = this.#settings;
    // Read again: other senders may have used the window while the model thought.
    const room = (await this.#window())?.remaining;
    if (room !== undefined && room <= 0) {
      await this.#outOfWindow();
      return undefined;
    }
    let parts = splitText(text);
    if (room !== undefined && parts.length > room) {
      // Cut to what the window takes, the last part saying how to go on.
      const suffix = `\n${s.continueText}`;
      parts = splitText(text, { maxBytes: DEFAULT_MAX_TEXT_BYTES - utf8Length(suffix) }).slice(0, room);
      parts[parts.length - 1] += suffix;
      this.#log("kefu-edge.bot_answer_cut", { parts: parts.length, window: room });
    }
    if (s.check !== undefined) {
      const stopped = await this.#check(parts, s.check, canReply);
      if (stopped !== "send") return stopped;
    }
    for (const part of parts) if (!await this.#send(part)) break;
    return undefined;
  }

  /**
   * Runs the content check on every part: `send`, or what handing off answered (nothing may
   * be sent then).
   */
  async #check(parts: readonly string[], check: ContentCheck, canReply: boolean): Promise<"send" | Reply | undefined> {
    let review: number | undefined;
    for (const content of parts) {
      let verdict;
      try {
        verdict = await this.#mp.security.msgSecCheck({ openid: this.#openId, scene: check.scene, content });
      } catch (err) {
        if (check.onError === "send") {
          this.#log("kefu-edge.bot_check_failed", { error: errorName(err), action: "send" });
          return "send";
        }
        return await this.handOff("content_check_failed", { canReply, fields: { error: errorName(err) } });
      }
      if (verdict.result.suggest === "risky") {
        return await this.handOff("content_risky", { canReply, fields: { label: verdict.result.label } });
      }
      if (verdict.result.suggest === "review") review ??= verdict.result.label;
    }
    if (review === undefined || check.onReview === "send") return "send";
    return await this.handOff("content_review", { canReply, fields: { label: review } });
  }

  /** The send window as the conversation knows it; `undefined` when unknown (WeChat decides then). */
  #window(): Promise<SendWindow | undefined> {
    return this.#mp.customerServiceMessage.window(this.#openId).catch(() => undefined);
  }

  /** Nothing fits the window: the subscribe fallback, when there is one. */
  async #outOfWindow(): Promise<void> {
    const payload = this.#settings.subscribeFallback?.(this.#openId);
    this.#log("kefu-edge.bot_out_of_window", { subscribe: payload !== undefined });
    if (payload === undefined) return;
    try {
      await this.#mp.subscribeMessage.send(this.#openId, payload, { sender: "bot" });
    } catch (err) {
      this.#log("kefu-edge.bot_send_failed", { error: errorName(err), errcode: errcodeOf(err) });
    }
  }

  /** Sends one text as the bot; false (and logged) when it did not go out. Never throws. */
  async #send(text: string): Promise<boolean> {
    try {
      await this.#conversation.reply(text, {
        checkWindow: true,
        aiMsgContext: this.#settings.label ? AI_MSG_CONTEXT : undefined,
      });
      return true;
    } catch (err) {
      const reason = err instanceof HandedOffError
        ? "handed_off"
        : err instanceof OutOfWindowError || isOutOfWindow(err) || isQuotaExceeded(err)
        ? "out_of_window"
        : "failed";
      this.#log("kefu-edge.bot_send_failed", { reason, error: errorName(err), errcode: errcodeOf(err) });
      return false;
    }
  }

  #log(event: string, fields: Record<string, unknown>): void {
    this.#settings.logger.warn(JSON.stringify({ event, deliveryId: this.#context.deliveryId, ...fields }));
  }
}

/** Whether the bot already answered (or handed off) the message with this delivery id: a redelivery after a crash. */
function answered(entries: readonly ConversationEntry[], deliveryId: string): boolean {
  const asked = entries.find((entry) => entry.deliveryId === deliveryId);
  if (asked === undefined) return false;
  return entries.some((entry) => entry.seq > asked.seq && entry.sender === "bot" && entry.type !== "typing");
}

function userOf(message: PushMessage): string | undefined {
  if (message.MsgType === "event") return undefined;
  const sender: unknown = message.FromUserName;
  return typeof sender === "string" && sender !== "" ? sender : undefined;
}

function isKeyword(message: PushMessage, keywords: ReadonlySet<string>): boolean {
  if (message.MsgType !== "text" || typeof message.Content !== "string") return false;
  return keywords.has(normalizeKeyword(message.Content));
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

function errcodeOf(err: unknown): number | undefined {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code : undefined;
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) fn();
    done = true;
  };
}

function settingsOf(options: AiBotOptions): Settings {
  if (typeof options !== "object" || options === null) throw new ValidationError("options", "must be an object");
  const text = (field: keyof AiBotOptions, fallback: string, allowEmpty = false): string => {
    const value = options[field];
    if (value === undefined) return fallback;
    if (typeof value !== "string" || (!allowEmpty && value.trim() === "")) {
      throw new ValidationError(field, allowEmpty ? "must be a string" : "must be a non-empty string");
    }
    return value;
  };
  const whole = (field: keyof AiBotOptions, fallback: number, min: number, max: number): number => {
    const value = options[field] ?? fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new ValidationError(field, `must be a whole number from ${min} to ${max}`);
    }
    return value;
  };
  const flag = (field: keyof AiBotOptions, fallback: boolean): boolean => {
    const value = options[field] ?? fallback;
    if (typeof value !== "boolean") throw new ValidationError(field, "must be true or false");
    return value;
  };
  // Checked now: a bad URL is a configuration error, not a failure of each message.
  if (typeof options.baseUrl !== "string") throw new ValidationError("baseUrl", "must be an absolute http(s) URL");
  chatCompletionsUrl(options.baseUrl);
  const model = text("model", "");
  if (model === "") throw new ValidationError("model", "must be a non-empty string");
  const apiKey = options.apiKey === undefined || options.apiKey === "" ? undefined : text("apiKey", "");
  // A header takes printable ASCII only: anything else would fail every call as a network error.
  if (apiKey !== undefined && !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new ValidationError("apiKey", "must be printable ASCII without spaces");
  }
  if (options.fetch !== undefined && typeof options.fetch !== "function") {
    throw new ValidationError("fetch", "must be a function");
  }
  const keywords = options.handoffKeywords ?? DEFAULT_HANDOFF_KEYWORDS;
  if (!Array.isArray(keywords) || keywords.some((k) => typeof k !== "string" || normalizeKeyword(k) === "")) {
    throw new ValidationError("handoffKeywords", "must be a list of words");
  }
  const fallbackText = options.fallbackText === undefined ? undefined : text("fallbackText", "");
  return {
    model: {
      baseUrl: options.baseUrl,
      model,
      apiKey,
      fetch: options.fetch,
      timeoutMs: whole("timeoutMs", DEFAULT_BOT_TIMEOUT_MS, 1000, 600_000),
      temperature: numberOrUndefined(options.temperature, "temperature", 0, 2),
      maxTokens: options.maxAnswerTokens === undefined ? undefined : whole("maxAnswerTokens", 0, 1, 1_000_000),
    },
    systemPrompt: text("systemPrompt", DEFAULT_SYSTEM_PROMPT),
    miniProgram: options.miniProgram,
    fallbackText,
    maxTurns: whole("maxTurns", DEFAULT_BOT_TURNS, 1, 100),
    maxContextTokens: whole("maxContextTokens", DEFAULT_BOT_CONTEXT_TOKENS, 200, 2_000_000),
    typingRenewMs: whole("typingRenewMs", 15_000, 100, 15_000),
    label: flag("aiLabel", true),
    keywords: new Set(keywords.map(normalizeKeyword)),
    handoffText: text("handoffText", DEFAULT_HANDOFF_TEXT, true),
    handoffTool: flag("handoffTool", true),
    transfer: flag("transferToKf", false),
    transferText: text("transferText", DEFAULT_TRANSFER_TEXT),
    continueText: text("continueText", DEFAULT_CONTINUE_TEXT),
    subscribeFallback: options.subscribeFallback,
    check: checkOf(options.contentCheck),
    logger: options.logger ?? console,
  };
}

function numberOrUndefined(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    throw new ValidationError(field, `must be a number from ${min} to ${max}`);
  }
  return value;
}

function checkOf(option: AiBotOptions["contentCheck"]): ContentCheck | undefined {
  if (option === undefined || option === false) return undefined;
  const given = option === true ? {} : option;
  if (typeof given !== "object" || given === null) {
    throw new ValidationError("contentCheck", "must be true, false or { scene, onReview, onError }");
  }
  const action = (field: "onReview" | "onError"): ContentCheckAction => {
    const value = given[field] ?? "handoff";
    if (value !== "send" && value !== "handoff") {
      throw new ValidationError(`contentCheck.${field}`, 'must be "send" or "handoff"');
    }
    return value;
  };
  const scene = given.scene ?? 2;
  if (![1, 2, 3, 4].includes(scene)) throw new ValidationError("contentCheck.scene", "must be 1, 2, 3 or 4");
  return { scene, onReview: action("onReview"), onError: action("onError") };
}
