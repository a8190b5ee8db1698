/**
 * `withEmulator`: runs a worker built with `createApp` against the in-process WeChat
 * emulator and the chat page, for local development.
 *
 * @module
 */
import { Hono } from "hono";
import {
  type AppEnv,
  type AppLogger,
  EMULATOR_UPSTREAM,
  type Env,
  executionContext,
  type KefuApp,
  type QueueBatchLike,
  type QueueLike,
  type QueueMessageLike,
} from "../../../worker/dev_seam.ts";
import { emulatorUpstream, type EmulatorUpstreams } from "./_upstream.ts";
import { emulatorOn, emulatorRoutes } from "./_routes.ts";

/** Options of {@link withEmulator}. */
export interface WithEmulatorOptions {
  /** The emulator's clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
  /** Where the dev routes log their 5xx answers; default `console`. */
  logger?: AppLogger | undefined;
}

/** The name the in-process queue gives its batches, as `wrangler.toml` names the push queue. */
const PUSH_QUEUE = "kefu-edge-pushes";
/** Retries of a queued push consumed in process, as the shipped `wrangler.toml` allows. */
const MAX_ATTEMPTS = 10;

/**
 * Wraps an app built with `createApp` for local development. While `WECHAT_EMULATOR` is
 * exactly `on`, the app talks to an in-process WeChat emulator instead of
 * `api.weixin.qq.com`, and the `/_emulator/` routes (loopback requests only) let you act as
 * a user: each action is pushed, signed and in safe mode encrypted, to the app's own
 * `/wechat/callback`. Pushes the app queues on `KEFU_QUEUE` are consumed at once, in
 * process, so an action's answer shows what the user received. Every other request goes to
 * the app unchanged; with `WECHAT_EMULATOR` unset the wrapper changes nothing.
 *
 * Serve the chat page's files with it: `wrangler dev dev.ts --assets
 * node_modules/kefu-edge/src/testing/dev_server/assets --var WECHAT_EMULATOR:on`, then open
 * `/_emulator/`.
 *
 * @param app the app, as `createApp` returns it
 * @param options the emulator's clock, a logger
 * @returns the wrapped app: `fetch` and `queue`, as `export default` for `wrangler dev`
 * @example Your worker's dev entry (`dev.ts`)
 * ```ts ignore
 * import app from "./worker.ts";
 * import { withEmulator } from "kefu-edge/testing";
 * export { KefuStore } from "kefu-edge/worker/durable-object";
 * export default withEmulator(app);
 * ```
 * @example Act as a user in a test
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * import { withEmulator } from "@kefu/edge/testing";
 *
 * const dev = withEmulator(createApp({ onMessage: () => {} }));
 * const env = { WECHAT_EMULATOR: "on", WECHAT_APPID: "wx1", WECHAT_SECRET: "s", WECHAT_TOKEN: "t" };
 * const res = await dev.request("http://127.0.0.1/_emulator/users/o_user/messages", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ text: "hello" }),
 * }, env);
 * console.log((await res.json()).delivery.ok); // true
 * ```
 */
export function withEmulator(app: KefuApp, options: WithEmulatorOptions = {}): KefuApp {
  return emulatorApp(app, emulatorUpstream(options.now === undefined ? {} : { now: options.now }), options.logger);
}

/**
 * {@link withEmulator} over a given upstream (tests pass one to inspect its emulators).
 *
 * @param app the app
 * @param upstream the emulators
 * @param logger where the dev routes log 5xx answers
 * @returns the wrapped app
 */
export function emulatorApp(app: KefuApp, upstream: EmulatorUpstreams, logger?: AppLogger): KefuApp {
  const running = new Set<Promise<unknown>>();
  const envs = new WeakMap<Env, Env>();

  // A queued push, consumed now: the app's own consumer runs it, and a retry it asks for
  // runs after its delay, as the Workers queue would.
  const consume = (job: unknown, env: Env, attempts: number): void => {
    let retryIn: number | undefined;
    const message: QueueMessageLike = {
      id: `dev-${attempts}`,
      body: job,
      attempts,
      ack() {},
      retry(o?: { delaySeconds?: number }) {
        retryIn = o?.delaySeconds ?? 5;
      },
    };
    const run = app.queue({ queue: PUSH_QUEUE, messages: [message] }, env).then(() => {
      if (retryIn !== undefined && attempts < MAX_ATTEMPTS) {
        setTimeout(() => consume(job, env, attempts + 1), retryIn * 1000);
      }
    });
    running.add(run);
    void run.finally(() => running.delete(run));
  };

  // The env the app sees in emulator mode: the bindings and variables as they are, plus the
  // emulator under a symbol (no variable can set it) and, when a queue is bound, a queue
  // consumed in process. One per env object, so the app's per-env caches keep working.
  const devEnv = (env: Env | undefined): Env | undefined => {
    if (env === undefined || env === null || !emulatorOn(env)) return env;
    let found = envs.get(env);
    if (found === undefined) {
      const derived = Object.create(env) as Env;
      Object.defineProperty(derived, EMULATOR_UPSTREAM, { value: upstream.select });
      if (env.KEFU_QUEUE !== undefined && env.KEFU_QUEUE !== null) {
        const queue: QueueLike = {
          send(job) {
            consume(job, derived, 1);
            return Promise.resolve();
          },
        };
        Object.defineProperty(derived, "KEFU_QUEUE", { value: queue, enumerable: true });
      }
      envs.set(env, found = derived);
    }
    return found;
  };

  const wrapper = new Hono<AppEnv>();
  wrapper.route(
    "/_emulator",
    emulatorRoutes({ app, upstream, background: () => [...running], ...(logger === undefined ? {} : { logger }) }),
  );
  wrapper.all("*", (c) => app.fetch(c.req.raw, c.env, executionContext(c)));
  const dispatch = wrapper.fetch;
  return Object.assign(wrapper, {
    fetch: (request: Request, env?: Env, ctx?: Parameters<typeof dispatch>[2]) => dispatch(request, devEnv(env), ctx),
    queue: (batch: QueueBatchLike, env: Env, ctx?: unknown) => app.queue(batch, devEnv(env) ?? env, ctx),
  });
}
