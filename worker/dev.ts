/**
 * The local-development Workers entry: the production app plus the in-process
 * emulator for `WECHAT_EMULATOR=on`, so every route works without a WeChat account.
 *
 * `npx wrangler dev worker/dev.ts --var WECHAT_EMULATOR:on`
 *
 * @module
 */
import { createApp } from "./app.ts";
import { emulatorUpstream } from "./emulator.ts";
import { kvStore } from "./index.ts";

/** The worker: `fetch(request, env, ctx)` for `wrangler dev`. */
export default createApp({ store: kvStore, emulator: emulatorUpstream().select });
