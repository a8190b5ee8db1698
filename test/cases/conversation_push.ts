// The push receiver and the SDK's sends over a conversation store: one store call to accept a
// push, the bot kept out while a person answers, a bot reply refused after a takeover, sends
// recorded with who sent them, and WeChat's deletion events purging the user.
import assert from "node:assert/strict";
import {
  type ConversationStore,
  HandedOffError,
  MemoryConversationStore,
  MiniProgram,
  type PushJob,
} from "../../mod.ts";
import { buildPush, createEmulator } from "../../src/testing/mod.ts";
import { test } from "./_registry.ts";

const APP_ID = "wxconvpush000001";
const SECRET = "conv-push-secret";
const PUSH = { token: "ConvPushToken1", encodingAESKey: "ConvPushKey0123456789abcdefghijklmnopqrstuv" };
const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";

/**
 * A conversation store that counts its calls by operation, and whose every operation fails
 * (`"fail"`) or never settles (`"hang"`) while `broken.mode` says so.
 */
function counted(store: ConversationStore) {
  const calls: string[] = [];
  const broken = { mode: "ok" as "ok" | "fail" | "hang", calls: 0 };
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        if (broken.mode === "ok") return value.apply(target, args);
        broken.calls++;
        if (broken.mode === "hang") return new Promise(() => {});
        return Promise.reject(new Error("conversation store unreachable"));
      };
    },
  });
  return { store: proxy, calls, broken };
}

function setup() {
  const conversations = counted(new MemoryConversationStore());
  const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push: PUSH });
  const logged: string[] = [];
  const mp = new MiniProgram({
    appId: APP_ID,
    appSecret: SECRET,
    fetch: wechat.fetch,
    push: PUSH,
    conversations: conversations.store,
    logger: { warn: (line) => void logged.push(line) },
  });
  const ref = { appId: APP_ID, openId: OPENID };
  return { wechat, mp, conversations, ref, logged, handler: (request: Request) => mp.push.handle(request, () => {}) };
}

test("conversations: a push is claimed, appended and opens the window in one store call, marked in one more", async () => {
  const { wechat, mp, conversations, ref } = setup();
  let runs = 0;
  const push = await wechat.user(OPENID).says("我的订单到哪了？");
  const handler = (request: Request) => mp.push.handle(request, () => void runs++);
  assert.equal((await push.deliver(handler)).ok, true);
  assert.deepEqual(conversations.calls, ["accept", "replaceClaim"]);
  await push.deliver(handler); // WeChat's retry
  assert.equal(runs, 1);
  const page = await conversations.store.history(ref, { limit: 10 });
  assert.deepEqual(page?.entries.map((e) => [e.sender, e.type, e.text]), [["user", "message", "我的订单到哪了？"]]);
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 5);
});

test("conversations: while a person answers, the handler is not called and the message is kept", async () => {
  const { wechat, mp, conversations, ref } = setup();
  await (await wechat.user(OPENID).says("hello")).deliver((request) => mp.push.handle(request, () => {}));
  await conversations.store.setHandoff(ref, { state: "human", by: "agent:alice", reason: "taking it" });
  let runs = 0;
  const outcome = await (await wechat.user(OPENID).says("人呢？")).deliver((request) =>
    mp.push.handle(request, () => void runs++)
  );
  assert.equal(outcome.responseText, "success");
  assert.equal(runs, 0, "the bot stays out");
  const texts = (await conversations.store.history(ref, { limit: 10 }))!.entries.map((e) => e.text ?? e.to);
  assert.deepEqual(texts, ["人呢？", "human", "hello"]);
  // Queue mode likewise keeps it out of the bot's queue.
  const jobs: PushJob[] = [];
  const queued = await (await wechat.user(OPENID).says("还在吗")).deliver((request) =>
    mp.push.handleQueued(request, { enqueue: (job) => Promise.resolve(void jobs.push(job)) })
  );
  assert.equal(queued.responseText, "success");
  assert.equal(jobs.length, 0);
});

