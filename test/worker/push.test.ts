import { env as workerEnv } from "cloudflare:workers";
import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { MemoryConversationStore, MemoryStore, MessageCrypto, type PushMessage } from "../../mod.ts";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import type { AppOptions } from "../../worker/app.ts";
import { verifyForward } from "../../worker/forward.ts";
import { fakeFetch, type FakeHandler, json as jsonResponse } from "../cases/_fake.ts";
import {
  AES_KEY,
  API_KEY,
  APP_ID,
  brokenKv,
  call,
  errorOf,
  expectCleanLogs,
  json,
  OPENID,
  PUSH_TOKEN,
  recordingLogger,
  testApp,
  testEnv,
  textMessage,
} from "./_helpers.ts";
// The official vectors of WeChat's message-push documentation (test/fixtures/README.md).
import vectors from "../fixtures/official_push.json" with { type: "json" };

beforeEach(() => reset());

const SEND = "/cgi-bin/message/custom/send";
const FORWARD_URL = "https://hooks.example.com/kefu?team=1";
const FORWARD_SECRET = "forward-secret-0123456789";
const PLAIN: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, format: "xml" };
const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "json" };

let events = 0;
function enterSession() {
  return {
    ToUserName: "gh_97417a04a28d",
    FromUserName: OPENID,
    CreateTime: Math.floor(Date.now() / 1000) + (events++ % 1000),
    MsgType: "event",
    Event: "user_enter_tempsession",
    SessionFrom: "button",
  };
}

/** Upstream for WeChat plus a forward target at hooks.example.com answering with `forward`. */
function upstream(forward: FakeHandler = () => new Response("ok")) {
  return fakeFetch((request, url, index) =>
    url.hostname === "hooks.example.com" ? forward(request, url, index) : jsonResponse({ errcode: 0, errmsg: "ok" })
  );
}

function app(options: AppOptions) {
  return testApp(options);
}

/** The dedupe marks in KV (plain mode also keeps one `:query:` entry per accepted query). */
async function marks(): Promise<string[]> {
  const listed = await workerEnv.WECHAT_KV.list({ prefix: "kefu-edge:push:" });
  return listed.keys.map((k) => k.name).filter((name) => !name.includes(":query:"));
}

describe("GET /wechat/callback (URL verification)", () => {
  const v = vectors.url_verification;
  const env = () => testEnv({ WECHAT_TOKEN: v.token });

  it("echoes echostr for the official vector", async () => {
    const query = `signature=${v.signature}&timestamp=${v.timestamp}&nonce=${v.nonce}&echostr=${v.echostr}`;
    const called = await call(app({ fetch: upstream().fetch }), `/wechat/callback?${query}`, undefined, env());
    expect(called.res.status).toBe(200);
    expect(called.text).toBe(v.echostr);
  });

  it("refuses a wrong signature without echoing", async () => {
    const query = `signature=${"0".repeat(40)}&timestamp=${v.timestamp}&nonce=${v.nonce}&echostr=${v.echostr}`;
    const called = await call(app({ fetch: upstream().fetch }), `/wechat/callback?${query}`, undefined, env());
    expect(called.res.status).toBe(401);
    expect(called.text).not.toContain(v.echostr);
    expect(errorOf(called).code).toBe("bad_signature");
  });
});

