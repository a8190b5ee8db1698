// The worker's AI bot inside workerd: BOT_URL and friends configure it as the default handler,
// conversations in the real KEFU_STORE Durable Objects; it runs in the queue's consumer when a
// queue is bound and after WeChat's answer when not; each variable is checked by name.
import { env as workerEnv } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MemoryConversationStore, type PushJob } from "../../mod.ts";
import {
  createEmulator,
  createFakeChatModel,
  type FakeChatModelOptions,
  type InboxEntry,
} from "../../src/testing/mod.ts";
import type { AppOptions, KefuApp } from "../../worker/mod.ts";
import type { Env } from "../../worker/env.ts";
import {
  AES_KEY,
  APP_ID,
  AUTH,
  call,
  errorOf,
  json,
  PUSH_TOKEN,
  recordingLogger,
  SECRET,
  testApp,
  testEnv,
} from "./_helpers.ts";

const MODEL_URL = "https://model.example.com/v1";
const MODEL_KEY = "sk-worker-bot-test-key-0123456789";
let users = 0;

interface BotSetup {
  app: KefuApp;
  env: Env;
  openId: string;
  model: ReturnType<typeof createFakeChatModel>;
  wechat: ReturnType<typeof createEmulator>;
  jobs: PushJob[];
  logs: string[];
  /** The user writes; the push goes to /wechat/callback. Resolves with WeChat's answer and the waitUntil tasks. */
  says(text: string): Promise<{ text: string; settled(): Promise<void> }>;
  /** Feeds a queued job to the app's consumer, as the queue would. */
  consume(job: PushJob, attempts?: number): Promise<{ acks: string[]; retries: number }>;
  texts(): string[];
  received(): Array<Extract<InboxEntry, { kind: "message" }>>;
}

function setup(
  vars: Partial<Record<keyof Env, unknown>> = {},
  options: { model?: FakeChatModelOptions; queue?: boolean; app?: AppOptions; emulator?: object } = {},
): BotSetup {
  const openId = `o-worker-bot-${Date.now().toString(36)}-${users++}`;
  const model = createFakeChatModel({ apiKey: MODEL_KEY, ...options.model });
  const push = { token: PUSH_TOKEN, encodingAESKey: AES_KEY };
  const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push, ...options.emulator });
  const jobs: PushJob[] = [];
  const logger = recordingLogger();
  // One transport for the app: the model's host goes to the fake model, the rest to the emulator.
  const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    return new URL(request.url).hostname === "model.example.com" ? model.fetch(request) : wechat.fetch(request);
  };
  const app = testApp({
    fetch: fetch as typeof globalThis.fetch,
    logger,
    ...(options.queue === true
      ? { queue: () => ({ send: (body: unknown) => Promise.resolve(void jobs.push(body as PushJob)) }) }
      : {}),
    ...options.app,
  }) as KefuApp;
  const env = testEnv({
    KEFU_STORE: workerEnv.KEFU_STORE,
    WECHAT_AES_KEY: AES_KEY,
    BOT_URL: MODEL_URL,
    BOT_MODEL: "kefu-worker-model",
    BOT_API_KEY: MODEL_KEY,
    ...vars,
  });
  const received = () =>
    wechat.inbox(openId).filter((e): e is Extract<InboxEntry, { kind: "message" }> => e.kind === "message");
  return {
    app,
    env,
    openId,
    model,
    wechat,
    jobs,
    logs: logger.lines,
    says: async (text) => {
      const pushed = await wechat.user(openId).says(text);
      const called = await call(app, pushed.request(), undefined, env);
      return { text: called.text, settled: called.settled };
    },
    consume: async (job, attempts = 1) => {
      const batch = createMessageBatch("kefu-edge-pushes", [{ id: "m-1", timestamp: new Date(), attempts, body: job }]);
      const ctx = createExecutionContext();
      await app.queue(batch, env, ctx);
      const result = await getQueueResult(batch, ctx);
      return { acks: result.explicitAcks, retries: result.retryMessages.length };
    },
    texts: () => received().map((e) => String(e.message.content)),
    received,
  };
}

function expectKeyNowhere(s: BotSetup, ...texts: string[]): void {
  for (const line of [...s.logs, ...texts]) expect(line).not.toContain(MODEL_KEY);
}

