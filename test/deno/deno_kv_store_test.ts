// DenoKvStore against a real in-memory Deno KV (deno test --unstable-kv).
import { DenoKvStore } from "../../mod.ts";
import { fakeClock, storeCases } from "../cases/_store_suite.ts";

for (const [name, fn] of storeCases) {
  Deno.test(`DenoKvStore: ${name}`, async () => {
    const kv = await Deno.openKv(":memory:");
    const clock = fakeClock();
    try {
      await fn({
        store: new DenoKvStore(kv, { now: clock.now }),
        advance: clock.advance,
        minTtlSeconds: 1,
        atomic: true,
      });
    } finally {
      kv.close();
    }
  });
}

// Two connections to one Deno KV database, as two processes of a server have: only the
// database's atomic check keeps them from both running a handler.
Deno.test("DenoKvStore: receivers on two connections to one database run a message's handler once", async () => {
  const { MiniProgram } = await import("../../mod.ts");
  const { pushRequest, TOKEN, AES_KEY, APP_ID, NOW_SECONDS } = await import("../cases/push_fixtures.ts");
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  const [kvA, kvB] = [await Deno.openKv(path), await Deno.openKv(path)];
  try {
    const receiver = (kv: Deno.Kv) =>
      new MiniProgram({
        appId: APP_ID,
        appSecret: "secret-value",
        now: () => NOW_SECONDS * 1000,
        logger: { warn() {} },
        push: { token: TOKEN, encodingAESKey: AES_KEY, dedupeStore: new DenoKvStore(kv), claimWaitMs: 300 },
      });
    const [a, b] = [receiver(kvA), receiver(kvB)];
    for (let round = 0; round < 5; round++) {
      let runs = 0;
      const handler = async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 10));
      };
      const body = JSON.stringify({
        ToUserName: "gh_1",
        FromUserName: "o-deno-user",
        CreateTime: NOW_SECONDS,
        MsgType: "text",
        Content: "hi",
        MsgId: String(9000 + round),
      });
      await Promise.all([
        a.push.handle(pushRequest({ body, mode: "aes" }), handler).then((r) => r.body?.cancel()),
        b.push.handle(pushRequest({ body, mode: "aes" }), handler).then((r) => r.body?.cancel()),
      ]);
      if (runs !== 1) throw new Error(`round ${round}: the handler ran ${runs} times`);
    }
  } finally {
    kvA.close();
    kvB.close();
    await Deno.remove(path).catch(() => {});
  }
});
