/**
 * What the Deno, Bun and Node servers (`worker/deno.ts`, `worker/bun.ts`, `worker/node.ts`)
 * share: one log line per request, and one clear line instead of a stack trace when the port
 * is taken.
 *
 * @module
 */
import type { AppLogger, KefuApp } from "./app.ts";
import { backgroundContext } from "./background.ts";
import type { Env } from "./env.ts";

/** A running server (the Node server's; `worker/deno.ts` declares the same for Deno and Bun). */
export interface RunningServer {
  /** The origin it listens on, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/** The app's logger, with the level request lines go to. */
export interface ServerLogger extends AppLogger {
  /** One line per request: `kefu-edge: GET /health 200 3ms`. Without it, no request is logged. */
  info?(message: string): void;
}

/**
 * Wraps a request handler so that each request writes one line, once its answer is ready:
 * method, path, status and milliseconds. Never the query string: WeChat's pushes carry their
 * signatures there.
 *
 * @param handler the server's handler
 * @param logger where the lines go (`info`)
 * @returns the same handler, logging
 * @example
 * ```ts
 * import { logRequests } from "./servers.ts";
 * const lines: string[] = [];
 * const handler = logRequests(() => new Response("ok"), { info: (l) => lines.push(l), warn() {}, error() {} });
 * await handler(new Request("http://127.0.0.1/wechat/callback?signature=abc"));
 * console.log(lines[0]!.startsWith("kefu-edge: GET /wechat/callback 200 ")); // true
 * ```
 */
export function logRequests(
  handler: (request: Request) => Response | Promise<Response>,
  logger: ServerLogger,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const started = performance.now();
    const line = (status: number | string) =>
      `kefu-edge: ${request.method} ${new URL(request.url).pathname} ${status} ${
        Math.round(performance.now() - started)
      }ms`;
    try {
      const response = await handler(request);
      logger.info?.(line(response.status));
      return response;
    } catch (err) {
      logger.info?.(line("failed"));
      throw err;
    }
  };
}

/**
 * What the Deno and Bun servers take from their options and the environment: the address
 * (`HOST`, default 127.0.0.1; `PORT`, default 8787) and the request handler, which runs the
 * app with a background context and logs one line per request.
 *
 * @param app the app
 * @param env the bindings it runs with
 * @param vars the process environment
 * @param options explicit `hostname` and `port`, and the app's logger
 * @returns `hostname`, `port` and `handler`
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { serverSettings } from "./servers.ts";
 * const lines: string[] = [];
 * const logger = { info: (line: string) => void lines.push(line), warn() {}, error() {} };
 * const { hostname, port, handler } = serverSettings(createApp(), {}, { PORT: "9000" }, { app: { logger } });
 * await handler(new Request("http://127.0.0.1:9000/health"));
 * console.log(hostname, port, lines[0]!.startsWith("kefu-edge: GET /health 200 ")); // "127.0.0.1" 9000 true
 * ```
 */
export function serverSettings(
  app: KefuApp,
  env: Env,
  vars: Record<string, string | undefined>,
  options: { hostname?: string | undefined; port?: number | undefined; app?: { logger?: ServerLogger } | undefined },
): { hostname: string; port: number; handler: (request: Request) => Promise<Response> } {
  return {
    hostname: options.hostname ?? (vars.HOST || "127.0.0.1"),
    port: options.port ?? Number(vars.PORT || 8787),
    handler: logRequests((request) => app.fetch(request, env, backgroundContext()), options.app?.logger ?? console),
  };
}

/**
 * The error a server throws when it cannot listen: for a port in use, one sentence that says
 * what to do; anything else as it came.
 *
 * @param err what the runtime threw
 * @param hostname the address asked for
 * @param port the port asked for
 * @returns the error to throw
 * @example
 * ```ts
 * import { listenError } from "./servers.ts";
 * const err = listenError(Object.assign(new Error("in use"), { code: "EADDRINUSE" }), "127.0.0.1", 8787);
 * console.log((err as Error).message); // "Cannot listen on 127.0.0.1:8787: the port is in use (stop the other server or set PORT)"
 * ```
 */
export function listenError(err: unknown, hostname: string, port: number): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== "EADDRINUSE") return err;
  return new Error(`Cannot listen on ${hostname}:${port}: the port is in use (stop the other server or set PORT)`, {
    cause: err,
  });
}

/**
 * Runs a server's `main`: a failure to start prints one line (`kefu-edge: <message>`, no stack)
 * and sets a non-zero exit code.
 *
 * @param start starts the server and prints where it listens
 * @param fail prints the line and ends the process with a non-zero code
 * @example A server that cannot start
 * ```ts
 * import { runMain } from "./servers.ts";
 * // worker/deno.ts passes a start that serves and prints the URL, and a fail that prints and exits 1.
 * const lines: string[] = [];
 * await runMain(() => Promise.reject(new Error("Cannot listen on 127.0.0.1:8787: the port is in use")), (line) => {
 *   lines.push(line);
 * });
 * console.log(lines); // ["kefu-edge: Cannot listen on 127.0.0.1:8787: the port is in use"]
 * ```
 */
export async function runMain(start: () => Promise<void>, fail: (line: string) => void): Promise<void> {
  try {
    await start();
  } catch (err) {
    fail(`kefu-edge: ${err instanceof Error ? err.message : String(err)}`);
  }
}
