/**
 * The `npm start` entry (not published): the production app (`worker/index.ts`'s `createApp`
 * with tokens in `WECHAT_KV`) wrapped with `withEmulator`, as a team wraps its own worker.
 * `scripts/_dev_server.ts` runs it with `wrangler dev`, the chat page's files as assets and
 * the dev-only variables.
 *
 * @module
 */
import { createApp } from "../worker/app.ts";
import { kvStore } from "../worker/index.ts";
import { withEmulator } from "../src/testing/mod.ts";

/** The Durable Object class of `wrangler.toml` (`KEFU_STORE`). */
export { KefuStore } from "../worker/store_object.ts";

/** The worker: `fetch(request, env, ctx)` and `queue(batch, env, ctx)` for `wrangler dev`. */
export default withEmulator(createApp({ store: kvStore }));
