// Copies of media in R2 (KEFU_MEDIA, Miniflare's R2 running locally) inside workerd, with the
// conversations in the KEFU_STORE Durable Objects: a user's image is copied after WeChat was
// answered (a WeChat download that hangs does not hold the answer), through the queue when one
// is bound (a failed copy retried there, the handler never repeated); GET /api/media serves the
// copy after WeChat forgot the media; uploads are kept too; purges and retention delete copies;
// without R2 the entry keeps its media_id and when it expires.
import { env as workerEnv } from "cloudflare:workers";
import { createExecutionContext, reset, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableObjectConversationStore, type PushJob } from "../../mod.ts";
import { buildPush, createEmulator, type PushAction } from "../../src/testing/mod.ts";
import { userObjectName } from "../../src/stores/durable_object_store.ts";
import { userPart } from "../../src/internal/store_keys.ts";
import { mediaIndexKey, uploadKey, userMediaKey, userMediaPrefix } from "../../worker/media_keys.ts";
import type { QueueMessageLike } from "../../worker/queue_types.ts";
import type { Env } from "../../worker/env.ts";
import type { AppOptions, KefuApp } from "../../worker/mod.ts";
import {
  APP_ID,
  AUTH,
  call,
  errorOf,
  expectCleanLogs,
  OPENID,
  PUSH_TOKEN,
  recordingLogger,
  SECRET,
  testApp,
  testEnv,
} from "./_helpers.ts";

const loggers: string[][] = [];
beforeEach(() => reset());
// No line an app here logged carries a credential or a stack.
afterEach(() => {
  for (const lines of loggers.splice(0)) expectCleanLogs(lines);
});

const OTHER = "o9AgO5Kd5ggOC-bXrbNODIiE3bGZ";
const DAY_MS = 24 * 3600 * 1000;
const JPEG = new Uint8Array(3000).map((_, i) => (i < 4 ? [0xff, 0xd8, 0xff, 0xe0][i]! : i % 251));
const bucket = () => workerEnv.KEFU_MEDIA;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(5);
  }
  throw new Error(`never happened: ${what}`);
}

function pathOf(input: RequestInfo | URL): string {
  return new URL(input instanceof Request ? input.url : String(input)).pathname;
}

interface Setup {
  /** The emulated WeChat, on a clock `forward(ms)` moves. */
  wechat: ReturnType<typeof createEmulator>;
  forward(ms: number): void;
  app: KefuApp;
  env: Env;
  /** MsgTypes the push handler ran for. */
  handled: string[];
  logs: string[];
  /** Delivers a push, with its own execution context; `answered` resolves with the answer. */
  deliver(push: PushAction): Promise<{
    text: string | undefined;
    settled(): Promise<void>;
  }>;
}

function setup(options: {
  r2?: boolean;
  env?: Partial<Record<keyof Env, unknown>>;
  fetch?: (wechat: typeof fetch) => typeof fetch;
  app?: AppOptions;
} = {}): Setup {
  let offset = 0;
  const wechat = createEmulator({
    appId: APP_ID,
    appSecret: SECRET,
    push: { token: PUSH_TOKEN },
    now: () => Date.now() + offset,
  });
  const handled: string[] = [];
  const logger = recordingLogger();
  loggers.push(logger.lines);
  const app = testApp({
    fetch: options.fetch?.(wechat.fetch) ?? wechat.fetch,
    onMessage: (message) => void handled.push(String(message.MsgType)),
    retry: { maxRetries: 0 },
    logger,
    ...options.app,
  });
  const env = testEnv({
    KEFU_STORE: workerEnv.KEFU_STORE,
    KEFU_MEDIA: options.r2 === false ? undefined : workerEnv.KEFU_MEDIA,
    ...options.env,
  });
  return {
    wechat,
    forward: (ms) => void (offset += ms),
    app,
    env,
    handled,
    logs: logger.lines,
    async deliver(push) {
      const ctx = createExecutionContext();
      const outcome = await push.deliver(async (request) => await app.fetch(request, env, ctx));
      return { text: outcome.responseText, settled: () => waitOnExecutionContext(ctx) };
    },
  };
}

