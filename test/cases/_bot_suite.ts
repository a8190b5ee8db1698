// The AI bot's behaviour against a fake OpenAI-compatible model: in process here (its fetch
// injected: this runs on Node, Deno, Bun and workerd), and over HTTP on 127.0.0.1 under Node
// (test/node/ai_bot_server.test.ts). Users, typing, the window and the content check are the
// emulator's; conversations are kept in memory.
import assert from "node:assert/strict";
import {
  aiBot,
  type AiBotOptions,
  type ConversationStore,
  type Logger,
  MemoryConversationStore,
  MiniProgram,
  type PushJob,
} from "../../mod.ts";
import {
  createEmulator,
  type EmulatorOptions,
  type FakeChatModelOptions,
  type FakeChatRequest,
  type InboxEntry,
} from "../../src/testing/mod.ts";
// The handler's conversation, built as the push receiver builds it, to replay a run by hand.
import { conversationContext } from "../../src/conversation/context.ts";

/** A fake model somewhere the bot can reach: its base URL, the fetch to reach it with, what it received. */
export interface ModelUnderTest {
  baseUrl: string;
  /** The fetch to pass to the bot (`undefined`: the runtime's own, over the network). */
  fetch: typeof fetch | undefined;
  requests: readonly FakeChatRequest[];
  close(): Promise<void>;
}

/** Starts a fake model with these options. */
export type ModelFactory = (options: FakeChatModelOptions) => Promise<ModelUnderTest>;

export type BotCase = [name: string, fn: (start: ModelFactory) => Promise<void>];

const APP_ID = "wxaibot000000001";
const SECRET = "ai-bot-app-secret";
const PUSH = { token: "AiBotPushToken1", encodingAESKey: "AiBotPushKey0123456789abcdefghijklmnopqrstu" };
const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
/** The model's key: it must appear in no log line and no error. */
export const MODEL_KEY = "sk-kefu-test-0123456789abcdefSECRET";

interface Bench {
  model: ModelUnderTest;
  wechat: ReturnType<typeof createEmulator>;
  mp: MiniProgram;
  conversations: ConversationStore;
  bot: ReturnType<typeof aiBot>;
  logs: string[];
  ref: { appId: string; openId: string };
  /** The user writes; WeChat pushes it to `mp.push.handle` with the bot. */
  says(text: string): Promise<{ ok: boolean; reply: string | undefined }>;
  /** Messages the user received (typing left out), in order. */
  received(): Array<Extract<InboxEntry, { kind: "message" }>>;
  texts(): string[];
  state(): Promise<string | undefined>;
}

async function bench(
  start: ModelFactory,
  options: { bot?: Partial<AiBotOptions>; model?: FakeChatModelOptions; emulator?: Partial<EmulatorOptions> } = {},
): Promise<Bench> {
  const model = await start({ apiKey: MODEL_KEY, ...options.model });
  const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push: PUSH, ...options.emulator });
  const conversations = new MemoryConversationStore();
  const logs: string[] = [];
  const logger: Logger = { warn: (line) => void logs.push(line) };
  const mp = new MiniProgram({
    appId: APP_ID,
    appSecret: SECRET,
    fetch: wechat.fetch,
    push: PUSH,
    conversations,
    logger,
    retry: { baseDelayMs: 1 },
  });
  const bot = aiBot({
    baseUrl: model.baseUrl,
    model: "kefu-test-model",
    apiKey: MODEL_KEY,
    miniProgram: mp,
    fetch: model.fetch,
    logger,
    ...options.bot,
  });
  const user = wechat.user(OPENID);
  const received = () =>
    wechat.inbox(OPENID).filter((e): e is Extract<InboxEntry, { kind: "message" }> => e.kind === "message");
  const ref = { appId: APP_ID, openId: OPENID };
  return {
    model,
    wechat,
    mp,
    conversations,
    bot,
    logs,
    ref,
    says: async (text) => {
      const outcome = await (await user.says(text)).deliver((request) => mp.push.handle(request, bot));
      return { ok: outcome.ok, reply: outcome.reply };
    },
    received,
    texts: () => received().map((e) => String(e.message.content)),
    state: async () => (await conversations.handoff(ref))?.state,
  };
}

