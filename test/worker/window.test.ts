// The send window over HTTP, inside workerd: what the tracker knows after verified pushes,
// 409 out_of_window, concurrent sends on the Durable Object spending the last message once,
// subscribe messages, and the business and AI-label fields.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import { AES_KEY, APP_ID, AUTH, call, errorOf, json, PUSH_TOKEN, testApp, testEnv } from "./_helpers.ts";

const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "json" };
const SEND = "/cgi-bin/message/custom/send";
let users = 0;
const newUser = () => `o-window-user-${Date.now().toString(36)}-${users++}`;

function push(openId: string, kind: "text" | "session") {
  const base = { ToUserName: "gh_97417a04a28d", FromUserName: openId, CreateTime: Math.floor(Date.now() / 1000) };
  return buildPush(
    SAFE,
    kind === "text"
      ? { ...base, MsgType: "text", Content: "hi", MsgId: String(7380000000000000001n + BigInt(users)) }
      : { ...base, MsgType: "event", Event: "user_enter_tempsession", SessionFrom: "button" },
  );
}

for (const [binding, extra] of [["Durable Objects", { KEFU_STORE: workerEnv.KEFU_STORE }], ["KV", {}]] as const) {
  describe(`send window (${binding})`, () => {
    it("GET /api/users/:openId/window: unknown, then what a verified message opened, then spent by sends", async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv({ WECHAT_AES_KEY: AES_KEY, ...extra });
      const openId = newUser();
      const before = await call(app, `/api/users/${openId}/window`, { headers: AUTH }, env);
      expect(JSON.parse(before.text)).toEqual({ window: null });
      const delivered = await push(openId, "text");
      expect((await call(app, delivered.request(), undefined, env)).text).toBe("success");
      const opened = JSON.parse((await call(app, `/api/users/${openId}/window`, { headers: AUTH }, env)).text);
      expect(opened.window).toMatchObject({ kind: "message", remaining: 5 });
      expect(opened.window.expiresAt).toBeGreaterThan(Date.now() + 47 * 3600_000);
      await call(app, "/api/messages", json({ touser: openId, msgtype: "text", text: { content: "1" } }, AUTH), env);
      const after = JSON.parse((await call(app, `/api/users/${openId}/window`, { headers: AUTH }, env)).text);
      expect(after.window.remaining).toBe(4);
      const bad = await call(app, "/api/users/..%2Fx/window", { headers: AUTH }, env);
      expect(bad.res.status).toBe(400);
    });

    it("POST /api/messages answers 409 out_of_window, with the window and no upstream call, when checking is on", async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const openId = newUser();
      const env = testEnv({ WECHAT_AES_KEY: AES_KEY, ...extra });
      await call(app, (await push(openId, "session")).request(), undefined, env); // 2 messages
      const message = { touser: openId, msgtype: "text", text: { content: "hi" } };
      for (let i = 0; i < 2; i++) {
        expect((await call(app, "/api/messages", json(message, AUTH), env)).res.status).toBe(200);
      }
      const refused = await call(app, "/api/messages", json({ ...message, checkWindow: true }, AUTH), env);
      expect(refused.res.status).toBe(409);
      expect(errorOf(refused)).toMatchObject({ code: "out_of_window", window: { kind: "session", remaining: 0 } });
      const byEnv = await call(app, "/api/messages", json(message, AUTH), testEnv({ ...env, CHECK_WINDOW: "on" }));
      expect(byEnv.res.status).toBe(409);
      expect(fake.to(SEND)).toHaveLength(2);
    });
  });
}

it("concurrent sends on the Durable Object spend the last message once", async () => {
  for (let round = 0; round < 3; round++) {
    const fake = fakeFetch();
    const env = testEnv({ WECHAT_AES_KEY: AES_KEY, KEFU_STORE: workerEnv.KEFU_STORE, CHECK_WINDOW: "on" });
    const openId = newUser();
    await call(testApp({ fetch: fake.fetch }), (await push(openId, "session")).request(), undefined, env);
    // Six sends from six "isolates" at once, for a window of two.
    const answers = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          call(
            testApp({ fetch: fake.fetch }),
            "/api/messages",
            json({ touser: openId, msgtype: "text", text: { content: "x" } }, AUTH),
            env,
          ),
      ),
    );
    expect(answers.map((a) => a.res.status).sort()).toEqual([200, 200, 409, 409, 409, 409]);
    expect(fake.to(SEND)).toHaveLength(2);
  }
});

