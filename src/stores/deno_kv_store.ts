import type { KeyValueStore, SetOptions } from "./key_value_store.ts";

/** A Deno KV key, as kefu-edge writes them: strings, and numbers where entries are kept in order. */
export type DenoKvKey = readonly (string | number)[];

/**
 * The part of a `Deno.Kv` that {@link DenoKvStore} uses. Declared structurally so the
 * core type-checks without Deno's types; pass the real `await Deno.openKv()`.
 */
export interface DenoKvLike {
  /** Reads an entry; `versionstamp` is `null` when there is none. */
  get(key: DenoKvKey): Promise<{ value: unknown; versionstamp: string | null }>;
  /** Writes an entry, optionally expiring. */
  set(key: DenoKvKey, value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  /** Removes an entry. */
  delete(key: DenoKvKey): Promise<void>;
  /** Starts an atomic operation (checks, then writes, committed together or not at all). */
  atomic(): DenoKvAtomicLike;
}

/** The part of a `Deno.AtomicOperation` that {@link DenoKvStore} uses. */
export interface DenoKvAtomicLike {
  /** Fails the commit unless `key`'s versionstamp is still `versionstamp` (`null`: no entry). */
  check(...checks: { key: DenoKvKey; versionstamp: string | null }[]): DenoKvAtomicLike;
  /** Writes an entry when the commit succeeds. */
  set(key: DenoKvKey, value: unknown, options?: { expireIn?: number }): DenoKvAtomicLike;
  /** Removes an entry when the commit succeeds. */
  delete(key: DenoKvKey): DenoKvAtomicLike;
  /** Applies the operation; `ok` is false when a check failed, else `versionstamp` is the commit's. */
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/**
 * A {@link KeyValueStore} over a `Deno.Kv` passed in by the caller. Keys live under
 * the prefix `["kefu-edge", key]`. Deno KV's `expireIn` is a hint (expired entries may
 * linger), so the expiry is also stored and checked on read.
 *
 * @example Tokens and push claims in Deno KV (`--unstable-kv`)
 * ```ts
 * import { DenoKvStore, MiniProgram } from "@kefu/edge";
 * const kv = await Deno.openKv(":memory:"); // or Deno.openKv() for Deno's default database
 * const store = new DenoKvStore(kv);
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", store, push: { token: "TOKEN", dedupeStore: store } });
 * await store.set("k", "v", { ttlSeconds: 60 });
 * console.log(await store.get("k"), await store.setIfAbsent("k", "w", { ttlSeconds: 60 }), mp.appId); // "v" false "wx123"
 * kv.close();
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
    return this.#live((await whenUnlocked(() => this.#kv.get(["kefu-edge", key]))).value);
  }

  /**
   * Writes `key`, optionally expiring.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry
   */
  async set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const [entry, expiry] = this.#entry(value, options);
    await whenUnlocked(() => this.#kv.set(["kefu-edge", key], entry, expiry));
  }

  /**
   * Writes `key` unless a live entry is there, with a Deno KV atomic operation: the write
   * commits only if the entry read is still the one there, so of concurrent calls (from any
   * process sharing the database) exactly one resolves `true`.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry
   * @returns whether this call wrote the entry
   */
  async setIfAbsent(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const kvKey = ["kefu-edge", key];
    const [entry, expiry] = this.#entry(value, options);
    for (;;) {
      const current = await whenUnlocked(() => this.#kv.get(kvKey));
      // An expired entry Deno KV has not removed yet counts as absent.
      if (current.versionstamp !== null && this.#live(current.value) !== null) return false;
      const result = await whenUnlocked(() =>
        this.#kv.atomic().check({ key: kvKey, versionstamp: current.versionstamp }).set(kvKey, entry, expiry).commit()
      );
      if (result.ok) return true;
      // Someone wrote in between: read again, and usually find their live entry.
    }
  }

  /**
   * Replaces (or, with `null`, removes) the live entry under `key` if it still holds
   * `expected`, with a Deno KV atomic operation checked on the entry read.
   *
   * @param key the key
   * @param expected the value the entry must hold
   * @param value the new value, or `null` to remove the entry
   * @param options `ttlSeconds` of the new value
   * @returns whether the entry held `expected` (and was replaced)
   */
  async compareAndSet(key: string, expected: string, value: string | null, options: SetOptions = {}): Promise<boolean> {
    const kvKey = ["kefu-edge", key];
    for (;;) {
      const current = await whenUnlocked(() => this.#kv.get(kvKey));
      if (current.versionstamp === null || this.#live(current.value) !== expected) return false;
      const check = this.#kv.atomic().check({ key: kvKey, versionstamp: current.versionstamp });
      let write: DenoKvAtomicLike;
      if (value === null) write = check.delete(kvKey);
      else {
        const [entry, expiry] = this.#entry(value, options);
        write = check.set(kvKey, entry, expiry);
      }
      const result = await whenUnlocked(() => write.commit());
      if (result.ok) return true;
      // Someone wrote in between: read again.
    }
  }

  #entry(value: string, options: SetOptions): [{ value: string; expiresAt: number | null }, { expireIn?: number }] {
    const ttl = options.ttlSeconds;
    if (ttl === undefined) return [{ value, expiresAt: null }, {}];
    const expireIn = Math.max(1, Math.ceil(ttl * 1000));
    return [{ value, expiresAt: this.#now() + expireIn }, { expireIn }];
  }

  #live(raw: unknown): string | null {
    const stored = raw as { value?: unknown; expiresAt?: unknown } | null;
    if (stored === null || typeof stored !== "object" || typeof stored.value !== "string") return null;
    if (typeof stored.expiresAt === "number" && stored.expiresAt <= this.#now()) return null;
    return stored.value;
  }

  /**
   * Removes `key`.
   *
   * @param key the key to remove
   */
  async delete(key: string): Promise<void> {
    await whenUnlocked(() => this.#kv.delete(["kefu-edge", key]));
  }
}

const MAX_LOCKED_RETRIES = 50;

/**
 * Runs `operation`, again shortly while it finds the database locked: several processes on
 * one SQLite file contend for its write lock, and a locked database is no answer yet.
 * (Shared with the Deno KV conversation store; not exported from the package.)
 */
export async function whenUnlocked<T>(operation: () => Promise<T>): Promise<T> {
  for (let busy = 0;; busy++) {
    try {
      return await operation();
    } catch (err) {
      const locked = err instanceof Error && /database is locked|SQLITE_BUSY/i.test(err.message);
      if (!locked || busy >= MAX_LOCKED_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8 * (busy + 1)));
    }
  }
}
