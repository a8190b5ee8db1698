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
import { type AppOptions, createApp, type KefuApp } from "./app.ts";
import type { Env } from "./env.ts";
import type { QueueLike } from "./push_route.ts";
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
export function createDevApp(options: DevAppOptions = {}): KefuApp {
  const { upstream = emulatorUpstream(options.now === undefined ? {} : { now: options.now }), ...appOptions } = options;
  const running = new Set<Promise<unknown>>();
  // With a queue bound, dev pushes take the queue path (claim, enqueue, answer, then the
  // app's own consumer), but in process: the job is consumed at once, so a dev route can
  // show what the user received (a welcome text) in its answer.
  const queue = appOptions.queue ?? ((env: Env): QueueLike | undefined =>
    env.KEFU_QUEUE === undefined ? undefined : {
      send(job) {
        consumeNow(job, env, 1);
        return Promise.resolve();
      },
    });
  const app: KefuApp = createApp({ store: kvStore, ...appOptions, queue, emulator: upstream.select });
  const consumeNow = (job: unknown, env: Env, attempts: number): void => {
    let retryIn: number | undefined;
    const message = {
      id: `dev-${attempts}`,
      body: job,
      attempts,
      ack() {},
      retry(o?: { delaySeconds?: number }) {
        retryIn = o?.delaySeconds ?? 5;
      },
    };
    const run = app.queue({ queue: "kefu-edge-pushes", messages: [message] }, env).then(() => {
      if (retryIn !== undefined && attempts < 10) setTimeout(() => consumeNow(job, env, attempts + 1), retryIn * 1000);
    });
    running.add(run);
    void run.finally(() => running.delete(run));
  };
  registerEmulatorRoutes(app, upstream, { background: () => [...running] });
  return app;
}

/** The Durable Object class of `wrangler.toml` (`KEFU_STORE`). */
export { KefuStore } from "./store_object.ts";

/** The worker: `fetch(request, env, ctx)` and `queue(batch, env, ctx)` for `wrangler dev`. */
export default createDevApp();
