// The dev entry's /_emulator/ routes (worker/dev.ts) inside workerd with real KV: they exist only
// with WECHAT_EMULATOR=on, drive the real push endpoint, and share one emulator with /api.
import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { createDevApp } from "../../worker/dev.ts";
import worker from "../../worker/index.ts";
import { emulatorUpstream } from "../../worker/emulator.ts";
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
  testEnv,
} from "./_helpers.ts";

beforeEach(() => reset());

const WELCOME = "Welcome to the shop!";
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]);

function setup(extra: Parameters<typeof testEnv>[0] = {}, fetchFn?: typeof fetch) {
  const upstream = emulatorUpstream();
  const logger = recordingLogger();
  const app = createDevApp({ upstream, logger, ...(fetchFn === undefined ? {} : { fetch: fetchFn }) });
  const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY, ...extra });
  return { upstream, app, env, logger };
}

// deno-lint-ignore no-explicit-any
function body(called: Called): any {
  return JSON.parse(called.text);
}

const says = (text: string) => json({ text });

describe("/_emulator/ exists only with WECHAT_EMULATOR=on", () => {
  const requests: Array<[string, RequestInit | undefined]> = [
    ["/_emulator", undefined],
    ["/_emulator/", undefined],
    ["/_emulator/page.js", undefined],
    ["/_emulator/page.css", undefined],
    ["/_emulator/users", undefined],
    ["/_emulator/exchanges", undefined],
    [`/_emulator/users/${OPENID}/inbox`, undefined],
    [`/_emulator/users/${OPENID}/conversation`, undefined],
    [`/_emulator/users/${OPENID}/messages`, says("hello")],
    [`/_emulator/users/${OPENID}/session`, json({})],
    [`/_emulator/users/${OPENID}/images`, { method: "POST", body: JPEG, headers: { "content-type": "image/jpeg" } }],
  ];

  for (const value of [undefined, "off", "OFF", "maybe", ""]) {
    it(`answers 404 when WECHAT_EMULATOR is ${JSON.stringify(value)}`, async () => {
      const { app, upstream } = setup();
      const env = testEnv({ WECHAT_EMULATOR: value, WECHAT_AES_KEY: AES_KEY });
      for (const [path, init] of requests) {
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
      // Not through `call`: the page carries the API key on purpose (see the page test).
      const res = await app.fetch(new Request(`http://127.0.0.1:8787${path}`, init), env, createExecutionContext());
      expect(res.status, path).toBe(path === "/_emulator" ? 308 : 200);
      await res.body?.cancel();
    }
  });

  it("is absent from the production entry (worker/index.ts), even with WECHAT_EMULATOR=on", async () => {
    const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY });
    for (const path of ["/_emulator/", "/_emulator/users"]) {
      const res = await worker.fetch(new Request(`http://127.0.0.1:8787${path}`), env, createExecutionContext());
      expect(res.status, path).toBe(404);
    }
    const post = new Request(`http://127.0.0.1:8787/_emulator/users/${OPENID}/messages`, says("hello"));
    expect((await worker.fetch(post, env, createExecutionContext())).status).toBe(404);
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
      await call(app, `/_emulator/users/${OPENID}/images`, {
        method: "POST",
        body: JPEG,
        headers: { "content-type": "image/jpeg" },
      }, env),
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

  it("validates the OpenID, the body and the image type, naming the field", async () => {
    const { app, env } = setup();
    const cases: Array<[string, RequestInit, string]> = [
      ["/_emulator/users/bad%20id/messages", says("hi"), "openId"],
      [`/_emulator/users/${OPENID}/messages`, json({}), "text"],
      [`/_emulator/users/${OPENID}/messages`, says("   "), "text"],
      [`/_emulator/users/${OPENID}/messages`, json({ text: "hi", extra: 1 }), "extra"],
      [`/_emulator/users/${OPENID}/session`, json({ sessionFrom: 5 }), "sessionFrom"],
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

describe("the page", () => {
  it("is served with a strict policy, and configuration cannot break out of its script element", async () => {
    const { app, env } = setup({ WELCOME_TEXT: "</script><script>alert(1)</script>" });
    const res = await app.fetch(new Request("http://127.0.0.1:8787/_emulator/"), env, createExecutionContext());
    const html = await res.text();
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(html).not.toContain("<script>alert");
    const data = /<script type="application\/json" id="kefu-config">(.*?)<\/script>/.exec(html)?.[1];
    expect(JSON.parse(data!)).toEqual({
      appId: APP_ID,
      apiKey: API_KEY,
      pushMode: "safe",
      pushFormat: "xml",
      welcomeText: "</script><script>alert(1)</script>",
      transfer: false,
    });
    // The dev API key is in the page on purpose (it prefills the page's API key field); the
    // AppSecret, push token and AES key never are.
    for (const secret of [SECRET, PUSH_TOKEN, AES_KEY]) expect(html).not.toContain(secret);
    const script = await call(app, "/_emulator/page.js", undefined, env);
    expect(script.res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.text).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});
