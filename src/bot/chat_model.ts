/**
 * One call to an OpenAI-compatible Chat Completions endpoint (OpenAI, DeepSeek, Qwen's
 * compatible mode, Moonshot, vLLM, Ollama, FastGPT, Dify...) over `fetch`: the messages in,
 * the answer's text and tool calls out, within a deadline. The API key goes in the
 * `Authorization` header and nowhere else: no error or log line carries it.
 *
 * @module
 */
import { ValidationError } from "../errors.ts";

/** A message of the conversation sent to the model. */
export interface ChatMessage {
  /** `system` (the instructions), `user` or `assistant`. */
  role: "system" | "user" | "assistant";
  /** The text. */
  content: string;
}

/** A function the model may call (OpenAI's `tools` entry of type `function`). */
export interface ChatTool {
  /** Its name, e.g. `handoff_to_human`. */
  name: string;
  /** When the model should call it. */
  description: string;
  /** Its arguments, as a JSON Schema object. */
  parameters: Record<string, unknown>;
}

/** A tool call in the model's answer. */
export interface ChatToolCall {
  /** The function's name. */
  name: string;
  /** Its arguments, parsed (`{}` when they were not a JSON object). */
  arguments: Record<string, unknown>;
}

/** The model's answer. */
export interface ChatAnswer {
  /** The text (empty when the model only called a tool). */
  content: string;
  /** The tools it called. */
  toolCalls: ChatToolCall[];
}

/** Where and how to reach the model. */
export interface ChatModelSettings {
  /** The base URL (`https://api.deepseek.com/v1`); `/chat/completions` is appended unless it is there. */
  baseUrl: string;
  /** The model's name. */
  model: string;
  /** The API key, sent as `Authorization: Bearer …`; none for a local model that takes none. */
  apiKey?: string | undefined;
  /** The fetch to use. */
  fetch: typeof fetch;
  /** Longest wait for the whole answer, ms. */
  timeoutMs: number;
  /** Sampling temperature, when set. */
  temperature?: number | undefined;
  /** Longest answer, in tokens (`max_tokens`), when set. */
  maxTokens?: number | undefined;
}

/** Why a model call failed. */
export type ChatModelFailure = "timeout" | "network" | "http" | "invalid_answer";

/**
 * A model call that failed: it timed out, the connection failed, the endpoint answered an HTTP
 * error, or its answer was not a chat completion. The message says which, with the HTTP
 * status; it never carries the API key, the answer's body or the conversation.
 *
 * @example
 * ```ts
 * import { ChatModelError } from "@kefu/edge";
 * const err = new ChatModelError("http", 401);
 * console.log(err.message); // "Chat model answered HTTP 401"
 * ```
 */
export class ChatModelError extends Error {
  /** What went wrong. */
  readonly failure: ChatModelFailure;
  /** The HTTP status, for `http`. */
  readonly status: number | undefined;

  /**
   * Creates the error; its message says what went wrong, with the HTTP status.
   *
   * @param failure what went wrong
   * @param status the HTTP status, for `http`
   */
  constructor(failure: ChatModelFailure, status?: number) {
    super(MESSAGES[failure](status));
    this.name = "ChatModelError";
    this.failure = failure;
    this.status = status;
  }
}

const MESSAGES: Record<ChatModelFailure, (status?: number) => string> = {
  timeout: () => "Chat model did not answer in time",
  network: () => "Chat model could not be reached",
  http: (status) => `Chat model answered HTTP ${status}`,
  invalid_answer: () => "Chat model's answer is not a chat completion",
};

/**
 * The endpoint of a base URL: `/chat/completions` appended to its path (a query is kept), or
 * the URL as given when it already ends there.
 *
 * @param baseUrl an absolute http(s) URL
 * @returns the Chat Completions URL
 * @throws {ValidationError} naming `baseUrl` when it is not an absolute http(s) URL without credentials
 * @example
 * ```ts
 * import { chatCompletionsUrl } from "@kefu/edge";
 * console.log(chatCompletionsUrl("https://api.deepseek.com/v1/")); // "https://api.deepseek.com/v1/chat/completions"
 * ```
 */
