/**
 * The storage interface used for the access-token cache and push deduplication.
 *
 * @module
 */

/** Options for {@link KeyValueStore.set}. */
export interface SetOptions {
  /** Seconds until the entry expires. Stores round up to their own minimum (Workers KV: 60). */
  ttlSeconds?: number;
}

/**
 * A small async key-value store. Implementations: {@link MemoryStore},
 * `CloudflareKvStore`, `DenoKvStore`, or your own (Redis, a database...).
 *
 * @example A store backed by a Map
 * ```ts
 * import type { KeyValueStore } from "@kefu/edge";
 * const map = new Map<string, string>();
 * const store: KeyValueStore = {
 *   get: async (key) => map.get(key) ?? null,
 *   set: async (key, value) => void map.set(key, value),
 *   delete: async (key) => void map.delete(key),
 * };
 * await store.set("k", "v");
 * ```
 */
export interface KeyValueStore {
  /** The value stored under `key`, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Stores `value` under `key`, optionally expiring after `ttlSeconds`. */
  set(key: string, value: string, options?: SetOptions): Promise<void>;
  /** Removes `key`; removing an absent key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Stores `value` under `key` only if no live entry is there, atomically: of any number of
   * concurrent calls for one key, exactly one resolves `true`. Optional: stores that cannot
   * do it atomically (Workers KV) leave it out, and callers fall back to best effort.
   */
  setIfAbsent?(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /**
   * Replaces the live entry under `key` with `value` (or removes it, when `value` is
   * `null`) only if it still holds `expected`, atomically: resolves whether it did. An
   * absent or expired entry holds nothing, so it never matches. Optional, like
   * `setIfAbsent`: push claims use it to renew and release their leases, and fall back to
   * a read then a write (best effort) without it.
   */
  compareAndSet?(key: string, expected: string, value: string | null, options?: SetOptions): Promise<boolean>;
}