describe("POST /wechat/callback (verification)", () => {
  it("accepts the official plain-mode vector", async () => {
    const v = vectors.plain_post;
    const seen: PushMessage[] = [];
    const a = app({
      fetch: upstream().fetch,
      now: () => Number(v.timestamp) * 1000,
      onMessage: (m) => void seen.push(m),
    });
    const called = await call(
      a,
      `/wechat/callback?signature=${v.signature}&timestamp=${v.timestamp}&nonce=${v.nonce}`,
      { method: "POST", body: v.body, headers: { "content-type": "application/json" } },
      testEnv({ WECHAT_TOKEN: v.token }),
    );
    expect(called.res.status).toBe(200);
    expect(called.text).toBe("success");
    expect(seen).toMatchObject([{ MsgType: "event", Event: "debug_demo", debug_str: "hello world" }]);
  });

  it("decrypts the official safe-mode vector", async () => {
    const v = vectors.safe_post;
    const seen: Array<{ message: PushMessage; encrypted: boolean }> = [];
    const a = app({
      fetch: upstream().fetch,
      now: () => 1714112445 * 1000,
      onMessage: (message, context) => void seen.push({ message, encrypted: context.encrypted }),
    });
    const called = await call(
      a,
      `/wechat/callback?${v.query}`,
      { method: "POST", body: v.body, headers: { "content-type": "application/json" } },
      testEnv({ WECHAT_APPID: v.appId, WECHAT_TOKEN: v.token, WECHAT_AES_KEY: v.encodingAESKey }),
    );
    expect(called.res.status).toBe(200);
    expect(called.text).toBe("success");
    expect(seen).toEqual([{ message: JSON.parse(v.decrypted), encrypted: true }]);
  });

  it("refuses a tampered body, a wrong msg_signature and a stale timestamp", async () => {
    let runs = 0;
    const a = app({ fetch: upstream().fetch, onMessage: () => void runs++ });
    const env = testEnv({ WECHAT_AES_KEY: AES_KEY });
    const push = await buildPush(SAFE, textMessage());
    const tampered = await call(a, push.url, {
      method: "POST",
      // Another first character (a random ciphertext starts with "A" one time in 64).
      body: push.body.replace(/"Encrypt":"(.)/, (_, first) => `"Encrypt":"${first === "A" ? "B" : "A"}`),
      headers: { "content-type": "application/json" },
    }, env);
    expect(tampered.res.status).toBe(401);
    const stale = await buildPush(SAFE, textMessage(), { timestamp: String(Math.floor(Date.now() / 1000) - 3600) });
    const old = await call(a, stale.request(), undefined, env);
    expect(old.res.status).toBe(401);
    expect(errorOf(old).code).toBe("stale_timestamp");
    expect(runs).toBe(0);
    expect(await marks()).toEqual([]);
  });

  for (const method of ["GET", "POST"]) {
    it(`${method}: fails closed with 503 naming WECHAT_TOKEN when it is unset`, async () => {
      let runs = 0;
      const fake = upstream();
      const a = app({ fetch: fake.fetch, onMessage: () => void runs++ });
      const push = await buildPush(PLAIN, textMessage());
      const url = method === "GET" ? `${push.url}&echostr=123` : push.url;
      const init = method === "GET" ? undefined : { method: "POST", body: push.body };
      for (const env of [testEnv({ WECHAT_TOKEN: undefined }), testEnv({ WECHAT_TOKEN: "" })]) {
        const called = await call(a, url, init, env);
        expect(called.res.status).toBe(503);
        expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "WECHAT_TOKEN" });
        expect(called.text).not.toContain("123");
      }
      expect(runs).toBe(0);
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("works without WECHAT_SECRET (the receiver needs none)", async () => {
    const a = app({ fetch: upstream().fetch });
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(a, push.request(), undefined, testEnv({ WECHAT_SECRET: undefined }));
    expect(called.res.status).toBe(200);
    expect(called.text).toBe("success");
  });
});

describe("dedupe through KV", () => {
  it("runs the handler once for a retried message, across two app instances", async () => {
    let runs = 0;
    const onMessage = () => void runs++;
    const push = await buildPush(PLAIN, textMessage());
    const first = await call(app({ fetch: upstream().fetch, onMessage }), push.request(), undefined, testEnv());
    const second = await call(app({ fetch: upstream().fetch, onMessage }), push.request(), undefined, testEnv());
    expect([first.text, second.text]).toEqual(["success", "success"]);
    expect(runs).toBe(1);
    expect(await marks()).toHaveLength(1);
  });

  it("replays a transfer reply for a retried message without rerunning the handler", async () => {
    let runs = 0;
    const env = testEnv({ TRANSFER_TO_KF: "on" });
    const push = await buildPush(PLAIN, textMessage());
    const first = await call(app({ fetch: upstream().fetch }), push.request(), undefined, env);
    const second = await call(
      app({
        fetch: upstream().fetch,
        onMessage: () => void runs++,
      }),
      push.request(),
      undefined,
      env,
    );
    expect(first.text).toContain("transfer_customer_service");
    expect(second.text).toContain("transfer_customer_service");
    expect(runs).toBe(0);
  });

  it("a failing KV binding does not fail the push", async () => {
    const logger = recordingLogger();
    let runs = 0;
    const a = testApp({ fetch: upstream().fetch, logger, onMessage: () => void runs++ });
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(a, push.request(), undefined, testEnv({ WECHAT_KV: brokenKv }));
    expect(called.res.status).toBe(200);
    expect(called.text).toBe("success");
    expect(runs).toBe(1);
    expectCleanLogs(logger.lines);
  });
});

describe("TRANSFER_TO_KF=on", () => {
  it("answers a user message with transfer_customer_service (plain XML)", async () => {
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(
      app({ fetch: upstream().fetch }),
      push.request(),
      undefined,
      testEnv({
        TRANSFER_TO_KF: "on",
      }),
    );
    expect(called.res.status).toBe(200);
    expect(called.text).toContain("<MsgType><![CDATA[transfer_customer_service]]></MsgType>");
    expect(called.text).toContain(`<ToUserName><![CDATA[${OPENID}]]></ToUserName>`);
  });

  it("encrypts the reply in safe mode", async () => {
    const push = await buildPush(SAFE, textMessage());
    const called = await call(
      app({ fetch: upstream().fetch }),
      push.request(),
      undefined,
      testEnv({
        TRANSFER_TO_KF: "on",
        WECHAT_AES_KEY: AES_KEY,
      }),
    );
    expect(called.res.status).toBe(200);
    const envelope = JSON.parse(called.text) as {
      Encrypt: string;
      MsgSignature: string;
      TimeStamp: number;
      Nonce: string;
    };
    const crypto = new MessageCrypto({ token: PUSH_TOKEN, encodingAESKey: AES_KEY, appId: APP_ID });
    expect(envelope.MsgSignature).toBe(
      await crypto.signature(String(envelope.TimeStamp), envelope.Nonce, envelope.Encrypt),
    );
    expect(await crypto.decrypt(envelope.Encrypt)).toContain("transfer_customer_service");
    expect(called.text).not.toContain("transfer_customer_service");
  });

  it("answers events with plain success", async () => {
    const push = await buildPush(PLAIN, enterSession());
    const called = await call(
      app({ fetch: upstream().fetch }),
      push.request(),
      undefined,
      testEnv({
        TRANSFER_TO_KF: "on",
      }),
    );
    expect(called.text).toBe("success");
  });

  it("is off unless set to on", async () => {
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(
      app({ fetch: upstream().fetch }),
      push.request(),
      undefined,
      testEnv({
        TRANSFER_TO_KF: "off",
      }),
    );
    expect(called.text).toBe("success");
  });
});

describe("WELCOME_TEXT", () => {
  it("sends the text after answering a session entry", async () => {
    const fake = upstream();
    const push = await buildPush(PLAIN, enterSession());
    const called = await call(
      app({ fetch: fake.fetch }),
      push.request(),
      undefined,
      testEnv({
        WELCOME_TEXT: "欢迎光临 Welcome!",
      }),
    );
    expect(called.text).toBe("success");
    expect(fake.calls).toHaveLength(0); // not even the token: everything happens after the answer
    await called.settled();
    const sent = fake.to(SEND);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toBe(
      JSON.stringify({ touser: OPENID, msgtype: "text", text: { content: "欢迎光临 Welcome!" } }),
    );
  });

  it("starts the send only after the answer, even with a warm token and in-memory stores", async () => {
    const fake = upstream();
    const memory = new MemoryStore();
    const a = app({ fetch: fake.fetch, store: () => memory });
    const env = testEnv({ WELCOME_TEXT: "hi", API_KEY });
    await call(
      a,
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, { authorization: `Bearer ${API_KEY}` }),
      env,
    );
    const before = fake.calls.length;
    const ctx = createExecutionContext();
    const res = await a.fetch((await buildPush(PLAIN, enterSession())).request(), env, ctx);
    expect(fake.calls.length - before).toBe(0);
    expect(await res.text()).toBe("success");
    await waitOnExecutionContext(ctx);
    expect(fake.to(SEND)).toHaveLength(1);
  });

  it("does not send for user messages or for a retried session entry", async () => {
    const fake = upstream();
    const env = testEnv({ WELCOME_TEXT: "hi" });
    const text = await call(
      app({ fetch: fake.fetch }),
      (await buildPush(PLAIN, textMessage())).request(),
      undefined,
      env,
    );
    await text.settled();
    const entry = await buildPush(PLAIN, enterSession());
    const first = await call(app({ fetch: fake.fetch }), entry.request(), undefined, env);
    await first.settled();
    const retry = await call(app({ fetch: fake.fetch }), entry.request(), undefined, env);
    await retry.settled();
    expect(fake.to(SEND)).toHaveLength(1);
  });

  it("a failed welcome send is logged without credentials and does not change the answer", async () => {
    const logger = recordingLogger();
    const fake = fakeFetch(() => jsonResponse({ errcode: 45015, errmsg: "response out of time limit" }));
    const a = testApp({ fetch: fake.fetch, logger });
    const called = await call(
      a,
      (await buildPush(PLAIN, enterSession())).request(),
      undefined,
      testEnv({
        WELCOME_TEXT: "hi",
      }),
    );
    expect(called.text).toBe("success");
    await called.settled();
    expect(logger.lines.some((l) => l.includes("welcome message failed") && l.includes("45015"))).toBe(true);
    expectCleanLogs(logger.lines);
  });
});

describe("FORWARD_URL", () => {
  const env = () => testEnv({ FORWARD_URL, FORWARD_SECRET });

  it("POSTs the verified message as JSON with an HMAC-SHA256 signature", async () => {
    const fake = upstream();
    const message = textMessage("转发 me");
    const push = await buildPush(SAFE, message);
    const called = await call(app({ fetch: fake.fetch }), push.request(), undefined, {
      ...env(),
      WECHAT_AES_KEY: AES_KEY,
    });
    expect(called.text).toBe("success");
    const forwarded = fake.calls.filter((c) => c.url.hostname === "hooks.example.com");
    expect(forwarded).toHaveLength(1);
    const request = forwarded[0]!.request;
    expect(request.method).toBe("POST");
    expect(forwarded[0]!.url.href).toBe(FORWARD_URL);
    expect(request.headers.get("content-type")).toMatch(/^application\/json/);
    const body = forwarded[0]!.body;
    // A user message carries the send window it opened: 5 messages for 48 h from its CreateTime.
    expect(JSON.parse(body)).toEqual({
      ...message,
      MsgId: message.MsgId,
      KefuWindow: { kind: "message", remaining: 5, expiresAt: (Number(message.CreateTime) + 48 * 3600) * 1000 },
    });
    expect(body).toContain(`"MsgId":"${message.MsgId}"`); // all 19 digits, as a string
    const timestamp = request.headers.get("x-kefu-timestamp")!;
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
    // Recompute the signature independently.
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(FORWARD_SECRET),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const deliveryId = request.headers.get("x-kefu-delivery")!;
    expect(deliveryId).toMatch(/^[0-9a-f]{40}$/);
    const signed = new TextEncoder().encode(`${timestamp}.${deliveryId}.${body}`);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed));
    const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
    expect(request.headers.get("x-kefu-signature")).toBe(`sha256=${hex}`);
    expect(request.redirect).toBe("manual");
    expect(await verifyForward(request, FORWARD_SECRET)).toEqual({ body, deliveryId, timestamp: Number(timestamp) });
  });

  it("with conversations, the forward carries the window that accepting the push opened, not read again", async () => {
    const kept = new MemoryConversationStore();
    const reads: string[] = [];
    // The conversation store as the app sees it, with its window reads counted.
    const conversations = new Proxy(kept, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "window") reads.push(String(name));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const fake = upstream();
    const message = textMessage("窗口");
    const push = await buildPush(SAFE, message);
    const called = await call(
      app({ fetch: fake.fetch, conversations: () => conversations }),
      push.request(),
      undefined,
      {
        ...env(),
        WECHAT_AES_KEY: AES_KEY,
      },
    );
    expect(called.text).toBe("success");
    const forwarded = fake.calls.filter((c) => c.url.hostname === "hooks.example.com");
    expect(forwarded).toHaveLength(1);
    expect(JSON.parse(forwarded[0]!.body).KefuWindow).toEqual({
      kind: "message",
      remaining: 5,
      expiresAt: (Number(message.CreateTime) + 48 * 3600) * 1000,
    });
    // The same window as the conversation keeps, taken from accepting the push: no second read.
    expect(await kept.window({ appId: APP_ID, openId: OPENID })).toEqual(JSON.parse(forwarded[0]!.body).KefuWindow);
    expect(reads).toEqual([]);
  });

  it("a retried message carries the same X-Kefu-Delivery, another message another one", async () => {
    let fail = true;
    const fake = upstream(() => (fail ? new Response("down", { status: 503 }) : new Response("ok")));
    const a = app({ fetch: fake.fetch });
    const push = await buildPush(PLAIN, textMessage());
    expect((await call(a, push.request(), undefined, env())).res.status).toBe(500);
    fail = false;
    expect((await call(a, push.request(), undefined, env())).text).toBe("success");
    expect((await call(a, (await buildPush(PLAIN, textMessage())).request(), undefined, env())).text).toBe("success");
    const ids = fake.calls.filter((c) => c.url.hostname === "hooks.example.com")
      .map((c) => c.request.headers.get("x-kefu-delivery"));
    expect(ids).toHaveLength(3);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
  });

  it("a verified message without an OpenID in FromUserName is forwarded as it came, once, answered success", async () => {
    const { FromUserName: _, ...withoutSender } = textMessage("无发送者");
    const { FromUserName: __, ...entryWithoutSender } = enterSession();
    const cases: Array<[PushTarget, Record<string, string | number>]> = [
      [PLAIN, withoutSender], // XML without the field
      [SAFE, { ...textMessage("坏发送者"), FromUserName: "../not an openid" }], // JSON, not an OpenID
      [PLAIN, entryWithoutSender], // a session entry: no window, no welcome text
    ];
    for (const [target, message] of cases) {
      const fake = upstream();
      const vars = testEnv({ FORWARD_URL, FORWARD_SECRET, WELCOME_TEXT: "hi", WECHAT_AES_KEY: target.encodingAESKey });
      const called = await call(
        app({ fetch: fake.fetch }),
        (await buildPush(target, message)).request(),
        undefined,
        vars,
      );
      expect([called.res.status, called.text]).toEqual([200, "success"]);
      await called.settled();
      const forwarded = fake.calls.filter((c) => c.url.hostname === "hooks.example.com");
      expect(forwarded).toHaveLength(1);
      const body = JSON.parse(forwarded[0]!.body);
      expect(body, JSON.stringify(body)).not.toHaveProperty("KefuWindow");
      expect(body.MsgType).toBe(message.MsgType);
      expect(fake.calls.filter((c) => c.url.hostname !== "hooks.example.com")).toHaveLength(0); // no send
    }
  });

  it("a redirect is not followed: a 3xx answer is a failed forward", async () => {
    const fake = upstream(() =>
      new Response(null, { status: 302, headers: { location: "https://elsewhere.example/" } })
    );
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(app({ fetch: fake.fetch }), push.request(), undefined, env());
    expect(called.res.status).toBe(500);
    expect(fake.calls.filter((c) => c.url.hostname !== "hooks.example.com")).toHaveLength(0);
    expect(await marks()).toEqual([]);
  });

  it("verifyForward refuses a wrong secret, a changed body and an old timestamp", async () => {
    const fake = upstream();
    await call(app({ fetch: fake.fetch }), (await buildPush(PLAIN, textMessage())).request(), undefined, env());
    const forwarded = fake.calls.find((c) => c.url.hostname === "hooks.example.com")!;
    const rebuild = (body: string, headers: HeadersInit = forwarded.request.headers) =>
      new Request(forwarded.url, { method: "POST", body, headers });
    expect((await verifyForward(rebuild(forwarded.body), FORWARD_SECRET))?.body).toBe(forwarded.body);
    expect(await verifyForward(rebuild(forwarded.body), "other-secret")).toBeNull();
    const otherDelivery = new Headers(forwarded.request.headers);
    otherDelivery.set("x-kefu-delivery", "0".repeat(40));
    expect(await verifyForward(rebuild(forwarded.body, otherDelivery), FORWARD_SECRET)).toBeNull();
    expect(await verifyForward(rebuild(forwarded.body.replace("hello", "HELLO")), FORWARD_SECRET)).toBeNull();
    expect(await verifyForward(rebuild(forwarded.body), FORWARD_SECRET, { now: () => Date.now() + 3600_000 }))
      .toBeNull();
  });

  it("verifyForward refuses a body over its limit without reading it whole", async () => {
    const fake = upstream();
    await call(app({ fetch: fake.fetch }), (await buildPush(PLAIN, textMessage())).request(), undefined, env());
    const forwarded = fake.calls.find((c) => c.url.hostname === "hooks.example.com")!;
    const headers = new Headers(forwarded.request.headers);
    headers.delete("content-length");
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
      },
    });
    const streamed = new Request(forwarded.url, { method: "POST", body: endless, headers });
    expect(await verifyForward(streamed, FORWARD_SECRET)).toBeNull();
    expect(pulled).toBeLessThan(40); // 1 MiB is 16 chunks; it stopped soon after
    const small = new Request(forwarded.url, {
      method: "POST",
      body: forwarded.body,
      headers: forwarded.request.headers,
    });
    expect(await verifyForward(small, FORWARD_SECRET, { maxBodyBytes: 10 })).toBeNull();
  });

  for (
    const [what, failing] of [
      ["a non-2xx answer", () => new Response("down", { status: 500 })],
      ["a network error", () => Promise.reject(new TypeError("connection refused"))],
    ] as const
  ) {
    it(`${what} answers non-success, sets no mark, and WeChat's retry forwards again`, async () => {
      let fail = true;
      const fake = upstream(() => (fail ? failing() : new Response("ok")));
      const push = await buildPush(PLAIN, textMessage());
      const first = await call(app({ fetch: fake.fetch }), push.request(), undefined, env());
      expect(first.res.status).toBe(500);
      expect(first.text).not.toBe("success");
      expect(await marks()).toEqual([]);
      fail = false;
      const retry = await call(app({ fetch: fake.fetch }), push.request(), undefined, env());
      expect(retry.res.status).toBe(200);
      expect(retry.text).toBe("success");
      expect(fake.calls.filter((c) => c.url.hostname === "hooks.example.com")).toHaveLength(2);
      expect(await marks()).toHaveLength(1);
    });
  }

  it("a failed forward does not transfer or welcome", async () => {
    const fake = upstream(() => new Response("down", { status: 503 }));
    const a = app({ fetch: fake.fetch });
    const extra = { ...env(), TRANSFER_TO_KF: "on", WELCOME_TEXT: "hi" };
    const text = await call(a, (await buildPush(PLAIN, textMessage())).request(), undefined, extra);
    expect(text.res.status).toBe(500);
    expect(text.text).not.toContain("transfer_customer_service");
    const entry = await call(a, (await buildPush(PLAIN, enterSession())).request(), undefined, extra);
    await entry.settled();
    expect(fake.to(SEND)).toHaveLength(0);
  });

  it("FORWARD_URL without FORWARD_SECRET answers 503 naming FORWARD_SECRET", async () => {
    const fake = upstream();
    const push = await buildPush(PLAIN, textMessage());
    const called = await call(app({ fetch: fake.fetch }), push.request(), undefined, testEnv({ FORWARD_URL }));
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "FORWARD_SECRET" });
    expect(fake.calls).toHaveLength(0);
  });

  it("a FORWARD_TIMEOUT_MS that is not an integer from 1000 to 600000 answers 503 naming it", async () => {
    for (const value of ["999", "600001", "30s", "1.5", "-1000", 0]) {
      const fake = upstream();
      const push = await buildPush(PLAIN, textMessage());
      const env = testEnv({ FORWARD_URL, FORWARD_SECRET, FORWARD_TIMEOUT_MS: value });
      const called = await call(app({ fetch: fake.fetch }), push.request(), undefined, env);
      expect(called.res.status, String(value)).toBe(503);
      expect(errorOf(called)).toMatchObject({ code: "config_invalid", variable: "FORWARD_TIMEOUT_MS" });
      expect(errorOf(called).message).toContain("from 1000 to 600000");
      expect(fake.calls).toHaveLength(0);
    }
    for (const value of ["1000", " 45000 ", 600_000]) {
      const fake = upstream();
      const push = await buildPush(PLAIN, textMessage());
      const env = testEnv({ FORWARD_URL, FORWARD_SECRET, FORWARD_TIMEOUT_MS: value });
      expect((await call(app({ fetch: fake.fetch }), push.request(), undefined, env)).text, String(value))
        .toBe("success");
    }
  });
});

