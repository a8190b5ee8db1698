// The Chatwoot bridge inside workerd, against the contract fake of Chatwoot's API
// (_chatwoot_fake.ts) and the WeChat emulator: a round trip, exactly once under duplicate
// deliveries and echoes, Chatwoot down during a burst (queue mode), forged webhooks, and a reply
// outside the 48-hour window, and the subscribe message sent instead of it.
import { env as workerEnv } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MemoryConversationStore, Reply } from "../../mod.ts";
import { buildPush, createEmulator } from "../../src/testing/mod.ts";
import {
  type AppOptions,
  type AppPushHandler,
  type ChatwootOptions,
  createApp,
  type KefuApp,
  type QueueMessageLike,
} from "../../worker/mod.ts";
import type { Env } from "../../worker/env.ts";
import { AES_KEY, APP_ID, AUTH, PUSH_TOKEN, recordingLogger, SECRET, testEnv } from "./_helpers.ts";
import { ChatwootFake, type Delivered } from "./_chatwoot_fake.ts";

const BASE = "https://chatwoot.test";
const CW_TOKEN = "cw-api-token-0123456789abcdef";
const WHSEC = "cw-webhook-secret-0123456789";
const INBOX = 7;
const HOUR = 3600_000;
// A 1×1 PNG: WeChat takes only real images.
const PNG = Uint8Array.from(
  atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
  (c) => c.charCodeAt(0),
);

/** A queue the test drains by hand: what fails is delivered again, in any order the test asks. */
class TestQueue {
  pending: { id: string; body: unknown; attempts: number }[] = [];
  delays: number[] = [];
  #ids = 0;
  send = (body: unknown): Promise<void> => {
    this.pending.push({ id: `q${++this.#ids}`, body: structuredClone(body), attempts: 1 });
    return Promise.resolve();
  };

  /** Delivers what is pending, one message per batch; retried ones come back with one more attempt. */
  async drain(app: KefuApp, env: Env, order: "fifo" | "reverse" = "fifo"): Promise<number> {
    const taken = this.pending.splice(0);
    if (order === "reverse") taken.reverse();
    let retried = 0;
    for (const item of taken) {
      let outcome: "ack" | "retry" | undefined;
      const message: QueueMessageLike = {
        id: item.id,
        body: item.body,
        attempts: item.attempts,
        ack: () => void (outcome = "ack"),
        retry: (options) => {
          outcome = "retry";
          this.delays.push(options?.delaySeconds ?? 0);
        },
      };
      await app.queue({ queue: "kefu-edge-pushes", messages: [message] }, env, createExecutionContext());
      if (outcome === "retry") {
        retried++;
        this.pending.push({ ...item, attempts: item.attempts + 1 });
      }
    }
    return retried;
  }
}

interface WorldOptions {
  /** Use a memory conversation store on a clock the test moves (default: the KEFU_STORE Durable Objects). */
  clock?: boolean;
  queue?: boolean;
  onMessage?: AppPushHandler;
  onReply?: AppOptions["onReply"];
  env?: Parameters<typeof testEnv>[0];
  /** Bridge settings besides the test's timings. */
  chatwoot?: ChatwootOptions;
}

