import assert from "node:assert/strict";
import {
  isSystemBusy,
  type KeyValueStore,
  MemoryStore,
  MiniProgram,
  WeChatApiError,
  WeChatError,
  WeChatHttpError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "../../mod.ts";
import { delay, fakeFetch, json, TOKEN_PATH } from "./_fake.ts";
import { test } from "./_registry.ts";

const APP = { appId: "wx1234567890abcdef", appSecret: "APP_SECRET_VALUE_0123456789" };
const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
const SEND = "/cgi-bin/message/custom/send";
const TYPING = "/cgi-bin/message/custom/typing";
const ok = () => json({ errcode: 0, errmsg: "ok" });
const quiet = { warn: () => {} };

test("stable_token normal mode: POST JSON with force_refresh false, no query", async () => {
  const fake = fakeFetch();
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch });
  assert.equal(await mp.accessToken.getToken(), "ACCESS_TOKEN_1");
  const [call] = fake.to(TOKEN_PATH);
  assert.ok(call);
  assert.equal(call.request.method, "POST");
  assert.equal(call.url.search, "");
  assert.deepEqual(JSON.parse(call.body), {
    grant_type: "client_credential",
    appid: APP.appId,
    secret: APP.appSecret,
    force_refresh: false,
  });
});

test("200 concurrent calls on a cold cache make exactly one token call", async () => {
  const fake = fakeFetch(ok);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch });
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => mp.customerServiceMessage.send(OPENID, "text", { content: `m${i}` })),
  );
  assert.equal(fake.to(TOKEN_PATH).length, 1);
  assert.equal(fake.to(SEND).length, 200);
  assert.ok(fake.to(SEND).every((c) => c.url.searchParams.get("access_token") === "ACCESS_TOKEN_1"));
});

test("two MiniProgram instances on one store share one token call, in sequence and concurrently", async () => {
  for (const concurrent of [false, true]) {
    const fake = fakeFetch(ok);
    const store = new MemoryStore();
    const a = new MiniProgram({ ...APP, fetch: fake.fetch, store });
    const b = new MiniProgram({ ...APP, fetch: fake.fetch, store });
    if (concurrent) {
      await Promise.all([a.accessToken.getToken(), b.accessToken.getToken()]);
    } else {
      await a.accessToken.getToken();
      await b.accessToken.getToken();
    }
    assert.equal(fake.to(TOKEN_PATH).length, 1, concurrent ? "concurrent" : "sequential");
  }
});

test("the token is cached until shortly before expiry, then fetched again", async () => {
  let now = 1_700_000_000_000;
  const fake = fakeFetch(ok);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, now: () => now });
  assert.equal(await mp.accessToken.getToken(), "ACCESS_TOKEN_1");
  now += 6_900_000; // 115 min: still inside 7200 s minus the margin
  assert.equal(await mp.accessToken.getToken(), "ACCESS_TOKEN_1");
  now += 120_000; // 117 min: inside the last 5 minutes, where stable_token hands out the renewed token
  assert.equal(await mp.accessToken.getToken(), "ACCESS_TOKEN_2");
  assert.equal(fake.to(TOKEN_PATH).length, 2);
});

test("40001: compare-and-expire the failed token, fetch a new one and replay exactly once", async () => {
  const fake = fakeFetch((_req, url) =>
    url.searchParams.get("access_token") === "ACCESS_TOKEN_1"
      ? json({ errcode: 40001, errmsg: "invalid credential, access_token is invalid or not latest" })
      : ok()
  );
  const store = new MemoryStore();
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, store });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "hi" });
  assert.deepEqual(fake.to(SEND).map((c) => c.url.searchParams.get("access_token")), [
    "ACCESS_TOKEN_1",
    "ACCESS_TOKEN_2",
  ]);
  assert.equal(fake.to(TOKEN_PATH).length, 2);
  assert.match((await store.get(mp.accessToken.cacheKey)) ?? "", /ACCESS_TOKEN_2/);
});

