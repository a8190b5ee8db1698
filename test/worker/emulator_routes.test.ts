// withEmulator's /_emulator/ routes (kefu-edge/testing) inside workerd with real KV: they exist only
// with WECHAT_EMULATOR=on, drive the real push endpoint, and share one emulator with /api.
import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { env as workerEnv } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulatorApp } from "../../src/testing/dev_server/with_emulator.ts";
import { emulatorUpstream } from "../../src/testing/dev_server/_upstream.ts";
import worker from "../../worker/index.ts";
import type { Env } from "../../worker/env.ts";
import {
  AES_KEY,
  API_KEY,
  APP_ID,
  AUTH,
  call,
  type Called,
  errorOf,
  expectCleanLogs,
  json,
  OPENID,
  PUSH_TOKEN,
  recordingLogger,
  SECRET,
  testApp,
  testEnv,
} from "./_helpers.ts";

beforeEach(() => reset());

const WELCOME = "Welcome to the shop!";
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]);

function setup(extra: Parameters<typeof testEnv>[0] = {}, fetchFn?: typeof fetch) {
  const upstream = emulatorUpstream();
  const logger = recordingLogger();
  const app = emulatorApp(testApp({ logger, ...(fetchFn === undefined ? {} : { fetch: fetchFn }) }), upstream, logger);
  const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY, ...extra });
  return { upstream, app, env, logger };
}

// deno-lint-ignore no-explicit-any
function body(called: Called): any {
  return JSON.parse(called.text);
}

const says = (text: string) => json({ text });
const sendText = (touser: string, content: string) => json({ touser, msgtype: "text", text: { content } }, AUTH);
const jpeg = (): RequestInit => ({ method: "POST", body: JPEG, headers: { "content-type": "image/jpeg" } });

describe("/_emulator/ exists only with WECHAT_EMULATOR=on", () => {
  const requests: Array<[string, RequestInit | undefined]> = [
    ["/_emulator/config", undefined],
    ["/_emulator/users", undefined],
    ["/_emulator/exchanges", undefined],
    ["/_emulator/updates?wait=0", undefined],
    [`/_emulator/users/${OPENID}/inbox`, undefined],
    [`/_emulator/users/${OPENID}/conversation`, undefined],
    [`/_emulator/users/${OPENID}/messages`, says("hello")],
    [`/_emulator/users/${OPENID}/session`, json({})],
    [`/_emulator/users/${OPENID}/miniprogrampages`, json({ title: "Order", pagePath: "pages/order/index" })],
    [`/_emulator/users/${OPENID}/images`, jpeg()],
  ];

  for (const value of [undefined, "off", "OFF", "maybe", ""]) {
    it(`answers 404 when WECHAT_EMULATOR is ${JSON.stringify(value)}`, async () => {
      const { app, upstream } = setup();
      const env = testEnv({ WECHAT_EMULATOR: value, WECHAT_AES_KEY: AES_KEY });
      for (const [path, init] of [...requests, ["/_emulator/media/abc", undefined] as const]) {
        const called = await call(app, path, init, env);
        expect(called.res.status, path).toBe(404);
        expect(errorOf(called).code, path).toBe("not_found");
      }
      // Nothing reached the emulator either.
      expect(upstream.emulatorFor(APP_ID)).toBeUndefined();
    });
  }

  it("answers when it is on", async () => {
    const { app, env } = setup();
    for (const [path, init] of requests) {
      // Not through `call`: the configuration carries the API key on purpose (see the page's test).
      const res = await app.fetch(new Request(`http://127.0.0.1:8787${path}`, init), env, createExecutionContext());
      expect(res.status, path).toBe(200);
      await res.body?.cancel();
    }
  });

  it("leaves every other route to the app, and an unknown /_emulator/ path to its 404", async () => {
    const { app, env } = setup();
    const health = await call(app, "/health", undefined, env);
    expect([health.res.status, JSON.parse(health.text)]).toEqual([200, { status: "ok" }]);
    const unknown = await call(app, "/_emulator/nothing-here", undefined, env);
    expect([unknown.res.status, errorOf(unknown).code]).toEqual([404, "not_found"]);
  });

  it("is absent from the production entry (worker/index.ts), even with WECHAT_EMULATOR=on", async () => {
    const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY });
    for (const path of ["/_emulator/config", "/_emulator/users"]) {
      const res = await worker.fetch(new Request(`http://127.0.0.1:8787${path}`), env, createExecutionContext());
      expect(res.status, path).toBe(404);
    }
    const post = new Request(`http://127.0.0.1:8787/_emulator/users/${OPENID}/messages`, says("hello"));
    expect((await worker.fetch(post, env, createExecutionContext())).status).toBe(404);
  });
});