/** WeChat (the emulator), Chatwoot (the fake) and the worker between them. */
function world(options: WorldOptions = {}) {
  // A user of its own: the Durable Objects keep what earlier tests stored.
  const OPENID = `oTest${crypto.randomUUID().replaceAll("-", "").slice(0, 23)}`;
  let clock = Date.now();
  const now = () => (options.clock === true ? clock : Date.now());
  const wechat = createEmulator({
    appId: APP_ID,
    appSecret: SECRET,
    push: { token: PUSH_TOKEN, encodingAESKey: AES_KEY },
    now,
  });
  const env = testEnv({
    KEFU_STORE: workerEnv.KEFU_STORE,
    WECHAT_AES_KEY: AES_KEY,
    CHATWOOT_URL: BASE,
    CHATWOOT_ACCOUNT_ID: "3",
    CHATWOOT_INBOX_ID: String(INBOX),
    CHATWOOT_API_TOKEN: CW_TOKEN,
    CHATWOOT_WEBHOOK_SECRET: WHSEC,
    ...options.env,
  });
  const background: Promise<unknown>[] = [];
  const wechatCalls: string[] = [];
  const botRuns: string[] = [];
  const logger = recordingLogger();
  const queue = options.queue === true ? new TestQueue() : undefined;
  const conversations = options.clock === true ? new MemoryConversationStore({ now }) : undefined;
  const bot: AppPushHandler = options.onMessage ?? (async (message, { conversation }) => {
    if (message.MsgType !== "text") return;
    botRuns.push(String(message.Content));
    await conversation?.reply(`收到：${message.Content}`);
  });
  const endpoint = async (request: Request): Promise<Response> => {
    const ctx = createExecutionContext();
    const response = await app.fetch(request, env, ctx);
    background.push(waitOnExecutionContext(ctx));
    return response;
  };
  const cw = new ChatwootFake({
    baseUrl: BASE,
    token: CW_TOKEN,
    accountId: 3,
    inboxId: INBOX,
    webhookSecret: WHSEC,
    deliver: endpoint,
    now,
  });
  const app: KefuApp = createApp({
    logger,
    now,
    onMessage: bot,
    onReply: options.onReply,
    queue: queue === undefined ? undefined : () => queue,
    conversations: conversations === undefined ? undefined : () => conversations,
    chatwoot: { retryBaseMs: 5, timeoutMs: 2000, typingIntervalMs: 10_000, ...options.chatwoot },
    fetch: (input, init) => {
      const request = new Request(input, init);
      if (request.url.startsWith(`${BASE}/`)) return cw.fetch(request);
      wechatCalls.push(new URL(request.url).pathname);
      return wechat.fetch(request);
    },
  });
  const settle = async () => {
    while (background.length > 0) await Promise.all(background.splice(0));
    await cw.settled();
  };
  const user = wechat.user(OPENID);
  /** The user does something in the mini program; WeChat pushes it (and retries, when `twice`). */
  const push = async (action: ReturnType<typeof user.says>, twice = false) => {
    const pushed = await action;
    const outcome = await pushed.deliver(endpoint);
    if (twice) await pushed.deliver(endpoint);
    await settle();
    return outcome;
  };
  const conversation = () => cw.conversationsOf(OPENID)[0]!;
  const contents = (conversationId = conversation().id) =>
    cw.messagesOf(conversationId).map((m) =>
      `${m.private ? "note" : m.message_type}:${m.content ?? ""}${m.attachments.length > 0 ? "+image" : ""}`
    );
  const sentToUser = () => wechat.inbox(OPENID).filter((e) => e.kind === "message");
  const api = (path: string, init: RequestInit = {}) =>
    endpoint(
      new Request(`http://127.0.0.1:8787${path}`, {
        ...init,
        headers: { ...AUTH, ...init.headers as Record<string, string> | undefined },
      }),
    );
  return {
    openId: OPENID,
    app,
    env,
    cw,
    wechat,
    user,
    push,
    settle,
    conversation,
    contents,
    sentToUser,
    wechatCalls,
    botRuns,
    logger,
    queue,
    api,
    tick: (ms: number) => void (clock += ms),
  };
}

function expectNoSecrets(w: ReturnType<typeof world>) {
  for (const line of w.logger.lines) {
    expect(line).not.toContain(CW_TOKEN);
    expect(line).not.toContain(WHSEC);
  }
  for (const delivered of w.cw.deliveries) {
    expect(delivered.body).not.toContain(CW_TOKEN);
    expect(delivered.body).not.toContain(WHSEC);
  }
}

const statusOf = (delivered: Delivered[]) => delivered.map((d) => [d.status, JSON.parse(d.body).status]);

