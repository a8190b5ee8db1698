// Idempotency-Key on /api/messages and /api/typing: one upstream send per key, the same
// answer for a repeat, 422 for another body, 409 while the first runs; on Durable Objects
// (atomic) and on KV.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import { AUTH, call, errorOf, json, OPENID, testApp, testEnv } from "./_helpers.ts";

const SEND = "/cgi-bin/message/custom/send";
const TYPING = "/cgi-bin/message/custom/typing";
const message = (content: string) => ({ touser: OPENID, msgtype: "text", text: { content } });
let keys = 0;
const freshKey = () => `order-42-reply-${Date.now()}-${keys++}`;

for (const [binding, extra] of [["Durable Objects", { KEFU_STORE: workerEnv.KEFU_STORE }], ["KV", {}]] as const) {
  describe(`Idempotency-Key (${binding})`, () => {
    it("the same key twice sends once and answers alike", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const init = () => json(message("你好"), { ...AUTH, "idempotency-key": key });
      const first = await call(app, "/api/messages", init(), env);
      const again = await call(app, "/api/messages", init(), env);
      expect(first.res.status).toBe(200);
      expect([again.res.status, again.text]).toEqual([200, first.text]);
      expect(again.res.headers.get("idempotent-replayed")).toBe("true");
      expect(fake.to(SEND)).toHaveLength(1);
      // The same body with its fields in another order is the same request.
      const reordered = JSON.stringify({ text: { content: "你好" }, msgtype: "text", touser: OPENID });
      const third = await call(app, "/api/messages", {
        method: "POST",
        body: reordered,
        headers: { ...AUTH, "content-type": "application/json", "idempotency-key": key },
      }, env);
      expect(third.res.status).toBe(200);
      expect(fake.to(SEND)).toHaveLength(1);
    });

    it("the same key with another body is 422 and sends nothing", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      await call(app, "/api/messages", json(message("one"), { ...AUTH, "idempotency-key": key }), env);
      const other = await call(app, "/api/messages", json(message("two"), { ...AUTH, "idempotency-key": key }), env);
      expect(other.res.status).toBe(422);
      expect(errorOf(other).code).toBe("idempotency_key_reused");
      expect(fake.to(SEND)).toHaveLength(1);
    });

    it("a WeChat error is the result too: a retry gets it again without a second call", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 45047, errmsg: "out of response count limit rid: 1-2-3" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const first = await call(app, "/api/messages", json(message("x"), { ...AUTH, "idempotency-key": key }), env);
      const again = await call(app, "/api/messages", json(message("x"), { ...AUTH, "idempotency-key": key }), env);
      expect([first.res.status, errorOf(first).errcode]).toEqual([502, 45047]);
      expect([again.res.status, again.text]).toEqual([502, first.text]);
      expect(fake.to(SEND)).toHaveLength(1);
    });

    it("typing too; without the header nothing is kept", async () => {
      const fake = fakeFetch(() => jsonResponse({ errcode: 0, errmsg: "ok" }));
      const app = testApp({ fetch: fake.fetch });
      const env = testEnv(extra);
      const key = freshKey();
      const typing = () => json({ touser: OPENID, command: "Typing" }, { ...AUTH, "idempotency-key": key });
      await call(app, "/api/typing", typing(), env);
      await call(app, "/api/typing", typing(), env);
      expect(fake.to(TYPING)).toHaveLength(1);
      await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
      await call(app, "/api/typing", json({ touser: OPENID, command: "Typing" }, AUTH), env);
      expect(fake.to(TYPING)).toHaveLength(3);
    });

    it("a malformed key is refused by name", async () => {
      const fake = fakeFetch();
      const called = await call(
        testApp({ fetch: fake.fetch }),
        "/api/messages",
        json(message("x"), { ...AUTH, "idempotency-key": "has space" }),
        testEnv(extra),
      );
      expect(called.res.status).toBe(400);
      expect(errorOf(called)).toMatchObject({ code: "validation_error", field: "Idempotency-Key" });
      expect(fake.to(SEND)).toHaveLength(0);
    });
  });
}

it("with Durable Objects, a repeat while the first still runs is 409 and sends nothing more", async () => {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const sending = new Promise<void>((r) => (reached = r));
  const fake = fakeFetch(async () => {
    reached();
    await gate;
    return jsonResponse({ errcode: 0, errmsg: "ok" });
  });
  const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE });
  const key = freshKey();
  const first = call(
    testApp({ fetch: fake.fetch }),
    "/api/messages",
    json(message("slow"), { ...AUTH, "idempotency-key": key }),
    env,
  );
  await sending; // the first request holds the key and is sending
  const second = await call(
    testApp({ fetch: fake.fetch }),
    "/api/messages",
    json(message("slow"), { ...AUTH, "idempotency-key": key }),
    env,
  );
  expect(second.res.status).toBe(409);
  expect(errorOf(second).code).toBe("idempotency_in_progress");
  release();
  expect((await first).res.status).toBe(200);
  expect(fake.to(SEND)).toHaveLength(1);
});
