// Durable Object calls per push, counted at the KEFU_STORE namespace the shipped app is given
// (every stub method call: Workers RPC methods and fetch), with conversations on the Durable
// Objects (the default when KEFU_STORE is bound), in safe mode as in production. Targets (issue
// 18): synchronous mode at most 2 (one before the handler, one after); queue mode 1 before
// WeChat is answered and at most 2 in the consumer. Lease renewals of a slow handler are extra
// by design (every 40% of the lease) and counted on their own.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { buildPush, type PushTarget } from "../../src/testing/mod.ts";
import type { AppOptions, KefuApp } from "../../worker/mod.ts";
import { fakeFetch } from "../cases/_fake.ts";
import {
  AES_KEY,
  APP_ID,
  consume,
  countingNamespace,
  PUSH_TOKEN,
  recordingQueue,
  takeLogs,
  testApp,
  testEnv,
  textMessage,
} from "./_helpers.ts";

const SAFE: PushTarget = { appId: APP_ID, token: PUSH_TOKEN, encodingAESKey: AES_KEY, format: "xml" };
const FORWARD = { FORWARD_URL: "https://hooks.example.com/kefu", FORWARD_SECRET: "forward-secret-0123456789" };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let users = 0;

/** One user's text, from a user of its own (a fresh conversation object). */
function freshText(content: string) {
  return { ...textMessage(content), FromUserName: `o-calls-${Date.now().toString(36)}-${users++}` };
}

/** An app and env over a counting KEFU_STORE; `forward`: the env's default handler forwards to a fake target. */
function counted(options: AppOptions & { forward?: boolean } = {}) {
  const counter = countingNamespace();
  const forwarded: string[] = [];
  const fake = fakeFetch((request, url) => {
    if (url.hostname === "hooks.example.com") forwarded.push(request.headers.get("x-kefu-delivery") ?? "");
    return url.hostname === "hooks.example.com" ? new Response("ok") : Response.json({ errcode: 0, errmsg: "ok" });
  });
  const app = testApp({ fetch: fake.fetch, ...options }) as KefuApp;
  const env = testEnv({ KEFU_STORE: counter.namespace, WECHAT_AES_KEY: AES_KEY, ...(options.forward ? FORWARD : {}) });
  return { app, env, calls: counter.calls, forwarded };
}

/** Sends the push through the app: the calls made before its answer was handed back, then all of them. */
async function deliver(app: KefuApp, env: ReturnType<typeof testEnv>, request: Request, calls: string[]) {
  const ctx = createExecutionContext();
  const start = calls.length;
  const res = await app.fetch(request, env, ctx);
  const beforeAnswer = calls.slice(start);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { text, beforeAnswer, all: calls.slice(start) };
}

describe("Durable Object calls per push (conversations on KEFU_STORE)", () => {
  it("synchronous mode: at most 2, one before the handler and one after (an onMessage handler)", async () => {
    let atHandler = -1;
    const { app, env, calls } = counted({ onMessage: () => void (atHandler = calls.length) });
    const push = await buildPush(SAFE, freshText("sync"));
    const { text, beforeAnswer, all } = await deliver(app, env, push.request(), calls);
    expect(text).toBe("success");
    console.log(`sync, onMessage: ${all.length} calls [${all}] (${atHandler} before the handler)`);
    expect(atHandler).toBeLessThanOrEqual(1);
    expect(all.length - atHandler).toBeLessThanOrEqual(1);
    expect(all).toEqual(beforeAnswer); // nothing left for after the answer
    expect(all.length).toBeLessThanOrEqual(2);
  });

  it("synchronous mode: at most 2 with the default handler forwarding to FORWARD_URL (the window it opened included)", async () => {
    const { app, env, calls, forwarded } = counted({ forward: true });
    const push = await buildPush(SAFE, freshText("forwarded"));
    const { text, all } = await deliver(app, env, push.request(), calls);
    expect(text).toBe("success");
    expect(forwarded).toHaveLength(1);
    console.log(`sync, FORWARD_URL: ${all.length} calls [${all}]`);
    expect(all.length).toBeLessThanOrEqual(2);
  });

  for (const forward of [false, true]) {
    it(`queue mode (${forward ? "FORWARD_URL" : "onMessage"}): 1 call before WeChat is answered, at most 2 in the consumer`, async () => {
      let runs = 0;
      const recorded = recordingQueue();
      const { app, env, calls, forwarded } = counted({
        queue: recorded.queue,
        forward,
        ...(forward ? {} : { onMessage: () => void runs++ }),
      });
      const push = await buildPush(SAFE, freshText("queued"));
      const { text, beforeAnswer, all } = await deliver(app, env, push.request(), calls);
      expect(text).toBe("success");
      expect(recorded.sent).toHaveLength(1);
      const start = calls.length;
      expect((await consume(app, env, recorded.sent[0]!, 1)).explicitAcks).toEqual(["m-1"]);
      const consumer = calls.slice(start);
      expect(forward ? forwarded.length : runs).toBe(1);
      console.log(
        `queue, ${forward ? "FORWARD_URL" : "onMessage"}: ${beforeAnswer.length} before the answer ` +
          `[${beforeAnswer}], ${all.length - beforeAnswer.length} after it [${all.slice(beforeAnswer.length)}], ` +
          `${consumer.length} in the consumer [${consumer}]`,
      );
      expect(beforeAnswer.length).toBe(1);
      expect(consumer.length).toBeLessThanOrEqual(2);
      // A redelivery of the job finds it done, in one call.
      const again = calls.length;
      expect((await consume(app, env, recorded.sent[0]!, 2)).explicitAcks).toEqual(["m-2"]);
      expect(calls.length - again).toBe(1);
      expect(forward ? forwarded.length : runs).toBe(1);
    });
  }

  it("a slow handler's lease renewals are the only extra calls (counted on their own)", async () => {
    const recorded = recordingQueue();
    let renewals = 0;
    const { app, env, calls } = counted({
      queue: recorded.queue,
      push: { leaseSeconds: 0.5 }, // renewed every 200 ms
      onMessage: async () => {
        const started = calls.length;
        await sleep(1100);
        renewals = calls.length - started;
      },
    });
    const push = await buildPush(SAFE, freshText("slow"));
    expect((await deliver(app, env, push.request(), calls)).text).toBe("success");
    const start = calls.length;
    expect((await consume(app, env, recorded.sent[0]!, 1)).explicitAcks).toEqual(["m-1"]);
    const consumer = calls.slice(start);
    console.log(
      `queue consumer, 1.1 s handler, 0.5 s lease: ${consumer.length} calls [${consumer}], ${renewals} renewals`,
    );
    expect(renewals).toBeGreaterThanOrEqual(3);
    expect(renewals).toBeLessThanOrEqual(6);
    expect(consumer.length - renewals).toBeLessThanOrEqual(2);
    takeLogs();
  });
});
