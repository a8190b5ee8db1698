// WECHAT_EMULATOR=on: the in-process emulator is the upstream, and its users push to the app.
import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { emulatorUpstream } from "../../src/testing/dev_server/_upstream.ts";
import { withEmulator } from "../../src/testing/mod.ts";
import { AES_KEY, APP_ID, AUTH, call, errorOf, json, OPENID, takeLogs, testApp, testEnv } from "./_helpers.ts";

beforeEach(() => reset());

function setup(extra: Parameters<typeof testEnv>[0] = {}) {
  const upstream = emulatorUpstream();
  const app = testApp({ emulator: upstream.select });
  const env = testEnv({ WECHAT_EMULATOR: "on", WECHAT_AES_KEY: AES_KEY, ...extra });
  return { upstream, app, env };
}

describe("emulator mode", () => {
  it("a user's message reaches the app, and the app's answer reaches the user", async () => {
    const { upstream, app, env } = setup({ TRANSFER_TO_KF: "on" });
    // Any API call builds the MiniProgram and its emulator; an unknown media_id is 40007 there too.
    const missing = await call(app, "/api/media/UNKNOWN", { headers: AUTH }, env);
    expect(missing.res.status).toBe(502);
    expect(errorOf(missing).errcode).toBe(40007);
    const emulator = upstream.emulatorFor(APP_ID)!;
    expect(emulator).toBeDefined();

    const push = await emulator.user(OPENID).says("hello");
    const outcome = await push.deliver((request) => app.fetch(request, env, createExecutionContext()));
    expect(outcome).toMatchObject({ ok: true, attempts: 1, encrypted: true });
    expect(outcome.reply).toContain("transfer_customer_service");

    const sent = await call(
      app,
      "/api/messages",
      json({
        touser: OPENID,
        msgtype: "text",
        text: { content: "Hi! How can I help?" },
      }, AUTH),
      env,
    );
    expect(sent.res.status).toBe(200);
    expect(emulator.inbox(OPENID)).toContainEqual(
      expect.objectContaining({ kind: "message", msgtype: "text", message: { content: "Hi! How can I help?" } }),
    );
  });

  it("an image a user sent can be fetched through the media proxy", async () => {
    const { upstream, app, env } = setup();
    await call(app, "/api/media/UNKNOWN", { headers: AUTH }, env);
    const emulator = upstream.emulatorFor(APP_ID)!;
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 9, 8, 7, 6]);
    const push = await emulator.user(OPENID).sendsImage(bytes);
    const mediaId = String(push.message.MediaId);
    expect((await push.deliver((request) => app.fetch(request, env, createExecutionContext()))).ok).toBe(true);
    const res = await app.fetch(new Request(`http://kefu.test/api/media/${mediaId}`, { headers: AUTH }), env);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it("WELCOME_TEXT greets a user who enters the session", async () => {
    const { upstream, app, env } = setup({ WELCOME_TEXT: "Welcome!" });
    await call(app, "/api/media/UNKNOWN", { headers: AUTH }, env);
    const emulator = upstream.emulatorFor(APP_ID)!;
    const ctx = createExecutionContext();
    const push = await emulator.user(OPENID).entersSession("contact-button");
    expect((await push.deliver((request) => app.fetch(request, env, ctx))).ok).toBe(true);
    await waitOnExecutionContext(ctx);
    expect(emulator.inbox(OPENID)).toContainEqual(
      expect.objectContaining({ kind: "message", msgtype: "text", message: { content: "Welcome!" } }),
    );
  });
});

describe("withEmulator", () => {
  it("hands its emulator to an app built without one, through the env", async () => {
    const app = testApp();
    const dev = withEmulator(app, { logger: { warn() {}, error() {} } });
    const env = testEnv({ WECHAT_EMULATOR: "on" });
    // The emulator answered: an unknown media_id is its 40007.
    const wrapped = await call(dev, "/api/media/UNKNOWN", { headers: AUTH }, env);
    expect([wrapped.res.status, errorOf(wrapped).errcode]).toEqual([502, 40007]);
    // The same app on its own has no emulator, and says how to get one.
    const bare = await call(app, "/api/media/UNKNOWN", { headers: AUTH }, env);
    expect(bare.res.status).toBe(503);
    expect(errorOf(bare)).toMatchObject({ code: "config_invalid", variable: "WECHAT_EMULATOR" });
    expect(errorOf(bare).message).toContain("withEmulator from kefu-edge/testing");
    expect(takeLogs()).toEqual([expect.stringContaining("answered 502"), expect.stringContaining("answered 503")]);
  });

  it("changes nothing while WECHAT_EMULATOR is off: the app calls its own upstream", async () => {
    const urls: string[] = [];
    const upstream = ((input: RequestInfo | URL) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      urls.push(url.pathname);
      return Promise.resolve(Response.json(
        url.pathname === "/cgi-bin/stable_token"
          ? { access_token: "ACCESS_TOKEN_OFF", expires_in: 7200 }
          : { errcode: 0, errmsg: "ok" },
      ));
    }) as typeof fetch;
    const dev = withEmulator(testApp({ fetch: upstream }));
    const env = testEnv();
    const typing = await call(dev, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
    expect(JSON.parse(typing.text)).toEqual({ errcode: 0, errmsg: "ok" });
    expect(urls).toEqual(["/cgi-bin/stable_token", "/cgi-bin/message/custom/typing"]);
    expect((await call(dev, "/_emulator/users", undefined, env)).res.status).toBe(404);
  });
});
