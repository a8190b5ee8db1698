// A slow FORWARD_URL in queue mode (an AI bot that replies before it answers the forward): the
// shipped worker (worker/index.ts) in Miniflare with real KV, Durable Object and Queue bindings,
// and a forward target on loopback that takes 6 s. WeChat's 4 s budget does not apply in the
// queue's consumer: each message reaches the target once, is answered there, and is acknowledged
// (no retry, no dead letter). With 4 s, every attempt was cut off and retried until the
// dead-letter queue.
import assert from "node:assert/strict";
import { afterAll, beforeAll, test } from "vitest";
import {
  bundleWorker,
  deliver,
  type ForwardReceiver,
  OPEN_ID,
  startForwardReceiver,
  startWorker,
  waitFor,
  wechat,
} from "./_miniflare.ts";

const TARGET_MS = 6000;

let script: string;
let receiver: ForwardReceiver;

beforeAll(async () => {
  script = await bundleWorker();
  receiver = await startForwardReceiver(TARGET_MS);
});
afterAll(() => receiver?.close());

test("queue mode: a forward target that takes 6 s gets each message once, and each is acknowledged", async () => {
  const { mf, base, logs } = await startWorker(script, { forwardUrl: receiver.url, queue: true, maxBatchSize: 1 });
  try {
    const user = wechat().user(OPEN_ID);
    const messages = [await user.says("慢一点的机器人"), await user.says("第二条")];
    for (const message of messages) {
      assert.deepEqual(await deliver(base, message.request()), { status: 200, text: "success" });
    }
    const ids = messages.map((m) => String(m.msgId));
    // Miniflare runs one batch at a time: 6 s each.
    await waitFor(() => receiver.answered.length + receiver.abandoned.length >= ids.length, 3 * TARGET_MS);
    // A worker that gave up on a forward logs the retry at once; give the last answer's ack a moment.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(receiver.abandoned, [], "no forward was cut off");
    assert.deepEqual(receiver.arrived, ids, "each message reached the target exactly once");
    assert.deepEqual(receiver.answered, ids);
    const retries = logs.filter((line) => /kefu-edge\.push_retry|kefu-edge\.dead_letter/.test(line));
    assert.deepEqual(retries, [], "no run failed: every message was acknowledged");
  } finally {
    await mf.dispose();
  }
}, 40_000);