describe("/_emulator/ refuses state changes from other origins", () => {
  const image = (headers: Record<string, string> = {}): RequestInit => {
    const form = new FormData();
    form.append("media", new File([JPEG], "cat.jpg", { type: "image/jpeg" }));
    return { method: "POST", body: form, headers };
  };

  it("a cross-origin POST (multipart image, JSON message) is refused 403 before it acts, and logged", async () => {
    const { app, env, upstream, logger } = setup();
    const evil = { origin: "https://evil.example" };
    const refused = [
      await call(app, `/_emulator/users/${OPENID}/images`, image(evil), env),
      await call(app, `/_emulator/users/${OPENID}/messages`, json({ text: "hi" }, evil), env),
      await call(app, `/_emulator/users/${OPENID}/session`, json({}, { origin: "null" }), env),
      // Another port of the same host is another origin.
      await call(
        app,
        `/_emulator/users/${OPENID}/messages`,
        json({ text: "hi" }, { origin: "http://127.0.0.1:9999" }),
        env,
      ),
    ];
    for (const called of refused) {
      expect(called.res.status).toBe(403);
      expect(errorOf(called).code).toBe("cross_origin_refused");
    }
    // Nothing reached the emulated WeChat: no user acted.
    expect(body(await call(app, "/_emulator/users", undefined, env)).users).toEqual([]);
    expect(upstream.emulatorFor(APP_ID)?.inbox(OPENID) ?? []).toEqual([]);
    const lines = logger.lines.filter((line) => line.includes("kefu-edge.dev_route_refused"));
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      reason: "cross_origin",
      method: "POST",
      path: `/_emulator/users/${OPENID}/images`,
      origin: "https://evil.example",
    });
    // Reading stays open to the page (GET is not checked).
    const read = await call(app, "/_emulator/users", { headers: evil }, env);
    expect(read.res.status).toBe(200);
    expectCleanLogs(logger.lines);
  });

  it("a same-origin POST (the chat page) and one without Origin (curl) are accepted", async () => {
    const { app, env } = setup();
    const same = await call(app, `/_emulator/users/${OPENID}/images`, image({ origin: "http://127.0.0.1:8787" }), env);
    expect(same.res.status).toBe(200);
    expect(body(same).delivery.ok).toBe(true);
    const bare = await call(app, `/_emulator/users/${OPENID}/images`, image(), env);
    expect(bare.res.status).toBe(200);
    const text = await call(
      app,
      `/_emulator/users/${OPENID}/messages`,
      json({ text: "hi" }, {
        origin: "http://127.0.0.1:8787",
      }),
      env,
    );
    expect(text.res.status).toBe(200);
    const users = body(await call(app, "/_emulator/users", undefined, env)).users;
    expect(users.map((u: { openId: string }) => u.openId)).toEqual([OPENID]);
  });
});