describe("the Chatwoot bridge", () => {
  it("a conversation round trip: user → Chatwoot, bot mirrored, agent → user, handoff both ways", async () => {
    const w = world();
    await w.push(w.user.entersSession("product-page"));
    await w.push(w.user.says("我的订单到哪了？"));
    // The contact is the openid's, per AppID; the openid is the inbox's source id.
    expect(w.cw.contacts.map((c) => c.identifier)).toEqual([`wechat:${APP_ID}:${w.openId}`]);
    const conversation = w.conversation();
    expect(conversation).toMatchObject({ inbox_id: INBOX, status: "pending" }); // the bot answers
    expect(w.contents()).toEqual([
      "note:The user opened the customer-service chat (user_enter_tempsession)",
      "incoming:我的订单到哪了？",
      "outgoing:🤖 收到：我的订单到哪了？",
    ]);
    await w.push(w.user.sendsImage(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), "image/png"));
    await w.push(w.user.sendsMiniProgramPage({ title: "订单 #1024", pagePath: "pages/order?id=1024" }));
    expect(w.contents().slice(3)).toEqual([
      "incoming:+image",
      "incoming:[小程序卡片：订单 #1024（pages/order?id=1024）]",
    ]);
    const image = w.cw.messagesOf(conversation.id)[3]!.attachments[0]!;
    expect([...image.bytes]).toEqual([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

    // An agent answers in Chatwoot: the user gets it, recorded as the agent's; the bot stops.
    const alice = w.cw.agents[0]!;
    const reply = await w.cw.agentReplies(conversation.id, "您好，我是客服小王，马上帮您查");
    expect(statusOf(reply.delivered)).toEqual([[200, "sent"]]);
    expect(w.sentToUser().at(-1)).toMatchObject({
      msgtype: "text",
      message: { content: "您好，我是客服小王，马上帮您查" },
    });
    const history = await (await w.api(`/api/users/${w.openId}/messages?limit=2`)).json() as {
      entries: { sender: string; type: string; to?: string }[];
    };
    expect(history.entries.map((e) => [e.sender, e.type, e.to])).toEqual([
      [`agent:${alice.name}`, "message", undefined],
      [`agent:${alice.name}`, "handoff", "human"],
    ]);
    const runs = w.botRuns.length;
    await w.push(w.user.says("好的，谢谢"));
    expect(w.botRuns).toHaveLength(runs); // a person answers: the bot stays out
    expect(w.contents().at(-1)).toBe("incoming:好的，谢谢"); // but the agent sees it

    // The agent's image reaches the user as an image; typing shows, throttled.
    await w.cw.agentReplies(conversation.id, "", { images: [PNG] });
    expect(w.sentToUser().at(-1)).toMatchObject({ msgtype: "image" });
    expect(statusOf(await w.cw.agentTypes(conversation.id, true))).toEqual([[200, "typing"]]);
    expect(statusOf(await w.cw.agentTypes(conversation.id, true))).toEqual([[200, "ignored:throttled"]]);
    expect(statusOf(await w.cw.agentTypes(conversation.id, false))).toEqual([[200, "typing"]]);
    expect(w.wechat.inbox(w.openId).filter((e) => e.kind === "typing").map((e) => e.kind === "typing" && e.command))
      .toEqual(["Typing", "CancelTyping"]);

    // Chatwoot's pending hands back to the bot; resolved closes; the next message opens a new conversation.
    expect(statusOf(await w.cw.agentSetsStatus(conversation.id, "pending"))).toEqual([[200, "handoff"]]);
    await w.push(w.user.says("还有一个问题"));
    expect(w.botRuns.at(-1)).toBe("还有一个问题");
    await w.cw.agentSetsStatus(conversation.id, "resolved");
    const closed = await (await w.api(`/api/users/${w.openId}/handoff`)).json() as { state: string };
    expect(closed.state).toBe("closed");
    await w.push(w.user.says("新问题"));
    const next = w.conversation();
    expect(next.id).not.toBe(conversation.id);
    expect(next.status).toBe("pending");
    expect(w.contents(next.id)).toEqual(["incoming:新问题", "outgoing:🤖 收到：新问题"]);

    // An assignment in Chatwoot takes it over; a handback over /api shows in Chatwoot as pending.
    expect(statusOf(await w.cw.agentAssigns(next.id, w.cw.agents[1]!))).toEqual([[200, "handoff"]]);
    const taken = await (await w.api(`/api/users/${w.openId}/handoff`)).json() as { state: string; agent: string };
    expect(taken).toMatchObject({ state: "human", agent: w.cw.agents[1]!.name });
    expect(statusOf(await w.cw.agentSetsStatus(next.id, "open"))).toEqual([[200, "ignored:no_change"]]);
    const back = await w.api(`/api/users/${w.openId}/handoff`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ state: "bot", reason: "done" }),
    });
    expect(back.status).toBe(200);
    await w.settle();
    expect(w.cw.conversations.find((c) => c.id === next.id)?.status).toBe("pending");

    expect(w.cw.refusals).toEqual([]); // every call matched Chatwoot's documented contract
    expectNoSecrets(w);
  });

  it("exactly once: WeChat's retries, Chatwoot's echoes and duplicate deliveries reach neither side twice", async () => {
    const w = world();
    w.cw.duplicate = true; // every webhook delivered twice, as a retried job does
    for (const text of ["一", "二", "三"]) await w.push(w.user.says(text), true); // WeChat retries each
    expect(w.contents()).toEqual([
      "incoming:一",
      "outgoing:🤖 收到：一",
      "incoming:二",
      "outgoing:🤖 收到：二",
      "incoming:三",
      "outgoing:🤖 收到：三",
    ]);
    // The echoes of what the bridge wrote (outgoing, by the token's user) were delivered twice each: none sent.
    expect(w.sentToUser().map((e) => e.message.content)).toEqual(["收到：一", "收到：二", "收到：三"]);
    expect(w.cw.deliveries).toHaveLength(12);

    // Chatwoot makes the next message but its answer is lost: the next run finds it by its mark.
    w.cw.loseNextAnswer();
    await w.push(w.user.says("四"));
    expect(w.logger.lines.filter((l) => l.includes("kefu-edge.chatwoot_failed"))).toHaveLength(1);
    await w.push(w.user.says("五"));
    expect(w.contents().slice(6)).toEqual([
      "incoming:四",
      "outgoing:🤖 收到：四",
      "incoming:五",
      "outgoing:🤖 收到：五",
    ]);

    // Echo without Chatwoot keeping the bridge's marks: the remembered id still stops it.
    const mirrored = w.cw.messagesOf(w.conversation().id).find((m) => m.message_type === "outgoing")!;
    const bare = { ...w.cw.messageCreatedPayload(mirrored), content_attributes: {} };
    expect((await w.cw.sendWebhook(bare)).body).toContain("ignored:echo");

    // An agent's reply, delivered twice with one id and again with another (an account webhook too): sent once.
    const { message, delivered } = await w.cw.agentReplies(w.conversation().id, "人工客服来了");
    expect(statusOf(delivered)).toEqual([[200, "sent"], [200, "ignored:duplicate"]]);
    const again = await w.cw.sendWebhook(w.cw.messageCreatedPayload(message));
    expect(JSON.parse(again.body).status).toBe("ignored:duplicate");
    expect(w.sentToUser().filter((e) => e.message.content === "人工客服来了")).toHaveLength(1);
    // Private notes and the contact's own messages are never sent.
    const note = await w.cw.agentReplies(w.conversation().id, "内部备注", { private: true });
    expect(JSON.parse(note.delivered[0]!.body).status).toBe("ignored:private");
    expect(w.sentToUser()).toHaveLength(6);
    expect(w.cw.refusals).toEqual([]);
  });

  it("Chatwoot down during a burst of one user's messages (queue mode): nothing lost, order kept", async () => {
    const w = world({ queue: true, clock: true });
    const queue = w.queue!;
    await w.push(w.user.says("第1条"));
    expect(await queue.drain(w.app, w.env)).toBe(0); // the push, then its mirroring jobs
    while (queue.pending.length > 0) await queue.drain(w.app, w.env);
    expect(w.contents()).toEqual(["incoming:第1条", "outgoing:🤖 收到：第1条"]);

    w.cw.down();
    for (let i = 2; i <= 6; i++) await w.push(w.user.says(`第${i}条`));
    // The bot answers while Chatwoot is down: it does not wait for Chatwoot.
    for (let round = 0; round < 3 && queue.pending.length > 0; round++) await queue.drain(w.app, w.env);
    expect(w.sentToUser().map((e) => e.message.content).slice(-5)).toEqual([
      "收到：第2条",
      "收到：第3条",
      "收到：第4条",
      "收到：第5条",
      "收到：第6条",
    ]);
    const failedJobs = queue.pending.length;
    expect(failedJobs).toBeGreaterThan(0); // the mirroring jobs wait for Chatwoot, with backoff
    expect(queue.delays.some((d) => d >= 5)).toBe(true);
    expect(w.contents()).toHaveLength(2); // nothing reached Chatwoot meanwhile

    // Chatwoot is back, slow at first (429, 503): redelivered jobs in the reverse order still mirror in order.
    w.cw.up();
    w.cw.failNext(1, 429, "0");
    w.cw.failNext(1, 503);
    while (queue.pending.length > 0) await queue.drain(w.app, w.env, "reverse");
    // In the order it happened: the five pushes were accepted before the consumer ran the bot on them.
    const expected = ["incoming:第1条", "outgoing:🤖 收到：第1条"];
    for (let i = 2; i <= 6; i++) expected.push(`incoming:第${i}条`);
    for (let i = 2; i <= 6; i++) expected.push(`outgoing:🤖 收到：第${i}条`);
    expect(w.contents()).toEqual(expected);
    expect(w.cw.faulted.map((r) => r.status)).toEqual([429, 503]); // retried within the call
    // A creation Chatwoot refused with 503 (it did not act) is tried again at once, and made once.
    w.cw.failNext(1, 503);
    await w.push(w.user.says("第7条"));
    while (queue.pending.length > 0) await queue.drain(w.app, w.env);
    expect(w.contents().slice(-2)).toEqual(["incoming:第7条", "outgoing:🤖 收到：第7条"]);
    expect(w.cw.faulted.map((r) => `${r.method} ${r.status}`).at(-1)).toBe("POST 503");
    expect(w.cw.refusals).toEqual([]);
    expectNoSecrets(w);
  });

  it("forged, stale and unsigned webhooks are refused (401, logged); without the secret the route is closed", async () => {
    const w = world();
    await w.push(w.user.says("hi"));
    const sent = w.sentToUser().length;
    const conversation = w.conversation();
    const { message } = await w.cw.agentReplies(conversation.id, "真的回复");
    const payload = { ...w.cw.messageCreatedPayload(message), id: message.id + 1000, content: "假冒的消息" };
    const forged = await w.cw.sendWebhook(payload, { secret: "not-the-secret" });
    const stale = await w.cw.sendWebhook(payload, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    const early = await w.cw.sendWebhook(payload, { timestamp: Math.floor(Date.now() / 1000) + 301 });
    const unsigned = await w.cw.sendWebhook(payload, { signature: "" });
    const altered = await w.cw.sendWebhook(payload, { body: JSON.stringify({ ...payload, content: "改过的" }) });
    const refused = [forged, stale, early, unsigned, altered].map((d) => [d.status, JSON.parse(d.body).error.code]);
    expect(refused).toEqual([
      [401, "bad_signature"],
      [401, "stale_timestamp"],
      [401, "stale_timestamp"],
      [401, "bad_signature"],
      [401, "bad_signature"],
    ]);
    expect(w.sentToUser()).toHaveLength(sent + 1); // only the real reply
    const refusalLogs = w.logger.lines.filter((l) => l.includes("chatwoot_webhook_refused"));
    expect(refusalLogs).toHaveLength(5);
    for (const line of refusalLogs) expect(line).not.toContain("假冒");

    // No secret: closed, naming the variable. A half-configured bridge names what is missing.
    const closed = world({ env: { CHATWOOT_WEBHOOK_SECRET: undefined } });
    await closed.push(closed.user.says("hi"));
    const answer = await closed.cw.sendWebhook({ event: "message_created" });
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body).error).toMatchObject({
      code: "config_missing",
      variable: "CHATWOOT_WEBHOOK_SECRET",
    });
    const half = world({ env: { CHATWOOT_API_TOKEN: undefined } });
    const outcome = await (await half.user.says("hi")).deliver((request) => half.app.fetch(request, half.env), {
      retries: 0,
    });
    expect(outcome.status).toBe(503);
    expect(JSON.parse(outcome.responseText!).error).toMatchObject({
      code: "config_missing",
      variable: "CHATWOOT_API_TOKEN",
    });
    const bad = world({ env: { CHATWOOT_INBOX_ID: "seven" } });
    const webhook = await bad.cw.sendWebhook({ event: "message_created" });
    expect(JSON.parse(webhook.body).error).toMatchObject({ code: "config_invalid", variable: "CHATWOOT_INBOX_ID" });
    expectNoSecrets(w);
  });

  it("a reply outside the window is marked failed with the reason, without calling WeChat", async () => {
    const w = world({ clock: true });
    // Someone who never wrote: an agent starts a conversation in Chatwoot with the openid as source id.
    const contact = w.cw.contacts.length;
    const created = await w.cw.fetch(`${BASE}/api/v1/accounts/3/contacts`, {
      method: "POST",
      headers: { "content-type": "application/json", api_access_token: CW_TOKEN },
      body: JSON.stringify({ inbox_id: INBOX, name: "从未来过", identifier: "someone-else" }),
    });
    const contactId = (await created.json() as { payload: { contact: { id: number } } }).payload.contact.id;
    await w.cw.fetch(`${BASE}/api/v1/accounts/3/contacts/${contactId}/contact_inboxes`, {
      method: "POST",
      headers: { "content-type": "application/json", api_access_token: CW_TOKEN },
      body: JSON.stringify({ inbox_id: INBOX, source_id: "o-never-wrote-0000000000000" }),
    });
    const started = await w.cw.fetch(`${BASE}/api/v1/accounts/3/conversations`, {
      method: "POST",
      headers: { "content-type": "application/json", api_access_token: CW_TOKEN },
      body: JSON.stringify({ source_id: "o-never-wrote-0000000000000", inbox_id: INBOX }),
    });
    const { id } = await started.json() as { id: number };
    expect(w.cw.contacts).toHaveLength(contact + 1);
    const calls = w.wechatCalls.length;
    const never = await w.cw.agentReplies(id, "您好，在吗？");
    expect(statusOf(never.delivered)).toEqual([[200, "failed"]]);
    expect(never.message).toMatchObject({
      status: "failed",
      external_error: "45015: outside the 48-hour window — the user has to write first",
    });
    expect(w.wechatCalls).toHaveLength(calls); // refused before any call to WeChat

    // Someone who wrote 49 hours ago.
    await w.push(w.user.says("在吗"));
    w.tick(49 * HOUR);
    const before = w.wechatCalls.filter((p) => p.includes("/message/custom/")).length;
    const late = await w.cw.agentReplies(w.conversation().id, "抱歉回复晚了");
    expect(late.message).toMatchObject({
      status: "failed",
      external_error: "45015: outside the 48-hour window — the user has to write first",
    });
    expect(w.wechatCalls.filter((p) => p.includes("/message/custom/"))).toHaveLength(before);
    // Within the window it goes out; a refusal WeChat itself makes is marked with its reason too.
    await w.push(w.user.says("我回来了"));
    const inTime = await w.cw.agentReplies(w.conversation().id, "欢迎回来");
    expect(inTime.message.status).toBe("sent");
    expect(w.sentToUser().at(-1)?.message.content).toBe("欢迎回来");
    expect(w.cw.refusals).toEqual([]);
    expectNoSecrets(w);
  });

  it("the subscribe fallback (CHATWOOT_SUBSCRIBE_TEMPLATE): a reply outside the window sends one subscribe message instead", async () => {
    const template = {
      template_id: "TPL_AGENT_REPLY",
      page: "pages/service/index",
      data: { thing1: { value: "{text}" }, thing2: { value: "客服回复" } },
    };
    const w = world({ clock: true, env: { CHATWOOT_SUBSCRIBE_TEMPLATE: JSON.stringify(template) } });
    await w.push(w.user.says("我的退款呢"));
    // Long-term: a second send would be delivered too, so a duplicate would show.
    await w.push(w.user.subscribes({ templateId: "TPL_AGENT_REPLY", longTerm: true }));
    w.tick(49 * HOUR);
    const customSends = () => w.wechatCalls.filter((p) => p.includes("/message/custom/")).length;
    const before = customSends();
    w.cw.duplicate = true; // the same delivery twice
    const reply = "您的退款已经原路退回，预计三个工作日内到账，请注意查收";
    const { message, delivered } = await w.cw.agentReplies(w.conversation().id, reply);
    expect(statusOf(delivered)).toEqual([[200, "failed"], [200, "ignored:duplicate"]]);
    // Another delivery of the same message (an account webhook too): the message's claim stops it.
    const again = await w.cw.sendWebhook(w.cw.messageCreatedPayload(message));
    expect(JSON.parse(again.body).status).toBe("ignored:duplicate");
    await w.settle();

    const subscribes = w.wechat.inbox(w.openId).filter((e) => e.kind === "subscribe");
    expect(subscribes).toHaveLength(1);
    expect(subscribes[0]).toMatchObject({
      templateId: "TPL_AGENT_REPLY",
      page: "pages/service/index",
      // The reply cut to WeChat's 20 characters for a thing field: 19 and an ellipsis.
      data: { thing1: { value: "您的退款已经原路退回，预计三个工作日内…" }, thing2: { value: "客服回复" } },
    });
    expect(message).toMatchObject({
      status: "failed",
      external_error:
        "45015: outside the 48-hour window — the user has to write first; a subscribe message was sent instead",
    });
    expect(customSends()).toBe(before); // the window check stopped the reply before any call
    // Recorded in kefu-edge's history as the agent's subscribe message.
    const alice = w.cw.agents[0]!;
    const history = await (await w.api(`/api/users/${w.openId}/messages?limit=1`)).json() as {
      entries: { sender: string; type: string }[];
    };
    expect(history.entries.map((e) => [e.sender, e.type])).toEqual([[`agent:${alice.name}`, "subscribe"]]);
    // Logged once, without the reply.
    const logged = w.logger.lines.filter((l) => l.includes("kefu-edge.chatwoot_subscribe_fallback"));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ sent: true, messageId: message.id });
    for (const line of w.logger.lines) expect(line).not.toContain("退款");
    expect(w.cw.refusals).toEqual([]);
    expectNoSecrets(w);
  });

  it("the subscribe fallback (createApp option) after WeChat's own 45015, and a refused subscribe message (43101)", async () => {
    const asked: [string, string][] = [];
    let enabled = true;
    const w = world({
      onMessage: async () => {}, // no bot: nothing else writes to the user
      chatwoot: {
        subscribeFallback: (openId, text) => {
          asked.push([openId, text]);
          return enabled ? { template_id: "TPL_ONE_TIME", data: { thing1: { value: "客服回复了您" } } } : undefined;
        },
      },
    });
    await w.user.subscribes("TPL_ONE_TIME"); // one-time: allows one subscribe message
    // The user's message reaches kefu-edge (its window is open) but not the emulated WeChat, whose
    // window stays closed: WeChat itself refuses the reply with 45015.
    const push = await buildPush({ appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" }, {
      ToUserName: "gh_platform",
      FromUserName: w.openId,
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: "text",
      Content: "在吗",
      MsgId: String(Date.now()),
    });
    const ctx = createExecutionContext();
    expect(await (await w.app.fetch(push.request(), w.env, ctx)).text()).toBe("success");
    await waitOnExecutionContext(ctx);
    await w.settle();
    const conversationId = w.conversation().id;

    const first = await w.cw.agentReplies(conversationId, "您好，有什么可以帮您？");
    expect(statusOf(first.delivered)).toEqual([[200, "failed"]]);
    // WeChat refused it (after a 40001 when another test's access token was cached: the SDK refreshes it).
    const answers = w.wechat.calls.filter((c) => c.path === "/cgi-bin/message/custom/send").map((c) => c.errcode);
    expect(answers.filter((errcode) => errcode !== 40001)).toEqual([45015]);
    expect(first.message.external_error).toBe(
      "45015: outside the 48-hour window — the user has to write first; a subscribe message was sent instead",
    );
    expect(asked).toEqual([[w.openId, "您好，有什么可以帮您？"]]);
    const subscribes = () => w.wechat.inbox(w.openId).filter((e) => e.kind === "subscribe");
    expect(subscribes()).toHaveLength(1);

    // WeChat's 45015 closed the window kefu-edge keeps: the bridge's own check stops the next reply
    // (saying no reply is left), and the one-time acceptance is used up: WeChat refuses the next
    // subscribe message with 43101.
    const calls = w.wechatCalls.length;
    const second = await w.cw.agentReplies(conversationId, "", { images: [PNG] });
    expect(statusOf(second.delivered)).toEqual([[200, "failed"]]);
    expect(w.wechatCalls.slice(calls)).toEqual(["/cgi-bin/message/subscribe/send"]);
    expect(second.message.external_error).toBe(
      "45047: the replies allowed since the user's last message are used up — the user has to write first; " +
        "the subscribe message failed too: " +
        "43101: the user has not accepted this template (or a one-time acceptance is used up)",
    );
    expect(asked.at(-1)).toEqual([w.openId, "[图片]"]);
    expect(subscribes()).toHaveLength(1);
    const refused = w.logger.lines.filter((l) => l.includes("kefu-edge.chatwoot_subscribe_fallback"));
    expect(refused.map((l) => JSON.parse(l)).map((l) => [l.sent, l.errcode])).toEqual([[true, undefined], [
      false,
      43101,
    ]]);

    // A fallback that returns nothing: the reason alone, as without a fallback.
    enabled = false;
    const third = await w.cw.agentReplies(conversationId, "再试一次");
    expect(third.message.external_error).toBe(
      "45047: the replies allowed since the user's last message are used up — the user has to write first",
    );
    expect(subscribes()).toHaveLength(1);
    for (const line of w.logger.lines) expect(line).not.toContain("有什么可以帮您");
    expect(w.cw.refusals).toEqual([]);
  });

  it("a malformed CHATWOOT_SUBSCRIBE_TEMPLATE is named in a 503, never shown", async () => {
    const cases = [
      ["not JSON {text}-SECRETISH", "must be JSON like"],
      [JSON.stringify({ template_id: "has spaces SECRETISH", data: { thing1: { value: "{text}" } } }), "template_id"],
      [JSON.stringify({ template_id: "T1", data: {} }), "data"],
    ] as const;
    for (const [value, named] of cases) {
      const w = world({ env: { CHATWOOT_SUBSCRIBE_TEMPLATE: value } });
      const webhook = await w.cw.sendWebhook({ event: "message_created" });
      expect(webhook.status).toBe(503);
      const error = JSON.parse(webhook.body).error as { code: string; variable: string; message: string };
      expect(error).toMatchObject({ code: "config_invalid", variable: "CHATWOOT_SUBSCRIBE_TEMPLATE" });
      expect(error.message).toContain(named);
      expect(webhook.body).not.toContain("SECRETISH");
      // The push route answers so too: WeChat retries once it is fixed.
      const outcome = await (await w.user.says("hi")).deliver((request) => w.app.fetch(request, w.env), {
        retries: 0,
      });
      expect(outcome.status).toBe(503);
      expect(JSON.parse(outcome.responseText!).error.variable).toBe("CHATWOOT_SUBSCRIBE_TEMPLATE");
      for (const line of w.logger.lines) expect(line).not.toContain("SECRETISH");
    }
  });

  it("a message a person holds gets no passive reply (TRANSFER_TO_KF), as before the bridge", async () => {
    const w = world({ onReply: () => Reply.transferCustomerService() });
    const first = await w.push(w.user.says("机器人在吗"));
    expect(first.reply).toContain("transfer_customer_service");
    await w.cw.agentReplies(w.conversation().id, "我是人工客服");
    const held = await w.push(w.user.says("好的"));
    expect([held.ok, held.reply]).toEqual([true, undefined]);
    expect(w.contents().at(-1)).toBe("incoming:好的");
  });

  it("WeChat's deletion event and DELETE /api/users/:openId delete the user's contact in Chatwoot", async () => {
    const w = world();
    await w.push(w.user.says("删除我的数据"));
    expect(w.cw.contacts).toHaveLength(1);
    const deleted = await w.api(`/api/users/${w.openId}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(w.cw.contacts).toHaveLength(0);
    expect(w.cw.conversations).toHaveLength(0);
    await w.push(w.user.says("又来了"));
    expect(w.cw.contacts).toHaveLength(1); // a new contact for the new conversation
    expect(w.contents()).toEqual(["incoming:又来了", "outgoing:🤖 收到：又来了"]);
    const revoke = await buildPush({ appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" }, {
      ToUserName: "gh_platform",
      FromUserName: "oPlatformPushAccount000000000",
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: "event",
      Event: "user_authorization_revoke",
      OpenID: w.openId,
      AppID: APP_ID,
      RevokeInfo: "301",
    });
    const ctx = createExecutionContext();
    expect(await (await w.app.fetch(revoke.request(), w.env, ctx)).text()).toBe("success");
    await waitOnExecutionContext(ctx);
    expect(w.cw.contacts).toHaveLength(0);
    expect(w.cw.refusals).toEqual([]);
  });
});
