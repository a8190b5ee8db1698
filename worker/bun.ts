/**
 * The app on Bun: `Bun.serve` on loopback, tokens and push dedupe marks in memory
 * (one process; use a shared store through `createApp({ store })` to run several).
 *
 * `npx bun worker/bun.ts`
 *
 * Reads the worker's variables from the environment, plus `PORT` (default 8787) and
 * `HOST` (default 127.0.0.1). Writes one line per request (method, path, status, ms) to the
 * logger's `info`; a port already in use ends it with one line saying so and exit code 1.
 *
 * @module
 */
import { MemoryStore } from "../mod.ts";
import { type AppOptions, createApp } from "./app.ts";
import type { Env } from "./env.ts";
import type { RunningServer } from "./deno.ts";
import { type BodyDeadlineOptions, listenError, runMain, type ServerLogger, serverSettings } from "./servers.ts";

// Declared here so this file type-checks with Web and Workers types as well as Bun's.
interface BunLike {
  env: Record<string, string | undefined>;
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout?: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): { hostname?: string; port?: number; stop(closeActiveConnections?: boolean): unknown };
}

/**
 * Options of {@link serveBun}; each defaults to the environment. `bodyTimeoutMs` and
 * `uploadTimeoutMs` bound the wait for a request's body (408 after 10 s, 60 s for uploads).
 */
export interface BunServeOptions extends BodyDeadlineOptions {
  /** Variables; default `Bun.env`. */
  env?: Record<string, string | undefined>;
  /** Default `PORT`, else 8787; 0 picks a free port. */
  port?: number;
  /** Default `HOST`, else 127.0.0.1. */
  hostname?: string;
  /**
   * Passed to `createApp` (your push handler, logger...). The logger's `info`, when it has one,
   * gets one line per request; default `console`.
   */
  app?: Omit<AppOptions, "store" | "logger"> & { logger?: ServerLogger };
}

/**
 * Starts the app on `Bun.serve`.
 *
 * @param options variables, port and hostname
 * @returns the running server
 * @example
 * ```ts ignore
 * const server = serveBun({ port: 0 });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export function serveBun(options: BunServeOptions = {}): RunningServer {
  const bun = (globalThis as unknown as { Bun: BunLike }).Bun;
  const vars = options.env ?? bun.env;
  const store = new MemoryStore();
  const app = createApp({ ...options.app, store: () => store });
  const env: Env = Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)) as Env;
  const { hostname, port, handler } = serverSettings(app, env, vars, options);
  let server: ReturnType<BunLike["serve"]>;
  try {
    // Media downloads may stream for a while; Bun's default idle timeout is 10 s.
    server = bun.serve({ hostname, port, idleTimeout: 120, fetch: handler });
  } catch (err) {
    throw listenError(err, hostname, port);
  }
  return {
    url: `http://${hostname}:${server.port}`,
    async close() {
      await server.stop(true);
    },
  };
}

if ((import.meta as { main?: boolean }).main) {
  await runMain(() => Promise.resolve(console.log(`kefu-edge listening on ${serveBun().url}`)), (line) => {
    console.error(line);
    (globalThis as unknown as { process: { exit(code: number): never } }).process.exit(1);
  });
}
