import type { KeyValueStore, SetOptions } from "./key_value_store.ts";

/**
 * The part of a Workers KV namespace binding that {@link CloudflareKvStore} uses.
 * Declared structurally so the core needs no `@cloudflare/workers-types`.
 */
export interface KvNamespaceLike {
  /** Reads a value as text. */
  get(key: string, type: "text"): Promise<string | null>;
  /** Writes a value, optionally expiring. */
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>;
  /** Removes a key. */
  delete(key: string): Promise<void>;
}

/** Workers KV refuses an `expirationTtl` below 60 seconds. */
export const KV_MIN_TTL_SECONDS = 60;

/**
 * A {@link KeyValueStore} over a Cloudflare Workers KV namespace passed in by the caller.
 * TTLs below KV's 60-second minimum are raised to 60; readers that need a shorter
 * life (the token cache) keep their own expiry inside the value.
 *
 * @example In a Worker
 * ```ts ignore
 * import { CloudflareKvStore, MiniProgram } from "../../mod.ts";
 * export default {
 *   fetch(_req: Request, env: { WECHAT_KV: KVNamespace; WECHAT_APPID: string; WECHAT_SECRET: string }) {
 *     const mp = new MiniProgram({ appId: env.WECHAT_APPID, appSecret: env.WECHAT_SECRET, store: new CloudflareKvStore(env.WECHAT_KV) });
 *     return new Response(mp.appId);
 *   },
 * };
 * ```
 */
export class CloudflareKvStore implements KeyValueStore {
  readonly #kv: KvNamespaceLike;

  /**
   * Wraps a KV namespace binding.
   *
   * @param kv the KV namespace binding, e.g. `env.WECHAT_KV`
   */
  constructor(kv: KvNamespaceLike) {
    this.#kv = kv;
  }

  /**
   * Reads `key`.
   *
   * @param key the key to read
   * @returns the value, or `null`
   */
  get(key: string): Promise<string | null> {
    return this.#kv.get(key, "text");
  }

  /**
   * Writes `key`, with a TTL of at least 60 seconds when one is given.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`, raised to KV's 60-second minimum
   */
  set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const ttl = options.ttlSeconds;
    if (ttl === undefined) return this.#kv.put(key, value);
    return this.#kv.put(key, value, { expirationTtl: Math.max(KV_MIN_TTL_SECONDS, Math.ceil(ttl)) });
  }

  /**
   * Removes `key`.
   *
   * @param key the key to remove
   */
  delete(key: string): Promise<void> {
    return this.#kv.delete(key);
  }
}
