// One store contract, run against every KeyValueStore implementation.
import assert from "node:assert/strict";
import type { KeyValueStore } from "../../mod.ts";

export interface StoreFixture {
  store: KeyValueStore;
  /**
   * Makes time pass for the store (moves its clock). Absent for Workers KV, whose clock
   * cannot be moved: its expiry is checked through the expiration KV reports instead.
   */
  advance?(ms: number): Promise<void>;
  /** The store's shortest honoured TTL in seconds (Workers KV: 60). */
  minTtlSeconds: number;
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
];

/** A fixture whose clock is a variable the test moves. */
export function fakeClock(): { now: () => number; advance(ms: number): Promise<void> } {
  let t = 1_700_000_000_000;
  return { now: () => t, advance: (ms) => Promise.resolve(void (t += ms)) };
}
