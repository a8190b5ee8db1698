import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import { AUTH, call, errorOf, expectCleanLogs, json, OPENID, recordingLogger, testApp, testEnv } from "./_helpers.ts";

beforeEach(() => reset());

const SEND = "/cgi-bin/message/custom/send";
const TYPING = "/cgi-bin/message/custom/typing";

describe("POST /api/messages", () => {
  const payloads = {
    text: { content: "Hello World 你好" },
    image: { media_id: "MEDIA_ID_1" },
    link: {
      title: "Docs",
      description: "Read me",
      url: "https://example.com/a",
      thumb_url: "https://example.com/t.png",
    },
    miniprogrampage: { title: "Card", pagepath: "pages/index/index?foo=bar", thumb_media_id: "THUMB_1" },
  };
  for (const [msgtype, payload] of Object.entries(payloads)) {
    it(`sends ${msgtype}: exact upstream body, WeChat's answer back`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const body = { touser: OPENID, msgtype, [msgtype]: payload };
      const called = await call(app, "/api/messages", json(body, AUTH), testEnv());
      expect(called.res.status).toBe(200);
      expect(JSON.parse(called.text)).toEqual({ errcode: 0, errmsg: "ok" });
      const [sent] = fake.to(SEND);
      expect(sent?.body).toBe(JSON.stringify(body));
      expect(sent?.url.searchParams.get("access_token")).toBe("ACCESS_TOKEN_1");
    });
  }

  const invalid: Array<[string, unknown, string]> = [
    ["no touser", { msgtype: "text", text: { content: "x" } }, "touser"],
    ["a bad touser", { touser: "bad id!", msgtype: "text", text: { content: "x" } }, "touser"],
    ["an unknown msgtype", { touser: OPENID, msgtype: "video", video: {} }, "msgtype"],
    ["no msgtype", { touser: OPENID, text: { content: "x" } }, "msgtype"],
    ["an empty text", { touser: OPENID, msgtype: "text", text: { content: "" } }, "text.content"],
    ["a missing object", { touser: OPENID, msgtype: "image" }, "image"],
    ["a bad link url", {
      touser: OPENID,
      msgtype: "link",
      link: { title: "t", description: "d", url: "javascript:alert(1)", thumb_url: "https://e.com/t.png" },
    }, "link.url"],
    ["a second object", { touser: OPENID, msgtype: "text", text: { content: "x" }, image: { media_id: "m" } }, "image"],
    ["an unknown field", { touser: OPENID, msgtype: "text", text: { content: "x", extra: 1 } }, "text.extra"],
    ["an array body", [1, 2], "body"],
  ];
  for (const [what, body, field] of invalid) {
    it(`refuses ${what} with 400 naming ${field}, before any upstream call`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const called = await call(app, "/api/messages", json(body, AUTH), testEnv());
      expect(called.res.status).toBe(400);
      const error = errorOf(called);
      expect(error).toMatchObject({ code: "validation_error", field });
      expect(error.message).toContain(field);
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("names the supported message types when msgtype is unknown", async () => {
    const app = testApp({ fetch: fakeFetch().fetch });
    const called = await call(app, "/api/messages", json({ touser: OPENID, msgtype: "video" }, AUTH), testEnv());
    expect(errorOf(called).message).toBe('Invalid msgtype: must be one of "text", "image", "link", "miniprogrampage"');
  });

  it("refuses malformed JSON with 400", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const malformed = await call(app, "/api/messages", {
      method: "POST",
      body: "{not json",
      headers: { ...AUTH, "content-type": "application/json" },
    }, testEnv());
    expect(malformed.res.status).toBe(400);
    expect(errorOf(malformed).code).toBe("bad_request");
    expect(fake.calls).toHaveLength(0);
  });

  it("refuses a body over 64 KiB with 413", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const body = { touser: OPENID, msgtype: "text", text: { content: "x".repeat(70 * 1024) } };
    const called = await call(app, "/api/messages", json(body, AUTH), testEnv());
    expect(called.res.status).toBe(413);
    expect(errorOf(called).code).toBe("payload_too_large");
    expect(fake.calls).toHaveLength(0);
  });

  it("a WeChat error answers 502 with its errcode", async () => {
    const fake = fakeFetch(() =>
      jsonResponse({ errcode: 45015, errmsg: "response out of time limit or subscription is canceled rid: 1-2-3" })
    );
    const app = testApp({ fetch: fake.fetch });
    const called = await call(
      app,
      "/api/messages",
      json({
        touser: OPENID,
        msgtype: "text",
        text: { content: "late" },
      }, AUTH),
      testEnv(),
    );
    expect(called.res.status).toBe(502);
    const error = errorOf(called);
    expect(error).toMatchObject({ code: "wechat_api_error", errcode: 45015 });
    expect(error.message).toContain("response out of time limit");
  });

  it("an upstream HTTP error answers 502 and is not retried (send is not idempotent)", async () => {
    const fake = fakeFetch(() => new Response("<html>bad gateway</html>", { status: 500 }));
    const app = testApp({ fetch: fake.fetch, retry: { baseDelayMs: 1 } });
    const called = await call(
      app,
      "/api/messages",
      json({
        touser: OPENID,
        msgtype: "text",
        text: { content: "x" },
      }, AUTH),
      testEnv(),
    );
    expect(called.res.status).toBe(502);
    expect(errorOf(called).code).toBe("upstream_http_error");
    expect(called.text).not.toContain("bad gateway");
    expect(fake.to(SEND)).toHaveLength(1);
  });

  it("a network failure answers 502 without the underlying message", async () => {
    const logger = recordingLogger();
    const fake = fakeFetch((request) => {
      throw new TypeError(`connect ECONNREFUSED while fetching ${request.url}`);
    });
    const app = testApp({ fetch: fake.fetch, logger });
    const called = await call(
      app,
      "/api/messages",
      json({
        touser: OPENID,
        msgtype: "text",
        text: { content: "x" },
      }, AUTH),
      testEnv(),
    );
    expect(called.res.status).toBe(502);
    expect(errorOf(called).code).toBe("upstream_unreachable");
    expect(called.text).not.toContain("ECONNREFUSED");
    expect(logger.lines).toHaveLength(1);
    expectCleanLogs(logger.lines);
  });

  it("a timeout answers 504", async () => {
    const fake = fakeFetch((request) =>
      new Promise<Response>((_, reject) => {
        request.signal.addEventListener("abort", () => reject(request.signal.reason));
      })
    );
    const app = testApp({ fetch: fake.fetch, timeoutMs: 50 });
    const called = await call(
      app,
      "/api/messages",
      json({
        touser: OPENID,
        msgtype: "text",
        text: { content: "x" },
      }, AUTH),
      testEnv(),
    );
    expect(called.res.status).toBe(504);
    expect(errorOf(called).code).toBe("upstream_timeout");
  });
});

