/**
 * The `WECHAT_KV` binding as the store of access tokens, as the shipped worker's entry
 * (`worker/index.ts`) uses it.
 *
 * @module
 */
import { CloudflareKvStore, type KeyValueStore } from "../mod.ts";
import { ConfigError, type Env } from "./env.ts";

const stores = new WeakMap<object, KeyValueStore>();

/**
 * The `WECHAT_KV` store of an env; a missing binding fails the routes that need it (503).
 *
 * @param env the bindings
 * @returns the store over `env.WECHAT_KV`
 * @throws {ConfigError} when the binding is missing
 * @example Without the binding, the routes that need tokens answer 503 naming it
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * import { kvStore } from "./kv_binding.ts";
 * const app = createApp({ store: kvStore });
 * const env = { WECHAT_APPID: "wx123", WECHAT_SECRET: "secret", API_KEY: "key-0123456789" };
 * const res = await app.request("/api/typing", { method: "POST", headers: { authorization: "Bearer key-0123456789" } }, env);
 * console.log(res.status, (await res.json()).error.variable); // 503 "WECHAT_KV"
 * ```
 */
export function kvStore(env: Env): KeyValueStore {
  const kv = env.WECHAT_KV;
  if (kv === undefined || kv === null) throw new ConfigError("WECHAT_KV", "missing");
  let store = stores.get(kv);
  if (store === undefined) stores.set(kv, store = new CloudflareKvStore(kv));
  return store;
}
