/**
 * The types the worker's files share: the app, its Hono environment, its logger, and the
 * OpenAPI document it serves. Here rather than in `app.ts`, so the routes and the servers can
 * name the app's types without importing the file that imports them.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Logger } from "../mod.ts";
import type { Env } from "./env.ts";
import type { QueueBatchLike } from "./queue_types.ts";

/** Where the app writes warnings and errors; never given a token or secret. */
export interface AppLogger extends Logger {
  /** Something went wrong but the answer was not affected (a failing store, a failed welcome message). */
  warn(message: string): void;
  /** A request was answered with a 5xx. */
  error(message: string): void;
}

/**
 * The Hono environment of the app: the worker's bindings, and the agent signed in to the inbox
 * (`agent`, their name) on the inbox's routes.
 */
export type AppEnv = { Bindings: Env; Variables: { agent?: string } };

/** The app: a Hono app (`fetch`) that is also the worker's `queue` consumer. */
export type KefuApp = Hono<AppEnv> & {
  /**
   * The Workers `queue` handler: runs queued pushes' handlers exactly once, with retries, and
   * keeps dead letters.
   */
  queue(batch: QueueBatchLike, env: Env, ctx?: unknown): Promise<void>;
};

/** An OpenAPI document, as JSON. */
export type OpenApiDocument = { readonly openapi: "3.1.0" } & Readonly<Record<string, unknown>>;
