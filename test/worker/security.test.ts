// Regression tests of the security review, through the worker inside workerd with real KV:
// no plaintext downgrade in safe mode, no pre-marking by forgeries, one body per plain-mode
// query, exact emulator switch and loopback-only dev routes, API_KEY hygiene, API base path.
import { env as workerEnv } from "cloudflare:workers";
import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import { createDevApp } from "../../worker/dev.ts";
import { emulatorUpstream } from "../../worker/emulator.ts";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import {
  AES_KEY,
  API_KEY,
  APP_ID,
  AUTH,
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

beforeEach(() => reset());

const FORWARD_URL = "https://hooks.example.com/kefu";
const FORWARD_SECRET = "forward-secret-0123456789";
const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" };
const PLAIN: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, format: "xml" };

function xmlOf(message: Record<string, string | number>): string {
  return `<xml>${Object.entries(message).map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`).join("")}</xml>`;
}

/** The signed query of `push` with its safe-mode parts stripped and encrypt_type set as given. */
function downgraded(url: string, encryptType: string | null): string {
  const parsed = new URL(url, "http://127.0.0.1:8787");
  parsed.searchParams.delete("msg_signature");
  if (encryptType === null) parsed.searchParams.delete("encrypt_type");
  else parsed.searchParams.set("encrypt_type", encryptType);
  return `${parsed.pathname}${parsed.search}`;
}

async function pushKeys(): Promise<string[]> {
  return (await workerEnv.WECHAT_KV.list({ prefix: "kefu-edge:push:" })).keys.map((k) => k.name);
}

describe("safe mode cannot be downgraded to plaintext", () => {
  it("refuses forged plaintext bodies on a captured signed query: 401, not forwarded, nothing marked", async () => {
    const fake = fakeFetch((_request, url) =>
      url.hostname === "hooks.example.com" ? new Response("ok") : jsonResponse({ errcode: 0, errmsg: "ok" })
    );
    let runs = 0;
    const env = testEnv({ WECHAT_AES_KEY: AES_KEY, FORWARD_URL, FORWARD_SECRET });
    const logger = recordingLogger();
    const app = testApp({ fetch: fake.fetch, logger });
    const captured = await buildPush(SAFE, textMessage("the real one"));
    for (const [i, encryptType] of [null, "raw", "", null, "raw", null, ""].entries()) {
      const forged = xmlOf(textMessage(`forged ${i}`));
      const called = await call(app, downgraded(captured.url, encryptType), {
        method: "POST",
        body: forged,
        headers: { "content-type": "text/xml" },
      }, env);
      expect(called.res.status, `forgery ${i}`).toBe(401);
      expect(errorOf(called).code).toBe("encryption_required");
    }
    // The onMessage app sees nothing either.
    const handled = testApp({ fetch: fake.fetch, onMessage: () => void runs++ });
    const plainBody = xmlOf(textMessage("forged"));
    const refused = await call(handled, downgraded(captured.url, null), { method: "POST", body: plainBody }, env);
    expect(refused.res.status).toBe(401);
    expect(runs).toBe(0);
    expect(fake.calls.filter((c) => c.url.hostname === "hooks.example.com")).toHaveLength(0);
    expect(await pushKeys()).toEqual([]);
    // Each refusal left one log line saying why, without the body or a secret.
    const refusals = logger.lines.filter((l) => l.includes("push_refused"));
    expect(refusals).toHaveLength(7);
    for (const line of refusals) {
      expect(JSON.parse(line)).toMatchObject({ status: 401, reason: "encryption_required" });
      expect(line).not.toContain("forged");
    }
    expectCleanLogs(logger.lines);
  });

  it("a refused forgery cannot pre-mark a real MsgId: the real message still runs", async () => {
    const seen: string[] = [];
    const app = testApp({ fetch: fakeFetch().fetch, onMessage: (m) => void seen.push(String(m.Content)) });
    const env = testEnv({ WECHAT_AES_KEY: AES_KEY });
    const real = textMessage("real");
    const push = await buildPush(SAFE, real);
    const forged = await call(app, downgraded(push.url, null), {
      method: "POST",
      body: xmlOf({ ...real, Content: "forged" }),
    }, env);
    expect(forged.res.status).toBe(401);
    const delivered = await call(app, push.request(), undefined, env);
    expect(delivered.text).toBe("success");
    expect(seen).toEqual(["real"]);
  });
});

describe("plain mode: one signed query carries one message", () => {
  it("the same timestamp and nonce with another body is refused; WeChat's retry of the same body passes", async () => {
    const seen: string[] = [];
    const app = testApp({ fetch: fakeFetch().fetch, onMessage: (m) => void seen.push(String(m.Content)) });
    const env = testEnv();
    const push = await buildPush(PLAIN, textMessage("first"));
    expect((await call(app, push.request(), undefined, env)).text).toBe("success");
    expect((await call(app, push.request(), undefined, env)).text).toBe("success"); // a retry
    const reused = await call(app, push.url, { method: "POST", body: xmlOf(textMessage("second")) }, env);
    expect(reused.res.status).toBe(401);
    expect(errorOf(reused).code).toBe("nonce_reused");
    expect(seen).toEqual(["first"]);
  });
});

describe("emulator mode and the dev routes", () => {
  for (const value of ["ON", " on ", "On", "on\t", "on\n", "yes"]) {
    it(`WECHAT_EMULATOR=${JSON.stringify(value)} opens nothing`, async () => {
      const upstream = emulatorUpstream();
      const app = createDevApp({ upstream, logger: recordingLogger() });
      const env = testEnv({ WECHAT_EMULATOR: value });
      const page = await call(app, "/_emulator/", undefined, env);
      expect(page.res.status).toBe(404);
      const said = await call(app, `/_emulator/users/${OPENID}/messages`, json({ text: "hi" }), env);
      expect(said.res.status).toBe(404);
      // /api does not silently use the emulator either: the value is refused by name.
      const api = await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
      expect(api.res.status).toBe(503);
      expect(errorOf(api)).toMatchObject({ code: "config_invalid", variable: "WECHAT_EMULATOR" });
      expect(upstream.emulatorFor(APP_ID)).toBeUndefined();
    });
  }

  it("the dev routes answer only requests addressed to a loopback host", async () => {
    const app = createDevApp({ upstream: emulatorUpstream(), logger: recordingLogger() });
    const env = testEnv({ WECHAT_EMULATOR: "on" });
    for (const host of ["localhost:8787", "127.0.0.1:8787", "127.0.0.2", "[::1]:8787"]) {
      const res = await app.fetch(new Request(`http://${host}/_emulator/users`), env);
      expect(res.status, host).toBe(200);
    }
    for (const host of ["evil.example", "127.0.0.1.evil.example", "10.0.0.1:8787", "localhost.evil.example"]) {
      const res = await app.fetch(new Request(`http://${host}/_emulator/users`), env);
      expect(res.status, host).toBe(404);
    }
    // A rebinding page: loopback address in the URL, its own name in Host.
    const rebound = await app.fetch(
      new Request("http://127.0.0.1:8787/_emulator/users", { headers: { host: "evil.example:8787" } }),
      env,
    );
    expect(rebound.status).toBe(404);
  });
});

