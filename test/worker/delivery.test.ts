// Exactly once, nothing lost: push claims on real Durable Objects inside workerd, apps that
// share nothing but the store (as two isolates do), and queue mode with the worker's own
// consumer driven through real MessageBatch objects.
import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DurableObjectStore, MessageCrypto, Reply } from "../../mod.ts";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import type { AppOptions, KefuApp } from "../../worker/mod.ts";
import { QUEUE_MAX_RETRIES, retryHorizonSeconds } from "../../worker/push_route.ts";
import { kvDeadLetters, type KvListNamespace } from "../../worker/dead_letters/mod.ts";
import { storeCases } from "../cases/_store_suite.ts";
import { fakeFetch } from "../cases/_fake.ts";
import {
  AES_KEY,
  APP_ID,
  AUTH,
  call,
  consume,
  errorOf,
  PUSH_TOKEN,
  recordingQueue,
  takeLogs,
  testApp,
  testEnv,
  textMessage as userText,
} from "./_helpers.ts";

const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" };
const FORWARD_URL = "https://hooks.example.com/kefu";
const FORWARD_SECRET = "forward-secret-0123456789";
let users = 0;

/**
 * A text from a user of its own: a user's messages are handled in the order sent, so the jobs
 * a test leaves in its queue on purpose must not hold back the next test's messages.
 */
function textMessage(content?: string): Record<string, string | number> {
  return { ...userText(content), FromUserName: `o-delivery-${Date.now().toString(36)}-${users++}` };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  return { promise: new Promise<void>((r) => (resolve = r)), resolve };
}

/** An env with the Durable Object store bound, in safe mode. */
function doEnv(extra: Parameters<typeof testEnv>[0] = {}) {
  return testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, WECHAT_AES_KEY: AES_KEY, ...extra });
}

/** An app of its own, as another isolate would have: nothing shared but the bindings. */
function isolate(options: AppOptions): KefuApp {
  return testApp({ fetch: fakeFetch().fetch, push: { claimWaitMs: 300 }, ...options }) as KefuApp;
}

/**
 * An isolate whose handler holds its message until `slow` resolves (`started` says it began),
 * and a `count` handler for the other isolates: `runs()` counts the runs of both.
 */
function slowHolder() {
  let runs = 0;
  const slow = deferred();
  const started = deferred();
  const first = isolate({
    onMessage: async () => {
      runs++;
      started.resolve();
      await slow.promise;
    },
  });
  return { first, started, slow, runs: () => runs, count: () => void runs++ };
}

describe("DurableObjectStore (KefuStore objects)", () => {
  for (const [name, fn] of storeCases) {
    it(name, () =>
      fn({
        store: new DurableObjectStore(workerEnv.KEFU_STORE),
        // The objects run on workerd's clock: let real time pass.
        advance: sleep,
        minTtlSeconds: 1,
        atomic: true,
      }));
  }

  it("keeps each user's keys in that user's object, other keys in 16 shards", async () => {
    const store = new DurableObjectStore(workerEnv.KEFU_STORE);
    await store.set(`kefu-edge:push:${APP_ID}:u.o-user-1:msg:1`, "done:success");
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add(workerEnv.KEFU_STORE.idFromName(`shard:${i % 16}`).toString());
    expect(ids.size).toBe(16);
    expect(await store.get(`kefu-edge:push:${APP_ID}:u.o-user-1:msg:1`)).toBe("done:success");
  });
});

