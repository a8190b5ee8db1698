// Exactly once in the core: receivers that share nothing but their store (as two isolates
// sharing Deno KV or a Durable Object do), leases, takeover, and queue mode's consumer side.
import assert from "node:assert/strict";
import { type KeyValueStore, MemoryStore, type PushJob, Reply } from "../../mod.ts";
import { deferred, GH_ID, NOW_SECONDS, OPENID, pushApp, pushRequest, readError } from "./push_fixtures.ts";
import { test } from "./_registry.ts";

function text(content: string, msgId: string): string {
  return JSON.stringify({
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS,
    MsgType: "text",
    Content: content,
    MsgId: msgId,
  });
}

/**
 * A view of `shared` that is a different object for each "isolate": the receivers' in-memory
 * flight maps (keyed by store) never meet, so only the store's claims can keep them apart.
 */
function viewOf(shared: KeyValueStore): KeyValueStore {
  return {
    get: (key) => shared.get(key),
    set: (key, value, options) => shared.set(key, value, options),
    delete: (key) => shared.delete(key),
    setIfAbsent: (key, value, options) => shared.setIfAbsent!(key, value, options),
  };
}

/** Two receivers ("isolates") over one atomic store. */
function twoIsolates(shared: KeyValueStore = new MemoryStore({ now: () => NOW_SECONDS * 1000 })) {
  return [
    pushApp({ dedupeStore: viewOf(shared), claimWaitMs: 200 }),
    pushApp({ dedupeStore: viewOf(shared), claimWaitMs: 200 }),
  ] as const;
}

test("claims: a slow handler runs once when WeChat's retry lands on another isolate", async () => {
  const [first, second] = twoIsolates();
  const slow = deferred();
  const started = deferred();
  let runs = 0;
  const body = text("slow", "8100");
  const running = first.push.handle(pushRequest({ body, mode: "aes" }), async () => {
    runs++;
    started.resolve();
    await slow.promise;
  });
  await started.promise; // the first delivery holds the claim and is running the handler
  const retry = await second.push.handle(pushRequest({ body, mode: "aes" }), () => void runs++);
  const refused = await readError(retry);
  assert.equal(refused.status, 503); // not success: WeChat retries again
  assert.equal(refused.code, "in_progress");
  slow.resolve();
  assert.equal(await (await running).text(), "success");
  assert.equal(
    await (await second.push.handle(pushRequest({ body, mode: "aes" }), () => void runs++)).text(),
    "success",
  );
  assert.equal(runs, 1);
});

test("claims: simultaneous first deliveries on two isolates run the handler once", async () => {
  for (let round = 0; round < 8; round++) {
    const [a, b] = twoIsolates();
    let runs = 0;
    const handler = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
    };
    const body = text("race", String(8200 + round));
    const answers = await Promise.all([
      a.push.handle(pushRequest({ body, mode: "aes" }), handler),
      b.push.handle(pushRequest({ body, mode: "aes" }), handler),
    ]);
    assert.equal(runs, 1, `round ${round}`);
    assert.ok(answers.some((r) => r.status === 200));
  }
});

test("claims: a failed handler releases its claim, so the retry runs it again on any isolate", async () => {
  const [first, second] = twoIsolates();
  const body = text("fails", "8300");
  const failed = await first.push.handle(pushRequest({ body, mode: "aes" }), () => {
    throw new Error("down");
  });
  assert.equal(failed.status, 500);
  let ran = 0;
  assert.equal(
    await (await second.push.handle(pushRequest({ body, mode: "aes" }), () => void ran++)).text(),
    "success",
  );
  assert.equal(ran, 1);
});

test("claims: a lease older than leaseSeconds is taken over (its holder is presumed gone)", async () => {
  let now = NOW_SECONDS * 1000;
  const shared = new MemoryStore({ now: () => now });
  const crashed = pushApp({ dedupeStore: viewOf(shared), leaseSeconds: 30 }, { now: () => now });
  const healthy = pushApp({ dedupeStore: viewOf(shared), leaseSeconds: 30, claimWaitMs: 0 }, { now: () => now });
  const body = text("orphan", "8400");
  // The holder never finishes (its isolate died mid-handler).
  const started = deferred();
  void crashed.push.handle(pushRequest({ body, mode: "aes" }), () => {
    started.resolve();
    return new Promise(() => {});
  });
  await started.promise;
  assert.equal((await healthy.push.handle(pushRequest({ body, mode: "aes" }), () => undefined)).status, 503);
  now += 31_000; // the lease expires; WeChat's timestamp check follows the same clock
  let ran = 0;
  const request = pushRequest({ body, mode: "aes", timestamp: String(Math.floor(now / 1000)) });
  assert.equal(await (await healthy.push.handle(request, () => void ran++)).text(), "success");
  assert.equal(ran, 1);
});

