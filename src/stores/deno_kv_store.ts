import type { KeyValueStore, SetOptions } from "./key_value_store.ts";

/**
 * The part of a `Deno.Kv` that {@link DenoKvStore} uses. Declared structurally so the
 * core type-checks without Deno's types; pass the real `await Deno.openKv()`.
 */
export interface DenoKvLike {
  /** Reads an entry. */
  get(key: readonly string[]): Promise<{ value: unknown }>;
  /** Writes an entry, optionally expiring. */
  set(key: readonly string[], value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  /** Removes an entry. */
  delete(key: readonly string[]): Promise<void>;
}

/**
 * A {@link KeyValueStore} over a `Deno.Kv` passed in by the caller. Keys live under
 * the prefix `["kefu-edge", key]`. Deno KV's `expireIn` is a hint (expired entries may
 * linger), so the expiry is also stored and checked on read.
 *
 * @example
 * ```ts ignore
 * import { DenoKvStore } from "./deno_kv_store.ts";
 * const store = new DenoKvStore(await Deno.openKv(":memory:"));
 * await store.set("k", "v", { ttlSeconds: 60 });
 * ```
 */
export class DenoKvStore implements KeyValueStore {
  readonly #kv: DenoKvLike;
  readonly #now: () => number;

  /**
   * Wraps an open `Deno.Kv`.
   *
   * @param kv an open `Deno.Kv`
   * @param options `now`: clock in ms; default `Date.now`
   */
  constructor(kv: DenoKvLike, options: { now?: () => number } = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Reads `key`; an expired entry reads as `null`.
   *
   * @param key the key to read
   * @returns the value, or `null` when absent or expired
   */
  async get(key: string): Promise<string | null> {
    const entry = await this.#kv.get(["kefu-edge", key]);
    const stored = entry.value as { value?: unknown; expiresAt?: unknown } | null;
    if (stored === null || typeof stored !== "object" || typeof stored.value !== "string") return null;
    if (typeof stored.expiresAt === "number" && stored.expiresAt <= this.#now()) return null;
    return stored.value;
  }

  /**
   * Writes `key`, optionally expiring.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry
   */
  async set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const ttl = options.ttlSeconds;
    if (ttl === undefined) {
      await this.#kv.set(["kefu-edge", key], { value, expiresAt: null });
      return;
    }
    const expireIn = Math.max(1, Math.ceil(ttl * 1000));
    await this.#kv.set(["kefu-edge", key], { value, expiresAt: this.#now() + expireIn }, { expireIn });
  }

  /**
   * Removes `key`.
   *
   * @param key the key to remove
   */
  async delete(key: string): Promise<void> {
    await this.#kv.delete(["kefu-edge", key]);
  }
}