export function chatCompletionsUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ValidationError("baseUrl", "must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ValidationError("baseUrl", "must be an absolute http(s) URL");
  }
  // A key belongs in apiKey (a header), never in a URL that errors and logs may show.
  if (url.username !== "" || url.password !== "") {
    throw new ValidationError("baseUrl", "must not carry credentials: pass the key as apiKey");
  }
  url.hash = "";
  if (!/\/chat\/completions\/?$/.test(url.pathname)) {
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/chat/completions`;
  }
  return url.href;
}

/**
 * Asks the model for the next message of a conversation.
 *
 * @param settings the endpoint, model, key, fetch and deadline
 * @param messages the system prompt and the turns, oldest first
 * @param tools functions offered to the model (none: no `tools` field is sent)
 * @returns the answer's text and tool calls
 * @throws {ChatModelError} on a timeout, a network error, an HTTP error or an unreadable answer
 * @example
 * ```ts
 * import { chatCompletion } from "@kefu/edge";
 * import { createFakeChatModel } from "@kefu/edge/testing";
 * const model = createFakeChatModel({ answer: () => "您好！" });
 * const settings = { baseUrl: "http://127.0.0.1/v1", model: "m", fetch: model.fetch, timeoutMs: 5000 };
 * const answer = await chatCompletion(settings, [{ role: "user", content: "你好" }]);
 * console.log(answer.content); // "您好！"
 * ```
 */
export async function chatCompletion(
  settings: ChatModelSettings,
  messages: readonly ChatMessage[],
  tools: readonly ChatTool[] = [],
): Promise<ChatAnswer> {
  const url = chatCompletionsUrl(settings.baseUrl);
  const body: Record<string, unknown> = { model: settings.model, messages, stream: false };
  if (tools.length > 0) body.tools = tools.map((fn) => ({ type: "function", function: fn }));
  if (settings.temperature !== undefined) body.temperature = settings.temperature;
  if (settings.maxTokens !== undefined) body.max_tokens = settings.maxTokens;
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (settings.apiKey !== undefined && settings.apiKey !== "") headers.authorization = `Bearer ${settings.apiKey}`;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, settings.timeoutMs);
  try {
    let response: Response;
    try {
      response = await settings.fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } catch {
      // The runtime's own error may quote the URL; the failure says enough.
      throw new ChatModelError(timedOut ? "timeout" : "network");
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      throw new ChatModelError(timedOut ? "timeout" : "network");
    }
    if (!response.ok) throw new ChatModelError("http", response.status);
    return answerOf(text);
  } finally {
    clearTimeout(timer);
  }
}

function answerOf(text: string): ChatAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ChatModelError("invalid_answer");
  }
  const choices = (parsed as { choices?: unknown } | null)?.choices;
  const message = Array.isArray(choices) ? (choices[0] as { message?: unknown } | undefined)?.message : undefined;
  if (typeof message !== "object" || message === null) throw new ChatModelError("invalid_answer");
  const { content, tool_calls } = message as { content?: unknown; tool_calls?: unknown };
  const calls = Array.isArray(tool_calls) ? tool_calls.flatMap(toolCallOf) : [];
  return { content: contentOf(content), toolCalls: calls };
}

// Content is a string, or (some providers) a list of parts of which the text ones count.
function contentOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => (typeof part?.text === "string" ? part.text : "")).join("");
}

function toolCallOf(call: unknown): ChatToolCall[] {
  const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
  if (typeof fn?.name !== "string") return [];
  let args: unknown = fn.arguments;
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      args = {};
    }
  }
  const object = typeof args === "object" && args !== null && !Array.isArray(args) ? args : {};
  return [{ name: fn.name, arguments: object as Record<string, unknown> }];
}