test("claims: push.dedupeKey replaces the key: two events the default tells apart become one", async () => {
  const mp = pushApp({ dedupeKey: (m) => `${m.FromUserName}:${String(m.Event)}` });
  let runs = 0;
  for (const [i, trace] of ["a", "b"].entries()) {
    const body = JSON.stringify({
      ToUserName: GH_ID,
      FromUserName: OPENID,
      CreateTime: NOW_SECONDS,
      MsgType: "event",
      Event: "wxa_media_check",
      trace_id: trace,
    });
    const response = await mp.push.handle(pushRequest({ body, mode: "aes", nonce: `k${i}` }), () => void runs++);
    assert.equal(await response.text(), "success");
  }
  assert.equal(runs, 1);
});

test("claims: distinct events in one second run twice; the same event three times runs once", async () => {
  const mp = pushApp();
  const seen: unknown[] = [];
  const event = (trace: string) =>
    JSON.stringify({
      ToUserName: GH_ID,
      FromUserName: OPENID,
      CreateTime: NOW_SECONDS,
      MsgType: "event",
      Event: "wxa_media_check",
      isrisky: 0,
      trace_id: trace,
    });
  for (const body of [event("t1"), event("t1"), event("t2"), event("t1")]) {
    assert.equal(
      await (await mp.push.handle(pushRequest({ body, mode: "aes" }), (m) => void seen.push(m.trace_id))).text(),
      "success",
    );
  }
  assert.deepEqual(seen, ["t1", "t2"]);
});

test("queue mode: answered before the handler runs; the consumer runs it once per message", async () => {
  const [receiver, consumer] = twoIsolates();
  const jobs: PushJob[] = [];
  const body = text("queued", "8500");
  const options = { enqueue: (job: PushJob) => Promise.resolve(void jobs.push(job)) };
  assert.equal(await (await receiver.push.handleQueued(pushRequest({ body, mode: "aes" }), options)).text(), "success");
  assert.equal(await (await receiver.push.handleQueued(pushRequest({ body, mode: "aes" }), options)).text(), "success");
  assert.equal(jobs.length, 1, "a retry is not enqueued again");
  const job = JSON.parse(JSON.stringify(jobs[0])) as PushJob; // as a queue carries it
  let runs = 0;
  const attempts: number[] = [];
  const handler = (_m: unknown, context: { attempt: number }) => {
    runs++;
    attempts.push(context.attempt);
    if (runs === 1) throw new Error("backend down");
  };
  await assert.rejects(consumer.push.processQueued(job, handler, { attempt: 1 }));
  assert.equal(await consumer.push.processQueued(job, handler, { attempt: 2 }), "done");
  assert.equal(await consumer.push.processQueued(job, handler, { attempt: 3 }), "duplicate");
  assert.equal(runs, 2);
  assert.deepEqual(attempts, [1, 2]);
  // A WeChat retry after the consumer finished is still answered without a new job.
  assert.equal(await (await receiver.push.handleQueued(pushRequest({ body, mode: "aes" }), options)).text(), "success");
  assert.equal(jobs.length, 1);
});

test("queue mode: two consumers given one job at once run it once; the other is told it is busy", async () => {
  const [receiver, consumer] = twoIsolates();
  const jobs: PushJob[] = [];
  const options = { enqueue: (job: PushJob) => Promise.resolve(void jobs.push(job)) };
  await receiver.push.handleQueued(pushRequest({ body: text("twice", "8600"), mode: "aes" }), options);
  const slow = deferred();
  const started = deferred();
  let runs = 0;
  const handler = async () => {
    runs++;
    started.resolve();
    await slow.promise;
  };
  const first = consumer.push.processQueued(jobs[0]!, handler);
  await started.promise;
  assert.equal(await receiver.push.processQueued(jobs[0]!, handler), "busy");
  slow.resolve();
  assert.equal(await first, "done");
  assert.equal(runs, 1);
});

test("queue mode: the passive reply is decided before answering, within its budget", async () => {
  const mp = pushApp();
  const jobs: PushJob[] = [];
  const enqueue = (job: PushJob) => Promise.resolve(void jobs.push(job));
  const transfer = await mp.push.handleQueued(pushRequest({ body: text("help", "8700"), mode: "aes" }), {
    enqueue,
    reply: () => Reply.transferCustomerService(),
  });
  assert.match(await transfer.text(), /"Encrypt":/); // JSON envelope, as the request came
  const logged: string[] = [];
  const slowReply = pushApp({}, { logger: { warn: (l) => void logged.push(l) } });
  const late = await slowReply.push.handleQueued(pushRequest({ body: text("slow", "8701"), mode: "aes" }), {
    enqueue,
    reply: () => new Promise((r) => setTimeout(() => r(Reply.transferCustomerService()), 200)),
    replyBudgetMs: 20,
  });
  assert.equal(await late.text(), "success");
  assert.ok(logged.some((l) => l.includes("took over 20 ms")));
  assert.equal(jobs.length, 2, "the message is still queued");
  const failing = await mp.push.handleQueued(pushRequest({ body: text("lost?", "8702"), mode: "aes" }), {
    enqueue: () => Promise.reject(new Error("queue down")),
  });
  assert.equal(failing.status, 500);
  // The claim was released: the retry enqueues it.
  const retried = await mp.push.handleQueued(pushRequest({ body: text("lost?", "8702"), mode: "aes" }), { enqueue });
  assert.equal(await retried.text(), "success");
  assert.equal(jobs.length, 3);
});
