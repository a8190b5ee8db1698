/**
 * The `npm start` entry (not published): the production app (`worker/index.ts`'s `createApp`
 * with tokens in `WECHAT_KV`) wrapped with `withEmulator`, as a team wraps its own worker.
 * `scripts/_dev_server.ts` runs it with `wrangler dev`, the inbox's and the chat page's files as
 * assets and the dev-only variables. With no `BOT_URL` and no `FORWARD_URL`, the scripted demo
 * bot (dev/demo_bot.ts) answers users; with either, the app answers as configured.
 *
 * @module
 */
import { Hono } from "hono";
import { createApp } from "../worker/app.ts";
import { lenientVar } from "../worker/env.ts";
import { executionContext } from "../worker/dev_seam.ts";
import { kvStore } from "../worker/index.ts";
import type { AppEnv, Env, KefuApp, QueueBatchLike } from "../worker/mod.ts";
import { withEmulator } from "../src/testing/mod.ts";
import { demoBot } from "./demo_bot.ts";

/** The Durable Object class of `wrangler.toml` (`KEFU_STORE`). */
export { KefuStore } from "../worker/store_object.ts";

const configured = createApp({ store: kvStore });
const demo = createApp({ store: kvStore, onMessage: demoBot((env) => lenientVar(env, "WELCOME_TEXT")) });
// Set at all (even malformed: the configured app then answers 503 naming it) means configured.
const isSet = (value: unknown) => typeof value === "string" && value !== "";
const appFor = (env: Env | undefined): KefuApp =>
  env !== undefined && (isSet(env.BOT_URL) || isSet(env.FORWARD_URL)) ? configured : demo;

const app = new Hono<AppEnv>();
app.all("*", (c) => appFor(c.env).fetch(c.req.raw, c.env, executionContext(c)));

/** The worker: `fetch(request, env, ctx)` and `queue(batch, env, ctx)` for `wrangler dev`. */
export default withEmulator(Object.assign(app, {
  queue: (batch: QueueBatchLike, env: Env, ctx?: unknown) => appFor(env).queue(batch, env, ctx),
}));