describe("user actions", () => {
  it("a message is pushed, encrypted, to /wechat/callback and opens the window /api/messages uses", async () => {
    const { app, env, upstream, logger } = setup({ TRANSFER_TO_KF: "on" });
    const called = await call(app, `/_emulator/users/${OPENID}/messages`, says("Where is my order?"), env);
    expect(called.res.status).toBe(200);
    const result = body(called);
    expect(result.push).toMatchObject({ FromUserName: OPENID, MsgType: "text", Content: "Where is my order?" });
    expect(result.delivery).toMatchObject({ ok: true, attempts: 1, status: 200, encrypted: true });
    expect(result.delivery.reply).toContain("transfer_customer_service");

    // The emulator that got the push is the one /api talks to.
    const emulator = upstream.emulatorFor(APP_ID)!;
    expect(emulator.user(OPENID).window).toMatchObject({ kind: "message", remaining: 5 });
    const sent = await call(
      app,
      "/api/messages",
      json({ touser: OPENID, msgtype: "text", text: { content: "It ships today" } }, AUTH),
      env,
    );
    expect(sent.res.status).toBe(200);
    const inbox = body(await call(app, `/_emulator/users/${OPENID}/inbox`, undefined, env));
    expect(inbox.window).toMatchObject({ kind: "message", remaining: 4 });
    expect(inbox.inbox).toEqual([
      expect.objectContaining({ kind: "message", msgtype: "text", message: { content: "It ships today" } }),
    ]);
    expectCleanLogs(logger.lines);
  });

  it("entering the session gets WELCOME_TEXT, sent after the answer and reported in `received`", async () => {
    const { app, env } = setup({ WELCOME_TEXT: WELCOME });
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`http://127.0.0.1:8787/_emulator/users/${OPENID}/session`, json({ sessionFrom: "button" })),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const result = await res.json() as {
      push: Record<string, unknown>;
      delivery: { reply: unknown };
      received: unknown;
    };
    expect(result.push).toMatchObject({ MsgType: "event", Event: "user_enter_tempsession", SessionFrom: "button" });
    expect(result.delivery.reply).toBeNull();
    expect(result.received).toEqual([
      expect.objectContaining({ kind: "message", msgtype: "text", message: { content: WELCOME } }),
    ]);
  });

  it("a push the app fails is re-sent as WeChat does, then the user sees WeChat's notice", async () => {
    const failing = (() => Promise.resolve(new Response("down", { status: 500 }))) as typeof fetch;
    const { app, env, logger } = setup({ FORWARD_URL: "https://hooks.example.com/kefu", FORWARD_SECRET: "s" }, failing);
    const result = body(await call(app, `/_emulator/users/${OPENID}/messages`, says("anyone?"), env));
    expect(result.delivery).toMatchObject({ ok: false, attempts: 4 });
    expect(result.delivery.failures).toHaveLength(4);
    expect(result.received).toEqual([expect.objectContaining({ kind: "notice" })]);
    const exchanges = body(await call(app, "/_emulator/exchanges", undefined, env)).exchanges;
    expect(exchanges.filter((x: { kind: string }) => x.kind === "push")).toHaveLength(5); // 4 attempts + "gave up"
    expectCleanLogs(logger.lines);
  });

  it("an image (raw bytes or multipart) is stored as the user's media, downloadable through /api/media", async () => {
    const { app, env } = setup();
    const raw = body(
      await call(app, `/_emulator/users/${OPENID}/images`, jpeg(), env),
    );
    expect(raw.push).toMatchObject({ MsgType: "image", MediaId: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/) });
    const media = await app.fetch(
      new Request(`http://127.0.0.1:8787/api/media/${raw.push.MediaId}`, { headers: AUTH }),
      env,
    );
    expect(media.headers.get("content-type")).toBe("image/jpeg");
    expect(new Uint8Array(await media.arrayBuffer())).toEqual(JPEG);

    const form = new FormData();
    form.append("media", new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], "p.png", { type: "image/png" }));
    const multipart = await call(app, `/_emulator/users/${OPENID}/images`, { method: "POST", body: form }, env);
    expect(multipart.res.status).toBe(200);
    const conversation = body(await call(app, `/_emulator/users/${OPENID}/conversation`, undefined, env));
    expect(conversation.entries.map((e: { from: string; kind: string }) => `${e.from}:${e.kind}`)).toEqual([
      "user:image",
      "user:image",
    ]);
  });

  it("a mini-program card is pushed with its fields and a cover stored as the user's media", async () => {
    const { app, env, upstream } = setup();
    const sent = body(
      await call(
        app,
        `/_emulator/users/${OPENID}/miniprogrampages`,
        json({ title: "Order 1024", pagePath: "pages/order/index?id=1024" }),
        env,
      ),
    );
    expect(sent.push).toMatchObject({
      MsgType: "miniprogrampage",
      FromUserName: OPENID,
      Title: "Order 1024",
      PagePath: "pages/order/index?id=1024",
      AppId: APP_ID,
      MsgId: expect.stringMatching(/^\d+$/),
    });
    expect(sent.delivery).toMatchObject({ ok: true, status: 200, reply: null });
    expect(upstream.emulatorFor(APP_ID)!.media.get(sent.push.ThumbMediaId)?.contentType).toBe("image/png");
    const other = body(
      await call(
        app,
        `/_emulator/users/${OPENID}/miniprogrampages`,
        json({ title: "Other", pagePath: "pages/index/index", appId: "wx_other_app" }),
        env,
      ),
    );
    expect(other.push.AppId).toBe("wx_other_app");
    const conversation = body(await call(app, `/_emulator/users/${OPENID}/conversation`, undefined, env));
    expect(conversation.entries[0]).toMatchObject({
      from: "user",
      kind: "miniprogrampage",
      title: "Order 1024",
      pagePath: "pages/order/index?id=1024",
      appId: APP_ID,
      thumbMediaId: sent.push.ThumbMediaId,
    });
    // A card opens the send window like any user message.
    expect(conversation.window).toMatchObject({ kind: "message", remaining: 5 });
  });

  it("a user answers the subscription popup; a subscribe message sent through /api is reported by subscribe_msg_sent_event", async () => {
    const seen: string[] = [];
    const upstream = emulatorUpstream();
    const logger = recordingLogger();
    const app = emulatorApp(
      testApp({ logger, onMessage: (m) => void seen.push(String(m.Event ?? m.MsgType)) }),
      upstream,
      logger,
    );
    const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY });
    await call(app, `/_emulator/users/${OPENID}/messages`, says("hi"), env);
    const answered = body(
      await call(app, `/_emulator/users/${OPENID}/subscriptions`, json({ templateId: "order-shipped" }), env),
    );
    expect(answered.push).toMatchObject({ MsgType: "event", Event: "subscribe_msg_popup_event" });
    expect(answered.delivery).toMatchObject({ ok: true, status: 200 });
    const sent = await call(
      app,
      "/api/subscribe-messages",
      json({ touser: OPENID, template_id: "order-shipped", data: { thing1: { value: "Order 42" } } }, AUTH),
      env,
    );
    expect(sent.res.status).toBe(200);
    expect(body(sent).msgid).toMatch(/^\d{16,20}$/);
    const reported = body(await call(app, `/_emulator/users/${OPENID}/subscribe-sent-events`, json({}), env));
    expect(reported.delivered).toBe(1);
    expect(seen).toEqual(["text", "subscribe_msg_popup_event", "subscribe_msg_sent_event"]);
    // The one-time acceptance is used up: WeChat answers 43101.
    const again = await call(
      app,
      "/api/subscribe-messages",
      json({ touser: OPENID, template_id: "order-shipped", data: { thing1: { value: "Order 43" } } }, AUTH),
      env,
    );
    expect(errorOf(again).errcode).toBe(43101);
    const conversation = body(await call(app, `/_emulator/users/${OPENID}/conversation`, undefined, env));
    expect(conversation.entries.map((e: { from: string; kind: string }) => `${e.from}:${e.kind}`)).toEqual([
      "user:text",
      "user:subscription",
      "service:subscribe",
    ]);
  });

  it("a queued push is consumed in process: the action's answer shows what the user received", async () => {
    const { app, env } = setup({ WELCOME_TEXT: WELCOME, KEFU_QUEUE: workerEnv.KEFU_QUEUE });
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`http://127.0.0.1:8787/_emulator/users/${OPENID}/session`, json({})),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const result = await res.json() as { delivery: { ok: boolean }; received: unknown[] };
    expect(result.delivery.ok).toBe(true);
    expect(result.received).toEqual([
      expect.objectContaining({ kind: "message", msgtype: "text", message: { content: WELCOME } }),
    ]);
  });

  it("validates the OpenID, the body and the image type, naming the field", async () => {
    const { app, env } = setup();
    const cases: Array<[string, RequestInit, string]> = [
      ["/_emulator/users/bad%20id/messages", says("hi"), "openId"],
      [`/_emulator/users/${OPENID}/messages`, json({}), "text"],
      [`/_emulator/users/${OPENID}/messages`, says("   "), "text"],
      [`/_emulator/users/${OPENID}/messages`, json({ text: "hi", extra: 1 }), "extra"],
      [`/_emulator/users/${OPENID}/session`, json({ sessionFrom: 5 }), "sessionFrom"],
      [`/_emulator/users/${OPENID}/miniprogrampages`, json({ title: " ", pagePath: "p" }), "title"],
      [`/_emulator/users/${OPENID}/miniprogrampages`, json({ title: "t" }), "pagePath"],
      [`/_emulator/users/${OPENID}/miniprogrampages`, json({ title: "t", pagePath: "p", appId: "a b" }), "appId"],
      ["/_emulator/updates?version=-1", { method: "GET" }, "version"],
      ["/_emulator/updates?wait=26", { method: "GET" }, "wait"],
      [
        `/_emulator/users/${OPENID}/images`,
        { method: "POST", body: "x", headers: { "content-type": "text/plain" } },
        "content-type",
      ],
      [`/_emulator/users/${OPENID}/images`, {
        method: "POST",
        body: new Uint8Array(),
        headers: { "content-type": "image/png" },
      }, "media"],
    ];
    for (const [path, init, field] of cases) {
      const called = await call(app, path, init, env);
      expect(called.res.status, `${path} ${field}`).toBe(400);
      expect(errorOf(called).field, path).toBe(field);
    }
  });

  it("a missing push token answers 503 naming WECHAT_TOKEN", async () => {
    const { app } = setup();
    const env: Env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_TOKEN: undefined });
    const called = await call(app, `/_emulator/users/${OPENID}/messages`, says("hi"), env);
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "WECHAT_TOKEN" });
  });

  it("asking about a user does not create them: /api still answers 40003 for an unknown OpenID", async () => {
    const { app, env } = setup();
    expect(body(await call(app, `/_emulator/users/${OPENID}/inbox`, undefined, env))).toEqual({
      openId: OPENID,
      window: null,
      typing: false,
      inbox: [],
    });
    const sent = await call(
      app,
      "/api/messages",
      json({ touser: OPENID, msgtype: "text", text: { content: "x" } }, AUTH),
      env,
    );
    expect(errorOf(sent).errcode).toBe(40003);
  });
});