test("conversations: with handleWhileHeld the handler runs for a held conversation too, once, in both modes", async () => {
  const conversations = new MemoryConversationStore();
  const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push: PUSH });
  const mp = new MiniProgram({
    appId: APP_ID,
    appSecret: SECRET,
    fetch: wechat.fetch,
    push: { ...PUSH, handleWhileHeld: true },
    conversations,
  });
  const ref = { appId: APP_ID, openId: OPENID };
  const seen: string[] = [];
  const handler = (request: Request) =>
    mp.push.handle(request, async (message, { conversation }) => {
      seen.push(`${message.Content}:${(await conversation?.handoff())?.state}`);
    });
  await (await wechat.user(OPENID).says("hello")).deliver(handler);
  await conversations.setHandoff(ref, { state: "human", by: "agent:alice" });
  const held = await wechat.user(OPENID).says("人呢？");
  await held.deliver(handler);
  await held.deliver(handler); // WeChat's retry
  assert.deepEqual(seen, ["hello:bot", "人呢？:human"]);
  const jobs: PushJob[] = [];
  await (await wechat.user(OPENID).says("还在吗")).deliver((request) =>
    mp.push.handleQueued(request, { enqueue: (job) => Promise.resolve(void jobs.push(job)) })
  );
  assert.equal(jobs.length, 1, "queued for the handler, which keeps the bot out itself");
});

test("conversations: a person takes over while the bot's handler runs: its reply never reaches the user", async () => {
  const { wechat, mp, conversations, ref } = setup();
  let release!: () => void;
  const thinking = new Promise<void>((resolve) => (release = resolve));
  let refused: unknown;
  const push = await wechat.user(OPENID).says("我要退款");
  const delivering = push.deliver((request) =>
    mp.push.handle(request, async (message) => {
      await thinking; // the model is slow
      try {
        await mp.customerServiceMessage.send(message.FromUserName, "text", { content: "机器人的回答" }, {
          sender: "bot",
        });
      } catch (err) {
        refused = err;
      }
    })
  );
  await new Promise((r) => setTimeout(r, 20));
  const taken = await conversations.store.setHandoff(ref, { state: "human", by: "agent:alice", from: ["bot"] });
  assert.equal(taken.changed, true);
  release();
  assert.equal((await delivering).ok, true);
  assert.ok(refused instanceof HandedOffError, String(refused));
  assert.equal(wechat.inbox(OPENID).length, 0, "nothing reached the user");
  await mp.customerServiceMessage.send(OPENID, "text", { content: "您好，我是客服小王" }, { sender: "agent:alice" });
  assert.deepEqual(wechat.inbox(OPENID).map((e) => e.kind), ["message"]);
  const last = (await conversations.store.history(ref, { limit: 1 }))!.entries[0]!;
  assert.deepEqual([last.sender, last.text, last.outcome], ["agent:alice", "您好，我是客服小王", "ok"]);
});

test("conversations: sends, typing and subscribe messages are recorded with who sent them and how it went", async () => {
  const { wechat, mp, conversations, ref } = setup();
  await (await wechat.user(OPENID).says("hi")).deliver((request) => mp.push.handle(request, () => {}));
  await mp.customerServiceMessage.setTyping(OPENID, "Typing", { sender: "bot" });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "answer" }, { sender: "bot" });
  await mp.customerServiceMessage.send(OPENID, "link", {
    title: "Docs",
    description: "Read me",
    url: "https://example.com/docs",
    thumb_url: "https://example.com/t.png",
  });
  const failed = await mp.subscribeMessage.send(OPENID, {
    template_id: "TPL_NOT_ACCEPTED",
    data: { a: { value: "x" } },
  })
    .catch((err: unknown) => err);
  assert.ok(failed instanceof Error);
  const entries = (await conversations.store.history(ref, { limit: 10 }))!.entries.reverse();
  assert.deepEqual(
    entries.map((e) => [e.sender, e.type, e.msgType, e.outcome ?? null]),
    [
      ["user", "message", "text", null],
      ["bot", "typing", "Typing", "ok"],
      ["bot", "message", "text", "ok"],
      ["api", "message", "link", "ok"],
      ["api", "subscribe", "TPL_NOT_ACCEPTED", (failed as unknown as { errcode: number }).errcode],
    ],
  );
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 3, "two messages spent");
});

