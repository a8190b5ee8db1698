// Conversations in the shipped worker (worker/index.ts) as `wrangler dev` runs it: bundled
// once, served by workerd through Miniflare with the real KefuStore Durable Objects (SQLite)
// bound as in wrangler.toml, the bindings living as long as the worker, every push and API call
// a request of its own. With KEFU_STORE bound the worker keeps conversations without being
// told to: the history fills, a person taking over keeps the forward target out, deleting the
// user leaves nothing to read — in both delivery modes.
import assert from "node:assert/strict";
import { afterAll, beforeAll, describe, test } from "vitest";
import {
  bundleWorker,
  deliver,
  type ForwardReceiver,
  startForwardReceiver,
  startWorker,
  waitFor,
  wechat,
} from "./_miniflare.ts";

const API = { authorization: "Bearer miniflare-api-key" };

let script: string;
let receiver: ForwardReceiver;

beforeAll(async () => {
  script = await bundleWorker();
  receiver = await startForwardReceiver();
});
afterAll(() => receiver?.close());

for (const queue of [false, true]) {
  describe(`conversations in the shipped worker, ${queue ? "queue mode" : "handling while WeChat waits"}`, () => {
    test("history, a takeover that keeps the forward out, and deleting the user", async () => {
      receiver.arrived.length = 0;
      const { mf, base, logs } = await startWorker(script, { forwardUrl: receiver.url, queue });
      try {
        const openId = `oMiniflareConv${queue ? "Q" : "S"}0123456789ab`;
        const user = wechat().user(openId);
        const api = (path: string, init: RequestInit = {}) =>
          fetch(`${base}/api/users/${openId}${path}`, { ...init, headers: { ...API, ...init.headers } });

        const first = await user.says("我的订单到哪了？");
        for (const request of [first.request(), first.request()]) { // WeChat's retry appends nothing
          assert.deepEqual(await deliver(base, request), { status: 200, text: "success" });
        }
        await waitFor(() => receiver.arrived.length >= 1);
        const history = await (await api("/messages")).json() as { entries: { sender: string; text?: string }[] };
        assert.deepEqual(history.entries.map((e) => [e.sender, e.text]), [["user", "我的订单到哪了？"]]);

        const take = await api("/handoff", {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ state: "human", agent: "alice", reason: "refund" }),
        });
        assert.equal(take.status, 200);
        const second = await user.says("人呢？");
        assert.deepEqual(await deliver(base, second.request()), { status: 200, text: "success" });
        // Long enough for a queued job to have been consumed and forwarded, were it forwarded.
        await new Promise((r) => setTimeout(r, queue ? 2500 : 300));
        assert.deepEqual(receiver.arrived, [String(first.msgId)], "the forward target stays out while alice answers");
        const after = await (await api("/messages")).json() as { entries: { type: string; text?: string }[] };
        assert.deepEqual(after.entries.map((e) => e.text ?? e.type), ["人呢？", "handoff", "我的订单到哪了？"]);

        assert.equal((await api("", { method: "DELETE" })).status, 204);
        assert.equal((await api("/messages")).status, 404);
        const failures = logs.filter((line) => /failed|Cannot perform I\/O/i.test(line));
        assert.deepEqual(failures, [], "no store or forward operation failed");
      } finally {
        await mf.dispose();
      }
    }, 60_000);
  });
}
