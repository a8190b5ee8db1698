// The conversation routes of /api inside workerd: history, handoff (with two agents at once),
// purge, the X-Kefu-Agent sender, and the push route keeping the bot out while a person answers.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type ConversationPage, MemoryConversationStore } from "../../mod.ts";
import { buildPush, createEmulator } from "../../src/testing/mod.ts";
import { deadLetterOf, type KefuApp, kvDeadLetters, type KvListNamespace } from "../../worker/mod.ts";
import {
  AES_KEY,
  APP_ID,
  AUTH,
  call,
  errorOf,
  json,
  OPENID,
  PUSH_TOKEN,
  SECRET,
  testApp,
  testEnv,
  textMessage,
} from "./_helpers.ts";

const SAFE = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" as const };

function setup() {
  const conversations = new MemoryConversationStore();
  const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET });
  const handled: string[] = [];
  const app = testApp({
    conversations: () => conversations,
    fetch: wechat.fetch,
    onMessage: (message) => void handled.push(String(message.Content)),
  }) as KefuApp;
  const env = testEnv({ WECHAT_AES_KEY: AES_KEY });
  const push = async (content: string) => {
    const built = await buildPush(SAFE, textMessage(content));
    return await call(app, built.request(), undefined, env);
  };
  return { app, env, conversations, wechat, handled, push };
}

const base = `/api/users/${OPENID}`;