describe("testApp({ onMessage })", () => {
  it("replaces the env-configured handler and gets the worker's context", async () => {
    const fake = upstream();
    const seen: string[] = [];
    const a = app({
      fetch: fake.fetch,
      onMessage: (message, context) => {
        seen.push(`${message.MsgType}:${context.miniProgram.appId}:${context.env.WECHAT_APPID}:${context.format}`);
        context.afterResponse(() =>
          context.miniProgram.customerServiceMessage.setTyping(message.FromUserName, "Typing")
        );
      },
    });
    const env = testEnv({ TRANSFER_TO_KF: "on", FORWARD_URL, FORWARD_SECRET, WELCOME_TEXT: "hi" });
    const called = await call(a, (await buildPush(PLAIN, textMessage())).request(), undefined, env);
    expect(called.text).toBe("success");
    expect(seen).toEqual([`text:${APP_ID}:${APP_ID}:xml`]);
    expect(fake.calls).toHaveLength(0);
    await called.settled();
    expect(fake.to("/cgi-bin/message/custom/typing")).toHaveLength(1);
    expect(fake.calls.filter((c) => c.url.hostname === "hooks.example.com")).toHaveLength(0);
  });

  it("a throwing handler answers 500 so WeChat retries", async () => {
    const a = app({
      fetch: upstream().fetch,
      onMessage: () => {
        throw new Error("database down");
      },
    });
    const called = await call(a, (await buildPush(PLAIN, textMessage())).request(), undefined, testEnv());
    expect(called.res.status).toBe(500);
    expect(called.text).not.toContain("database down");
    expect(await marks()).toEqual([]);
  });
});