describe("exchange log", () => {
  it("records pushes and API calls in order, without the access token or the AppSecret", async () => {
    const { app, env, upstream } = setup({ WELCOME_TEXT: WELCOME });
    const ctx = createExecutionContext();
    await app.fetch(new Request(`http://127.0.0.1:8787/_emulator/users/${OPENID}/session`, json({})), env, ctx);
    await waitOnExecutionContext(ctx);
    await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
    const called = await call(app, "/_emulator/exchanges?after=0", undefined, env);
    const exchanges = body(called).exchanges as Array<
      { id: number; kind: string; title: string; request: { line: string } }
    >;
    expect(exchanges.map((x) => x.title)).toEqual([
      "push: event user_enter_tempsession",
      "POST /cgi-bin/stable_token",
      "POST /cgi-bin/message/custom/send",
      "POST /cgi-bin/message/custom/typing",
    ]);
    expect(exchanges[3]!.request.line).toBe("POST /cgi-bin/message/custom/typing?access_token=[redacted]");
    const tokens = upstream.emulatorFor(APP_ID)!.tokens.list().map((t) => t.token);
    expect(tokens.length).toBeGreaterThan(0);
    for (const secret of [SECRET, ...tokens]) expect(called.text).not.toContain(secret);

    const later = body(await call(app, `/_emulator/exchanges?after=${exchanges[2]!.id}`, undefined, env)).exchanges;
    expect(later.map((x: { title: string }) => x.title)).toEqual(["POST /cgi-bin/message/custom/typing"]);
  });
});