async function history(s: Setup, openId = OPENID) {
  const page = await call(s.app, `/api/users/${openId}/messages`, { headers: AUTH }, s.env);
  return JSON.parse(page.text) as {
    entries: {
      seq: number;
      at: number;
      msgType?: string;
      mediaId?: string;
      mediaKey?: string;
      mediaExpiresAt?: number;
    }[];
  };
}

async function bytesOf(key: string): Promise<Uint8Array | undefined> {
  const object = await bucket().get(key);
  return object === null ? undefined : new Uint8Array(await object.arrayBuffer());
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await bucket().list({ prefix })).objects.map((o) => o.key);
}

describe("a user's image is copied to R2 after WeChat was answered", () => {
  it("the answer does not wait for WeChat's download, which starts after it; the entry keeps the copy's key", async () => {
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const s = setup({
      fetch: (wechat) => async (input, init) => {
        if (pathOf(input) !== "/cgi-bin/media/get") return await wechat(input, init);
        events.push("media/get");
        await gate; // WeChat's download hangs until the test lets it go
        return await wechat(input, init);
      },
    });
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const mediaId = String(push.message.MediaId);
    const ctx = createExecutionContext();
    const outcome = await push.deliver(async (request) => {
      const res = await s.app.fetch(request, s.env, ctx);
      events.push("answered");
      return res;
    });
    expect(outcome.responseText).toBe("success");
    expect(outcome.attempts).toBe(1);
    expect(events).toEqual(["answered"]); // answered, and the copy had not started
    await until(() => events.includes("media/get"), "the copy starts");
    expect(events).toEqual(["answered", "media/get"]);
    // The download still hangs, and the answer is long out; now WeChat sends the bytes.
    release();
    await waitOnExecutionContext(ctx);
    const key = userMediaKey(APP_ID, OPENID, mediaId);
    expect(await bytesOf(key)).toEqual(JPEG);
    const object = await bucket().head(key);
    expect(object?.httpMetadata?.contentType).toBe("image/jpeg");
    expect((await bucket().head(mediaIndexKey(APP_ID, mediaId)))?.customMetadata?.key).toBe(key);
    const [entry] = (await history(s)).entries;
    expect(entry).toMatchObject({ msgType: "image", mediaId, mediaKey: key });
    expect(entry!.mediaExpiresAt).toBe(entry!.at + 3 * DAY_MS);
    expect(s.handled).toEqual(["image"]);
  });

  it("a push whose handler runs past a lease renewal is copied after its own answer, not another push's", async () => {
    const events: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const s = setup({
      fetch: (wechat) => (input, init) => {
        if (pathOf(input) === "/cgi-bin/media/get") events.push("media/get");
        return wechat(input, init);
      },
      app: {
        onMessage: async (message) => {
          if (message.MsgType === "image") await slow; // WeChat waits on this push
        },
      },
    });
    const image = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const ctx = createExecutionContext();
    const answered = image.deliver(async (request) => {
      const res = await s.app.fetch(request, s.env, ctx);
      events.push("image answered");
      return res;
    });
    await sleep(2300); // the image's lease (5 s) is renewed at 2 s while its handler runs
    // Another push of the isolate is answered and finishes its background work meanwhile.
    await (await s.deliver(await s.wechat.user(OTHER).says("hi"))).settled();
    expect(events).toEqual([]);
    release();
    expect((await answered).responseText).toBe("success");
    await waitOnExecutionContext(ctx);
    expect(events).toEqual(["image answered", "media/get"]);
    expect((await history(s)).entries[0]?.mediaKey).toBe(userMediaKey(APP_ID, OPENID, String(image.message.MediaId)));
  });

  it("GET /api/media/:mediaId serves the copy (type, length, name, private), also once WeChat forgot it", async () => {
    const s = setup();
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const mediaId = String(push.message.MediaId);
    await (await s.deliver(push)).settled();
    const gets = () => s.wechat.calls.filter((c) => c.path === "/cgi-bin/media/get").length;
    const copied = gets();
    expect(copied).toBe(1);
    s.forward(4 * DAY_MS); // WeChat keeps media 3 days
    expect(s.wechat.media.get(mediaId)).toBeUndefined();
    const served = await s.app.fetch(
      new Request(`http://127.0.0.1:8787/api/media/${mediaId}`, { headers: AUTH }),
      s.env,
      createExecutionContext(),
    );
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(served.headers.get("content-length")).toBe(String(JPEG.byteLength));
    expect(served.headers.get("cache-control")).toBe("private");
    expect(served.headers.get("x-content-type-options")).toBe("nosniff");
    expect(served.headers.get("content-disposition")).toBe(
      `attachment; filename="${mediaId}.jpg"; filename*=UTF-8''${mediaId}.jpg`,
    );
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(JPEG);
    expect(gets()).toBe(copied); // WeChat was not asked
    // A media_id with no copy gets WeChat's answer, as before: it has forgotten it.
    const forgotten = await s.wechat.user(OTHER).sendsImage(JPEG, "image/jpeg");
    s.forward(4 * DAY_MS);
    const missing = await call(s.app, `/api/media/${String(forgotten.message.MediaId)}`, { headers: AUTH }, s.env);
    expect(missing.res.status).toBe(502);
    expect(errorOf(missing)).toMatchObject({ code: "wechat_api_error", errcode: 40007 });
  });

  it("a body without Content-Length is read (up to the limit) and copied; one over its Content-Length is refused", async () => {
    let lie = false;
    const s = setup({
      fetch: (wechat) => async (input, init) => {
        const res = await wechat(input, init);
        if (pathOf(input) !== "/cgi-bin/media/get") return res;
        const bytes = new Uint8Array(await res.arrayBuffer());
        const headers = new Headers(res.headers);
        headers.delete("content-length");
        if (lie) headers.set("content-length", "10"); // WeChat says 10 bytes and sends 3000
        // A stream: the length is not known from the body either.
        return new Response(new Blob([bytes]).stream(), { status: 200, headers });
      },
    });
    const first = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    await (await s.deliver(first)).settled();
    expect(await bytesOf(userMediaKey(APP_ID, OPENID, String(first.message.MediaId)))).toEqual(JPEG);
    lie = true;
    const second = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    await (await s.deliver(second)).settled();
    const key = userMediaKey(APP_ID, OPENID, String(second.message.MediaId));
    expect(await bucket().head(key)).toBeNull();
    expect((await history(s)).entries[0]?.mediaKey).toBeUndefined();
    expect(s.logs.filter((l) => l.includes("kefu-edge.media_copy_failed"))).toHaveLength(1);
  });

  it("an image over the upload limit is not copied; the entry keeps its media_id and expiry", async () => {
    const s = setup({ app: { maxUploadBytes: 1000 } });
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    await (await s.deliver(push)).settled();
    expect(await keysUnder("media/")).toEqual([]);
    const [entry] = (await history(s)).entries;
    expect(entry?.mediaKey).toBeUndefined();
    expect(entry?.mediaExpiresAt).toBe(entry!.at + 3 * DAY_MS);
    const failed = s.logs.filter((l) => l.includes("kefu-edge.media_copy_failed"));
    expect(failed).toHaveLength(1);
    expect(JSON.parse(failed[0]!)).toMatchObject({ media: "user", retry: false });
    expect(failed[0]).toMatch(/MediaTooLargeError/);
  });

  it("a failed copy (no queue) is logged without media_id or openid, never fails or repeats the handler", async () => {
    const s = setup({
      fetch: (wechat) => (input, init) =>
        pathOf(input) === "/cgi-bin/media/get" ? Promise.reject(new TypeError("network down")) : wechat(input, init),
    });
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const delivered = await s.deliver(push);
    expect(delivered.text).toBe("success");
    await delivered.settled();
    expect(s.handled).toEqual(["image"]);
    expect(await keysUnder("")).toEqual([]);
    const failed = s.logs.filter((l) => l.includes("kefu-edge.media_copy_failed"));
    expect(failed).toHaveLength(1);
    expect(JSON.parse(failed[0]!)).toMatchObject({ media: "user", attempt: 1, retry: false });
    for (const line of s.logs) {
      expect(line).not.toContain(String(push.message.MediaId));
      expect(line).not.toContain(OPENID);
    }
    expect((await history(s)).entries[0]).toMatchObject({ mediaId: String(push.message.MediaId) });
  });
});

