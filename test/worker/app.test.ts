import { exports } from "cloudflare:workers";
import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { kvStore } from "../../worker/index.ts";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import { buildPush } from "../../src/testing/mod.ts";
import {
  APP_ID,
  AUTH,
  call,
  errorOf,
  expectCleanLogs,
  json,
  OPENID,
  PUSH_TOKEN,
  recordingLogger,
  SECRET,
  testApp,
  testEnv,
  textMessage,
} from "./_helpers.ts";

beforeEach(() => reset());

describe("GET /health", () => {
  it("answers without any configuration", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const { res, text } = await call(app, "/health", undefined, {});
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toEqual({ status: "ok" });
  });

  it("is served by the wrangler entry (worker/index.ts)", async () => {
    const res = await exports.default.fetch("http://kefu.test/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
});

describe("unknown routes", () => {
  it("answer 404 JSON", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const called = await call(app, "/nope", undefined, testEnv());
    expect(called.res.status).toBe(404);
    expect(errorOf(called).code).toBe("not_found");
  });

  it("under /api need the key first, then answer 404", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    expect((await call(app, "/api/nope", undefined, testEnv())).res.status).toBe(401);
    const called = await call(app, "/api/nope", { headers: AUTH }, testEnv());
    expect(called.res.status).toBe(404);
    expect(errorOf(called).code).toBe("not_found");
  });
});

describe("error answers", () => {
  it("have one shape and the same headers, from the API and from the push receiver", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const api = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }), testEnv());
    const query = `signature=${"0".repeat(40)}&timestamp=${Math.floor(Date.now() / 1000)}&nonce=1&echostr=x`;
    const push = await call(app, `/wechat/callback?${query}`, undefined, testEnv());
    for (const [called, code] of [[api, "unauthorized"], [push, "bad_signature"]] as const) {
      expect(called.res.status).toBe(401);
      expect(errorOf(called).code).toBe(code);
      expect(Object.keys(JSON.parse(called.text))).toEqual(["error"]);
      expect(called.res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(called.res.headers.get("cache-control")).toBe("no-store");
      expect(called.res.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});

describe("configuration", () => {
  it("a missing variable answers 503 naming it, and other routes keep working", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const env = testEnv({ WECHAT_SECRET: undefined });
    const called = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "WECHAT_SECRET" });
    expect(errorOf(called).message).toContain("WECHAT_SECRET");
    expect(fake.calls).toHaveLength(0);
    expect((await call(app, "/health", undefined, env)).res.status).toBe(200);
  });

  it("a malformed variable answers 503 naming it, never showing its value", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const env = testEnv({ WECHAT_API_BASE: "ftp://secret-host-value.example" });
    const called = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "config_invalid", variable: "WECHAT_API_BASE" });
    expect(called.text).not.toContain("secret-host-value");
    expect(fake.calls).toHaveLength(0);
  });

  it("WECHAT_API_BASE with credentials answers 503 naming it, on /api and on pushes, never showing them", async () => {
    const fake = fakeFetch();
    const logger = recordingLogger();
    const app = testApp({ fetch: fake.fetch, logger });
    const env = testEnv({ WECHAT_API_BASE: "https://proxy-user:proxy-pass-value@proxy.example/wechat" });
    const push = await buildPush({ appId: APP_ID, token: PUSH_TOKEN, format: "xml" }, textMessage());
    const answers = [
      await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env),
      await call(app, "/api/messages", json({ touser: OPENID, msgtype: "text", text: { content: "hi" } }, AUTH), env),
      await call(app, push.request(), undefined, env),
    ];
    for (const called of answers) {
      expect(called.res.status).toBe(503);
      expect(errorOf(called)).toMatchObject({ code: "config_invalid", variable: "WECHAT_API_BASE" });
      expect(errorOf(called).message).toContain("credentials");
      expect(called.text).not.toMatch(/proxy-user|proxy-pass-value|proxy\.example/);
    }
    expect(fake.calls).toHaveLength(0);
    expect(logger.lines.join("\n")).not.toMatch(/proxy-user|proxy-pass-value/);
    // Without the credentials, the same base is used.
    const clean = await call(
      app,
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, AUTH),
      testEnv({ WECHAT_API_BASE: "https://proxy.example" }),
    );
    expect(clean.res.status).toBe(200);
    expect(fake.calls.map((c) => c.url.origin + c.url.pathname)).toContain(
      "https://proxy.example/cgi-bin/message/custom/typing",
    );
  });

  it("an empty variable counts as missing", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const called = await call(
      app,
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, AUTH),
      testEnv({
        WECHAT_APPID: "  ",
      }),
    );
    expect(called.res.status).toBe(503);
    expect(errorOf(called).variable).toBe("WECHAT_APPID");
  });

  it("a bad push setting does not take /api down", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const env = testEnv({ WECHAT_AES_KEY: "too-short" });
    const api = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
    expect(api.res.status).toBe(200);
    const push = await call(app, "/wechat/callback?signature=x&timestamp=1&nonce=2&echostr=3", undefined, env);
    expect(push.res.status).toBe(503);
    expect(errorOf(push).variable).toBe("WECHAT_AES_KEY");
  });

  it("the wrangler entry fails closed with the committed vars (no API_KEY) and logs why", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await exports.default.fetch("http://kefu.test/api/typing", json({}, AUTH));
      expect(res.status).toBe(503);
      const body = await res.json() as { error: { code: string; variable: string } };
      expect(body.error).toMatchObject({ code: "config_missing", variable: "API_KEY" });
      // The operator's clue in `wrangler tail`: one line naming the route and the missing variable.
      expect(error.mock.calls).toEqual([
        ["kefu-edge: POST /api/typing answered 503: ConfigError: Missing configuration: API_KEY is not set"],
      ]);
    } finally {
      error.mockRestore();
    }
  });

  it("the wrangler entry's store needs the WECHAT_KV binding", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch, store: kvStore });
    const called = await call(
      app,
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, AUTH),
      testEnv({ WECHAT_KV: undefined }),
    );
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "WECHAT_KV" });
    expect(fake.calls).toHaveLength(0);
  });

  it("WECHAT_EMULATOR=on without an emulator in this entry answers 503", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const called = await call(
      app,
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, AUTH),
      testEnv({ WECHAT_EMULATOR: "on" }),
    );
    expect(called.res.status).toBe(503);
    expect(errorOf(called).variable).toBe("WECHAT_EMULATOR");
  });
});

describe("unexpected errors", () => {
  it("answer a generic 500 and log one redacted line", async () => {
    const logger = recordingLogger();
    const broken = testApp({
      fetch: fakeFetch().fetch,
      logger,
      store: () => {
        throw new TypeError(`store exploded with ${SECRET}`);
      },
    });
    const called = await call(broken, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), testEnv());
    expect(called.res.status).toBe(500);
    expect(errorOf(called)).toEqual({ code: "internal_error", message: "Internal error" });
    expect(logger.lines.some((l) => l.includes("TypeError") && l.includes("[redacted]"))).toBe(true);
    expectCleanLogs(logger.lines);
  });

  it("upstream answers never reach the client with the token", async () => {
    const logger = recordingLogger();
    const fake = fakeFetch((request) =>
      jsonResponse({ errcode: 40003, errmsg: `invalid openid, echo ${new URL(request.url).search} rid: 1-2-3` })
    );
    const app = testApp({ fetch: fake.fetch, logger });
    const called = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called)).toMatchObject({ code: "wechat_api_error", errcode: 40003 });
    expectCleanLogs(logger.lines);
  });
});
