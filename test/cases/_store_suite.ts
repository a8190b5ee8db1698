// One store contract, run against every KeyValueStore implementation (in memory, Workers KV
// through miniflare, Deno KV, and Durable Objects inside workerd). Its two checks are written
// here rather than taken from node:assert, so the suite type-checks with Workers' types too.
import type { KeyValueStore } from "../../mod.ts";

const assert = {
  equal(actual: unknown, expected: unknown, what = "value"): void {
    if (!Object.is(actual, expected)) {
      throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
  },
  deepEqual(actual: unknown, expected: unknown): void {
    assert.equal(JSON.stringify(actual), JSON.stringify(expected), "values");
  },
};

export interface StoreFixture {
  store: KeyValueStore;
  /**
   * Makes time pass for the store (moves its clock). Absent for Workers KV, whose clock
   * cannot be moved: its expiry is checked through the expiration KV reports instead.
   */
  advance?(ms: number): Promise<void>;
  /** The store's shortest honoured TTL in seconds (Workers KV: 60). */
  minTtlSeconds: number;
  /** Whether the store offers atomic `setIfAbsent` (Memory, Deno KV, Durable Object; not Workers KV). */
  atomic: boolean;
  close?(): Promise<void> | void;
}

export type StoreCase = [name: string, fn: (f: StoreFixture) => Promise<void>];

export const storeCases: StoreCase[] = [
  ["get of a missing key is null", async ({ store }) => {
    assert.equal(await store.get("kefu-test:missing"), null);
  }],
  ["set then get returns the value, including unicode", async ({ store }) => {
    await store.set("kefu-test:a", '值 ✓ {"json":1}');
    assert.equal(await store.get("kefu-test:a"), '值 ✓ {"json":1}');
  }],
  ["set overwrites", async ({ store }) => {
    await store.set("kefu-test:b", "1");
    await store.set("kefu-test:b", "2");
    assert.equal(await store.get("kefu-test:b"), "2");
  }],
  ["delete removes, and deleting a missing key is fine", async ({ store }) => {
    await store.set("kefu-test:c", "x");
    await store.delete("kefu-test:c");
    assert.equal(await store.get("kefu-test:c"), null);
    await store.delete("kefu-test:never-set");
  }],
  ["an entry lives until its ttl, then expires", async ({ store, advance, minTtlSeconds }) => {
    await store.set("kefu-test:ttl", "soon gone", { ttlSeconds: minTtlSeconds });
    assert.equal(await store.get("kefu-test:ttl"), "soon gone");
    if (advance === undefined) return; // checked through KV's reported expiration instead
    await advance(minTtlSeconds * 1000 - 500);
    assert.equal(await store.get("kefu-test:ttl"), "soon gone");
    await advance(1500);
    assert.equal(await store.get("kefu-test:ttl"), null);
  }],
  ["a ttl below the store's minimum is accepted", async ({ store }) => {
    await store.set("kefu-test:short", "v", { ttlSeconds: 1 });
    assert.equal(await store.get("kefu-test:short"), "v");
  }],
  ["keys are independent", async ({ store }) => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`kefu-test:k${i}`, String(i))));
    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => store.get(`kefu-test:k${i}`)));
    assert.deepEqual(values, Array.from({ length: 20 }, (_, i) => String(i)));
  }],
  ["setIfAbsent exactly where the store can do it atomically", ({ store, atomic }) => {
    assert.equal(typeof store.setIfAbsent, atomic ? "function" : "undefined");
    return Promise.resolve();
  }],
  ["setIfAbsent: the first call writes, later ones do not and keep the first value", async ({ store }) => {
    if (store.setIfAbsent === undefined) return; // not atomic: the case above checks it is absent
    assert.equal(await store.setIfAbsent("kefu-test:claim", "first", { ttlSeconds: 300 }), true);
    assert.equal(await store.setIfAbsent("kefu-test:claim", "second", { ttlSeconds: 300 }), false);
    assert.equal(await store.get("kefu-test:claim"), "first");
  }],
  ["setIfAbsent: of 20 concurrent calls exactly one wins", async ({ store }) => {
    if (store.setIfAbsent === undefined) return; // not atomic: the case above checks it is absent
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.setIfAbsent!("kefu-test:race", `caller-${i}`, { ttlSeconds: 300 })),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await store.get("kefu-test:race"), `caller-${results.indexOf(true)}`);
  }],
  ["setIfAbsent: writes again after delete and after expiry", async ({ store, advance, minTtlSeconds }) => {
    if (store.setIfAbsent === undefined) return; // not atomic: the case above checks it is absent
    assert.equal(await store.setIfAbsent("kefu-test:lease", "a", { ttlSeconds: minTtlSeconds }), true);
    await store.delete("kefu-test:lease");
    assert.equal(await store.setIfAbsent("kefu-test:lease", "b", { ttlSeconds: minTtlSeconds }), true);
    if (advance === undefined) return;
    await advance(minTtlSeconds * 1000 + 1000);
    assert.equal(await store.setIfAbsent("kefu-test:lease", "c", { ttlSeconds: minTtlSeconds }), true);
    assert.equal(await store.get("kefu-test:lease"), "c");
  }],
  ["compareAndSet exactly where setIfAbsent is (atomic stores)", ({ store, atomic }) => {
    assert.equal(typeof store.compareAndSet, atomic ? "function" : "undefined");
    return Promise.resolve();
  }],
  ["compareAndSet replaces only the value it expects, and removes with null", async ({ store }) => {
    if (store.compareAndSet === undefined) return; // not atomic: the case above checks it is absent
    assert.equal(await store.compareAndSet("kefu-test:cas", "x", "y"), false, "absent entry");
    assert.equal(await store.get("kefu-test:cas"), null);
    await store.set("kefu-test:cas", "lease-1", { ttlSeconds: 300 });
    assert.equal(await store.compareAndSet("kefu-test:cas", "lease-0", "stolen", { ttlSeconds: 300 }), false, "other");
    assert.equal(await store.get("kefu-test:cas"), "lease-1");
    assert.equal(await store.compareAndSet("kefu-test:cas", "lease-1", "lease-2", { ttlSeconds: 300 }), true, "own");
    assert.equal(await store.get("kefu-test:cas"), "lease-2");
    assert.equal(await store.compareAndSet("kefu-test:cas", "lease-1", null), false, "stale release");
    assert.equal(await store.compareAndSet("kefu-test:cas", "lease-2", null), true, "release");
    assert.equal(await store.get("kefu-test:cas"), null);
  }],
  ["compareAndSet: of 20 concurrent renewals of one value exactly one wins", async ({ store }) => {
    if (store.compareAndSet === undefined) return;
    await store.set("kefu-test:cas-race", "held", { ttlSeconds: 300 });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => store.compareAndSet!("kefu-test:cas-race", "held", `r-${i}`, { ttlSeconds: 300 }),
      ),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await store.get("kefu-test:cas-race"), `r-${results.indexOf(true)}`);
  }],
  ["compareAndSet: an expired entry matches nothing, and a renewal moves the expiry", async ({ store, advance }) => {
    if (store.compareAndSet === undefined || advance === undefined) return;
    await store.set("kefu-test:cas-ttl", "lease", { ttlSeconds: 2 });
    await advance(1500);
    assert.equal(await store.compareAndSet("kefu-test:cas-ttl", "lease", "lease-2", { ttlSeconds: 2 }), true);
    await advance(1500); // 3 s after the first write, 1.5 s after the renewal
    assert.equal(await store.get("kefu-test:cas-ttl"), "lease-2");
    await advance(1000);
    assert.equal(await store.compareAndSet("kefu-test:cas-ttl", "lease-2", "lease-3", { ttlSeconds: 2 }), false);
    assert.equal(await store.get("kefu-test:cas-ttl"), null);
  }],
];

/** A fixture whose clock is a variable the test moves. */
export function fakeClock(): { now: () => number; advance(ms: number): Promise<void> } {
  let t = 1_700_000_000_000;
  return { now: () => t, advance: (ms) => Promise.resolve(void (t += ms)) };
}