describe("configuration hygiene", () => {
  for (const key of [` ${API_KEY}`, `${API_KEY}\n`, `${API_KEY} `, `\t${API_KEY}`]) {
    it(`API_KEY ${JSON.stringify(key.replace(API_KEY, "<key>"))} is refused by name, never trimmed`, async () => {
      const fake = fakeFetch();
      const called = await call(
        testApp({ fetch: fake.fetch }),
        "/api/typing",
        json({ touser: OPENID, command: "Typing" }, AUTH),
        testEnv({ API_KEY: key }),
      );
      expect(called.res.status).toBe(503);
      expect(errorOf(called)).toMatchObject({ code: "config_invalid", variable: "API_KEY" });
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("WECHAT_API_BASE keeps its path: calls go to <base>/cgi-bin/...", async () => {
    const fake = fakeFetch((_request, url) =>
      url.pathname.endsWith("/cgi-bin/stable_token")
        ? jsonResponse({ access_token: "ACCESS_TOKEN_X", expires_in: 7200 })
        : jsonResponse({ errcode: 0, errmsg: "ok" })
    );
    const called = await call(
      testApp({ fetch: fake.fetch }),
      "/api/typing",
      json({ touser: OPENID, command: "Typing" }, AUTH),
      testEnv({ WECHAT_API_BASE: "https://proxy.example/wechat/" }),
    );
    expect(called.res.status).toBe(200);
    expect(fake.calls.map((c) => `${c.url.host}${c.url.pathname}`)).toEqual([
      "proxy.example/wechat/cgi-bin/stable_token",
      "proxy.example/wechat/cgi-bin/message/custom/typing",
    ]);
  });
});