describe("with a queue", () => {
  function queueSetup() {
    const sent: unknown[] = [];
    let down = true;
    const s = setup({
      env: { KEFU_QUEUE: { send: (body: unknown) => Promise.resolve(void sent.push(structuredClone(body))) } },
      fetch: (wechat) => (input, init) =>
        down && pathOf(input) === "/cgi-bin/media/get"
          ? Promise.resolve(new Response("bad gateway", { status: 502 }))
          : wechat(input, init),
    });
    return { ...s, sent, up: () => void (down = false) };
  }

  function message(body: unknown, attempts: number) {
    const done: string[] = [];
    const m: QueueMessageLike & { done: string[] } = {
      id: `q-${Math.random()}`,
      body,
      attempts,
      done,
      ack: () => void done.push("ack"),
      retry: (o) => void done.push(`retry:${o?.delaySeconds}`),
    };
    return m;
  }

  it("the copy is queued after the answer, retried by the queue when it fails, and the handler runs once", async () => {
    const s = queueSetup();
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const mediaId = String(push.message.MediaId);
    const ctx = createExecutionContext();
    let atAnswer = -1;
    const outcome = await push.deliver(async (request) => {
      const res = await s.app.fetch(request, s.env, ctx);
      atAnswer = s.sent.length;
      return res;
    });
    expect(outcome.responseText).toBe("success");
    expect(atAnswer).toBe(1); // the push job only: the copy is queued after the answer
    await waitOnExecutionContext(ctx);
    expect(s.sent).toHaveLength(2);
    const [job, copy] = s.sent as [PushJob, Record<string, unknown>];
    expect(copy).toMatchObject({ kind: "kefu-edge.media-copy", mediaId, openId: OPENID, appId: APP_ID, seq: 1 });
    // The consumer: the push's handler once; the copy fails (WeChat answers 502) and is retried.
    const first = [message(job, 1), message(copy, 1)];
    await s.app.queue({ queue: "kefu-edge-pushes", messages: first }, s.env);
    expect(first.map((m) => m.done)).toEqual([["ack"], ["retry:5"]]);
    expect(s.handled).toEqual(["image"]);
    expect(await keysUnder("media/")).toEqual([]);
    s.up();
    const again = message(copy, 2);
    await s.app.queue({ queue: "kefu-edge-pushes", messages: [again] }, s.env);
    expect(again.done).toEqual(["ack"]);
    expect(s.handled).toEqual(["image"]); // never repeated
    const key = userMediaKey(APP_ID, OPENID, mediaId);
    expect(await bytesOf(key)).toEqual(JPEG);
    expect((await history(s)).entries[0]?.mediaKey).toBe(key);
    const failed = s.logs.filter((l) => l.includes("kefu-edge.media_copy_failed")).map((l) => JSON.parse(l));
    expect(failed).toEqual([expect.objectContaining({ media: "user", attempt: 1, retry: true })]);
  });

  it("a copy gives up when WeChat forgot the media, and a forged or dead-lettered job is acknowledged", async () => {
    const s = queueSetup();
    s.up();
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    await (await s.deliver(push)).settled();
    const copy = s.sent[1];
    s.forward(4 * DAY_MS);
    const late = message(copy, 1);
    const forged = message({ kind: "kefu-edge.media-copy", v: 1, appId: "../x", openId: OPENID }, 1);
    await s.app.queue({ queue: "kefu-edge-pushes", messages: [late, forged] }, s.env);
    expect([late.done, forged.done]).toEqual([["ack"], ["ack"]]);
    const dead = message(copy, 101);
    await s.app.queue({ queue: "kefu-edge-pushes-dlq", messages: [dead] }, s.env);
    expect(dead.done).toEqual(["ack"]);
    expect(await keysUnder("media/")).toEqual([]);
    expect(s.logs.some((l) => l.includes("kefu-edge.media_job_refused"))).toBe(true);
    expect(s.logs.some((l) => l.includes("kefu-edge.media_job_dropped"))).toBe(true);
  });
});