describe("conversations over /api", () => {
  it("history: newest first, paged; fields named on bad input; unknown users 404", async () => {
    const { app, env, push } = setup();
    for (const text of ["一", "二", "三"]) expect((await push(text)).text).toBe("success");
    const page = await call(app, `${base}/messages?limit=2`, { headers: AUTH }, env);
    expect(page.res.status).toBe(200);
    const body = JSON.parse(page.text) as { entries: { text: string; seq: number }[]; before: number };
    expect(body.entries.map((e) => e.text)).toEqual(["三", "二"]);
    const next = await call(app, `${base}/messages?limit=2&before=${body.before}`, { headers: AUTH }, env);
    expect(JSON.parse(next.text)).toMatchObject({ entries: [{ text: "一" }], before: null });
    for (const [query, field] of [["limit=0", "limit"], ["limit=201", "limit"], ["before=abc", "before"]]) {
      const bad = await call(app, `${base}/messages?${query}`, { headers: AUTH }, env);
      expect(bad.res.status).toBe(400);
      expect(errorOf(bad).field).toBe(field);
    }
    const unknown = await call(app, "/api/users/o-never-seen-user-0000000000/messages", { headers: AUTH }, env);
    expect(unknown.res.status).toBe(404);
    expect((await call(app, `${base}/messages`, {}, env)).res.status).toBe(401);
  });

  it("handoff: an agent takes over, the bot stops, a second agent gets 409, hand back", async () => {
    const { app, env, push, handled } = setup();
    await push("你好");
    expect(handled).toEqual(["你好"]);
    const take = (agent: string) =>
      call(app, `${base}/handoff`, {
        ...json({ state: "human", agent, reason: "VIP" }),
        method: "PUT",
        headers: {
          ...AUTH,
          "content-type": "application/json",
        },
      }, env);
    const [a, b] = await Promise.all([take("alice"), take("bob")]);
    expect([a.res.status, b.res.status].sort()).toEqual([200, 409]);
    const winner = a.res.status === 200 ? "alice" : "bob";
    expect(errorOf(a.res.status === 409 ? a : b).code).toBe("handoff_conflict");
    expect((await take(winner)).res.status).toBe(200); // taking what one holds already is fine
    await push("在吗？");
    expect(handled).toEqual(["你好"]); // the bot stayed out
    const state = await call(app, `${base}/handoff`, { headers: AUTH }, env);
    expect(JSON.parse(state.text)).toMatchObject({ state: "human", agent: winner });
    const back = await call(app, `${base}/handoff`, {
      ...json({ state: "bot", agent: winner }),
      method: "PUT",
      headers: { ...AUTH, "content-type": "application/json" },
    }, env);
    expect(back.res.status).toBe(200);
    await push("谢谢");
    expect(handled).toEqual(["你好", "谢谢"]);
    const bad = await call(app, `${base}/handoff`, {
      ...json({ state: "robot" }),
      method: "PUT",
      headers: { ...AUTH, "content-type": "application/json" },
    }, env);
    expect(errorOf(bad).field).toBe("state");
  });

  it("a send with X-Kefu-Agent is recorded as that agent's; a bad header is refused naming it", async () => {
    const { app, env, push, wechat } = setup();
    await wechat.user(OPENID).says("hi"); // the emulated WeChat's own window
    await push("hi");
    const sent = await call(
      app,
      "/api/messages",
      json({ touser: OPENID, msgtype: "text", text: { content: "您好" } }, {
        ...AUTH,
        "x-kefu-agent": "alice",
      }),
      env,
    );
    expect(sent.res.status).toBe(200);
    expect(wechat.inbox(OPENID).map((e) => e.kind)).toEqual(["message"]);
    const history = JSON.parse((await call(app, `${base}/messages?limit=1`, { headers: AUTH }, env)).text);
    expect(history.entries[0]).toMatchObject({ sender: "agent:alice", text: "您好", outcome: "ok" });
    const bad = await call(
      app,
      "/api/messages",
      json({ touser: OPENID, msgtype: "text", text: { content: "x" } }, {
        ...AUTH,
        "x-kefu-agent": "",
      }),
      env,
    );
    expect(errorOf(bad).field).toBe("X-Kefu-Agent");
  });

  it("DELETE purges the user (204, idempotent); the history is then 404", async () => {
    const { app, env, push } = setup();
    await push("delete me");
    for (let i = 0; i < 2; i++) {
      const deleted = await call(app, base, { method: "DELETE", headers: AUTH }, env);
      expect(deleted.res.status).toBe(204);
    }
    expect((await call(app, `${base}/messages`, { headers: AUTH }, env)).res.status).toBe(404);
    expect((await call(app, `${base}/handoff`, { headers: AUTH }, env)).res.status).toBe(404);
  });

  it("without a conversation store the routes answer 503 naming what to bind", async () => {
    const app = testApp({}) as KefuApp;
    const res = await call(app, `${base}/messages`, { headers: AUTH }, testEnv());
    expect(res.res.status).toBe(503);
    expect(errorOf(res)).toMatchObject({ code: "conversations_not_configured", variable: "KEFU_STORE" });
  });

  it("with KEFU_STORE bound, the shipped app keeps conversations in the Durable Objects by default", async () => {
    const wechat = createEmulator({ appId: APP_ID, appSecret: SECRET });
    const handled: string[] = [];
    const app = testApp({ fetch: wechat.fetch, onMessage: (m) => void handled.push(String(m.Content)) }) as KefuApp;
    const env = testEnv({ WECHAT_AES_KEY: AES_KEY, KEFU_STORE: workerEnv.KEFU_STORE });
    const openId = `oDefaultConv${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const user = `/api/users/${openId}`;
    const built = await buildPush(SAFE, { ...textMessage("默认会话"), FromUserName: openId });
    expect((await call(app, built.request(), undefined, env)).text).toBe("success");
    const page = await call(app, `${user}/messages`, { headers: AUTH }, env);
    expect(page.res.status).toBe(200);
    expect(JSON.parse(page.text)).toMatchObject({ entries: [{ sender: "user", text: "默认会话" }] });
    // A person takes over: the next message is kept, and the bot is not called.
    const take = await call(app, `${user}/handoff`, {
      ...json({ state: "human", agent: "alice" }),
      method: "PUT",
      headers: { ...AUTH, "content-type": "application/json" },
    }, env);
    expect(take.res.status).toBe(200);
    const next = await buildPush(SAFE, { ...textMessage("人呢"), FromUserName: openId });
    expect((await call(app, next.request(), undefined, env)).text).toBe("success");
    expect(handled).toEqual(["默认会话"]);
  });

  it("a HISTORY_DAYS that is not a whole number from 1 to 3650 answers 503 naming it", async () => {
    const app = testApp({}) as KefuApp;
    for (const value of ["0", "3651", "9999", "7d", "1.5"]) {
      const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, HISTORY_DAYS: value });
      const res = await call(app, `${base}/messages`, { headers: AUTH }, env);
      expect(res.res.status, value).toBe(503);
      expect(errorOf(res), value).toMatchObject({ code: "config_invalid", variable: "HISTORY_DAYS" });
    }
    for (const value of ["1", "7", "3650"]) {
      const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, HISTORY_DAYS: value });
      const res = await call(app, "/api/users/o-never-seen-user-0000000000/messages", { headers: AUTH }, env);
      expect(res.res.status, value).toBe(404);
    }
  });

  it("a user's dead letters go with the user: on WeChat's deletion event, and on DELETE", async () => {
    const letters = kvDeadLetters(workerEnv.WECHAT_KV as unknown as KvListNamespace);
    const users = ["oDeadLetterRevoked000000001", "oDeadLetterDeleted000000002", "oDeadLetterKept00000000003"];
    const ids = users.map(() => crypto.randomUUID().replaceAll("-", ""));
    for (const [i, openId] of users.entries()) {
      const job = {
        v: 2,
        deliveryId: ids[i],
        message: { MsgType: "text", FromUserName: openId, Content: "手机号 138…" },
      };
      await letters.put(deadLetterOf(job, "m", { days: 7, now: Date.now }));
    }
    const { app, env } = setup();
    const revoke = await buildPush(SAFE, {
      ToUserName: "gh_platform",
      FromUserName: "oPlatformPushAccount000000000",
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: "event",
      Event: "user_authorization_revoke",
      OpenID: users[0]!,
      AppID: APP_ID,
      RevokeInfo: "301",
    });
    expect((await call(app, revoke.request(), undefined, env)).text).toBe("success");
    expect(await letters.get(ids[0]!)).toBeNull();
    const deleted = await call(app, `/api/users/${users[1]}`, { method: "DELETE", headers: AUTH }, env);
    expect(deleted.res.status).toBe(204);
    expect(await letters.get(ids[1]!)).toBeNull();
    expect((await letters.get(ids[2]!))?.id, "another user's letter stays").toBe(ids[2]);
  });
});

describe("GET /api/conversations (the shipped default: conversations in KEFU_STORE's Durable Objects)", () => {
  let apps = 0;
  function setupList() {
    const appId = `wxapilist${Date.now().toString(36)}${apps++}`;
    const app = testApp({}) as KefuApp;
    const env = testEnv({ WECHAT_APPID: appId, KEFU_STORE: workerEnv.KEFU_STORE });
    const push = async (openId: string, content: string) => {
      const built = await buildPush({ appId, token: PUSH_TOKEN }, { ...textMessage(content), FromUserName: openId });
      const called = await call(app, built.request(), undefined, env);
      expect(called.text).toBe("success");
      await called.settled();
    };
    const list = (query = "") => call(app, `/api/conversations${query}`, { headers: AUTH }, env);
    const page = async (query = "") => {
      const called = await list(query);
      expect(called.res.status).toBe(200);
      expect(called.res.headers.get("cache-control")).toBe("no-store");
      return JSON.parse(called.text) as ConversationPage;
    };
    /** The first page once it lists `openIds` (the users' objects tell the directory after answering). */
    const listed = async (openIds: string[], query = "") => {
      const deadline = Date.now() + 5000;
      for (;;) {
        const found = await page(query);
        const got = found.conversations.map((c) => c.openId);
        if (JSON.stringify(got) === JSON.stringify(openIds) || Date.now() > deadline) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const handoff = (openId: string, body: unknown) =>
      call(app, `/api/users/${openId}/handoff`, {
        ...json(body),
        method: "PUT",
        headers: { ...AUTH, "content-type": "application/json" },
      }, env);
    return { app, env, push, list, page, listed, handoff };
  }
  const user = (i: number) => `o9AgO5Kd5ggOC-bXrbNODIiE3b${String(i).padStart(2, "0")}`;

  it("most recent activity first, each with its last message's preview, unread, window and handoff", async () => {
    const { push, listed } = setupList();
    for (const [i, text] of [[1, "一"], [2, "二"], [3, "三"], [1, "再来一次"]] as const) {
      await push(user(i), text);
      await new Promise((r) => setTimeout(r, 3));
    }
    const page = await listed([user(1), user(3), user(2)]);
    expect(page.conversations.map((c) => c.openId)).toEqual([user(1), user(3), user(2)]);
    expect(page.nextCursor).toBeNull();
    const [first] = page.conversations;
    expect(first).toMatchObject({
      lastMessage: { sender: "user", msgType: "text", text: "再来一次", seq: 2 },
      unread: 2,
      window: { kind: "message", remaining: 5 },
      handoff: { state: "bot" },
    });
    expect(first!.lastActivityAt).toBe(first!.lastMessage!.at);
    expect(first!.window!.expiresAt).toBeGreaterThan(Date.now());
  });

  it("filters by state, pages with each conversation once while pushes arrive, and forgets a purged user at once", async () => {
    const { push, page, listed, handoff, app, env } = setupList();
    for (let i = 0; i < 5; i++) {
      await push(user(i), `消息 ${i}`);
      await new Promise((r) => setTimeout(r, 3));
    }
    await listed([4, 3, 2, 1, 0].map(user));
    expect((await handoff(user(1), { state: "waiting", reason: "asked for a person" })).res.status).toBe(200);
    expect((await handoff(user(3), { state: "human", agent: "alice" })).res.status).toBe(200);
    expect((await listed([3, 1, 4, 2, 0].map(user))).conversations.length).toBe(5);
    expect((await listed([user(1)], "?state=waiting")).conversations.map((c) => c.handoff.state)).toEqual(["waiting"]);
    const human = await listed([user(3)], "?state=human");
    expect(human.conversations[0]!.handoff).toMatchObject({ state: "human", agent: "alice" });
    expect((await listed([user(4), user(2), user(0)], "?state=bot")).conversations.length).toBe(3);
    expect((await page("?state=closed")).conversations).toEqual([]);
    // Two at a time; between pages the last of the walk and a new user write.
    const first = await page("?limit=2");
    expect(first.conversations.map((c) => c.openId)).toEqual([user(3), user(1)]);
    expect(first.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    await push(user(0), "又来了");
    await push(user(9), "新用户");
    // A new walk sees them moved (the directory has the changes); the first walk goes on as it began.
    expect((await listed([9, 0, 3, 1, 4, 2].map(user))).conversations.length).toBe(6);
    const seen = [...first.conversations];
    let cursor = first.nextCursor;
    while (cursor !== null) {
      const next = await page(`?limit=2&cursor=${cursor}`);
      seen.push(...next.conversations);
      cursor = next.nextCursor;
    }
    expect(seen.map((c) => c.openId)).toEqual([user(3), user(1), user(4), user(2), user(0)]);
    expect(seen.at(-1)!.lastMessage?.text).toBe("又来了");
    const deleted = await call(app, `/api/users/${user(2)}`, { method: "DELETE", headers: AUTH }, env);
    expect(deleted.res.status).toBe(204);
    const after = await page();
    expect(after.conversations.map((c) => c.openId)).toEqual([user(9), user(0), user(3), user(1), user(4)]);
    expect(after.conversations.some((c) => c.lastMessage?.text === "消息 2")).toBe(false);
  });

  it("refuses bad state, limit and cursor naming the field, and answers 401 without the key", async () => {
    const { list, app, env, push, listed } = setupList();
    await push(user(1), "hi");
    const { nextCursor } = await listed([user(1)], "?limit=1");
    expect(nextCursor).toBeNull();
    const cases: [string, string][] = [
      ["state=robot", "state"],
      ["state=", "state"],
      ["limit=0", "limit"],
      ["limit=201", "limit"],
      ["limit=abc", "limit"],
      ["cursor=not%20a%20cursor", "cursor"],
      ["cursor=e30", "cursor"], // "{}", not a page's cursor
      [`cursor=${"A".repeat(401)}`, "cursor"],
    ];
    for (const [query, field] of cases) {
      const bad = await list(`?${query}`);
      expect(bad.res.status, query).toBe(400);
      expect(errorOf(bad), query).toMatchObject({ code: "validation_error", field });
    }
    const anonymous = await call(app, "/api/conversations", {}, env);
    expect(anonymous.res.status).toBe(401);
    expect(anonymous.text).not.toContain(user(1));
  });

  it("answers 503 naming KEFU_STORE without a conversation store", async () => {
    const res = await call(testApp({}) as KefuApp, "/api/conversations", { headers: AUTH }, testEnv());
    expect(res.res.status).toBe(503);
    expect(errorOf(res)).toMatchObject({ code: "conversations_not_configured", variable: "KEFU_STORE" });
  });
});
