/**
 * The Cloudflare Workers entry (`wrangler.toml` `main`): the app with access tokens in the
 * `WECHAT_KV` namespace, push claims in the `KEFU_STORE` Durable Objects (KV when unbound),
 * and durable push handling through `KEFU_QUEUE` when bound. Only a Workers runtime loads it
 * (the Durable Object class comes from `cloudflare:workers`).
 *
 * @module
 */
import { createApp } from "./app.ts";
import { kvStore } from "./kv_binding.ts";

export { kvStore };

/** The Durable Object class bound as `KEFU_STORE` (the runtime finds it among the entry's exports). */
export { KefuStore } from "./store_object.ts";

/** The worker: `fetch(request, env, ctx)` and `queue(batch, env, ctx)` for wrangler. */
export default createApp({ store: kvStore });