test("conversations: WeChat's deletion events purge the user named by OpenID, once and again", async () => {
  const { wechat, mp, conversations, ref, logged } = setup();
  await (await wechat.user(OPENID).says("我的手机号是 138…")).deliver((request) => mp.push.handle(request, () => {}));
  assert.notEqual(await conversations.store.history(ref, { limit: 10 }), null);
  for (const event of ["user_authorization_revoke", "user_authorization_cancellation"]) {
    const revoke = await buildPush({ appId: APP_ID, ...PUSH, format: "json" }, {
      ToUserName: "gh_platform",
      FromUserName: "oPlatformPushAccount000000000", // the platform's account, not the user
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: "event",
      Event: event,
      OpenID: OPENID,
      AppID: APP_ID,
      RevokeInfo: "301",
    });
    for (let i = 0; i < 2; i++) {
      assert.equal(await (await mp.push.handle(revoke.request(), () => {})).text(), "success");
    }
  }
  assert.equal(await conversations.store.history(ref, { limit: 10 }), null);
  assert.equal(await conversations.store.handoff(ref), null);
  assert.equal(await mp.customerServiceMessage.window(OPENID), undefined);
  assert.equal(
    await conversations.store.history({ appId: APP_ID, openId: "oPlatformPushAccount000000000" }, { limit: 1 }),
    null,
    "no conversation for the platform's account",
  );
  assert.ok(logged.some((line) => line.includes("kefu-edge.user_purged")));
  assert.ok(logged.every((line) => !line.includes(OPENID)), "the log names no user");
});

test("conversations: the handler's context carries the conversation: chat turns, replies as the bot, a person on request", async () => {
  const { wechat, mp, conversations, ref } = setup();
  const seen: string[][] = [];
  const handler = (request: Request) =>
    mp.push.handle(request, async (message, context) => {
      const conversation = context.conversation!;
      seen.push((await conversation.chat()).map((turn) => `${turn.role}: ${turn.content}`));
      if (message.MsgType !== "text") return;
      if (String(message.Content).includes("人工")) {
        await conversation.requestHuman("the user asked for a person");
        return;
      }
      await conversation.reply(`收到：${String(message.Content)}`);
    });
  const user = wechat.user(OPENID);
  await (await user.says("你好")).deliver(handler);
  await (await user.sendsImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16]), "image/jpeg")).deliver(handler);
  await (await user.says("转人工")).deliver(handler);
  await (await user.says("还有人吗")).deliver(handler); // a person was asked for: the bot stays out
  assert.deepEqual(seen, [
    ["user: 你好"],
    ["user: 你好", "assistant: 收到：你好", "user: [图片]"],
    ["user: 你好", "assistant: 收到：你好", "user: [图片]", "user: 转人工"],
  ]);
  assert.equal((await conversations.store.handoff(ref))?.state, "waiting");
  const bot = (await conversations.store.history(ref, { limit: 20 }))!.entries.filter((e) => e.sender === "bot");
  assert.deepEqual(bot.map((e) => [e.type, e.to ?? e.text]).reverse(), [
    ["message", "收到：你好"],
    ["handoff", "waiting"],
  ]);
});

for (const mode of ["fail", "hang"] as const) {
  test(`conversations: a store that ${mode === "fail" ? "fails" : "hangs"} loses no message, and the next push of the user is handled as usual`, async () => {
    const memory = new MemoryConversationStore();
    const { store, broken } = counted(memory);
    const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET, push: PUSH });
    const logged: string[] = [];
    const mp = new MiniProgram({
      appId: APP_ID,
      appSecret: SECRET,
      fetch: wechat.fetch,
      push: { ...PUSH, storeTimeoutMs: 50, deliveryBudgetMs: 1000 },
      conversations: store,
      logger: { warn: (line) => void logged.push(line) },
    });
    const handled: string[] = [];
    const handler = (request: Request) =>
      mp.push.handle(request, (message) => void handled.push(String(message.Content)));
    broken.mode = mode;
    const outcome = await (await wechat.user(OPENID).says("店铺几点关门？")).deliver(handler);
    assert.equal(outcome.responseText, "success", "answered, so WeChat stops retrying");
    assert.deepEqual(handled, ["店铺几点关门？"], "handled at least once rather than never");
    assert.ok(broken.calls > 0, "the store was asked");
    const failures = logged.filter((line) => line.includes("kefu-edge.store_failed"));
    assert.equal(failures.length, 1, "one log line for the delivery");
    assert.ok(!failures[0]!.includes("店铺"), "the log carries no content");

    broken.mode = "ok";
    await (await wechat.user(OPENID).says("谢谢")).deliver(handler);
    assert.deepEqual(handled, ["店铺几点关门？", "谢谢"]);
    const ref = { appId: APP_ID, openId: OPENID };
    assert.deepEqual((await memory.history(ref, { limit: 10 }))!.entries.map((e) => e.text), ["谢谢"]);
  });
}

