// Exactly once in the core: receivers that share nothing but their store (as two isolates
// sharing Deno KV or a Durable Object do), leases, takeover, and queue mode's consumer side.
import assert from "node:assert/strict";
import { type KeyValueStore, MemoryStore, type PushJob, Reply } from "../../mod.ts";
import {
  captureLogger,
  deferred,
  GH_ID,
  NOW_SECONDS,
  OPENID,
  pushApp,
  pushRequest,
  readError,
} from "./push_fixtures.ts";
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
    compareAndSet: (key, expected, value, options) => shared.compareAndSet!(key, expected, value, options),
  };
}

/**
 * A view of `shared` for an isolate that can die: after `kill()` none of its store calls
 * lands or answers (a dead isolate makes no more calls), so its leases are no longer renewed.
 * `calls()` counts the calls it made while alive.
 */
function mortalView(shared: KeyValueStore) {
  let alive = true;
  let calls = 0;
  const guard = <T>(call: () => Promise<T>): Promise<T> => {
    if (!alive) return new Promise<T>(() => {});
    calls++;
    return call();
  };
  const store: KeyValueStore = {
    get: (key) => guard(() => shared.get(key)),
    set: (key, value, options) => guard(() => shared.set(key, value, options)),
    delete: (key) => guard(() => shared.delete(key)),
    setIfAbsent: (key, value, options) => guard(() => shared.setIfAbsent!(key, value, options)),
    compareAndSet: (key, expected, value, options) => guard(() => shared.compareAndSet!(key, expected, value, options)),
  };
  return { store, kill: () => void (alive = false), calls: () => calls };
}