describe("exchange log: errcodes and changes", () => {
  it("shows WeChat's errcode on answers that are HTTP 200 all the same", async () => {
    const { app, env } = setup();
    await call(app, `/_emulator/users/${OPENID}/session`, json({}), env);
    expect(errorOf(await call(app, "/api/messages", sendText("o_never_wrote", "x"), env)).errcode).toBe(40003);
    await call(app, "/api/messages", sendText(OPENID, "1"), env);
    await call(app, "/api/messages", sendText(OPENID, "2"), env);
    // Entering the session allows two messages: the third is refused.
    expect(errorOf(await call(app, "/api/messages", sendText(OPENID, "3"), env)).errcode).toBe(45047);
    const sends = (body(await call(app, "/_emulator/exchanges", undefined, env)).exchanges as Array<
      { title: string; response: { line: string; errcode?: number } }
    >).filter((x) => x.title === "POST /cgi-bin/message/custom/send");
    expect(sends.map((x) => [x.response.line, x.response.errcode])).toEqual([
      ["HTTP 200", 40003],
      ["HTTP 200", 0],
      ["HTTP 200", 0],
      ["HTTP 200", 45047],
    ]);
  });

  it("a note added later (the decrypted reply) makes the exchange new again for readers of changes", async () => {
    const { app, env } = setup({ TRANSFER_TO_KF: "on" });
    const before = body(await call(app, "/_emulator/updates?wait=0", undefined, env));
    await call(app, `/_emulator/users/${OPENID}/messages`, says("hello"), env);
    const all = body(await call(app, "/_emulator/exchanges", undefined, env)).exchanges as Array<
      { id: number; rev: number; title: string; notes: string[] }
    >;
    const push = all.find((x) => x.title === "push: text")!;
    expect(push.notes.at(-1)).toMatch(/^Reply after decryption: .*transfer_customer_service/);
    expect(push.rev).toBeGreaterThan(push.id);
    const again = body(await call(app, `/_emulator/exchanges?after=${push.rev - 1}`, undefined, env)).exchanges;
    expect(again.map((x: { id: number }) => x.id)).toContain(push.id);
    expect(body(await call(app, "/_emulator/updates?wait=0", undefined, env)).version).toBeGreaterThan(before.version);
  });
});

