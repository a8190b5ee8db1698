import type { KeyValueStore, SetOptions } from "./key_value_store.ts";

/**
 * An in-memory {@link KeyValueStore}: per process or isolate, lost on restart.
 * The default store for tokens and push deduplication.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@kefu/edge";
 * const store = new MemoryStore();
 * await store.set("greeting", "hi", { ttlSeconds: 60 });
 * console.log(await store.get("greeting")); // "hi"
 * ```
 */
export class MemoryStore implements KeyValueStore {
  readonly #entries = new Map<string, { value: string; expiresAt: number }>();
  readonly #now: () => number;

  /**
   * Creates an empty store.
   *
   * @param options `now`: clock in ms (tests move time with it); default `Date.now`
   */
  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /**
   * Reads `key`.
   *
   * @param key the key to read
   * @returns the value, or `null` when absent or expired
   */
  get(key: string): Promise<string | null> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return Promise.resolve(null);
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return Promise.resolve(null);
    }
    return Promise.resolve(entry.value);
  }

  /**
   * Writes `key`, optionally expiring.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry; none means kept until deleted
   */
  set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const ttl = options.ttlSeconds;
    const expiresAt = ttl === undefined ? Number.POSITIVE_INFINITY : this.#now() + ttl * 1000;
    this.#entries.set(key, { value, expiresAt });
    this.#sweep();
    return Promise.resolve();
  }

  /**
   * Writes `key` unless a live entry is there. Atomic: the check and the write happen in
   * one synchronous step, so of concurrent calls exactly one resolves `true`.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry; none means kept until deleted
   * @returns whether this call wrote the entry
   * @example
   * ```ts
   * import { MemoryStore } from "@kefu/edge";
   * const store = new MemoryStore();
   * console.log(await store.setIfAbsent("claim", "a"), await store.setIfAbsent("claim", "b")); // true false
   * ```
   */
  setIfAbsent(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.expiresAt > this.#now()) return Promise.resolve(false);
    return this.set(key, value, options).then(() => true);
  }

  /**
   * Replaces (or, with `null`, removes) the live entry under `key` if it still holds
   * `expected`, in one synchronous step.
   *
   * @param key the key
   * @param expected the value the entry must hold
   * @param value the new value, or `null` to remove the entry
   * @param options `ttlSeconds` of the new value; none means kept until deleted
   * @returns whether the entry held `expected` (and was replaced)
   * @example Renew a lease only while it is still yours
   * ```ts
   * import { MemoryStore } from "@kefu/edge";
   * const store = new MemoryStore();
   * await store.set("lease", "mine");
   * console.log(await store.compareAndSet("lease", "mine", "mine-renewed"), await store.compareAndSet("lease", "mine", null)); // true false
   * ```
   */
  compareAndSet(key: string, expected: string, value: string | null, options: SetOptions = {}): Promise<boolean> {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.expiresAt <= this.#now() || entry.value !== expected) {
      return Promise.resolve(false);
    }
    if (value === null) return this.delete(key).then(() => true);
    return this.set(key, value, options).then(() => true);
  }

  /**
   * Removes `key`.
   *
   * @param key the key to remove
   */
  delete(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  // Dedupe marks arrive one per message; drop expired ones now and then so a
  // long-lived isolate does not grow without bound.
  #writes = 0;
  #sweep(): void {
    if (++this.#writes % 1024 !== 0) return;
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key);
    }
  }
}