describe("exactly once across isolates (claims on Durable Objects)", () => {
  it("a handler slower than WeChat's timeout runs once: the retry on another isolate waits, then is refused", async () => {
    const { first, started, slow, runs, count } = slowHolder();
    const second = isolate({ onMessage: count });
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("slow"));
    const running = call(first, push.request(), undefined, env);
    await started.promise; // the first delivery holds the claim
    const retry = await call(second, push.request(), undefined, env);
    expect(retry.res.status).toBe(503); // not success: WeChat keeps retrying
    expect(errorOf(retry).code).toBe("in_progress");
    slow.resolve();
    expect((await running).text).toBe("success");
    const later = await call(second, push.request(), undefined, env);
    expect(later.text).toBe("success");
    expect(runs()).toBe(1);
  });

  it("a retry that arrives while the holder finishes gets the holder's answer", async () => {
    const { first, started, slow, runs, count } = slowHolder();
    const second = isolate({ onMessage: count, push: { claimWaitMs: 2000 } });
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("holder"));
    const running = call(first, push.request(), undefined, env);
    await started.promise;
    const retry = call(second, push.request(), undefined, env);
    await sleep(150);
    slow.resolve();
    expect((await retry).text).toBe("success");
    expect((await running).text).toBe("success");
    expect(runs()).toBe(1);
  });

  it("two simultaneous first deliveries on two isolates run the handler once", async () => {
    for (let round = 0; round < 5; round++) {
      let runs = 0;
      const onMessage = async () => {
        runs++;
        await sleep(20);
      };
      const [a, b] = [isolate({ onMessage, push: { claimWaitMs: 1000 } }), isolate({ onMessage })];
      const env = doEnv();
      const push = await buildPush(SAFE, textMessage(`race ${round}`));
      const answers = await Promise.all([
        call(a, push.request(), undefined, env),
        call(b, push.request(), undefined, env),
      ]);
      expect(runs, `round ${round}`).toBe(1);
      expect(answers.some((x) => x.text === "success")).toBe(true);
    }
  });

  it("a handler that fails runs again on the retry, wherever it lands", async () => {
    const seen: string[] = [];
    const failing = isolate({
      onMessage: () => {
        seen.push("first");
        throw new Error("backend down");
      },
    });
    const healthy = isolate({ onMessage: () => void seen.push("second") });
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("fails once"));
    expect((await call(failing, push.request(), undefined, env)).res.status).toBe(500);
    expect((await call(healthy, push.request(), undefined, env)).text).toBe("success");
    expect((await call(failing, push.request(), undefined, env)).text).toBe("success");
    expect(seen).toEqual(["first", "second"]);
  });

  it("distinct events in the same second both run; WeChat's three deliveries of one run once", async () => {
    const seen: unknown[] = [];
    const app = isolate({ onMessage: (m) => void seen.push(m.trace_id) });
    const env = doEnv();
    const check = (traceId: string) => ({
      ToUserName: "gh_97417a04a28d",
      FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
      CreateTime: 1_714_112_445,
      MsgType: "event",
      Event: "wxa_media_check",
      isrisky: 0,
      extra_info_json: "",
      appid: APP_ID,
      trace_id: traceId,
      status_code: 0,
    });
    const now = { timestamp: String(Math.floor(Date.now() / 1000)) };
    const one = await buildPush(SAFE, check("trace-a"), now);
    const two = await buildPush(SAFE, check("trace-b"), now);
    for (let i = 0; i < 3; i++) expect((await call(app, one.request(), undefined, env)).text).toBe("success");
    expect((await call(app, two.request(), undefined, env)).text).toBe("success");
    expect(seen).toEqual(["trace-a", "trace-b"]);
  });
});

/** The reply inside an encrypted XML answer. */
function openReply(xml: string): Promise<string> {
  const encrypt = /<Encrypt><!\[CDATA\[([^\]]+)\]\]><\/Encrypt>/.exec(xml)?.[1] ?? "";
  return new MessageCrypto({ token: PUSH_TOKEN, encodingAESKey: AES_KEY, appId: APP_ID }).decrypt(encrypt);
}