describe("the AI bot as the worker's default handler", () => {
  it("with a queue: WeChat is answered at once; the consumer asks the model with the history and answers once", async () => {
    let n = 0;
    const s = setup({ BOT_SYSTEM_PROMPT: "你是测试商城的客服。" }, {
      queue: true,
      model: { answer: () => `第${++n}答` },
    });
    expect((await s.says("第一问")).text).toBe("success");
    expect(s.model.requests).toHaveLength(0);
    expect(s.jobs).toHaveLength(1);
    expect(await s.consume(s.jobs[0]!)).toEqual({ acks: ["m-1"], retries: 0 });
    expect((await s.says("第二问")).text).toBe("success");
    expect(await s.consume(s.jobs[1]!)).toEqual({ acks: ["m-1"], retries: 0 });
    // The queue delivers again: nothing runs twice.
    expect(await s.consume(s.jobs[1]!, 2)).toEqual({ acks: ["m-1"], retries: 0 });
    expect(s.model.requests).toHaveLength(2);
    expect(s.model.requests[1]!.messages).toEqual([
      { role: "system", content: "你是测试商城的客服。" },
      { role: "user", content: "第一问" },
      { role: "assistant", content: "第1答" },
      { role: "user", content: "第二问" },
    ]);
    expect(s.model.requests[1]!.model).toBe("kefu-worker-model");
    expect(s.received().map((e) => [e.message.content, e.aiMsgContext])).toEqual([
      ["第1答", { is_ai_msg: 1 }],
      ["第2答", { is_ai_msg: 1 }],
    ]);
    // Kept in the conversation as the bot's.
    const history = await call(s.app, `/api/users/${s.openId}/messages`, { headers: AUTH }, s.env);
    const entries =
      (JSON.parse(history.text) as { entries: { sender: string; type: string; text?: string }[] }).entries;
    expect(entries.filter((e) => e.type === "message").map((e) => [e.sender, e.text])).toEqual([
      ["bot", "第2答"],
      ["user", "第二问"],
      ["bot", "第1答"],
      ["user", "第一问"],
    ]);
    expectKeyNowhere(s, history.text);
  });

  it("without a queue: WeChat is answered before the model is asked; the answer goes out after (waitUntil)", async () => {
    const s = setup({}, { model: { answer: () => ({ content: "稍后到达的回答", delayMs: 200 }) } });
    const answered = await s.says("你好");
    expect(answered.text).toBe("success");
    expect(s.texts()).toEqual([]);
    await answered.settled();
    expect(s.texts()).toEqual(["稍后到达的回答"]);
  });

  it("BOT_TIMEOUT_MS and BOT_FALLBACK_TEXT: a slow model gets the apology sent once, even when the job comes again", async () => {
    const s = setup(
      { BOT_TIMEOUT_MS: "1000", BOT_FALLBACK_TEXT: "抱歉，请稍后再试。" },
      { queue: true, model: { answer: () => ({ content: "太迟", delayMs: 3000 }) } },
    );
    await s.says("在吗");
    expect(await s.consume(s.jobs[0]!)).toEqual({ acks: ["m-1"], retries: 0 });
    await s.consume(s.jobs[0]!, 2);
    expect(s.texts()).toEqual(["抱歉，请稍后再试。"]);
    const handoff = await call(s.app, `/api/users/${s.openId}/handoff`, { headers: AUTH }, s.env);
    expect(JSON.parse(handoff.text).state).toBe("bot");
    expect(s.logs.filter((l) => l.includes("kefu-edge.bot_model_failed"))).toHaveLength(1);
  });

  it("a handoff keyword: waiting, shown by the handoff route; the bot stays out of the next message", async () => {
    const s = setup({}, { queue: true, model: { answer: () => "AI 回答" } });
    await s.says("转人工");
    await s.consume(s.jobs[0]!);
    const handoff = await call(s.app, `/api/users/${s.openId}/handoff`, { headers: AUTH }, s.env);
    expect(JSON.parse(handoff.text)).toMatchObject({ state: "waiting", reason: "keyword" });
    expect(s.texts()).toEqual(["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
    await s.says("有人吗");
    expect(s.jobs).toHaveLength(1); // kept in the history, not queued for the bot
    expect(s.model.requests).toHaveLength(0);
    // The agent answers through the API: not labelled as AI.
    const take = await call(s.app, `/api/users/${s.openId}/handoff`, {
      ...json({ state: "human", agent: "alice" }, AUTH),
      method: "PUT",
    }, s.env);
    expect(take.res.status).toBe(200);
    const sent = await call(
      s.app,
      "/api/messages",
      json({ touser: s.openId, msgtype: "text", text: { content: "您好，我是小李" } }, {
        ...AUTH,
        "x-kefu-agent": "alice",
      }),
      s.env,
    );
    expect(sent.res.status).toBe(200);
    expect(s.received().map((e) => e.aiMsgContext ?? null)).toEqual([{ is_ai_msg: 1 }, null]);
  });

  it("AI_LABEL=off: the bot's messages carry no label", async () => {
    const s = setup({ AI_LABEL: "off" }, { queue: true, model: { answer: () => "不带标签" } });
    await s.says("你好");
    await s.consume(s.jobs[0]!);
    expect(s.received().map((e) => [e.message.content, e.aiMsgContext ?? null])).toEqual([["不带标签", null]]);
  });

  it("BOT_CONTENT_CHECK=on: a risky answer is not sent and the conversation waits; review is configurable in createApp", async () => {
    const emulator = { contentCheck: { risky: ["违禁"], review: ["存疑"] } };
    const risky = setup({ BOT_CONTENT_CHECK: "on" }, { queue: true, emulator, model: { answer: () => "违禁的回答" } });
    await risky.says("问");
    await risky.consume(risky.jobs[0]!);
    expect(risky.texts()).toEqual(["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
    expect(risky.logs.filter((l) => l.includes("content_risky"))).toHaveLength(1);
    for (const line of risky.logs) expect(line).not.toContain("违禁");
    const review = setup({ BOT_CONTENT_CHECK: "on" }, {
      queue: true,
      emulator,
      model: { answer: () => "存疑的回答" },
      app: { bot: { contentCheck: { onReview: "send" } } },
    });
    await review.says("问");
    await review.consume(review.jobs[0]!);
    expect(review.texts()).toEqual(["存疑的回答"]);
    // Off (the default): no check is made.
    const off = setup({}, { queue: true, emulator, model: { answer: () => "违禁的回答" } });
    await off.says("问");
    await off.consume(off.jobs[0]!);
    expect(off.wechat.calls.filter((c) => c.path === "/wxa/msg_sec_check")).toHaveLength(0);
  });

  it("TRANSFER_TO_KF=on: a keyword is transferred to WeChat's tool while WeChat waits; other messages go to the bot", async () => {
    const s = setup({ TRANSFER_TO_KF: "on" }, { queue: true, model: { answer: () => "AI 回答" } });
    const keyword = await s.says("人工客服");
    expect(keyword.text).toContain("<Encrypt>"); // an encrypted transfer_customer_service reply
    const plain = await s.says("营业时间？");
    expect(plain.text).toBe("success");
    for (const job of s.jobs) await s.consume(job);
    expect(s.texts()).toEqual(["AI 回答"]);
    expect(s.model.requests).toHaveLength(1);
  });

  it("a wrong key: the model's 401 hands off; the key shows in no log line or answer", async () => {
    const s = setup({ BOT_API_KEY: "sk-wrong-key-0123456789" }, { queue: true });
    await s.says("你好");
    await s.consume(s.jobs[0]!);
    const failed = s.logs.map((l) => JSON.parse(l)).find((l) => l.event === "kefu-edge.bot_handoff");
    expect(failed).toMatchObject({ reason: "model_failed", failure: "http", status: 401 });
    for (const line of s.logs) expect(line).not.toContain("sk-wrong-key-0123456789");
    expectKeyNowhere(s);
  });

  it("your own onMessage replaces the bot", async () => {
    const handled: string[] = [];
    const s = setup({}, { queue: true, app: { onMessage: (m) => void handled.push(String(m.Content)) } });
    await s.says("你好");
    await s.consume(s.jobs[0]!);
    expect(handled).toEqual(["你好"]);
    expect(s.model.requests).toHaveLength(0);
  });
});

describe("the bot's variables", () => {
  const cases: Array<[Partial<Record<keyof Env, unknown>>, string, string]> = [
    [{ BOT_URL: "not a url" }, "BOT_URL", "config_invalid"],
    [{ BOT_URL: "https://user:pass@model.example.com/v1" }, "BOT_URL", "config_invalid"],
    [{ BOT_MODEL: undefined }, "BOT_MODEL", "config_missing"],
    [{ BOT_MODEL: "two words" }, "BOT_MODEL", "config_invalid"],
    [{ BOT_API_KEY: "sk has spaces" }, "BOT_API_KEY", "config_invalid"],
    [{ BOT_TIMEOUT_MS: "5" }, "BOT_TIMEOUT_MS", "config_invalid"],
    [{ BOT_TIMEOUT_MS: "25s" }, "BOT_TIMEOUT_MS", "config_invalid"],
    [{ AI_LABEL: "maybe" }, "AI_LABEL", "config_invalid"],
    [{ BOT_CONTENT_CHECK: "yes" }, "BOT_CONTENT_CHECK", "config_invalid"],
    [{ FORWARD_URL: "https://hooks.example.com/kefu", FORWARD_SECRET: "forward-secret" }, "BOT_URL", "config_invalid"],
    [{ KEFU_STORE: undefined }, "BOT_URL", "config_invalid"],
  ];
  for (const [vars, variable, code] of cases) {
    const named = Object.entries(vars).map(([k, v]) => `${k}=${v === undefined ? "(unset)" : JSON.stringify(v)}`);
    it(`${named.join(" ")} answers 503 ${code} naming ${variable}, never the value`, async () => {
      const s = setup(vars, { queue: true });
      const pushed = await s.wechat.user(s.openId).says("你好");
      const answered = await call(s.app, pushed.request(), undefined, s.env);
      expect(answered.res.status).toBe(503);
      const error = errorOf(answered);
      expect([error.code, error.message.includes(variable)]).toEqual([code, true]);
      for (const value of Object.values(vars)) {
        if (typeof value === "string") expect(answered.text).not.toContain(value);
      }
      expect(answered.text).not.toContain(MODEL_KEY);
      expect(s.jobs).toHaveLength(0);
    });
  }

  it("without conversations the message says how to get them", async () => {
    const s = setup({ KEFU_STORE: undefined }, { queue: true });
    const answered = await call(s.app, (await s.wechat.user(s.openId).says("你好")).request(), undefined, s.env);
    expect(errorOf(answered).message).toContain("needs conversations");
    // Given conversations by createApp, the same variables work.
    const conversations = new MemoryConversationStore();
    const given = setup({ KEFU_STORE: undefined }, { queue: true, app: { conversations: () => conversations } });
    expect((await given.says("你好")).text).toBe("success");
  });
});
