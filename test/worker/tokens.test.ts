import { env as workerEnv } from "cloudflare:workers";
import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { kvStore } from "../../worker/index.ts";
import { fakeFetch, json as jsonResponse, TOKEN_PATH } from "../cases/_fake.ts";
import {
  APP_ID,
  AUTH,
  brokenKv,
  call,
  expectCleanLogs,
  json,
  OPENID,
  recordingLogger,
  SECRET,
  testApp,
  testEnv,
} from "./_helpers.ts";

beforeEach(() => reset());

const TYPING = "/cgi-bin/message/custom/typing";
const KEY = `kefu-edge:access_token:stable:${APP_ID}`;
const typing = () => json({ touser: OPENID, command: "Typing" }, AUTH);

describe("access tokens in KV", () => {
  it("a second app instance reuses the token cached in KV (one upstream token call)", async () => {
    const fake = fakeFetch();
    const first = await call(testApp({ fetch: fake.fetch, store: kvStore }), "/api/typing", typing(), testEnv());
    expect(first.res.status).toBe(200);
    const stored = JSON.parse((await workerEnv.WECHAT_KV.get(KEY))!) as { access_token: string; refresh_at: number };
    expect(stored.access_token).toBe("ACCESS_TOKEN_1");
    expect(stored.refresh_at).toBeGreaterThan(Date.now());

    const second = await call(testApp({ fetch: fake.fetch }), "/api/typing", typing(), testEnv());
    expect(second.res.status).toBe(200);
    expect(fake.to(TOKEN_PATH)).toHaveLength(1);
    expect(fake.to(TYPING).map((c) => c.url.searchParams.get("access_token"))).toEqual([
      "ACCESS_TOKEN_1",
      "ACCESS_TOKEN_1",
    ]);
  });

  it("one app serves many calls from one token and one MiniProgram", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => call(app, "/api/typing", typing(), testEnv())),
    );
    expect(results.map((r) => r.res.status)).toEqual([200, 200, 200, 200, 200]);
    expect(fake.to(TOKEN_PATH)).toHaveLength(1);
  });

  it("an invalid-token answer refreshes the token in KV and replays the call once", async () => {
    let n = 0;
    const fake = fakeFetch(() =>
      ++n === 1
        ? jsonResponse({ errcode: 40001, errmsg: "invalid credential" })
        : jsonResponse({ errcode: 0, errmsg: "ok" })
    );
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/typing", typing(), testEnv());
    expect(called.res.status).toBe(200);
    expect(fake.to(TOKEN_PATH)).toHaveLength(2);
    const stored = JSON.parse((await workerEnv.WECHAT_KV.get(KEY))!) as { access_token: string };
    expect(stored.access_token).toBe("ACCESS_TOKEN_2");
  });

  it("a token-endpoint error (bad secret) answers 502 with its errcode and no secret", async () => {
    const calls: string[] = [];
    const app = testApp({
      fetch: (input, init) => {
        const path = new URL(new Request(input, init).url).pathname;
        calls.push(path);
        return Promise.resolve(jsonResponse({ errcode: 40125, errmsg: `invalid appsecret ${SECRET} rid: 1-2-3` }));
      },
    });
    const called = await call(app, "/api/typing", typing(), testEnv());
    expect(called.res.status).toBe(502);
    expect(JSON.parse(called.text).error).toMatchObject({ code: "wechat_api_error", errcode: 40125 });
    expect(calls).toEqual([TOKEN_PATH]);
  });
});

describe("a failing KV binding", () => {
  it("does not fail API calls, and logs without credentials", async () => {
    const logger = recordingLogger();
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch, store: kvStore, logger });
    const env = testEnv({ WECHAT_KV: brokenKv });
    for (let i = 0; i < 2; i++) {
      const called = await call(
        app,
        "/api/messages",
        json({
          touser: OPENID,
          msgtype: "text",
          text: { content: `hi ${i}` },
        }, AUTH),
        env,
      );
      expect(called.res.status).toBe(200);
    }
    // The in-memory copy carries the second call.
    expect(fake.to(TOKEN_PATH)).toHaveLength(1);
    expect(logger.lines.length).toBeGreaterThan(0);
    expectCleanLogs(logger.lines);
  });
});