describe("POST /api/typing", () => {
  for (const command of ["Typing", "CancelTyping"]) {
    it(`sends ${command}`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const called = await call(app, "/api/typing", json({ touser: OPENID, command }, AUTH), testEnv());
      expect(called.res.status).toBe(200);
      expect(JSON.parse(called.text)).toEqual({ errcode: 0, errmsg: "ok" });
      expect(fake.to(TYPING)[0]?.body).toBe(JSON.stringify({ touser: OPENID, command }));
    });
  }

  for (
    const [body, field] of [
      [{ touser: OPENID, command: "typing" }, "command"],
      [{ touser: OPENID }, "command"],
      [{ command: "Typing" }, "touser"],
      [{ touser: OPENID, command: "Typing", extra: true }, "extra"],
    ] as const
  ) {
    it(`refuses ${JSON.stringify(body)} naming ${field}`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const called = await call(app, "/api/typing", json(body, AUTH), testEnv());
      expect(called.res.status).toBe(400);
      expect(errorOf(called)).toMatchObject({ code: "validation_error", field });
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("45080 (no recent interaction) answers 502 with its errcode", async () => {
    const fake = fakeFetch(() => jsonResponse({ errcode: 45080, errmsg: "no message interaction" }));
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called).errcode).toBe(45080);
  });

  it("-1 (system busy) answers 502 with errcode -1", async () => {
    const fake = fakeFetch(() => jsonResponse({ errcode: -1, errmsg: "system error" }));
    const app = testApp({ fetch: fake.fetch, retry: { baseDelayMs: 1 } });
    const called = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called)).toMatchObject({ code: "wechat_api_error", errcode: -1 });
  });
});

describe("JSON routes without Content-Type: application/json", () => {
  // A valid body each route would accept as JSON: only the header is wrong.
  const bodies = {
    "/api/messages": { touser: OPENID, msgtype: "text", text: { content: "Hi" } },
    "/api/typing": { touser: OPENID, command: "Typing" },
    "/api/subscribe-messages": { touser: OPENID, template_id: "TEMPLATE_1", data: { thing1: { value: "x" } } },
  };
  for (const [path, body] of Object.entries(bodies)) {
    it(`${path} answers 415 naming the header, and calls no one`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const sent = JSON.stringify(body);
      // Bytes get no Content-Type from Request (a string would get text/plain).
      const none = await call(
        app,
        path,
        { method: "POST", body: new TextEncoder().encode(sent), headers: AUTH },
        testEnv(),
      );
      const plain = await call(
        app,
        path,
        { method: "POST", body: sent, headers: { ...AUTH, "content-type": "text/plain;charset=UTF-8" } },
        testEnv(),
      );
      const form = await call(
        app,
        path,
        { method: "POST", body: sent, headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded" } },
        testEnv(),
      );
      for (
        const [called, received] of [[none, "none"], [plain, "text/plain"], [
          form,
          "application/x-www-form-urlencoded",
        ]] as const
      ) {
        expect(called.res.status).toBe(415);
        expect(errorOf(called)).toEqual({
          code: "unsupported_media_type",
          message: `Send the body as JSON with Content-Type: application/json (received: ${received})`,
        });
      }
      expect(fake.calls).toHaveLength(0);
      // The same body as JSON, with a charset, goes through.
      const ok = await call(
        app,
        path,
        { method: "POST", body: sent, headers: { ...AUTH, "content-type": "application/json; charset=utf-8" } },
        testEnv(),
      );
      expect(ok.res.status, ok.text).toBe(200);
      expect(fake.calls.length).toBeGreaterThan(0); // the token, then the route's own call
    });
  }
});
