// The conversation routes of /api inside workerd: history, handoff (with two agents at once),
// purge, the X-Kefu-Agent sender, and the push route keeping the bot out while a person answers.
import { describe, expect, it } from "vitest";
import { env as workerEnv } from "cloudflare:workers";
import { MemoryConversationStore } from "../../mod.ts";
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
