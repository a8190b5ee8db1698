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