async function using(start: ModelFactory, options: Parameters<typeof bench>[1], fn: (b: Bench) => Promise<void>) {
  const b = await bench(start, options);
  try {
    await fn(b);
  } finally {
    await b.model.close();
  }
  // Whatever happened, the model's key is in no log line.
  for (const line of b.logs) assert.ok(!line.includes(MODEL_KEY), `the key leaked into a log line: ${line}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const botCases: BotCase[] = [
  [
    "the model receives the history in order, users as user, the bot's and agents' replies as assistant, after the system prompt",
    async (start) => {
      let n = 0;
      await using(start, {
        bot: { systemPrompt: "你是测试小程序的客服。" },
        model: { answer: () => `第${++n}答` },
      }, async (b) => {
        await b.says("第一问");
        // An agent writes while the bot answers (recorded as theirs).
        await b.mp.customerServiceMessage.sendText(OPENID, "人工补充一句", { sender: "agent:alice" });
        const image = await b.wechat.user(OPENID).sendsImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
        await image.deliver((request) => b.mp.push.handle(request, b.bot));
        await b.says("第三问");
        assert.equal(b.model.requests.length, 3);
        const last = b.model.requests[2]!;
        assert.equal(last.model, "kefu-test-model");
        assert.equal(last.authorized, true);
        assert.deepEqual(last.messages, [
          { role: "system", content: "你是测试小程序的客服。" },
          { role: "user", content: "第一问" },
          { role: "assistant", content: "第1答" },
          { role: "assistant", content: "人工补充一句" },
          { role: "user", content: "[图片]" },
          { role: "assistant", content: "第2答" },
          { role: "user", content: "第三问" },
        ]);
        assert.deepEqual(last.tools, ["handoff_to_human"]);
        assert.deepEqual(b.texts(), ["第1答", "人工补充一句", "第2答", "第3答"]);
      });
    },
  ],

  ["maxTurns and the token budget keep the newest turns; the system prompt always goes first", async (start) => {
    await using(start, { bot: { maxTurns: 3 }, model: { answer: () => "好" } }, async (b) => {
      for (const text of ["一", "二", "三"]) await b.says(text);
      assert.deepEqual(b.model.requests[2]!.messages.slice(1).map((m) => m.content), ["二", "好", "三"]);
      assert.equal(b.model.requests[2]!.messages[0]!.role, "system");
    });
    await using(
      start,
      { bot: { maxContextTokens: 400, systemPrompt: "短" }, model: { answer: () => "好" } },
      async (b) => {
        await b.says("长".repeat(400));
        await b.says("最新的问题");
        // 400 tokens of the old question no longer fit beside the newer turns.
        assert.deepEqual(b.model.requests[1]!.messages.map((m) => m.content), ["短", "好", "最新的问题"]);
      },
    );
  }],

  ['a slow model keeps "typing…" alive until the answer is sent, then it stops', async (start) => {
    let typingWhenAsked = false;
    await using(start, {
      bot: { typingRenewMs: 150 },
      model: {
        answer: () => ({ content: "想好了", delayMs: 800 }),
      },
    }, async (b) => {
      const renewals = () => b.wechat.calls.filter((c) => c.path === "/cgi-bin/message/custom/typing").length;
      const pending = b.says("复杂的问题");
      await sleep(300);
      typingWhenAsked = b.wechat.user(OPENID).typing;
      await pending;
      assert.equal(typingWhenAsked, true, "the user sees typing while the model thinks");
      const during = renewals();
      assert.ok(during >= 4, `typing shown again every 150 ms while the model took 800 ms: ${during} calls`);
      assert.deepEqual(b.texts(), ["想好了"]);
      assert.equal(b.wechat.user(OPENID).typing, false, "the answer ends the typing state");
      await sleep(400);
      assert.equal(renewals(), during, "no typing after the answer");
      // Typing is recorded as the bot's.
      const history = (await b.conversations.history(b.ref, { limit: 50 }))!.entries;
      assert.ok(history.filter((e) => e.type === "typing").every((e) => e.sender === "bot"));
    });
  }],

  [
    "a 3,000-character answer arrives in order, in parts that fit, each labelled, all within the window",
    async (start) => {
      const long = "这是一句很长的说明。".repeat(300); // 3,000 characters, 9,000 bytes
      await using(start, { model: { answer: () => long } }, async (b) => {
        await b.says("请详细介绍一下");
        const parts = b.received();
        assert.equal(parts.length, 5);
        assert.equal(parts.map((p) => p.message.content).join(""), long);
        for (const part of parts) {
          assert.ok(new TextEncoder().encode(String(part.message.content)).length <= 2048);
          assert.deepEqual(part.aiMsgContext, { is_ai_msg: 1 });
        }
        assert.equal(b.wechat.calls.filter((c) => c.errcode === 45047 || c.errcode === 45015).length, 0);
      });
    },
  ],

  [
    "an answer longer than the window has room for: what fits, the last part saying how to go on; nothing refused",
    async (start) => {
      const long = "这一段是很长的回答。".repeat(600); // about 18,000 bytes: 9 parts
      await using(start, { model: { answer: () => long } }, async (b) => {
        await b.says("说说全部细节");
        const window = await b.mp.customerServiceMessage.window(OPENID);
        assert.equal(window?.remaining, 0, "the window is used to the last message");
        const parts = b.texts();
        assert.equal(parts.length, 5);
        assert.ok(parts[4]!.endsWith("（内容较长，回复任意内容我接着说）"));
        assert.ok(long.startsWith(parts.slice(0, 4).join("")));
        assert.equal(b.wechat.calls.filter((c) => c.errcode === 45047 || c.errcode === 45015).length, 0);
        assert.ok(b.logs.some((line) => JSON.parse(line).event === "kefu-edge.bot_answer_cut"));
      });
    },
  ],

  [
    "a handoff keyword moves the conversation to waiting, tells the user, and the bot stops answering",
    async (start) => {
      await using(start, { model: { answer: () => "AI 回答" } }, async (b) => {
        await b.says("你好");
        await b.says(" 转人工！");
        assert.equal(await b.state(), "waiting");
        assert.equal(b.model.requests.length, 1, "the keyword goes to no model");
        await b.says("还在吗？");
        assert.equal(b.model.requests.length, 1, "the bot is not called while waiting");
        assert.deepEqual(b.texts(), ["AI 回答", "已为您转接人工客服，请稍候，客服会尽快回复您。"]);
        const handoff = (await b.conversations.history(b.ref, { limit: 20 }))!.entries.find((e) =>
          e.type === "handoff"
        );
        assert.deepEqual([handoff?.sender, handoff?.to, handoff?.reason], ["bot", "waiting", "keyword"]);
        // A sentence that only mentions a keyword is the model's to judge.
        await b.conversations.setHandoff(b.ref, { state: "bot", by: "agent:alice" });
        await b.says("人工智能是什么");
        assert.equal(b.model.requests.length, 2);
      });
    },
  ],

  [
    "a handoff_to_human tool call moves the conversation to waiting with the model's reason; the bot stops answering",
    async (start) => {
      await using(start, { model: { answer: () => ({ handoff: "用户要退款" }) } }, async (b) => {
        await b.says("我要退款");
        assert.equal(await b.state(), "waiting");
        assert.equal((await b.conversations.handoff(b.ref))?.reason, "model: 用户要退款");
        assert.deepEqual(b.texts(), ["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
        await b.says("多久能处理？");
        assert.equal(b.model.requests.length, 1);
      });
    },
  ],

  [
    "models without tools: none are offered, and the [[HANDOFF]] marker hands off without sending the model's text",
    async (start) => {
      await using(start, {
        bot: { handoffTool: false, handoffText: "稍等，正在转人工" },
        model: { answer: () => ({ content: "好的，帮您转接。", handoff: "x" }) },
      }, async (b) => {
        await b.says("找个人来");
        assert.deepEqual(b.model.requests[0]!.tools, []);
        assert.equal(b.model.requests[0]!.body.tools, undefined);
        assert.equal(await b.state(), "waiting");
        assert.deepEqual(b.texts(), ["稍等，正在转人工"]);
      });
    },
  ],

  [
    "a timeout sends the fallback once (WeChat's retries and a queue's redelivery send nothing more); the bot keeps the conversation",
    async (start) => {
      await using(start, {
        bot: { timeoutMs: 1000, fallbackText: "抱歉，系统有点忙，请稍后再试。" },
        model: { answer: () => ({ content: "太迟了", delayMs: 5000 }) },
      }, async (b) => {
        const push = await b.wechat.user(OPENID).says("在吗");
        const handle = (request: Request) => b.mp.push.handle(request, b.bot);
        await push.deliver(handle);
        await push.deliver(handle); // WeChat's retry of the same message
        assert.deepEqual(b.texts(), ["抱歉，系统有点忙，请稍后再试。"]);
        assert.equal(b.received()[0]!.aiMsgContext?.is_ai_msg, 1);
        assert.equal(await b.state(), "bot");
        assert.equal(b.model.requests.length, 1);
        const failed = b.logs.map((l) => JSON.parse(l)).filter((l) => l.event === "kefu-edge.bot_model_failed");
        assert.deepEqual(failed.map((l) => l.failure), ["timeout"]);
        // In a queue: the job runs once; delivered again, it is a duplicate.
        const job = await queued(b, "还在吗");
        assert.equal((await b.mp.push.processQueued(job, b.bot)).outcome, "done");
        assert.equal((await b.mp.push.processQueued(job, b.bot)).outcome, "duplicate");
        assert.equal(b.texts().length, 2);
      });
    },
  ],

  ["a timeout without fallback text hands the conversation to a person", async (start) => {
    await using(start, { bot: { timeoutMs: 1000 }, model: { answer: () => ({ delayMs: 3000 }) } }, async (b) => {
      await b.says("在吗");
      assert.equal(await b.state(), "waiting");
      assert.equal((await b.conversations.handoff(b.ref))?.reason, "model_failed");
      assert.deepEqual(b.texts(), ["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
    });
  }],

  ["a model answering an HTTP error or garbage is a failure too, its key in no log line", async (start) => {
    const answers: Array<{ status?: number; content?: string }> = [{ status: 500 }, { status: 429 }, { content: "" }];
    for (const answer of answers) {
      await using(start, { bot: { fallbackText: "稍后再试" }, model: { answer: () => answer } }, async (b) => {
        await b.says("你好");
        assert.deepEqual(b.texts(), ["稍后再试"]);
        const line = JSON.parse(b.logs.find((l) => l.includes("bot_model_failed"))!);
        if (answer.status !== undefined) assert.deepEqual([line.failure, line.status], ["http", answer.status]);
        else assert.equal(line.failure, "invalid_answer");
      });
    }
    // A wrong key: the model answers 401, and the key the bot holds shows nowhere.
    await using(start, { model: { apiKey: "sk-another-key" }, bot: { fallbackText: "稍后再试" } }, async (b) => {
      await b.says("你好");
      assert.equal(JSON.parse(b.logs.find((l) => l.includes("bot_model_failed"))!).status, 401);
    });
  }],

  [
    "a risky verdict sends nothing of the answer, hands off with the reason, and logs one line without content",
    async (start) => {
      await using(start, {
        bot: { contentCheck: true },
        model: { answer: () => "这是一段违禁的回答" },
        emulator: { contentCheck: { risky: ["违禁"], label: 20002 } },
      }, async (b) => {
        await b.says("说点什么");
        assert.ok(!b.texts().some((t) => t.includes("违禁")), "the risky text never reached the user");
        assert.deepEqual(b.texts(), ["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
        assert.equal(await b.state(), "waiting");
        assert.equal((await b.conversations.handoff(b.ref))?.reason, "content_risky");
        const lines = b.logs.filter((l) => l.includes("content_risky"));
        assert.equal(lines.length, 1);
        assert.deepEqual(JSON.parse(lines[0]!).label, 20002);
        for (const line of b.logs) assert.ok(!line.includes("违禁") && !line.includes("说点什么"), line);
        const checks = b.wechat.calls.filter((c) => c.path === "/wxa/msg_sec_check");
        assert.deepEqual((checks[0]!.body as { openid: string; scene: number }).scene, 2);
      });
    },
  ],

  [
    "content check: review hands off by default or is sent; a failing check hands off by default or sends",
    async (start) => {
      const emulator = { contentCheck: { review: ["可疑"] } };
      await using(start, { bot: { contentCheck: true }, model: { answer: () => "有点可疑" }, emulator }, async (b) => {
        await b.says("问");
        assert.equal(await b.state(), "waiting");
        assert.equal((await b.conversations.handoff(b.ref))?.reason, "content_review");
      });
      await using(start, {
        bot: { contentCheck: { onReview: "send" } },
        model: { answer: () => "有点可疑" },
        emulator,
      }, async (b) => {
        await b.says("问");
        assert.deepEqual(b.texts(), ["有点可疑"]);
      });
      for (const onError of ["handoff", "send"] as const) {
        await using(start, { bot: { contentCheck: { onError } }, model: { answer: () => "正常回答" } }, async (b) => {
          b.wechat.faults.next(10, "system_busy", { path: "/wxa/msg_sec_check" });
          await b.says("问");
          if (onError === "send") assert.deepEqual(b.texts(), ["正常回答"]);
          else {
            assert.deepEqual(b.texts(), ["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
            assert.equal((await b.conversations.handoff(b.ref))?.reason, "content_check_failed");
          }
        });
      }
      // A pass: sent, after one check per part.
      await using(start, { bot: { contentCheck: true }, model: { answer: () => "您的订单已发货" } }, async (b) => {
        await b.says("问");
        assert.deepEqual(b.texts(), ["您的订单已发货"]);
        assert.equal(b.wechat.calls.filter((c) => c.path === "/wxa/msg_sec_check").length, 1);
      });
    },
  ],

  ["every bot message carries the AI label and no agent message does; aiLabel: false labels none", async (start) => {
    await using(start, { model: { answer: () => "AI 的回答" } }, async (b) => {
      await b.says("你好");
      await b.says("人工");
      await b.conversations.setHandoff(b.ref, { state: "human", by: "agent:alice", from: ["waiting"] });
      await b.mp.customerServiceMessage.sendText(OPENID, "我是客服小李", { sender: "agent:alice" });
      const labels = b.received().map((e) => [e.message.content, e.aiMsgContext ?? null]);
      assert.deepEqual(labels, [
        ["AI 的回答", { is_ai_msg: 1 }],
        ["已为您转接人工客服，请稍候，客服会尽快回复您。", { is_ai_msg: 1 }],
        ["我是客服小李", null],
      ]);
      const senders = (await b.conversations.history(b.ref, { limit: 50 }))!.entries
        .filter((e) => e.type === "message" && e.sender !== "user").map((e) => e.sender).reverse();
      assert.deepEqual(senders, ["bot", "bot", "agent:alice"]);
    });
    await using(start, { bot: { aiLabel: false }, model: { answer: () => "AI 的回答" } }, async (b) => {
      await b.says("你好");
      assert.equal(b.received()[0]!.aiMsgContext, undefined);
    });
  }],

  ["an agent taking over while the model thinks: the late answer is refused before it is sent", async (start) => {
    let ref: { appId: string; openId: string } | undefined;
    let store: ConversationStore | undefined;
    await using(start, {
      model: {
        answer: async () => {
          await store!.setHandoff(ref!, { state: "human", by: "agent:bob" });
          return "来不及了";
        },
      },
    }, async (b) => {
      ref = b.ref;
      store = b.conversations;
      await b.says("你好");
      assert.deepEqual(b.texts(), []);
      const line = JSON.parse(b.logs.find((l) => l.includes("bot_send_failed"))!);
      assert.equal(line.reason, "handed_off");
    });
  }],

  [
    "WeChat is answered before the model when the context can run work later (the worker's afterResponse)",
    async (start) => {
      await using(start, { model: { answer: () => ({ content: "稍后的回答", delayMs: 300 }) } }, async (b) => {
        const later: Array<() => Promise<unknown>> = [];
        const push = await b.wechat.user(OPENID).says("慢慢来");
        const started = Date.now();
        const outcome = await push.deliver((request) =>
          b.mp.push.handle(
            request,
            (message, context) => b.bot(message, { ...context, afterResponse: (t) => later.push(t) }),
          )
        );
        assert.equal(outcome.ok, true);
        assert.ok(Date.now() - started < 300, "answered without waiting for the model");
        assert.deepEqual([b.texts(), later.length], [[], 1]);
        await later[0]!();
        assert.deepEqual(b.texts(), ["稍后的回答"]);
      });
    },
  ],

  [
    "transferToKf: a keyword is transferred while WeChat waits; a model's handoff answered later asks for the keyword",
    async (start) => {
      await using(start, {
        bot: { transferToKf: true },
        model: { answer: () => ({ handoff: "复杂问题" }) },
      }, async (b) => {
        const outcome = await b.says("转人工");
        assert.ok(outcome.reply?.includes("transfer_customer_service"));
        assert.equal(await b.state(), "bot", "WeChat's tool has the user: the conversation's state is not changed");
        assert.equal(b.model.requests.length, 0);
        // Decided inline while WeChat still waits: the model's handoff is the passive reply too.
        const inline = await b.says("这个问题很复杂");
        assert.ok(inline.reply?.includes("transfer_customer_service"));
        // From a queue WeChat was answered already: the user is asked to write the keyword.
        await b.mp.push.processQueued(await queued(b, "还是很复杂"), b.bot);
        assert.deepEqual(b.texts(), ["这个问题需要人工客服处理，请回复「转人工」，我们会为您转接。"]);
        assert.equal(b.bot.decideReply({ ...sample(), Content: "人工" })?.type, "transfer_customer_service");
        assert.equal(b.bot.decideReply({ ...sample(), Content: "你好" }), undefined);
      });
      await using(start, {}, (b) => {
        assert.equal(
          b.bot.decideReply({ ...sample(), Content: "人工" }),
          undefined,
          "without transferToKf, no transfer",
        );
        return Promise.resolve();
      });
    },
  ],

  [
    "transferToKf with the content check: a risky answer decided while WeChat waits is a transfer, nothing sent",
    async (start) => {
      await using(start, {
        bot: { transferToKf: true, contentCheck: true },
        model: { answer: () => "违禁的回答" },
        emulator: { contentCheck: { risky: ["违禁"] } },
      }, async (b) => {
        const outcome = await b.says("问一下");
        assert.ok(outcome.reply?.includes("transfer_customer_service"));
        assert.deepEqual(b.texts(), []);
      });
    },
  ],

  ["an empty window: nothing is attempted, or the configured subscribe message goes instead", async (start) => {
    await using(start, {
      bot: {
        subscribeFallback: () => ({
          template_id: "REPLY_READY",
          page: "pages/kefu/index",
          data: { thing1: { value: "客服已回复" } },
        }),
      },
      model: { answer: () => "回答" },
    }, async (b) => {
      await b.wechat.user(OPENID).subscribes("REPLY_READY");
      await b.mp.push.processQueued(await queued(b, "下一句", { window: 0 }), b.bot);
      assert.equal(b.model.requests.length, 0, "no model call for an answer that cannot be sent");
      const inbox = b.wechat.inbox(OPENID);
      assert.equal(inbox.at(-1)?.kind, "subscribe");
      assert.equal(b.wechat.calls.filter((c) => c.errcode === 45047).length, 0);
    });
  }],

  [
    "a run redelivered after the answer went out (a consumer that died before marking it) answers nothing more",
    async (start) => {
      await using(start, { model: { answer: () => "答案" } }, async (b) => {
        await b.says("问题");
        const asked = (await b.conversations.history(b.ref, { limit: 10 }))!.entries.find((e) => e.sender === "user")!;
        const conversation = conversationContext(
          b.conversations,
          b.ref,
          undefined,
          (openId, text, options) => b.mp.customerServiceMessage.sendText(openId, text, options),
        );
        const context = { encrypted: false, format: "json" as const, deliveryId: asked.deliveryId!, conversation };
        await b.bot({ ...sample(), Content: "问题" }, { ...context, attempt: 2 });
        assert.deepEqual([b.model.requests.length, b.texts()], [1, ["答案"]]);
        assert.ok(b.logs.some((line) => JSON.parse(line).event === "kefu-edge.bot_skipped"));
        // A first run is not second-guessed.
        await b.bot({ ...sample(), Content: "问题" }, { ...context, attempt: 1 });
        assert.equal(b.model.requests.length, 2);
      });
    },
  ],

  ["without conversations the bot answers nothing and says why once", async (start) => {
    const model = await start({});
    try {
      const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push: PUSH });
      const logs: string[] = [];
      const logger = { warn: (line: string) => void logs.push(line) };
      const mp = new MiniProgram({ appId: APP_ID, appSecret: SECRET, fetch: wechat.fetch, push: PUSH, logger });
      const bot = aiBot({ baseUrl: model.baseUrl, model: "m", miniProgram: mp, fetch: model.fetch, logger });
      for (const text of ["一", "二"]) {
        const outcome = await (await wechat.user(OPENID).says(text)).deliver((request) => mp.push.handle(request, bot));
        assert.equal(outcome.ok, true);
      }
      assert.equal(model.requests.length, 0);
      assert.equal(logs.filter((l) => l.includes("kefu-edge.bot_without_conversations")).length, 1);
    } finally {
      await model.close();
    }
  }],
];

/** Queues the user's message as the worker does with a queue bound, and returns the job (the window emptied first when asked). */
async function queued(b: Bench, text: string, options: { window?: number } = {}): Promise<PushJob> {
  const jobs: PushJob[] = [];
  const push = await b.wechat.user(OPENID).says(text);
  await push.deliver((request) =>
    b.mp.push.handleQueued(request, { enqueue: (job) => Promise.resolve(void jobs.push(job)) })
  );
  assert.equal(jobs.length, 1);
  // The message opened the window: spend it as far as asked, as another sender would.
  while (
    options.window !== undefined &&
    ((await b.mp.customerServiceMessage.window(OPENID))?.remaining ?? 0) > options.window
  ) {
    await b.mp.customerServiceMessage.sendText(OPENID, "其他消息", { sender: "api" });
  }
  return jobs[0]!;
}

function sample() {
  return { ToUserName: "gh_1", FromUserName: OPENID, CreateTime: 1, MsgType: "text" as const, MsgId: "1" };
}