describe("the page's long poll and images", () => {
  it("an update request waits for the next change and answers with it", async () => {
    const { app, env } = setup();
    await call(app, `/_emulator/users/${OPENID}/session`, json({}), env);
    const first = body(await call(app, `/_emulator/updates?openId=${OPENID}`, undefined, env));
    expect(first.conversation).toMatchObject({ openId: OPENID, known: true, window: { kind: "session" } });
    expect(first.users.map((u: { openId: string }) => u.openId)).toEqual([OPENID]);
    const latest = Math.max(...first.exchanges.map((x: { rev: number }) => x.rev));
    // Asked with the version it has, the page gets nothing until something happens.
    const waiting = call(
      app,
      `/_emulator/updates?openId=${OPENID}&version=${first.version}&after=${latest}`,
      undefined,
      env,
    );
    await call(app, `/_emulator/users/${OPENID}/messages`, says("are you there?"), env);
    const next = body(await waiting);
    expect(next.version).toBeGreaterThan(first.version);
    expect(next.conversation.entries.at(-1)).toMatchObject({ from: "user", kind: "text", text: "are you there?" });
    // Asked again once the step is over, it has the step's whole exchange.
    const done = body(await call(app, `/_emulator/updates?openId=${OPENID}&after=${latest}`, undefined, env));
    expect(done.exchanges.map((x: { title: string }) => x.title)).toEqual(["push: text"]);
  });

  it("without a change it answers after `wait` seconds with the same version", async () => {
    const { app, env } = setup();
    const first = body(await call(app, "/_emulator/updates", undefined, env));
    const again = body(await call(app, `/_emulator/updates?version=${first.version}&wait=1`, undefined, env));
    expect([again.version, again.exchanges, again.conversation]).toEqual([first.version, [], null]);
  });

  it("serves the conversation's images from the emulator, without calling the app", async () => {
    const { app, env } = setup();
    const sent = body(
      await call(app, `/_emulator/users/${OPENID}/images`, jpeg(), env),
    );
    const logged = body(await call(app, "/_emulator/exchanges", undefined, env)).exchanges.length;
    for (let i = 0; i < 3; i++) {
      const res = await app.fetch(new Request(`http://127.0.0.1:8787/_emulator/media/${sent.push.MediaId}`), env);
      expect(res.headers.get("content-type")).toBe("image/jpeg");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(JPEG);
    }
    expect(body(await call(app, "/_emulator/exchanges", undefined, env)).exchanges).toHaveLength(logged);
    const missing = await call(app, "/_emulator/media/UNKNOWN_MEDIA", undefined, env);
    expect([missing.res.status, errorOf(missing).code]).toEqual([404, "not_found"]);
  });
});

describe("the page's configuration", () => {
  it("names the running setup and the emulator's message table; the dev API key, never a secret", async () => {
    const { app, env } = setup({ WELCOME_TEXT: "</script><script>alert(1)</script>" });
    const res = await app.fetch(new Request("http://127.0.0.1:8787/_emulator/config"), env, createExecutionContext());
    const text = await res.text();
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const config = JSON.parse(text);
    expect(config).toMatchObject({
      appId: APP_ID,
      apiKey: API_KEY,
      pushMode: "safe",
      pushFormat: "xml",
      welcomeText: "</script><script>alert(1)</script>",
      transfer: false,
      windowLimits: { message: 5, session: 2 },
    });
    // Every type the emulator accepts on custom/send, and how the page shows it.
    expect(Object.keys(config.messageTypes).sort()).toEqual(["image", "link", "miniprogrampage", "text"]);
    expect(config.messageTypes.miniprogrampage).toEqual({
      label: "Mini program",
      title: "title",
      lines: ["pagepath"],
      image: "thumb_media_id",
    });
    // The dev API key is there on purpose (it prefills the page's API key field); the
    // AppSecret, push token and AES key never are.
    for (const secret of [SECRET, PUSH_TOKEN, AES_KEY]) expect(text).not.toContain(secret);
  });
});
