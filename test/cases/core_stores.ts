import { MemoryStore } from "../../mod.ts";
import { test } from "./_registry.ts";
import { fakeClock, storeCases } from "./_store_suite.ts";

for (const [name, fn] of storeCases) {
  test(`MemoryStore: ${name}`, () => {
    const clock = fakeClock();
    return fn({ store: new MemoryStore({ now: clock.now }), advance: clock.advance, minTtlSeconds: 1, atomic: true });
  });
}
