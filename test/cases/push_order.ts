// Order per user: the handler sees one user's messages in the order sent (CreateTime, then
// MsgId), also after a backend outage and a retry storm, exactly once; an earlier message still
// pending holds the later ones back up to a bound, and one that was dead-lettered releases them.
// The queue is simulated on a controllable clock: due jobs are delivered newest first (the
// worst order a retry storm can bring), failures come back after the worker's backoff.
import assert from "node:assert/strict";
import { MemoryConversationStore, MiniProgram, type PushJob, type PushMessage } from "../../mod.ts";
import { buildPush } from "../../src/testing/mod.ts";
import { test } from "./_registry.ts";

const APP_ID = "wxorder000000001";
const PUSH = { token: "OrderToken01", encodingAESKey: "OrderKey0123456789abcdefghijklmnopqrstuvwxy" };
const TARGET = { appId: APP_ID, ...PUSH, format: "json" as const };
let users = 0;

/** The worker's backoff: 5 s doubling to 20 minutes. */
const backoff = (attempts: number) => Math.min(1200, 5 * 2 ** Math.max(0, attempts - 1));

function setup() {
  const start = Date.now();
  let offset = 0;
  const now = () => start + offset;
  const logged: string[] = [];
  const conversations = new MemoryConversationStore({ now });
  const mp = new MiniProgram({
    appId: APP_ID,
    appSecret: "order-secret",
    fetch: () => Promise.reject(new Error("no network")),
    push: PUSH,
    conversations,
    now,
    logger: { warn: (line) => void logged.push(line) },
  });
  return { mp, now, advance: (ms: number) => void (offset += ms), logged, openId: `o-order-${users++}` };
}

/** One user's burst: `count` texts sent within two seconds, MsgIds rising. */
async function burst(openId: string, count: number, sentAt: number, first = 0) {
  const pushes = [];
  for (let i = first; i < first + count; i++) {
    const message = {
      ToUserName: "gh_1",
      FromUserName: openId,
      CreateTime: Math.floor(sentAt / 1000) + (i % 6 < 2 ? 0 : 1), // two share a second: MsgId decides
      MsgType: "text",
      Content: `m${i + 1}`,
      MsgId: String(7_400_000_000_000_000_000n + BigInt(i * 7)),
    };
    pushes.push(await buildPush(TARGET, message, { timestamp: String(Math.floor(sentAt / 1000)) }));
  }
  return pushes;
}

interface Queued {
  job: PushJob;
  attempts: number;
  visibleAt: number;
}

/**
 * Runs the simulated queue until it is empty: the newest due job first; a failure comes back
 * after the backoff, a busy job after the delay it asked for. Returns the deliveries made.
 */
async function drain(
  sim: ReturnType<typeof setup>,
  queue: Queued[],
  handler: (content: string) => void,
): Promise<{ deliveries: number; mostAttempts: number }> {
  let deliveries = 0;
  let mostAttempts = 0;
  while (queue.length > 0) {
    const due = queue.filter((q) => q.visibleAt <= sim.now());
    if (due.length === 0) {
      sim.advance(Math.min(...queue.map((q) => q.visibleAt)) - sim.now());
      continue;
    }
    const item = due.sort((a, b) => b.job.message.MsgId!.localeCompare(a.job.message.MsgId!))[0]!;
    deliveries++;
    item.attempts++;
    mostAttempts = Math.max(mostAttempts, item.attempts);
    try {
      const result = await sim.mp.push.processQueued(
        item.job,
        (message) => handler(String((message as { Content?: unknown }).Content)),
        { attempt: item.attempts, retryDelaySeconds: backoff(item.attempts) },
      );
      if (result.outcome === "busy") item.visibleAt = sim.now() + (result.retryAfterSeconds ?? 5) * 1000;
      else queue.splice(queue.indexOf(item), 1);
    } catch {
      item.visibleAt = sim.now() + backoff(item.attempts) * 1000;
    }
    assert.ok(deliveries < 2000, "the queue drains");
  }
  return { deliveries, mostAttempts };
}

async function enqueueAll(sim: ReturnType<typeof setup>, count: number): Promise<Queued[]> {
  const queue: Queued[] = [];
  for (const push of await burst(sim.openId, count, sim.now())) {
    const response = await sim.mp.push.handleQueued(push.request(), {
      enqueue: (job) => Promise.resolve(void queue.push({ job, attempts: 0, visibleAt: sim.now() })),
    });
    assert.equal(await response.text(), "success");
  }
  return queue;
}

