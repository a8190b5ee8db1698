/**
 * Work that runs after the answer has been sent: `executionCtx.waitUntil` on
 * Workers, and a small stand-in for runtimes without one (Deno, Bun).
 *
 * @module
 */

import type { ExecutionContext } from "hono";

/** The part of an execution context the app uses. */
export interface WaitUntil {
  /** Keeps the isolate alive until `promise` settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * An execution context for `app.fetch(request, env, ctx)` on servers without one
 * (Deno, Bun): background promises run on, and their failures are swallowed
 * (the tasks log their own errors).
 *
 * @returns an object with `waitUntil` and `passThroughOnException`
 * @example
 * ```ts
 * import { backgroundContext, createApp } from "@kefu/edge/worker";
 * const app = createApp();
 * // Bun.serve({ fetch: (request) => app.fetch(request, env, backgroundContext()) });
 * const res = await app.fetch(new Request("http://127.0.0.1/health"), {}, backgroundContext());
 * console.log(res.status); // 200
 * ```
 */
export function backgroundContext(): WaitUntil & { passThroughOnException(): void; props: Record<string, never> } {
  return {
    waitUntil(promise: Promise<unknown>): void {
      promise.catch(() => {});
    },
    passThroughOnException(): void {},
    props: {},
  };
}

/**
 * Runs `task` after the current answer has been handed back: it starts on a later
 * macrotask, so nothing it does can delay or precede the response.
 *
 * @param ctx the execution context (or `undefined` outside Workers)
 * @param task the work
 * @example Work after the answer
 * ```ts
 * import { afterResponse } from "./background.ts";
 * const order: string[] = [];
 * const pending: Promise<unknown>[] = [];
 * // In a route: afterResponse(c.executionCtx, () => mp.customerServiceMessage.send(openId, "text", { content }));
 * afterResponse({ waitUntil: (promise) => void pending.push(promise) }, async () => void order.push("task"));
 * order.push("answer");
 * await Promise.all(pending);
 * console.log(order); // ["answer", "task"]
 * ```
 */
export function afterResponse(ctx: WaitUntil | undefined, task: () => Promise<unknown>): void {
  const run = new Promise<void>((resolve) => setTimeout(resolve, 0)).then(task);
  if (ctx === undefined) run.catch(() => {});
  else ctx.waitUntil(run);
}

/**
 * The execution context of a request, or `undefined` where the runtime gave none (plain
 * Deno and Bun servers, tests): Hono's `c.executionCtx` throws there instead.
 *
 * @param c the request context
 * @returns its execution context, or `undefined`
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { executionContext } from "./background.ts";
 * const app = new Hono().get("/", (c) => c.text(String(executionContext(c) === undefined)));
 * console.log(await (await app.request("/")).text()); // "true"
 * ```
 */
export function executionContext(c: { readonly executionCtx: ExecutionContext }): ExecutionContext | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}