describe("POST /api/subscribe-messages", () => {
  it("sends WeChat's body and answers its result with an exact msgid", async () => {
    const fake = fakeFetch(() =>
      new Response('{"errcode":0,"errmsg":"ok","msgid":1700827132819554304}', {
        headers: { "content-type": "application/json" },
      })
    );
    const body = {
      touser: newUser(),
      template_id: "T-order",
      page: "pages/a",
      data: { thing1: { value: "Order 42" } },
    };
    const called = await call(testApp({ fetch: fake.fetch }), "/api/subscribe-messages", json(body, AUTH), testEnv());
    expect(called.res.status).toBe(200);
    expect(JSON.parse(called.text)).toEqual({ errcode: 0, errmsg: "ok", msgid: "1700827132819554304" });
    expect(JSON.parse(fake.to("/cgi-bin/message/subscribe/send")[0]!.body)).toEqual(body);
  });

  it("names the bad field; answers 502 with WeChat's errcode", async () => {
    const fake = fakeFetch(() => jsonResponse({ errcode: 43101, errmsg: "user refuse to accept the msg" }));
    const app = testApp({ fetch: fake.fetch });
    const bad = await call(
      app,
      "/api/subscribe-messages",
      json({ touser: newUser(), template_id: "T", data: { a: { value: 1 } } }, AUTH),
      testEnv(),
    );
    expect([bad.res.status, errorOf(bad).field]).toEqual([400, "data.a.value"]);
    const extra = await call(
      app,
      "/api/subscribe-messages",
      json({ touser: newUser(), template_id: "T", data: { a: { value: "x" } }, x: 1 }, AUTH),
      testEnv(),
    );
    expect([extra.res.status, errorOf(extra).field]).toEqual([400, "x"]);
    expect(fake.to("/cgi-bin/message/subscribe/send")).toHaveLength(0);
    const refused = await call(
      app,
      "/api/subscribe-messages",
      json({ touser: newUser(), template_id: "T", data: { a: { value: "x" } } }, AUTH),
      testEnv(),
    );
    expect([refused.res.status, errorOf(refused).errcode]).toEqual([502, 43101]);
  });
});

it("businessid and aimsgcontext reach WeChat on the business paths", async () => {
  const fake = fakeFetch();
  const app = testApp({ fetch: fake.fetch });
  const openId = newUser();
  await call(
    app,
    "/api/messages",
    json({
      touser: openId,
      msgtype: "text",
      text: { content: "hi" },
      businessid: "9001",
      aimsgcontext: { is_ai_msg: 1 },
    }, AUTH),
    testEnv(),
  );
  await call(app, "/api/typing", json({ touser: openId, command: "Typing", businessid: "9001" }, AUTH), testEnv());
  expect(
    fake.calls.filter((c) => c.url.pathname !== "/cgi-bin/stable_token").map((
      c,
    ) => [c.url.pathname, JSON.parse(c.body)]),
  ).toEqual([
    ["/cgi-bin/message/custom/business/send", {
      touser: openId,
      msgtype: "text",
      text: { content: "hi" },
      businessid: "9001",
      aimsgcontext: { is_ai_msg: 1 },
    }],
    ["/cgi-bin/message/custom/business/typing", { touser: openId, command: "Typing", businessid: "9001" }],
  ]);
  const bad = await call(
    app,
    "/api/messages",
    json({ touser: openId, msgtype: "text", text: { content: "hi" }, aimsgcontext: { is_ai_msg: 2 } }, AUTH),
    testEnv(),
  );
  expect([bad.res.status, errorOf(bad).field]).toEqual([400, "aimsgcontext"]);
});