test("order: a burst through a backend down 10 minutes, then back: handled in the order sent, each once", async () => {
  const sim = setup();
  const queue = await enqueueAll(sim, 6);
  const downUntil = sim.now() + 10 * 60_000;
  const seen: string[] = [];
  let calls = 0;
  const { deliveries, mostAttempts } = await drain(sim, queue, (content) => {
    calls++;
    if (sim.now() < downUntil) throw new Error("backend down");
    seen.push(content);
  });
  assert.deepEqual(seen, ["m1", "m2", "m3", "m4", "m5", "m6"]);
  // While it was down only the earliest message was tried: the others waited behind it.
  // 5 s doubling to 10 minutes: 7 failed runs of m1; the rest never ran while it was down.
  assert.equal(calls - seen.length, 7);
  assert.deepEqual(sim.logged.filter((l) => l.includes("order_skipped")), []);
  // Waiting costs queue deliveries (63 here, for 6 messages, 7 failed runs): about one per
  // attempt of the message waited for, far from the queue's 100 retries.
  assert.ok(deliveries <= 80, `deliveries: ${deliveries}`);
  assert.ok(mostAttempts <= 20, `attempts of one job: ${mostAttempts}`);
});

test("order: a message still pending past its due by over 60 s is passed over, with a log line and no content", async () => {
  const sim = setup();
  const queue = await enqueueAll(sim, 2);
  // The first job is lost (its queue never delivers it): the second waits, then goes ahead.
  const lost = queue.shift()!;
  const deliveryId = queue[0]!.job.deliveryId;
  const seen: string[] = [];
  await drain(sim, queue, (content) => void seen.push(content));
  assert.deepEqual(seen, ["m2"]);
  const line = sim.logged.find((l) => l.includes("kefu-edge.order_skipped"))!;
  assert.deepEqual(JSON.parse(line), { event: "kefu-edge.order_skipped", deliveryId, passed: 1 });
  assert.ok(!line.includes("m1") && !line.includes(sim.openId));
  assert.ok(sim.now() - lost.visibleAt >= 60_000 && sim.now() - lost.visibleAt < 120_000, "waited about 60 s");
  // It comes back late after all: it still runs, once.
  await drain(sim, [{ ...lost, visibleAt: sim.now() }], (content) => void seen.push(content));
  assert.deepEqual(seen, ["m2", "m1"]);
});

test("order: a dead-lettered message releases the ones behind it at once; its replay still runs once", async () => {
  const sim = setup();
  const queue = await enqueueAll(sim, 2);
  const [first, second] = queue as [Queued, Queued];
  await assert.rejects(sim.mp.push.processQueued(first.job, () => {
    throw new Error("backend down");
  }, { attempt: 1, retryDelaySeconds: 3600 }));
  const waiting = await sim.mp.push.processQueued(second.job, () => assert.fail("ran out of order"));
  assert.deepEqual([waiting.outcome, waiting.reason], ["busy", "order"]);
  assert.ok(waiting.retryAfterSeconds! > 3500, "it waits for the first one's retry");
  assert.equal(await sim.mp.push.deadLettered(first.job), 1);
  const seen: string[] = [];
  assert.equal((await sim.mp.push.processQueued(second.job, () => void seen.push("m2"))).outcome, "done");
  assert.equal((await sim.mp.push.processQueued(first.job, () => void seen.push("m1"))).outcome, "done");
  assert.equal((await sim.mp.push.processQueued(first.job, () => void seen.push("m1"))).outcome, "duplicate");
  assert.deepEqual(seen, ["m2", "m1"]);
  assert.deepEqual(sim.logged.filter((l) => l.includes("order_skipped")), []);
});

test("order, synchronous mode: a later message waits while the earlier one's handler runs, up to claimWaitMs", async () => {
  const sim = setup();
  const [one, two] = await burst(sim.openId, 2, sim.now());
  const seen: string[] = [];
  let release!: () => void;
  const slow = new Promise<void>((resolve) => (release = resolve));
  const handler = async (message: PushMessage) => {
    const content = (message as { Content?: unknown }).Content;
    seen.push(`start ${content}`);
    if (content === "m1") await slow;
    seen.push(`end ${content}`);
  };
  const first = sim.mp.push.handle(one!.request(), handler);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const second = sim.mp.push.handle(two!.request(), handler);
  setTimeout(release, 300);
  assert.equal(await (await first).text(), "success");
  assert.equal(await (await second).text(), "success");
  assert.deepEqual(seen, ["start m1", "end m1", "start m2", "end m2"]);
  // An earlier message whose handler outlasts claimWaitMs (1.5 s) is passed over, logged.
  const [three, four] = await burst(sim.openId, 2, sim.now() + 10_000, 2);
  const stuck = sim.mp.push.handle(three!.request(), () => new Promise<void>((resolve) => setTimeout(resolve, 2500)));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const started = Date.now();
  const ahead = await sim.mp.push.handle(four!.request(), () => void seen.push("four"));
  assert.equal(await ahead.text(), "success");
  assert.ok(Date.now() - started >= 1400 && Date.now() - started < 2400, `waited ${Date.now() - started} ms`);
  assert.equal(seen.at(-1), "four");
  assert.equal(sim.logged.filter((l) => l.includes("order_skipped")).length, 1);
  await stuck;
});
