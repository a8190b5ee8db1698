/**
 * `@kefu/edge/worker/durable-object`: the `KefuStore` Durable Object class, for a Cloudflare
 * worker that binds it (as `KEFU_STORE`). It holds each mini-program user's push claims, send
 * window and conversation, and is called over Workers RPC, so it extends workerd's
 * `DurableObject` from `cloudflare:workers`: only a Workers runtime can load this entry. The
 * rest of the worker (`createApp`, which also runs on Node, Deno and Bun) is
 * `@kefu/edge/worker`.
 *
 * @example Your worker's entry, with `KEFU_STORE` bound in wrangler.toml
 * ```ts ignore
 * import { createApp } from "@kefu/edge/worker";
 * export { KefuStore } from "@kefu/edge/worker/durable-object"; // a Workers runtime only
 * export default createApp();
 * ```
 *
 * @module
 */
export { KefuStore, type KefuStoreState } from "./store_object.ts";
/** The types of the agent inbox the object takes and answers with (its sockets, its sign-in counts). */
export type { AttemptResult, HubSocket, HubState } from "./inbox/mod.ts";