test("invalidate leaves a token another instance already refreshed alone", async () => {
  const fake = fakeFetch(ok);
  const store = new MemoryStore();
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, store });
  await mp.accessToken.getToken(); // ACCESS_TOKEN_1
  await mp.accessToken.refresh(); // ACCESS_TOKEN_2 now in the store
  await mp.accessToken.invalidate("ACCESS_TOKEN_1");
  assert.equal(await mp.accessToken.getToken(), "ACCESS_TOKEN_2");
  assert.equal(fake.to(TOKEN_PATH).length, 2);
});

test("a permanent 40001 fails after exactly two attempts", async () => {
  const fake = fakeFetch(() => json({ errcode: 40001, errmsg: "invalid credential" }));
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch });
  await assert.rejects(
    mp.customerServiceMessage.send(OPENID, "text", { content: "hi" }),
    (e: unknown) => e instanceof WeChatApiError && e.errcode === 40001,
  );
  assert.equal(fake.to(SEND).length, 2);
});

test("42001 and 40014 also trigger one refresh and replay", async () => {
  for (const errcode of [42001, 40014]) {
    const fake = fakeFetch((_r, _u, i) => (i === 1 ? json({ errcode, errmsg: "expired" }) : ok()));
    const mp = new MiniProgram({ ...APP, fetch: fake.fetch });
    await mp.customerServiceMessage.setTyping(OPENID, "Typing");
    assert.equal(fake.to(TYPING).length, 2, String(errcode));
  }
});

test("-1 on an idempotent call is retried with backoff, then succeeds", async () => {
  let busy = 2;
  const fake = fakeFetch(() => (busy-- > 0 ? json({ errcode: -1, errmsg: "system error" }) : ok()));
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { baseDelayMs: 1 } });
  await mp.customerServiceMessage.setTyping(OPENID, "CancelTyping");
  assert.equal(fake.to(TYPING).length, 3);
});

test("-1 beyond maxRetries surfaces as isSystemBusy", async () => {
  const fake = fakeFetch(() => json({ errcode: -1, errmsg: "system error" }));
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { maxRetries: 1, baseDelayMs: 1 } });
  await assert.rejects(mp.customerServiceMessage.setTyping(OPENID, "CancelTyping"), isSystemBusy);
  assert.equal(fake.to(TYPING).length, 2);
});

test("Typing is not replayed after an ambiguous failure (a replay would get 45081)", async () => {
  const fake = fakeFetch(() => json({ errcode: -1, errmsg: "system error" }));
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { baseDelayMs: 1 } });
  await assert.rejects(mp.customerServiceMessage.setTyping(OPENID, "Typing"), isSystemBusy);
  assert.equal(fake.to(TYPING).length, 1);
});

test("send keeps the text exactly as given, whitespace included", async () => {
  const fake = fakeFetch(ok);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch });
  const content = "  line one\n    indented code\n";
  await mp.customerServiceMessage.send(OPENID, "text", { content });
  assert.equal(JSON.parse(fake.to(SEND)[0]!.body).text.content, content);
});

test("5xx on an idempotent call is retried; on send it is not (the message may be delivered)", async () => {
  const fail = fakeFetch(() => new Response("bad gateway", { status: 502 }));
  const mp = new MiniProgram({ ...APP, fetch: fail.fetch, retry: { baseDelayMs: 1 } });
  await assert.rejects(
    mp.customerServiceMessage.setTyping(OPENID, "CancelTyping"),
    (e: unknown) => e instanceof WeChatHttpError && e.status === 502,
  );
  assert.equal(fail.to(TYPING).length, 3);
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }), WeChatHttpError);
  assert.equal(fail.to(SEND).length, 1);
});

test("a timeout raises WeChatTimeoutError; a send that timed out is not replayed", async () => {
  const fake = fakeFetch((req) =>
    new Promise<Response>((_resolve, reject) => {
      req.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    })
  );
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, timeoutMs: 20, retry: { baseDelayMs: 1 } });
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }), (e: unknown) => {
    assert.ok(e instanceof WeChatTimeoutError);
    assert.equal(e.timeoutMs, 20);
    return true;
  });
  assert.equal(fake.to(SEND).length, 1);
  await assert.rejects(mp.customerServiceMessage.getTempMedia("MEDIA"), WeChatTimeoutError);
  assert.equal(fake.to("/cgi-bin/media/get").length, 3);
});

