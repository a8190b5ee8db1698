/**
 * `createFakeChatModel`: an OpenAI-compatible Chat Completions endpoint that answers offline,
 * for tests and local development of an AI bot (`aiBot`): scripted answers, tool calls, slow
 * answers and HTTP errors on demand, and every request it received.
 *
 * @module
 */
import type { FetchLike } from "./types.ts";

/** One request the fake model received. */
export interface FakeChatRequest {
  /** The `model` asked for. */
  readonly model: string;
  /** The messages, as sent. */
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content: string }>;
  /** The names of the tools offered. */
  readonly tools: readonly string[];
  /** Whether an `Authorization: Bearer …` header came with it. */
  readonly authorized: boolean;
  /** The whole JSON body. */
  readonly body: Readonly<Record<string, unknown>>;
}

/**
 * What the fake model answers: a text, or `{ content?, handoff?, delayMs?, status? }` — `handoff`
 * calls the `handoff_to_human` tool with that reason (or writes `[[HANDOFF]]` when no tool was
 * offered), `delayMs` answers that much later (an aborted request fails as fetch does), `status`
 * answers that HTTP error.
 */
export type FakeChatAnswer = string | {
  content?: string;
  handoff?: string;
  delayMs?: number;
  status?: number;
};

/** Options of {@link createFakeChatModel}. */
export interface FakeChatModelOptions {
  /** Decides each answer; default a demo that echoes the user and hands complaints and refunds to a person. */
  answer?: (request: FakeChatRequest) => FakeChatAnswer | Promise<FakeChatAnswer>;
  /** With it, a request without `Authorization: Bearer <apiKey>` gets 401. */
  apiKey?: string;
}

/** The fake model: its `fetch` answers `POST …/chat/completions` at any origin. */
export interface FakeChatModel {
  /** Answers Chat Completions requests (404 for any other path, 405 for another method). */
  readonly fetch: FetchLike;
  /** Every well-formed request received, oldest first. */
  readonly requests: readonly FakeChatRequest[];
}

/**
 * Creates an offline OpenAI-compatible chat model.
 *
 * @param options how it answers, and the key it expects
 * @returns the model
 * @example Script an answer and read what the model was sent
 * ```ts
 * import { createFakeChatModel } from "@kefu/edge/testing";
 * const model = createFakeChatModel({ answer: (request) => `收到 ${request.messages.length} 条消息` });
 * const response = await model.fetch("http://127.0.0.1/v1/chat/completions", {
 *   method: "POST",
 *   body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "你好" }] }),
 * });
 * console.log((await response.json()).choices[0].message.content); // "收到 1 条消息"
 * ```
 */
export function createFakeChatModel(options: FakeChatModelOptions = {}): FakeChatModel {
  const requests: FakeChatRequest[] = [];
  const answer = options.answer ?? demoAnswer;
  const fetch: FetchLike = async (input, init) => {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    if (request.signal.aborted) throw request.signal.reason;
    if (!new URL(request.url).pathname.endsWith("/chat/completions")) return error(404, "not found");
    if (request.method !== "POST") return error(405, "method not allowed");
    const authorization = request.headers.get("authorization");
    if (options.apiKey !== undefined && authorization !== `Bearer ${options.apiKey}`) {
      return error(401, "invalid api key");
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await request.text());
    } catch {
      return error(400, "the body is not JSON");
    }
    if (typeof body.model !== "string" || !Array.isArray(body.messages)) return error(400, "model and messages needed");
    const received: FakeChatRequest = {
      model: body.model,
      messages: body.messages.map((m: { role?: unknown; content?: unknown }) => ({
        role: String(m?.role),
        content: typeof m?.content === "string" ? m.content : JSON.stringify(m?.content),
      })),
      tools: Array.isArray(body.tools)
        ? body.tools.map((t: { function?: { name?: unknown } }) => String(t?.function?.name))
        : [],
      authorized: authorization?.startsWith("Bearer ") === true,
      body,
    };
    requests.push(received);
    const decided = await answer(received);
    const planned = typeof decided === "string" ? { content: decided } : decided;
    if (planned.delayMs !== undefined) await sleep(planned.delayMs, request.signal);
    if (planned.status !== undefined) return error(planned.status, "scripted failure");
    return completion(received, planned);
  };
  return { fetch, requests };
}

function completion(request: FakeChatRequest, planned: { content?: string; handoff?: string }): Response {
  const message: Record<string, unknown> = { role: "assistant", content: planned.content ?? "" };
  let finish = "stop";
  if (planned.handoff !== undefined) {
    if (request.tools.includes("handoff_to_human")) {
      finish = "tool_calls";
      message.content = planned.content ?? null;
      message.tool_calls = [{
        id: "call_fake_1",
        type: "function",
        function: { name: "handoff_to_human", arguments: JSON.stringify({ reason: planned.handoff }) },
      }];
    } else {
      message.content = `${planned.content ?? ""}[[HANDOFF]]`;
    }
  }
  return Response.json({
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [{ index: 0, message, finish_reason: finish }],
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  });
}

// The demo: a person for complaints and refunds, an echo for the rest.
function demoAnswer(request: FakeChatRequest): FakeChatAnswer {
  const last = [...request.messages].reverse().find((m) => m.role === "user")?.content ?? "";
  if (/投诉|退款|退货/.test(last)) return { handoff: "用户需要人工处理投诉或退款" };
  return `（本地模拟模型）您好！您刚才说：「${last.slice(0, 100)}」。接入真实模型后，这里就是 AI 的回答。`;
}

function error(status: number, message: string): Response {
  return Response.json({ error: { message, type: "fake_error", code: status } }, { status });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