describe("uploads", () => {
  function form(): FormData {
    const data = new FormData();
    data.set("media", new Blob([JPEG], { type: "image/jpeg" }), "cloud.jpg");
    return data;
  }

  it("POST /api/media puts the file in R2 under its media_id after the answer; GET serves it after WeChat forgot it", async () => {
    const s = setup();
    const ctx = createExecutionContext();
    const res = await s.app.fetch(
      new Request("http://127.0.0.1:8787/api/media", { method: "POST", body: form(), headers: AUTH }),
      s.env,
      ctx,
    );
    expect(res.status).toBe(200);
    const { media_id } = await res.json() as { media_id: string };
    expect(await bucket().head(mediaIndexKey(APP_ID, media_id))).toBeNull(); // not before the answer
    await waitOnExecutionContext(ctx);
    const key = (await bucket().head(mediaIndexKey(APP_ID, media_id)))?.customMetadata?.key;
    expect(key).toMatch(new RegExp(`^uploads/${APP_ID}/\\d{15}/${media_id}$`));
    expect(await bytesOf(key!)).toEqual(JPEG);
    s.forward(4 * DAY_MS);
    const served = await call(s.app, `/api/media/${media_id}`, { headers: AUTH }, s.env);
    expect(served.res.status).toBe(200);
    expect(served.res.headers.get("content-type")).toBe("image/jpeg");
    expect(served.res.headers.get("content-disposition")).toBe(
      `attachment; filename="cloud.jpg"; filename*=UTF-8''cloud.jpg`,
    );
    expect(served.res.headers.get("content-length")).toBe(String(JPEG.byteLength));
  });

  it("uploadTempMedia in the push handler's afterResponse task is kept too", async () => {
    const uploaded: string[] = [];
    const s = setup({
      app: {
        onMessage: (_message, { afterResponse, miniProgram }) =>
          afterResponse(async () => {
            const result = await miniProgram.customerServiceMessage.uploadTempMedia("image", new Blob([JPEG]), {
              filename: "reply.jpg",
            });
            uploaded.push(result.media_id);
          }),
      },
    });
    await (await s.deliver(await s.wechat.user(OPENID).says("send me a picture"))).settled();
    expect(uploaded).toHaveLength(1);
    const key = (await bucket().head(mediaIndexKey(APP_ID, uploaded[0]!)))?.customMetadata?.key;
    expect(await bytesOf(key!)).toEqual(JPEG);
  });

  it("each upload deletes the uploads older than HISTORY_DAYS", async () => {
    const s = setup({ env: { HISTORY_DAYS: "1" } });
    const old = uploadKey(APP_ID, Date.now() - 2 * DAY_MS, "OLD_UPLOAD");
    const recent = uploadKey(APP_ID, Date.now() - DAY_MS / 2, "RECENT_UPLOAD");
    for (const [key, id] of [[old, "OLD_UPLOAD"], [recent, "RECENT_UPLOAD"]] as const) {
      await bucket().put(key, JPEG);
      await bucket().put(mediaIndexKey(APP_ID, id), new Uint8Array(0), { customMetadata: { key } });
    }
    const uploaded = await call(s.app, "/api/media", { method: "POST", body: form(), headers: AUTH }, s.env);
    await uploaded.settled();
    const { media_id } = JSON.parse(uploaded.text) as { media_id: string };
    const kept = await keysUnder(`uploads/${APP_ID}/`);
    expect(kept).toHaveLength(2);
    expect(kept).toContain(recent);
    expect(kept.some((key) => key.endsWith(`/${media_id}`))).toBe(true);
    expect(await bucket().head(mediaIndexKey(APP_ID, "OLD_UPLOAD"))).toBeNull();
    expect(await bucket().head(mediaIndexKey(APP_ID, "RECENT_UPLOAD"))).not.toBeNull();
  });
});