describe("queue mode", () => {
  it("answers WeChat before the handler runs; the consumer runs it once however often the job is delivered", async () => {
    let runs = 0;
    const recorded = recordingQueue();
    const app = isolate({ queue: recorded.queue, onMessage: () => void runs++ });
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("queued"));
    const answered = await call(app, push.request(), undefined, env);
    expect(answered.text).toBe("success");
    expect(runs).toBe(0);
    expect(recorded.sent).toHaveLength(1);
    // WeChat's retries are answered alike and not enqueued again.
    expect((await call(app, push.request(), undefined, env)).text).toBe("success");
    expect(recorded.sent).toHaveLength(1);
    const job = recorded.sent[0]!;
    expect(job).toMatchObject({ v: 2, message: { Content: "queued" }, encrypted: true, format: "xml" });
    expect(job.sig).toMatch(/^[0-9a-f]{64}$/);
    expect((await consume(app, env, job, 1)).explicitAcks).toEqual(["m-1"]);
    // Queues deliver at least once: a redelivery is acknowledged without running again.
    expect((await consume(app, env, job, 1)).explicitAcks).toEqual(["m-1"]);
    expect(runs).toBe(1);
  });

  it("a forward target down for 10 attempts, then back, receives the message exactly once", async () => {
    let attempts = 0;
    const delivered: string[] = [];
    const fake = fakeFetch((request, url) => {
      if (url.hostname !== "hooks.example.com") return Response.json({ errcode: 0, errmsg: "ok" });
      attempts++;
      if (attempts <= 10) return new Response("down", { status: 503 });
      delivered.push(request.headers.get("x-kefu-delivery")!);
      return new Response("ok");
    });
    const recorded = recordingQueue();
    const app = testApp({ fetch: fake.fetch, queue: recorded.queue }) as KefuApp;
    const env = doEnv({ FORWARD_URL, FORWARD_SECRET });
    const push = await buildPush(SAFE, textMessage("to the backend"));
    expect((await call(app, push.request(), undefined, env)).text).toBe("success");
    const job = recorded.sent[0]!;
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 10; attempt++) {
      const result = await consume(app, env, job, attempt);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages).toHaveLength(1);
      delays.push(...result.delays.map((d: number | undefined) => d ?? 0));
    }
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1200, 1200]); // backoff, capped at 20 min
    expect((await consume(app, env, job, 11)).explicitAcks).toEqual(["m-11"]);
    expect((await consume(app, env, job, 12)).explicitAcks).toEqual(["m-12"]); // a late redelivery
    expect(delivered).toEqual([job.deliveryId]);
    const logs = takeLogs().filter((l) => l.includes("push_retry"));
    expect(logs).toHaveLength(10);
    expect(logs.every((l) => !l.includes("to the backend"))).toBe(true);
  });

  it(
    "a forward has FORWARD_TIMEOUT_MS in the queue's consumer (1 s here) and WeChat's 4 s while WeChat waits",
    async () => {
      const cutOffAfterMs: number[] = [];
      // A target that never answers: the worker gives up on it when its time is out.
      const fake = fakeFetch((request, url) => {
        if (url.hostname !== "hooks.example.com") return Response.json({ errcode: 0, errmsg: "ok" });
        const started = Date.now();
        return new Promise<Response>((_resolve, reject) =>
          request.signal.addEventListener("abort", () => {
            cutOffAfterMs.push(Date.now() - started);
            reject(request.signal.reason);
          })
        );
      });
      const env = doEnv({ FORWARD_URL, FORWARD_SECRET, FORWARD_TIMEOUT_MS: "1000" });
      const recorded = recordingQueue();
      const queued = testApp({ fetch: fake.fetch, queue: recorded.queue }) as KefuApp;
      expect((await call(queued, (await buildPush(SAFE, textMessage())).request(), undefined, env)).text).toBe(
        "success",
      );
      expect((await consume(queued, env, recorded.sent[0]!, 1)).retryMessages).toHaveLength(1);
      expect(cutOffAfterMs).toHaveLength(1);
      expect(cutOffAfterMs[0]).toBeGreaterThanOrEqual(900);
      expect(cutOffAfterMs[0]).toBeLessThan(2000);
      const waiting = testApp({ fetch: fake.fetch }); // no queue: the handler runs while WeChat waits
      const answered = await call(waiting, (await buildPush(SAFE, textMessage())).request(), undefined, env);
      expect(answered.res.status).toBe(500);
      expect(cutOffAfterMs).toHaveLength(2);
      expect(cutOffAfterMs[1]).toBeGreaterThanOrEqual(3900);
      expect(cutOffAfterMs[1]).toBeLessThan(5000);
      takeLogs();
    },
    15_000,
  );

  it("a job past the queue's maximum reaches the dead-letter queue: logged and kept, never silently dropped", async () => {
    const recorded = recordingQueue();
    const logger = {
      lines: [] as string[],
      warn(m: string) {
        this.lines.push(m);
      },
      error(m: string) {
        this.lines.push(m);
      },
    };
    const app = testApp({ fetch: fakeFetch().fetch, queue: recorded.queue, logger }) as KefuApp;
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("never handled"));
    await call(app, push.request(), undefined, env);
    const job = recorded.sent[0]!;
    const result = await consume(app, env, job, 1, "kefu-edge-pushes-dlq");
    expect(result.explicitAcks).toEqual(["m-1"]);
    const line = logger.lines.find((l) => l.includes("dead_letter"))!;
    expect(JSON.parse(line)).toMatchObject({
      event: "kefu-edge.dead_letter",
      deliveryId: job.deliveryId,
      msgType: "text",
    });
    expect(line).not.toContain("never handled");
    const kept = await kvDeadLetters(workerEnv.WECHAT_KV as unknown as KvListNamespace).get(job.deliveryId);
    expect(kept?.job).toEqual(job);
  });

  it("a passive reply is decided at once within its budget; a failed enqueue answers non-success", async () => {
    const recorded = recordingQueue();
    const app = isolate({
      queue: recorded.queue,
      onMessage: () => undefined,
      onReply: (m) => (m.MsgType === "text" ? Reply.transferCustomerService() : undefined),
    });
    const env = doEnv();
    const push = await buildPush(SAFE, textMessage("transfer me"));
    const answered = await call(app, push.request(), undefined, env);
    expect(answered.text).toContain("<Encrypt>");
    expect(await openReply(answered.text)).toContain("transfer_customer_service");
    // Its retry gets the same reply, without a second job.
    expect(await openReply((await call(app, push.request(), undefined, env)).text)).toContain(
      "transfer_customer_service",
    );
    expect(recorded.sent).toHaveLength(1);
    const broken = isolate({ queue: () => ({ send: () => Promise.reject(new Error("queue down")) }) });
    const failed = await call(broken, (await buildPush(SAFE, textMessage("lost?"))).request(), undefined, env);
    expect(failed.res.status).toBe(500);
  });
});