test("a failed connection raises WeChatNetworkError with a redacted cause", async () => {
  const fake = fakeFetch((req) => {
    throw new TypeError(`error sending request for url (${req.url})`);
  });
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { maxRetries: 0 } });
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }), (e: unknown) => {
    assert.ok(e instanceof WeChatNetworkError);
    assert.ok(e.cause instanceof Error);
    assert.ok(!e.message.includes("ACCESS_TOKEN_1") && !String(e.cause.message).includes("ACCESS_TOKEN_1"));
    return true;
  });
});

test("no error, stack or JSON of an error contains the access token or the app secret", async () => {
  const token = "TOKEN_VALUE_THAT_MUST_NOT_LEAK";
  const failures: Array<(req: Request) => Response> = [
    (req) => {
      throw new TypeError(`connect failed: ${req.url} secret=${APP.appSecret}`);
    },
    () => json({ errcode: 48001, errmsg: `api unauthorized for ${token} rid: 1-2-3` }),
    () => new Response(`upstream said ${token}`, { status: 503 }),
    () => new Response(`<html>${token}</html>`, { status: 200 }),
  ];
  for (const failure of failures) {
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (new URL(req.url).pathname === TOKEN_PATH) {
        return Promise.resolve(json({ access_token: token, expires_in: 7200 }));
      }
      return Promise.resolve().then(() => failure(req));
    }) as typeof fetch;
    const mp = new MiniProgram({ ...APP, fetch: fetchFn, retry: { maxRetries: 0 } });
    const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "x" }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WeChatError, String(err));
    const cause = err.cause instanceof Error ? `${err.cause.message} ${err.cause.stack}` : "";
    for (const text of [err.message, err.stack ?? "", JSON.stringify(err), String(err), cause]) {
      assert.ok(!text.includes(token), `token leaked: ${text}`);
      assert.ok(!text.includes(APP.appSecret), `secret leaked: ${text}`);
    }
  }
  // A token-endpoint failure must not leak the secret either (classic puts it in the URL).
  const classic = new MiniProgram({
    ...APP,
    tokenSource: "classic",
    retry: { maxRetries: 0 },
    fetch: ((input: RequestInfo | URL) =>
      Promise.reject(new TypeError(`failed: ${String(input instanceof Request ? input.url : input)}`))) as typeof fetch,
  });
  const err = await classic.accessToken.getToken().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof WeChatNetworkError);
  assert.ok(!JSON.stringify({ m: err.message, c: String((err.cause as Error).message) }).includes(APP.appSecret));
});

test("a throwing store is logged and bypassed; the call still succeeds", async () => {
  const broken: KeyValueStore = {
    get: () => Promise.reject(new Error("KV unavailable")),
    set: () => Promise.reject(new Error("KV unavailable")),
    delete: () => Promise.reject(new Error("KV unavailable")),
  };
  const warnings: string[] = [];
  const fake = fakeFetch(ok);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, store: broken, logger: { warn: (m) => warnings.push(m) } });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "a" });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "b" });
  assert.equal(fake.to(TOKEN_PATH).length, 1, "memory fallback keeps the token");
  assert.ok(warnings.length >= 2 && warnings.every((w) => w.includes("KV unavailable")));
  assert.ok(warnings.every((w) => !w.includes("ACCESS_TOKEN_1") && !w.includes(APP.appSecret)));
});

