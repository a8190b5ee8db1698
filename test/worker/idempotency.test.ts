// Idempotency-Key on /api/messages and /api/typing: one upstream send per key, the same
// answer for a repeat, 422 for another body, 409 while the first runs; on Durable Objects
// (atomic) and on KV. Only an answer after which the message may have been sent is kept.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildPush } from "../../src/testing/mod.ts";
import { fakeFetch, json as jsonResponse, TOKEN_PATH } from "../cases/_fake.ts";
import { APP_ID, AUTH, call, errorOf, json, OPENID, PUSH_TOKEN, testApp, testEnv, textMessage } from "./_helpers.ts";

const SEND = "/cgi-bin/message/custom/send";
const TYPING = "/cgi-bin/message/custom/typing";
const message = (content: string, touser = OPENID) => ({ touser, msgtype: "text", text: { content } });
let keys = 0;
const freshKey = () => `order-42-reply-${Date.now()}-${keys++}`;

for (const [binding, extra] of [["Durable Objects", { KEFU_STORE: workerEnv.KEFU_STORE }], ["KV", {}]] as const) {
  describe(`Idempotency-Key (${binding})`, () => {
    it("the same key twice sends once and answers alike", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const init = () => json(message("你好"), { ...AUTH, "idempotency-key": key });
      const first = await call(app, "/api/messages", init(), env);
      const again = await call(app, "/api/messages", init(), env);
      expect(first.res.status).toBe(200);
      expect([again.res.status, again.text]).toEqual([200, first.text]);
      expect(again.res.headers.get("idempotent-replayed")).toBe("true");
      expect(fake.to(SEND)).toHaveLength(1);
      // The same body with its fields in another order is the same request.
      const reordered = JSON.stringify({ text: { content: "你好" }, msgtype: "text", touser: OPENID });
      const third = await call(app, "/api/messages", {
        method: "POST",
        body: reordered,
        headers: { ...AUTH, "content-type": "application/json", "idempotency-key": key },
      }, env);
      expect(third.res.status).toBe(200);
      expect(fake.to(SEND)).toHaveLength(1);
    });

    it("the same key with another body is 422 and sends nothing", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      await call(app, "/api/messages", json(message("one"), { ...AUTH, "idempotency-key": key }), env);
      const other = await call(app, "/api/messages", json(message("two"), { ...AUTH, "idempotency-key": key }), env);
      expect(other.res.status).toBe(422);
      expect(errorOf(other).code).toBe("idempotency_key_reused");
      expect(fake.to(SEND)).toHaveLength(1);
    });

    it("a refusal from WeChat (-1, 45015, 45047) is not kept: the same key sends again; a success replays", async () => {
      const answers = [
        { errcode: -1, errmsg: "system error rid: 1-2-3" },
        { errcode: 45047, errmsg: "out of response count limit rid: 1-2-4" },
        { errcode: 45015, errmsg: "response out of time limit rid: 1-2-5" },
        { errcode: 0, errmsg: "ok" },
      ];
      const fake = fakeFetch(() => jsonResponse(answers.shift() ?? { errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const send = () => call(app, "/api/messages", json(message("x"), { ...AUTH, "idempotency-key": key }), env);
      const failures = [await send(), await send(), await send()];
      expect(failures.map((f) => [f.res.status, errorOf(f).errcode])).toEqual([[502, -1], [502, 45047], [502, 45015]]);
      expect(failures.map((f) => f.res.headers.get("idempotent-replayed"))).toEqual([null, null, null]);
      const sent = await send();
      const again = await send();
      expect(sent.res.status).toBe(200);
      expect([again.res.status, again.text, again.res.headers.get("idempotent-replayed")]).toEqual([
        200,
        sent.text,
        "true",
      ]);
      expect(fake.to(SEND)).toHaveLength(4); // three refusals, one success, no second success
    });

    it("typing too; without the header nothing is kept", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const typing = () => json({ touser: OPENID, command: "Typing" }, { ...AUTH, "idempotency-key": key });
      await call(app, "/api/typing", typing(), env);
      await call(app, "/api/typing", typing(), env);
      expect(fake.to(TYPING)).toHaveLength(1);
      await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
      await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
      expect(fake.to(TYPING)).toHaveLength(3);
    });

    it("a malformed key is refused by name", async () => {
      const fake = fakeFetch();
      const called = await call(
        testApp({ fetch: fake.fetch }),
        "/api/messages",
        json(message("x"), { ...AUTH, "idempotency-key": "has space" }),
        testEnv(extra),
      );
      expect(called.res.status).toBe(400);
      expect(errorOf(called)).toMatchObject({ code: "validation_error", field: "Idempotency-Key" });
      expect(fake.to(SEND)).toHaveLength(0);
    });
  });
}