describe("purge and retention delete the copies", () => {
  it("DELETE /api/users/:openId and WeChat's revoke event delete the user's copies, and only theirs", async () => {
    const s = setup();
    const mine: string[] = [];
    for (let i = 0; i < 2; i++) {
      const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
      mine.push(String(push.message.MediaId));
      await (await s.deliver(push)).settled();
    }
    const theirs = await s.wechat.user(OTHER).sendsImage(JPEG, "image/jpeg");
    await (await s.deliver(theirs)).settled();
    expect(await keysUnder(userMediaPrefix(APP_ID, OPENID))).toHaveLength(2);
    const deleted = await call(s.app, `/api/users/${OPENID}`, { method: "DELETE", headers: AUTH }, s.env);
    expect(deleted.res.status).toBe(204);
    expect(await keysUnder(userMediaPrefix(APP_ID, OPENID))).toEqual([]);
    for (const id of mine) expect(await bucket().head(mediaIndexKey(APP_ID, id))).toBeNull();
    const otherKey = userMediaKey(APP_ID, OTHER, String(theirs.message.MediaId));
    expect(await bytesOf(otherKey)).toEqual(JPEG);
    // The revoke event names the user in OpenID; FromUserName is the platform's account.
    const revoke = await buildPush({ appId: APP_ID, token: PUSH_TOKEN, format: "xml" }, {
      ToUserName: "gh_platform",
      FromUserName: "oPlatformPushAccount000000000",
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: "event",
      Event: "user_authorization_revoke",
      OpenID: OTHER,
      AppID: APP_ID,
      RevokeInfo: "301",
    });
    expect((await call(s.app, revoke.request(), undefined, s.env)).text).toBe("success");
    expect(await keysUnder("media/")).toEqual([]);
    expect(await keysUnder("ids/")).toEqual([]);
  });

  it("a copy that finishes after its user was purged is deleted, not left behind", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const s = setup({
      fetch: (wechat) => async (input, init) => {
        if (pathOf(input) === "/cgi-bin/media/get") await gate;
        return await wechat(input, init);
      },
    });
    const delivered = await s.deliver(await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg"));
    await call(s.app, `/api/users/${OPENID}`, { method: "DELETE", headers: AUTH }, s.env);
    release();
    await delivered.settled();
    expect(await keysUnder("")).toEqual([]);
  });

  it("the user's object deletes copies with the history it deletes past retention, with no request", async () => {
    const ref = { appId: APP_ID, openId: `o-r2-retention-${Date.now().toString(36)}` };
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE, { historyDays: 0.4 / 86_400 });
    const accepted = await store.accept(ref, {
      key: "m1",
      claim: "lease:m1",
      ttlSeconds: 60,
      entry: { sender: "user", type: "message", msgType: "image", mediaId: "MEDIA_OLD" },
    });
    const key = userMediaKey(ref.appId, ref.openId, "MEDIA_OLD");
    await bucket().put(key, JPEG);
    await bucket().put(mediaIndexKey(ref.appId, "MEDIA_OLD"), new Uint8Array(0), { customMetadata: { key } });
    expect(await store.recordMediaCopy(ref, { seq: accepted.seq!, mediaId: "MEDIA_OLD", key })).toBe(true);
    const ns = workerEnv.KEFU_STORE;
    const stub = ns.get(ns.idFromName(userObjectName(ref.appId, userPart(ref.openId))));
    expect(await runDurableObjectAlarm(stub)).toBe(true); // within retention: kept
    expect(await bytesOf(key)).toEqual(JPEG);
    await sleep(500);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await bucket().head(key)).toBeNull();
    expect(await bucket().head(mediaIndexKey(ref.appId, "MEDIA_OLD"))).toBeNull();
  });
});

describe("without R2", () => {
  it("the entry keeps the media_id and when WeChat forgets it; GET /api/media streams from WeChat", async () => {
    const s = setup({ r2: false });
    const push = await s.wechat.user(OPENID).sendsImage(JPEG, "image/jpeg");
    const mediaId = String(push.message.MediaId);
    await (await s.deliver(push)).settled();
    const [entry] = (await history(s)).entries;
    expect(entry).toMatchObject({ msgType: "image", mediaId });
    expect(entry!.mediaKey).toBeUndefined();
    expect(entry!.mediaExpiresAt).toBe(entry!.at + 3 * DAY_MS);
    expect(await keysUnder("")).toEqual([]);
    const served = await call(s.app, `/api/media/${mediaId}`, { headers: AUTH }, s.env);
    expect(served.res.status).toBe(200);
    expect(s.wechat.calls.filter((c) => c.path === "/cgi-bin/media/get")).toHaveLength(1);
  });
});