test("classic token source: GET /cgi-bin/token with appid and secret", async () => {
  const fake = fakeFetch(ok);
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    if (new URL(req.url).pathname === "/cgi-bin/token") {
      fake.calls.push({ request: req, url: new URL(req.url), body: "" });
      return Promise.resolve(json({ access_token: "CLASSIC_TOKEN", expires_in: 7200 }));
    }
    return fake.fetch(req);
  }) as typeof fetch;
  const mp = new MiniProgram({ ...APP, tokenSource: "classic", fetch: fetchFn });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "x" });
  const [call] = fake.to("/cgi-bin/token");
  assert.ok(call);
  assert.equal(call.request.method, "GET");
  assert.equal(call.url.searchParams.get("grant_type"), "client_credential");
  assert.equal(call.url.searchParams.get("appid"), APP.appId);
  assert.equal(call.url.searchParams.get("secret"), APP.appSecret);
  assert.equal(fake.to(SEND)[0]?.url.searchParams.get("access_token"), "CLASSIC_TOKEN");
  assert.equal(fake.to(TOKEN_PATH).length, 0);
});

test("custom token source: called with an AbortSignal, no secret needed, single-flight", async () => {
  const fake = fakeFetch(ok);
  let calls = 0;
  const mp = new MiniProgram({
    appId: APP.appId,
    fetch: fake.fetch,
    tokenSource: async (signal) => {
      assert.ok(signal instanceof AbortSignal);
      calls++;
      await delay(5);
      return { access_token: "CENTRAL_TOKEN", expires_in: 600 };
    },
  });
  await Promise.all([1, 2, 3].map(() => mp.customerServiceMessage.setTyping(OPENID, "Typing")));
  assert.equal(calls, 1);
  assert.ok(fake.to(TYPING).every((c) => c.url.searchParams.get("access_token") === "CENTRAL_TOKEN"));
  assert.equal(fake.to(TOKEN_PATH).length, 0);
});

test("a token with any characters is sent exactly as URLSearchParams encodes it", async () => {
  for (const token of ["Az09*-._", "a~b", "a!b'c(d)", "tok en+/=&?#%", "é中😀", "x".repeat(600)]) {
    const urls: string[] = [];
    const fetchFn = ((input: RequestInfo | URL) => {
      urls.push(String(input));
      return Promise.resolve(json({ errcode: 0, errmsg: "ok" }));
    }) as typeof fetch;
    const mp = new MiniProgram({
      appId: APP.appId,
      fetch: fetchFn,
      baseUrl: "http://127.0.0.1:9",
      tokenSource: () => Promise.resolve({ access_token: token, expires_in: 600 }),
    });
    await mp.customerServiceMessage.send(OPENID, "text", { content: "x" });
    await mp.customerServiceMessage.getTempMedia("MEDIA_1").catch(() => {});
    const send = new URL(SEND, "http://127.0.0.1:9");
    send.searchParams.set("access_token", token);
    const media = new URL("/cgi-bin/media/get", "http://127.0.0.1:9");
    media.searchParams.set("access_token", token);
    media.searchParams.set("media_id", "MEDIA_1");
    assert.deepEqual(urls, [send.href, media.href], token);
    assert.equal(new URL(urls[1]!).searchParams.get("access_token"), token);
  }
});

test("a custom source that returns garbage is a clear error", async () => {
  const mp = new MiniProgram({
    appId: APP.appId,
    fetch: fakeFetch(ok).fetch,
    // deno-lint-ignore no-explicit-any
    tokenSource: () => Promise.resolve({ token: "x" } as any),
    logger: quiet,
  });
  await assert.rejects(mp.accessToken.getToken(), /Invalid token response/);
});

test("a token endpoint error surfaces as WeChatApiError without a replay loop", async () => {
  const fetchFn = (() => Promise.resolve(json({ errcode: 40125, errmsg: "invalid appsecret" }))) as typeof fetch;
  const mp = new MiniProgram({ ...APP, fetch: fetchFn });
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }), (e: unknown) => {
    return e instanceof WeChatApiError && e.errcode === 40125 && e.endpoint === TOKEN_PATH;
  });
});

test("MiniProgram refuses missing appId and secret", () => {
  assert.throws(() => new MiniProgram({ appId: "", appSecret: "x" }), /appId/);
  assert.throws(() => new MiniProgram({ appId: "wx1" }), /appSecret/);
});
