// WECHAT_EMULATOR=on: the in-process emulator is the upstream, and its users push to the app.
import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { emulatorUpstream } from "../../worker/emulator.ts";
import { AES_KEY, APP_ID, AUTH, call, errorOf, json, OPENID, testApp, testEnv } from "./_helpers.ts";

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