test("conversations: a user deleted while the bot's handler runs gets no conversation back from the bot's late reply", async () => {
  const { wechat, mp, conversations, ref } = setup();
  let release!: () => void;
  const thinking = new Promise<void>((resolve) => (release = resolve));
  let replied: unknown;
  const delivering = (await wechat.user(OPENID).says("我的手机号是 139…")).deliver((request) =>
    mp.push.handle(request, async (_message, { conversation }) => {
      await thinking; // the model is slow; meanwhile the user revokes
      replied = await conversation!.reply("好的，已记录").catch((err: unknown) => err);
    })
  );
  await new Promise((r) => setTimeout(r, 20));
  await conversations.store.purge(ref);
  release();
  assert.equal((await delivering).ok, true);
  assert.ok(replied instanceof Error, `the bot's reply is refused: ${String(replied)}`);
  assert.equal(wechat.inbox(OPENID).length, 0, "nothing reached the user");
  assert.equal(await conversations.store.history(ref, { limit: 10 }), null, "nothing of the user is kept");
});

test("conversations, queue mode: one store call before the answer, the marker after it; two in the consumer", async () => {
  const { wechat, mp, conversations } = setup();
  const jobs: PushJob[] = [];
  const later: Promise<unknown>[] = [];
  const handler = (request: Request) =>
    mp.push.handleQueued(request, {
      enqueue: (job) => Promise.resolve(void jobs.push(job)),
      waitUntil: (promise) => void later.push(promise),
    });
  const push = await wechat.user(OPENID).says("排队");
  assert.equal((await push.deliver(handler)).responseText, "success");
  assert.deepEqual(conversations.calls, ["accept"], "before the answer");
  await Promise.all(later);
  assert.deepEqual(conversations.calls, ["accept", "replaceClaim"], "the queued marker, after the answer");
  conversations.calls.length = 0;
  let runs = 0;
  let window: unknown;
  const result = await mp.push.processQueued(jobs[0]!, (_message, context) => {
    runs++;
    window = context.conversation?.window;
  });
  assert.equal(result.outcome, "done");
  assert.deepEqual(conversations.calls, ["accept", "replaceClaim"], "in the consumer");
  assert.equal((window as { kind?: string } | undefined)?.kind, "message", "the window, from the consumer's accept");
  conversations.calls.length = 0;
  assert.equal((await mp.push.processQueued(jobs[0]!, () => void runs++)).outcome, "duplicate");
  assert.deepEqual(conversations.calls, ["accept"], "a redelivery: one call");
  assert.equal(runs, 1);
  assert.equal((await push.deliver(handler)).responseText, "success", "WeChat's retry, once done");
  assert.equal(jobs.length, 1);
});

test("conversations, queue mode: a marker never written after the answer: the consumer takes the push over once", async () => {
  const { wechat, mp, conversations } = setup();
  const jobs: PushJob[] = [];
  // The isolate is cut off after the answer: nothing keeps the marker's write alive.
  const cutOff = (request: Request) =>
    mp.push.handleQueued(request, { enqueue: (job) => Promise.resolve(void jobs.push(job)), waitUntil: () => {} });
  let markers = 0;
  const replaceClaim = conversations.store.replaceClaim.bind(conversations.store);
  conversations.store.replaceClaim = (ref, key, expected, value, ttl) => {
    // The marker that would have been written after the answer never lands.
    if (value?.startsWith("queued:") && expected.startsWith("enqueuing:")) {
      markers++;
      return Promise.resolve(false);
    }
    return replaceClaim(ref, key, expected, value, ttl);
  };
  const push = await wechat.user(OPENID).says("被截断");
  assert.equal((await push.deliver(cutOff)).responseText, "success");
  await new Promise((resolve) => setTimeout(resolve, 10));
  let runs = 0;
  assert.equal((await mp.push.processQueued(jobs[0]!, () => void runs++)).outcome, "done", "taken from `enqueuing`");
  assert.equal((await mp.push.processQueued(jobs[0]!, () => void runs++)).outcome, "duplicate");
  assert.equal(runs, 1);
  assert.equal(markers, 1, "the marker's write was tried and lost");
  assert.equal((await push.deliver(cutOff)).responseText, "success", "WeChat's retry finds it done");
  assert.equal(jobs.length, 1, "and enqueues nothing again");
});