describe("a backend down for a day, and dead letters", () => {
  it("a forward target down for 24 hours (the queue's delays added up on a simulated clock) gets the message once", async () => {
    // Each attempt runs for real; only the waits between them are added up instead of slept:
    // the delays are the ones the consumer asked the queue for.
    let clock = 0;
    const downFor = 24 * 3600;
    const delivered: string[] = [];
    let calls = 0;
    const fake = fakeFetch((request, url) => {
      if (url.hostname !== "hooks.example.com") return Response.json({ errcode: 0, errmsg: "ok" });
      calls++;
      if (clock < downFor) return new Response("down", { status: 503 });
      delivered.push(request.headers.get("x-kefu-delivery")!);
      return new Response("ok");
    });
    const recorded = recordingQueue();
    const app = testApp({ fetch: fake.fetch, queue: recorded.queue }) as KefuApp;
    const env = doEnv({ FORWARD_URL, FORWARD_SECRET });
    expect((await call(app, (await buildPush(SAFE, textMessage("after the outage"))).request(), undefined, env)).text)
      .toBe("success");
    const job = recorded.sent[0]!;
    let attempt = 1;
    for (;; attempt++) {
      // Past max_retries the queue would dead-letter it: that must not happen within a day.
      expect(attempt).toBeLessThanOrEqual(QUEUE_MAX_RETRIES + 1);
      const result = await consume(app, env, job, attempt);
      if (result.explicitAcks.length === 1) break;
      clock += result.delays[0] ?? 0;
    }
    expect(delivered).toEqual([job.deliveryId]);
    expect(calls).toBe(attempt);
    // The old schedule (5 s doubling to 5 min, 10 retries) gave up after about 26 minutes.
    expect(retryHorizonSeconds(QUEUE_MAX_RETRIES)).toBeGreaterThan(downFor);
    expect(clock).toBeGreaterThanOrEqual(downFor);
    expect(clock - downFor).toBeLessThanOrEqual(1200); // delivered within 20 min of the recovery
    takeLogs();
  });

  it("a dead letter is listed, read and replayed to exactly one run of the handler; a second replay finds nothing", async () => {
    let runs = 0;
    const recorded = recordingQueue();
    const app = isolate({ queue: recorded.queue, onMessage: () => void runs++ });
    const env = doEnv();
    expect((await call(app, (await buildPush(SAFE, textMessage("replay me"))).request(), undefined, env)).text)
      .toBe("success");
    const job = recorded.sent[0]!;
    // Three failed runs, then the queue gives up and the dead-letter consumer keeps it.
    const failing = isolate({
      queue: recorded.queue,
      onMessage: () => {
        throw new Error("backend down");
      },
    });
    for (let attempt = 1; attempt <= 3; attempt++) await consume(failing, env, job, attempt);
    expect((await consume(app, env, job, 1, "kefu-edge-pushes-dlq")).explicitAcks).toEqual(["m-1"]);
    const dead = takeLogs().find((l) => l.includes("kefu-edge.dead_letter"))!;
    expect(JSON.parse(dead)).toMatchObject({ deliveryId: job.deliveryId, attempts: 3, keptDays: 7 });
    expect(dead).not.toContain("replay me");

    const list = await call(app, "/api/dead-letters?limit=10", { headers: AUTH }, env);
    expect(list.res.status).toBe(200);
    const page = JSON.parse(list.text) as { letters: { id: string; attempts: number; msgType: string }[] };
    const listed = page.letters.find((l) => l.id === job.deliveryId);
    expect(listed).toMatchObject({ attempts: 3, msgType: "text" });
    const one = await call(app, `/api/dead-letters/${job.deliveryId}`, { headers: AUTH }, env);
    expect(JSON.parse(one.text).job).toEqual(job);

    const replay = await call(
      app,
      `/api/dead-letters/${job.deliveryId}/replay`,
      { method: "POST", headers: AUTH },
      env,
    );
    expect(replay.res.status).toBe(202);
    expect(recorded.sent).toHaveLength(2);
    const again = await call(app, `/api/dead-letters/${job.deliveryId}/replay`, { method: "POST", headers: AUTH }, env);
    expect(again.res.status).toBe(404);
    // The replayed job runs the handler once; a redelivery of it (or of the original) does not.
    expect((await consume(app, env, recorded.sent[1]!, 1)).explicitAcks).toEqual(["m-1"]);
    expect((await consume(app, env, recorded.sent[1]!, 2)).explicitAcks).toEqual(["m-2"]);
    expect((await consume(app, env, job, 4)).explicitAcks).toEqual(["m-4"]);
    expect(runs).toBe(1);
  });

  it("the dead-letter routes need the API key, name bad fields, and refuse to replay without a queue", async () => {
    const app = isolate({ onMessage: () => undefined });
    const env = doEnv();
    expect((await call(app, "/api/dead-letters", {}, env)).res.status).toBe(401);
    const badLimit = await call(app, "/api/dead-letters?limit=500", { headers: AUTH }, env);
    expect(badLimit.res.status).toBe(400);
    expect(errorOf(badLimit).field).toBe("limit");
    const badId = await call(app, "/api/dead-letters/not-hex", { headers: AUTH }, env);
    expect(errorOf(badId).field).toBe("id");
    const noQueue = await call(app, "/api/dead-letters/ab12/replay", { method: "POST", headers: AUTH }, env);
    expect(noQueue.res.status).toBe(503);
    expect(errorOf(noQueue).code).toBe("queue_not_configured");
  });
});
