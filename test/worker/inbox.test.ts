// The agent inbox's server side inside workerd, with the real Durable Objects: closed until
// configured, the page and its files behind the sign-in, the agent's part of /api as the agent
// signed in (sender and handoff agent from the session, CSRF on every write, sends refused
// outside the window before WeChat is called, typing throttled), the subscribe-message
// fallback, and live updates over a hibernatable WebSocket on the app's directory object.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createEmulator } from "../../src/testing/mod.ts";
import type { Env, KefuApp } from "../../worker/mod.ts";
import { hashPassword } from "../../worker/inbox/mod.ts";
import { AES_KEY, APP_ID, call, type Called, errorOf, PUSH_TOKEN, SECRET, testApp, testEnv } from "./_helpers.ts";

const ORIGIN = "http://127.0.0.1:8787";
const PASSWORD = "correct horse battery";
// The conversations live in the Durable Objects: each test its own users.
let users = 0;
const newUser = () => `o_inbox_test_${Date.now().toString(36)}_${users++}`.padEnd(28, "0");

async function setup(overrides: Partial<Record<keyof Env, unknown>> = {}) {
  const wechat = createEmulator({
    appId: APP_ID,
    appSecret: SECRET,
    push: { token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" },
  });
  const calls: string[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    calls.push(new URL(request.url).pathname);
    return wechat.fetch(request);
  };
  const handled: string[] = [];
  const app = testApp({ fetch, onMessage: (m) => void handled.push(String(m.Content ?? m.Event)) }) as KefuApp;
  const env = testEnv({
    WECHAT_AES_KEY: AES_KEY,
    KEFU_STORE: workerEnv.KEFU_STORE,
    ASSETS: workerEnv.ASSETS,
    INBOX_AGENTS: `alice:${await hashPassword(PASSWORD)}\nbob:${await hashPassword(PASSWORD)}`,
    ...overrides,
  });
  const push = async (openId: string, text: string) => {
    const action = await wechat.user(openId).says(text);
    const pushed = await call(app, action.request(), undefined, env);
    expect(pushed.text).toBe("success");
    await pushed.settled();
  };
  return { app, env, wechat, calls, handled, push };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Signs in as `name` through the login form; returns the headers of the agent's requests. */
async function signIn({ app, env }: Setup, name: string) {
  const login = await call(app, "/inbox/login", {
    method: "POST",
    body: new URLSearchParams({ name, password: PASSWORD }),
    headers: { origin: ORIGIN, accept: "text/html" },
    redirect: "manual",
  }, env);
  expect(login.res.status).toBe(303);
  const cookie = /^(kefu_inbox=[^;]+)/.exec(login.res.headers.get("set-cookie") ?? "")?.[1];
  expect(cookie).toBeDefined();
  const session = await call(app, "/inbox/api/session", { headers: { cookie: cookie! } }, env);
  expect(session.res.status).toBe(200);
  const { csrfToken, agent } = JSON.parse(session.text) as { csrfToken: string; agent: string };
  expect(agent).toBe(name);
  const read = { cookie: cookie! };
  const write = { ...read, "x-csrf-token": csrfToken, origin: ORIGIN, "content-type": "application/json" };
  return { read, write };
}

const body = (called: Called) => JSON.parse(called.text);

describe("the agent inbox in the worker", () => {
  it("is closed until Access or agents are configured: every path answers 503 naming what to set", async () => {
    const s = await setup({ INBOX_AGENTS: undefined });
    for (const path of ["/inbox", "/inbox/", "/inbox/inbox.js", "/inbox/login", "/inbox/api/session", "/inbox/live"]) {
      const answer = await call(s.app, path, {}, s.env);
      expect(answer.res.status, path).toBe(503);
      const error = errorOf(answer);
      expect(error.code).toBe("inbox_not_configured");
      expect(error.message).toMatch(/INBOX_AGENTS/);
      expect(error.message).toMatch(/ACCESS_TEAM_DOMAIN/);
    }
  });

  it("keeps the page and the API behind the sign-in, with a strict CSP on every answer", async () => {
    const s = await setup();
    const page = await call(s.app, "/inbox/", { headers: { accept: "text/html" }, redirect: "manual" }, s.env);
    expect(page.res.status).toBe(303);
    expect(page.res.headers.get("location")).toBe("/inbox/login");
    const api = await call(s.app, "/inbox/api/conversations", {}, s.env);
    expect(api.res.status).toBe(401);
    expect(errorOf(api).code).toBe("unauthorized");
    for (const answer of [page, api]) {
      expect(answer.res.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
      expect(answer.res.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'/);
      expect(answer.res.headers.get("x-frame-options")).toBe("DENY");
    }
    const { read } = await signIn(s, "alice");
    const index = await call(s.app, "/inbox/", { headers: read }, s.env);
    expect(index.res.status).toBe(200);
    expect(index.res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(index.res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
    expect(index.text).not.toMatch(/<script>|style="/); // nothing inline: the CSP would block it
    const redirect = await call(s.app, "/inbox", { headers: read, redirect: "manual" }, s.env);
    expect(redirect.res.status).toBe(308);
  });

  it("answers as the agent signed in: list, history, handoff; writes need the CSRF token; no purge", async () => {
    const s = await setup();
    const openId = newUser();
    await s.push(openId, "你好，我要退款");
    const alice = await signIn(s, "alice");
    const list = body(
      await call(s.app, "/inbox/api/conversations?state=all&limit=200", { headers: alice.read }, s.env),
    );
    expect(list.conversations.map((c: { openId: string }) => c.openId)).toContain(openId);
    const history = body(await call(s.app, `/inbox/api/users/${openId}/messages`, { headers: alice.read }, s.env));
    expect(history.entries[0]).toMatchObject({ sender: "user", text: "你好，我要退款" });

    const takeOver = (headers: Record<string, string>, agent?: string) =>
      call(s.app, `/inbox/api/users/${openId}/handoff`, {
        method: "PUT",
        headers,
        body: JSON.stringify({ state: "human", reason: "refund", ...(agent ? { agent } : {}) }),
      }, s.env);
    const { "x-csrf-token": _, ...noToken } = alice.write;
    const refused = await takeOver(noToken);
    expect(refused.res.status).toBe(403);
    expect(errorOf(refused).code).toBe("csrf_failed");
    const foreign = await takeOver({ ...alice.write, origin: "https://evil.example" });
    expect(foreign.res.status).toBe(403);
    // The body cannot name someone else: the agent is the one signed in.
    const taken = await takeOver(alice.write, "mallory");
    expect(taken.res.status).toBe(200);
    expect(body(taken)).toMatchObject({ state: "human", agent: "alice" });
    const bob = await signIn(s, "bob");
    const conflict = await takeOver(bob.write);
    expect(conflict.res.status).toBe(409);
    expect(errorOf(conflict).code).toBe("handoff_conflict");

    // The bot stays out while alice has it.
    s.handled.length = 0;
    await s.push(openId, "还在吗");
    expect(s.handled).toEqual([]);

    const sent = await call(s.app, "/inbox/api/messages", {
      method: "POST",
      headers: alice.write,
      body: JSON.stringify({ touser: openId, msgtype: "text", text: { content: "您好，我来处理" } }),
    }, s.env);
    expect(sent.res.status).toBe(200);
    const received = s.wechat.inbox(openId).map((m) => m.kind === "message" ? m.message.content : undefined);
    expect(received).toContain("您好，我来处理");
    const after = body(
      await call(s.app, `/inbox/api/users/${openId}/messages?limit=1`, { headers: alice.read }, s.env),
    );
    expect(after.entries[0]).toMatchObject({ sender: "agent:alice", text: "您好，我来处理", outcome: "ok" });

    // What only the bearer key may do is not in the inbox.
    const purge = await call(s.app, `/inbox/api/users/${openId}`, { method: "DELETE", headers: alice.write }, s.env);
    expect(purge.res.status).toBe(404);
    const letters = await call(s.app, "/inbox/api/dead-letters", { headers: alice.read }, s.env);
    expect(letters.res.status).toBe(404);
  });

  it("refuses a send outside the window before calling WeChat, and offers the subscribe message", async () => {
    const template = { template_id: "TPL_REPLY", data: { thing1: { value: "{text}" }, thing2: { value: "客服" } } };
    const s = await setup({ INBOX_SUBSCRIBE_TEMPLATE: JSON.stringify(template) });
    const openId = newUser();
    await s.push(openId, "hello");
    const alice = await signIn(s, "alice");
    const send = (content: string) =>
      call(s.app, "/inbox/api/messages", {
        method: "POST",
        headers: alice.write,
        body: JSON.stringify({ touser: openId, msgtype: "text", text: { content } }),
      }, s.env);
    // A message opens five replies (WeChat's rule); the sixth is refused here.
    for (let i = 1; i <= 5; i++) expect((await send(`reply ${i}`)).res.status).toBe(200);
    const sendsBefore = s.calls.filter((p) => p.endsWith("/message/custom/send")).length;
    const sixth = await send("reply 6");
    expect(sixth.res.status).toBeGreaterThanOrEqual(400);
    expect(sixth.res.status).toBeLessThan(500);
    expect(s.calls.filter((p) => p.endsWith("/message/custom/send")).length).toBe(sendsBefore);

    const session = body(await call(s.app, "/inbox/api/session", { headers: alice.read }, s.env));
    expect(session.subscribeFallback).toBe(true);
    const fallback = await call(s.app, `/inbox/api/users/${openId}/subscribe`, {
      method: "POST",
      headers: alice.write,
      body: JSON.stringify({ text: "您的退款已经处理好了，请查看账户余额变动情况" }),
    }, s.env);
    expect(s.calls.filter((p) => p.endsWith("/message/subscribe/send")).length).toBe(1);
    // The emulated user never accepted the template: WeChat's 43101 comes back to the agent.
    expect([200, 422, 502]).toContain(fallback.res.status);
  });

  it("says which variable to set for the subscribe message when it is not configured", async () => {
    const s = await setup();
    const openId = newUser();
    await s.push(openId, "hello");
    const alice = await signIn(s, "alice");
    expect(body(await call(s.app, "/inbox/api/session", { headers: alice.read }, s.env)).subscribeFallback).toBe(false);
    const answer = await call(s.app, `/inbox/api/users/${openId}/subscribe`, {
      method: "POST",
      headers: alice.write,
      body: JSON.stringify({ text: "hi" }),
    }, s.env);
    expect(answer.res.status).toBe(503);
    expect(answer.text).toContain("INBOX_SUBSCRIBE_TEMPLATE");
  });

  it("shows typing at most once per 15 s per user (no 45081), and counts a text's bytes and parts", async () => {
    const s = await setup();
    const openId = newUser();
    await s.push(openId, "hello");
    const alice = await signIn(s, "alice");
    const typing = () =>
      call(s.app, "/inbox/api/typing", {
        method: "POST",
        headers: alice.write,
        body: JSON.stringify({ touser: openId, command: "Typing" }),
      }, s.env);
    expect(body(await typing())).toEqual({ skipped: false });
    expect(body(await typing())).toEqual({ skipped: true });
    expect(s.calls.filter((p) => p.endsWith("/custom/typing")).length).toBe(1);

    const long = "好".repeat(1000); // 3000 bytes: two parts
    const parts = body(
      await call(s.app, "/inbox/api/text-parts", {
        method: "POST",
        headers: alice.write,
        body: JSON.stringify({ content: long }),
      }, s.env),
    );
    expect(parts.bytes).toBe(3000);
    expect(parts.parts.length).toBe(2);
    expect(parts.parts.join("")).toBe(long);
    const bad = await call(s.app, "/inbox/api/text-parts", {
      method: "POST",
      headers: alice.write,
      body: JSON.stringify({ content: 42 }),
    }, s.env);
    expect(bad.res.status).toBe(400);
    expect(errorOf(bad).field).toBe("content");
  });

  it("tells a signed-in page over a WebSocket which conversation changed, never its content", async () => {
    const s = await setup();
    const alice = await signIn(s, "alice");
    const upgrade = (headers: Record<string, string>) =>
      s.app.fetch(new Request(`${ORIGIN}/inbox/live`, { headers: { upgrade: "websocket", ...headers } }), s.env);
    expect((await upgrade({ origin: ORIGIN })).status).toBe(401);
    const crossSite = await upgrade({ ...alice.read, origin: "https://evil.example" });
    expect(crossSite.status).toBe(403);
    const res = await upgrade({ ...alice.read, origin: ORIGIN });
    expect(res.status).toBe(101);
    const socket = res.webSocket!;
    const heard: string[] = [];
    let wake: () => void = () => {};
    socket.addEventListener("message", (event) => {
      heard.push(String(event.data));
      wake();
    });
    socket.accept();
    const hear = async (pattern: RegExp) => {
      const deadline = Date.now() + 5000;
      while (!heard.some((m) => pattern.test(m)) && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      return heard.find((m) => pattern.test(m));
    };
    expect(await hear(/"ready"/)).toBeDefined();
    const openId = newUser();
    await s.push(openId, "秘密内容 secret words");
    const changed = await hear(new RegExp(openId));
    expect(changed).toBeDefined();
    expect(JSON.parse(changed!)).toMatchObject({ type: "changed", openId });
    for (const message of heard) expect(message).not.toMatch(/秘密|secret words/);
    socket.send("ping");
    expect(await hear(/^pong$/)).toBe("pong");
    socket.close(1000, "done");
  });
});
