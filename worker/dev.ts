/**
 * The local-development Workers entry (`npm start`): the production app plus the
 * in-process emulator for `WECHAT_EMULATOR=on`, so every route works without a WeChat
 * account, and the dev-only `/_emulator/` routes and chat simulator page, which exist
 * only in that mode.
 *
 * `npm start` (or `npx wrangler dev worker/dev.ts --var WECHAT_EMULATOR:on` with your own variables)
 *
 * @module
 */
import type { Hono } from "hono";
import { type AppEnv, type AppOptions, createApp } from "./app.ts";
import { emulatorUpstream, type EmulatorUpstreams } from "./emulator.ts";
import { kvStore } from "./index.ts";
import { registerEmulatorRoutes } from "./_emulator_routes.ts";

/** Options of {@link createDevApp}. */
export interface DevAppOptions extends Omit<AppOptions, "emulator"> {
  /** The emulators behind the app; default a new {@link emulatorUpstream}. Tests pass one to inspect it. */
  upstream?: EmulatorUpstreams;
}

/**
 * The dev app: `createApp` with the emulator upstream and the `/_emulator/` routes,
 * both on one emulator per configuration.
 *
 * @param options as for `createApp`, but the emulator comes from `upstream`; default store `WECHAT_KV`
 * @returns the app
 * @example
 * ```ts ignore
 * const app = createDevApp();
 * await app.request("/_emulator/users/o_demo_user_1/messages", { method: "POST", ... }, env);
 * ```
 */
export function createDevApp(options: DevAppOptions = {}): Hono<AppEnv> {
  const { upstream = emulatorUpstream(options.now === undefined ? {} : { now: options.now }), ...appOptions } = options;
  const app = createApp({ store: kvStore, ...appOptions, emulator: upstream.select });
  registerEmulatorRoutes(app, upstream);
  return app;
}

/** The worker: `fetch(request, env, ctx)` for `wrangler dev`. */
export default createDevApp();
