// Order per user on the shipped app, with conversations in the KEFU_STORE Durable Objects and
// the worker's own queue consumer fed real MessageBatches: a burst of one user's messages, a
// FORWARD_URL target that fails, then recovers. The queue is simulated: the waits between
// deliveries are added up on a virtual clock instead of slept (the delays are the ones the
// consumer asks for), and of the jobs due the newest is delivered first, the worst order a
// retry storm can bring.
import { describe, expect, it } from "vitest";
import { env as workerEnv } from "cloudflare:workers";
import type { PushJob } from "../../mod.ts";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import type { KefuApp } from "../../worker/mod.ts";
import { fakeFetch } from "../cases/_fake.ts";
import { AES_KEY, APP_ID, call, consume, PUSH_TOKEN, recordingQueue, takeLogs, testApp, testEnv } from "./_helpers.ts";

const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" };
const FORWARD = { FORWARD_URL: "https://hooks.example.com/kefu", FORWARD_SECRET: "forward-secret-0123456789" };

describe("order per user (queue mode, Durable Object conversations)", () => {
  it("a burst through a forward target that fails, then recovers: forwarded in the order sent, each once", async () => {
    const openId = `o-order-${Date.now().toString(36)}`;
    let forwards = 0;
    const received: string[] = [];
    const fake = fakeFetch(async (request, url) => {
      if (url.hostname !== "hooks.example.com") return Response.json({ errcode: 0, errmsg: "ok" });
      forwards++;
      if (forwards <= 3) return new Response("down", { status: 503 });
      received.push(String((await request.json() as { Content?: string }).Content));
      return new Response("ok");
    });
    const recorded = recordingQueue();
    const app = testApp({ fetch: fake.fetch, queue: recorded.queue }) as KefuApp;
    const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, WECHAT_AES_KEY: AES_KEY, ...FORWARD });
    const second = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 5; i++) {
      const message = {
        ToUserName: "gh_97417a04a28d",
        FromUserName: openId,
        CreateTime: second + (i < 2 ? 0 : 1),
        MsgType: "text",
        Content: `m${i + 1}`,
        MsgId: String(7_500_000_000_000_000_001n + BigInt(i * 2)),
      };
      expect((await call(app, (await buildPush(SAFE, message)).request(), undefined, env)).text).toBe("success");
    }
    const queue = recorded.sent.map((job: PushJob) => ({ job, attempts: 0, visibleAt: 0 }));
    expect(queue).toHaveLength(5);
    let clock = 0;
    let deliveries = 0;
    while (queue.length > 0) {
      const due = queue.filter((q) => q.visibleAt <= clock);
      if (due.length === 0) {
        clock = Math.min(...queue.map((q) => q.visibleAt));
        continue;
      }
      const item = due.sort((a, b) => b.job.message.MsgId!.localeCompare(a.job.message.MsgId!))[0]!;
      item.attempts++;
      deliveries++;
      expect(deliveries).toBeLessThan(100);
      const result = await consume(app, env, item.job, item.attempts);
      if (result.explicitAcks.length === 1) queue.splice(queue.indexOf(item), 1);
      else item.visibleAt = clock + (result.delays[0] ?? 5) * 1000;
    }
    expect(received).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    expect(forwards).toBe(8); // m1 failed three times, then each once
    expect(takeLogs().filter((l) => l.includes("order_skipped"))).toEqual([]);
  });
});