/** A view of `shared` whose every call takes `delayMs` (or never answers, with `Infinity`) until `heal()`. */
function slowView(shared: KeyValueStore, delayMs: number) {
  let healed = false;
  const late = <T>(call: () => Promise<T>): Promise<T> => {
    if (healed) return call();
    if (!Number.isFinite(delayMs)) return new Promise<T>(() => {});
    return new Promise<T>((resolve, reject) => setTimeout(() => call().then(resolve, reject), delayMs));
  };
  const store: KeyValueStore = {
    get: (key) => late(() => shared.get(key)),
    set: (key, value, options) => late(() => shared.set(key, value, options)),
    delete: (key) => late(() => shared.delete(key)),
    setIfAbsent: (key, value, options) => late(() => shared.setIfAbsent!(key, value, options)),
    compareAndSet: (key, expected, value, options) => late(() => shared.compareAndSet!(key, expected, value, options)),
  };
  return { store, heal: () => void (healed = true) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
  assert.equal((await consumer.push.processQueued(job, handler, { attempt: 2 })).outcome, "done");
  assert.equal((await consumer.push.processQueued(job, handler, { attempt: 3 })).outcome, "duplicate");
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
  const busy = await receiver.push.processQueued(jobs[0]!, handler);
  assert.equal(busy.outcome, "busy");
  // Retried when the running consumer's claim would run out if it died: within the lease.
  assert.ok(busy.retryAfterSeconds! >= 1 && busy.retryAfterSeconds! <= 5, String(busy.retryAfterSeconds));
  slow.resolve();
  assert.equal((await first).outcome, "done");
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

// --- Faults: a holder that dies, a store that hangs, a queue call that never settles --------
// Leases here are 0.5 s (renewed every 0.2 s) instead of 5 s, and store deadlines and budgets
// a tenth of the defaults, so each fault plays out in about a second; the store expires
// entries on real time, as Durable Objects and Deno KV do.

test("faults: a holder alive past its lease keeps the message (renewed); one that dies frees it for the next try", async () => {
  const shared = new MemoryStore();
  const holder = mortalView(shared);
  const push = { leaseSeconds: 0.5, claimWaitMs: 100 };
  const first = pushApp({ ...push, dedupeStore: holder.store, deliveryBudgetMs: 60_000 });
  const second = pushApp({ ...push, dedupeStore: viewOf(shared) });
  const body = text("dies mid-handler", "9100");
  const started = deferred();
  let runs = 0;
  void first.push.handle(pushRequest({ body, mode: "aes" }), () => {
    runs++;
    started.resolve();
    return new Promise(() => {}); // the isolate is evicted before it returns
  });
  await started.promise;
  // Alive for three lease lengths: WeChat's tries find it held, never run it twice.
  for (let i = 0; i < 3; i++) {
    await sleep(500);
    const retry = await second.push.handle(pushRequest({ body, mode: "aes" }), () => void runs++);
    assert.equal(retry.status, 503, `try ${i} while the holder lives`);
  }
  assert.ok(holder.calls() >= 5, `the lease was renewed (${holder.calls()} store calls)`);
  holder.kill();
  await sleep(700); // more than one lease length after the last renewal
  const taken = await second.push.handle(pushRequest({ body, mode: "aes" }), () => void runs++);
  assert.equal(await taken.text(), "success");
  assert.equal(runs, 2, "the dead holder's run, then the one that took over");
});

test("faults: a delivery past its budget is answered 503 and leaves no flight for WeChat's next try to join", async () => {
  const shared = new MemoryStore();
  const logged = captureLogger();
  const mp = pushApp({ dedupeStore: shared, deliveryBudgetMs: 300, leaseSeconds: 0.5 }, { logger: logged.logger });
  const body = text("handler hangs", "9200");
  let runs = 0;
  const hung = await mp.push.handle(pushRequest({ body, mode: "aes" }), () => {
    runs++;
    return new Promise(() => {});
  });
  const answer = await readError(hung);
  assert.deepEqual([answer.status, answer.code], [503, "delivery_timeout"]);
  assert.ok(logged.lines.some((l) => l.includes("kefu-edge.push_timeout")));
  // Its claim is no longer renewed once answered; WeChat's next try (5 s later, here 0.7 s)
  // starts afresh in the same isolate and runs the handler.
  await sleep(700);
  const next = await mp.push.handle(pushRequest({ body, mode: "aes" }), () => void runs++);
  assert.equal(await next.text(), "success");
  assert.equal(runs, 2);
});

test("faults: a store that hangs: each message is still handled once and answered within the budget, one log line each", async () => {
  const shared = new MemoryStore();
  const hanging = slowView(shared, Number.POSITIVE_INFINITY);
  const logged = captureLogger();
  const mp = pushApp(
    { dedupeStore: hanging.store, storeTimeoutMs: 150, deliveryBudgetMs: 450 },
    { logger: logged.logger },
  );
  const seen: string[] = [];
  for (const [i, content] of ["one", "two"].entries()) {
    const started = Date.now();
    const response = await mp.push.handle(
      pushRequest({ body: text(content, String(9300 + i)), mode: "aes" }),
      (m) => void seen.push(String(m.Content)),
    );
    assert.equal(await response.text(), "success", content);
    assert.ok(Date.now() - started < 450, `answered in ${Date.now() - started} ms`);
  }
  assert.deepEqual(seen, ["one", "two"]);
  const lines = logged.lines.filter((l) => l.includes("kefu-edge.store_failed"));
  assert.equal(lines.length, 2, logged.lines.join("\n"));
  assert.deepEqual(JSON.parse(lines[0]!).operations, ["claim", "window", "mark"]);
  assert.equal(JSON.parse(lines[0]!).error, "TimeoutError");
  // The store recovers: WeChat's retry of a message is then a duplicate or runs once more
  // (the mark could not be written: at least once), and is never stuck.
  hanging.heal();
  const retry = await mp.push.handle(
    pushRequest({ body: text("one", "9300"), mode: "aes" }),
    () => void seen.push("again"),
  );
  assert.equal(await retry.text(), "success");
});

test("faults: a store that takes 2.5 s a call (scaled: 250 ms against a 150 ms deadline) still answers in time", async () => {
  const shared = new MemoryStore();
  const slow = slowView(shared, 250);
  const mp = pushApp({ dedupeStore: slow.store, storeTimeoutMs: 150, deliveryBudgetMs: 450 });
  let runs = 0;
  const started = Date.now();
  const response = await mp.push.handle(pushRequest({ body: text("slow store", "9400"), mode: "aes" }), () => {
    runs++;
  });
  assert.equal(await response.text(), "success");
  assert.ok(Date.now() - started < 450, `answered in ${Date.now() - started} ms`);
  assert.equal(runs, 1);
});

test("faults: a queue call that never settles: WeChat is answered non-success, and its retry enqueues the message", async () => {
  const [receiver] = twoIsolates();
  const body = text("queue hangs", "9500");
  const hung = await receiver.push.handleQueued(pushRequest({ body, mode: "aes" }), {
    enqueue: () => new Promise(() => {}),
    enqueueTimeoutMs: 100,
  });
  assert.equal(hung.status, 500);
  const jobs: PushJob[] = [];
  const retry = await receiver.push.handleQueued(pushRequest({ body, mode: "aes" }), {
    enqueue: (job) => Promise.resolve(void jobs.push(job)),
  });
  assert.equal(await retry.text(), "success");
  assert.equal(jobs.length, 1, "enqueued by the retry");
});

test("faults: a delivery cut off between its claim and the queue leaves nothing that answers WeChat's retries unqueued", async () => {
  let now = NOW_SECONDS * 1000;
  const shared = new MemoryStore({ now: () => now });
  const dead = mortalView(shared);
  const first = pushApp({ dedupeStore: dead.store }, { now: () => now });
  const second = pushApp({ dedupeStore: viewOf(shared) }, { now: () => now });
  const body = text("cut off", "9600");
  const sending = deferred();
  // The isolate dies while its queue call is under way: the call never returns.
  void first.push.handleQueued(pushRequest({ body, mode: "aes" }), {
    enqueue: () => {
      sending.resolve();
      dead.kill();
      return new Promise(() => {});
    },
    enqueueTimeoutMs: 60_000,
  });
  await sending.promise;
  now += 5_000; // WeChat's next try, 5 s later
  const jobs: PushJob[] = [];
  const request = pushRequest({ body, mode: "aes", timestamp: String(Math.floor(now / 1000)) });
  const retry = await second.push.handleQueued(request, { enqueue: (job) => Promise.resolve(void jobs.push(job)) });
  assert.equal(await retry.text(), "success");
  assert.equal(jobs.length, 1, "the retry enqueued it (before: answered success from the mark, never enqueued)");
});

test("faults: a consumer that dies mid-handler: the job comes back when its claim runs out, and runs once more", async () => {
  const shared = new MemoryStore();
  const [receiver] = twoIsolates(shared);
  const jobs: PushJob[] = [];
  await receiver.push.handleQueued(pushRequest({ body: text("consumer dies", "9700"), mode: "aes" }), {
    enqueue: (job) => Promise.resolve(void jobs.push(job)),
  });
  const job = JSON.parse(JSON.stringify(jobs[0])) as PushJob;
  const dying = mortalView(shared);
  const first = pushApp({ dedupeStore: dying.store, leaseSeconds: 0.5 });
  const second = pushApp({ dedupeStore: viewOf(shared), leaseSeconds: 0.5 });
  const started = deferred();
  let runs = 0;
  void first.push.processQueued(job, () => {
    runs++;
    started.resolve();
    return new Promise(() => {});
  });
  await started.promise;
  await sleep(600); // alive past one lease length: still its own
  const busy = await second.push.processQueued(job, () => void runs++, { attempt: 2 });
  assert.equal(busy.outcome, "busy");
  assert.equal(busy.retryAfterSeconds, 1, "retry when the claim would run out, not after a fixed backoff");
  dying.kill();
  await sleep(busy.retryAfterSeconds! * 1000);
  assert.equal((await second.push.processQueued(job, () => void runs++, { attempt: 3 })).outcome, "done");
  assert.equal(runs, 2);
});

test("queue jobs: a forged, altered, foreign or unsigned job is refused and never runs the handler", async () => {
  const [receiver, consumer] = twoIsolates();
  const jobs: PushJob[] = [];
  await receiver.push.handleQueued(pushRequest({ body: text("signed", "9800"), mode: "aes" }), {
    enqueue: (job) => Promise.resolve(void jobs.push(job)),
  });
  const job = JSON.parse(JSON.stringify(jobs[0])) as PushJob;
  assert.match(job.sig, /^[0-9a-f]{64}$/);
  let runs = 0;
  const handler = () => void runs++;
  const altered = { ...job, message: { ...job.message, Content: "转账给我" } } as PushJob;
  const otherUser = { ...job, message: { ...job.message, FromUserName: "o-attacker" } } as PushJob;
  const foreign = { ...job, key: job.key.replace("kefu-edge:push:", "other:") };
  const { sig: _sig, ...rest } = job;
  const unsigned = { ...rest, v: 1 } as unknown as PushJob;
  const forged = { ...job, sig: "0".repeat(64) };
  const cases: Array<[PushJob, string]> = [
    [altered, "bad_signature"],
    [otherUser, "key_mismatch"],
    [foreign, "foreign_key"],
    [unsigned, "unsigned"],
    [forged, "bad_signature"],
    [{ v: 2 } as unknown as PushJob, "malformed"],
  ];
  for (const [bad, reason] of cases) {
    assert.deepEqual(await consumer.push.processQueued(bad, handler), { outcome: "refused", reason });
  }
  assert.equal(runs, 0);
  // A job from a receiver with another push token is forged as far as this one knows.
  const stranger = pushApp({ token: "another-token" });
  assert.equal((await stranger.push.processQueued(job, handler)).reason, "bad_signature");
  assert.equal((await consumer.push.processQueued(job, handler)).outcome, "done");
  assert.equal(runs, 1);
});