it("with Durable Objects, a repeat while the first still runs is 409 and sends nothing more", async () => {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sending = new Promise<void>((r) => (reached = r));
  const fake = fakeFetch(async () => {
    reached();
    await gate;
    return jsonResponse({ errcode: 0, errmsg: "ok" });
  });
  const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE });
  const key = freshKey();
  const first = call(
    testApp({ fetch: fake.fetch }),
    "/api/messages",
    json(message("slow"), { ...AUTH, "idempotency-key": key }),
    env,
  );
  await sending; // the first request holds the key and is sending
  const second = await call(
    testApp({ fetch: fake.fetch }),
    "/api/messages",
    json(message("slow"), { ...AUTH, "idempotency-key": key }),
    env,
  );
  expect(second.res.status).toBe(409);
  expect(errorOf(second).code).toBe("idempotency_in_progress");
  release();
  expect((await first).res.status).toBe(200);
  expect(fake.to(SEND)).toHaveLength(1);
});

describe("Idempotency-Key: what is kept", () => {
  const doEnv = (extra: Parameters<typeof testEnv>[0] = {}) => testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, ...extra });

  it("refused before any call (the window check's 409, a configuration error): the same key sends later", async () => {
    const answers = [{ errcode: 45015, errmsg: "response out of time limit" }];
    const fake = fakeFetch(() => jsonResponse(answers.shift() ?? { errcode: 0, errmsg: "ok" }));
    const app = testApp({ fetch: fake.fetch });
    const env = doEnv({ CHECK_WINDOW: "on" });
    const user = `oWindowUser${Date.now()}`; // a user of its own: no window known before
    // WeChat's 45015 tells the tracker the window is closed.
    await call(app, "/api/messages", json(message("closed", user), AUTH), env);
    const key = freshKey();
    const send = (vars = env) =>
      call(app, "/api/messages", json(message("later", user), { ...AUTH, "idempotency-key": key }), vars);
    const refused = await send();
    expect([refused.res.status, errorOf(refused).code]).toEqual([409, "out_of_window"]);
    const misconfigured = await send(doEnv({ CHECK_WINDOW: "maybe" }));
    expect([misconfigured.res.status, errorOf(misconfigured).code]).toEqual([503, "config_invalid"]);
    expect(fake.to(SEND)).toHaveLength(1);
    // The user writes again: the window opens, and the retry with the same key is sent.
    const push = await buildPush({ appId: APP_ID, token: PUSH_TOKEN, format: "xml" }, {
      ...textMessage("我又来了"),
      FromUserName: user,
    });
    expect((await call(app, push.request(), undefined, env)).text).toBe("success");
    const sent = await send();
    expect([sent.res.status, sent.res.headers.get("idempotent-replayed")]).toEqual([200, null]);
    expect(fake.to(SEND)).toHaveLength(2);
    expect((await send()).res.headers.get("idempotent-replayed")).toBe("true");
    expect(fake.to(SEND)).toHaveLength(2);
  });

  it("an access token that could not be had (network error at the token endpoint): the same key sends later", async () => {
    const fake = fakeFetch();
    let tokenDown = true;
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (tokenDown && url.pathname === TOKEN_PATH) return Promise.reject(new TypeError("connection refused"));
      return fake.fetch(input, init);
    }) as typeof fetch;
    const app = testApp({ fetch: fetchFn, retry: { maxRetries: 0 } });
    // An AppID of its own: no access token cached for it in KV by other tests.
    const env = doEnv({ WECHAT_APPID: `wxtoken${Date.now()}` });
    const key = freshKey();
    const send = () => call(app, "/api/messages", json(message("x"), { ...AUTH, "idempotency-key": key }), env);
    const failed = await send();
    expect([failed.res.status, errorOf(failed).code]).toEqual([502, "upstream_unreachable"]);
    expect(fake.to(SEND)).toHaveLength(0);
    tokenDown = false;
    expect((await send()).res.status).toBe(200);
    expect(fake.to(SEND)).toHaveLength(1);
  });

  it("a timeout or a network error after the send left is kept: the retry is answered alike, nothing sent again", async () => {
    let mode: "hang" | "reset" = "hang";
    const fake = fakeFetch((request) => {
      if (mode === "reset") return Promise.reject(new TypeError("connection reset"));
      return new Promise<Response>((_resolve, reject) =>
        request.signal.addEventListener("abort", () => reject(request.signal.reason))
      );
    });
    const app = testApp({ fetch: fake.fetch, timeoutMs: 200 });
    const env = doEnv();
    for (const [expected, code] of [["hang", "upstream_timeout"], ["reset", "upstream_unreachable"]] as const) {
      mode = expected;
      const key = freshKey();
      const send = () => call(app, "/api/messages", json(message(code), { ...AUTH, "idempotency-key": key }), env);
      const before = fake.to(SEND).length;
      const first = await send();
      expect(errorOf(first).code).toBe(code);
      const again = await send();
      expect([again.res.status, again.text, again.res.headers.get("idempotent-replayed")]).toEqual([
        first.res.status,
        first.text,
        "true",
      ]);
      expect(fake.to(SEND).length - before).toBe(1);
    }
  });
});
