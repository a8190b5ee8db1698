/**
 * What the Deno, Bun and Node servers (`worker/deno.ts`, `worker/bun.ts`, `worker/node.ts`)
 * share: one log line per request, a deadline for request bodies, the OpenAPI document, and one clear line
 * instead of a stack trace when the port is taken.
 *
 * @module
 */
import { ValidationError } from "../mod.ts";
import type { AppLogger, KefuApp } from "./types.ts";
import { backgroundContext } from "./background.ts";
import type { Env } from "./env.ts";
import { HttpError } from "./errors.ts";

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
 * Wraps a request handler so that `GET /openapi.json` (and `HEAD`) answers the package's OpenAPI
 * document, `public/openapi.json` (`npm run openapi` writes it), as on Workers, where the assets
 * layer serves that file; every other request goes to the handler. The file is read on the first
 * request for it.
 *
 * @param handler the server's handler
 * @returns the handler, serving the document
 * @example
 * ```ts
 * import { withOpenApi } from "./servers.ts";
 * const handler = withOpenApi(() => new Response("the app"));
 * const document = await (await handler(new Request("http://127.0.0.1/openapi.json"))).json();
 * console.log(document.openapi, await (await handler(new Request("http://127.0.0.1/health"))).text()); // "3.1.0" "the app"
 * ```
 */
export function withOpenApi(
  handler: (request: Request) => Response | Promise<Response>,
): (request: Request) => Promise<Response> {
  let text: Promise<string> | undefined;
  return async (request) => {
    if ((request.method !== "GET" && request.method !== "HEAD") || new URL(request.url).pathname !== "/openapi.json") {
      return await handler(request);
    }
    text ??= import("../public/openapi.json", { with: { type: "json" } }).then((m) => JSON.stringify(m.default));
    const body = await text;
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { "content-type": "application/json", "cache-control": "public, max-age=300" },
    });
  };
}

/** Default {@link BodyDeadlineOptions.bodyTimeoutMs}: 10 s. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Default {@link BodyDeadlineOptions.uploadTimeoutMs}: 60 s. */
export const DEFAULT_UPLOAD_TIMEOUT_MS = 60_000;

/** How long the Deno and Bun servers wait for a request's body. */
export interface BodyDeadlineOptions {
  /**
   * Time from the request's headers to the end of its body, in ms; default 10,000. A body
   * that has not arrived whole by then is answered 408 `request_timeout` (and the app's read
   * of it fails), so a client that stops sending cannot hold a request open.
   */
  bodyTimeoutMs?: number | undefined;
  /** The same for `POST /api/media` (uploads up to 10 MiB), in ms; default 60,000. */
  uploadTimeoutMs?: number | undefined;
}

/**
 * Wraps a request handler so that a request body must arrive whole within its deadline: when
 * it has not, the request is answered 408 JSON `{ "error": { "code": "request_timeout" } }`
 * with `Connection: close`, the handler's read of the body fails, and a `warn` line says so
 * (method, path, deadline). A request without a body, or whose body arrived in time, is the
 * handler's alone, however long the handler then takes.
 *
 * @param handler the server's handler
 * @param options the deadlines (ms) and the logger refusals go to
 * @returns the handler with the deadline
 * @throws {ValidationError} for a deadline that is not a positive number of ms
 * @example A body that stops arriving
 * ```ts
 * import { withBodyDeadline } from "./servers.ts";
 * const handler = withBodyDeadline(async (request) => new Response(await request.text()), {
 *   bodyTimeoutMs: 50,
 *   logger: { warn() {}, error() {} },
 * });
 * const stalled = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array(20)) }); // and no more
 * const init = { method: "POST", body: stalled, duplex: "half" } as RequestInit;
 * const response = await handler(new Request("http://127.0.0.1/api/messages", init));
 * console.log(response.status, (await response.json()).error.code); // 408 "request_timeout"
 * ```
 */
export function withBodyDeadline(
  handler: (request: Request) => Response | Promise<Response>,
  options: BodyDeadlineOptions & { logger: AppLogger },
): (request: Request) => Promise<Response> {
  const bodyMs = deadline("bodyTimeoutMs", options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS);
  const uploadMs = deadline("uploadTimeoutMs", options.uploadTimeoutMs, DEFAULT_UPLOAD_TIMEOUT_MS);
  return async (request) => {
    if (request.body === null) return await handler(request);
    const path = new URL(request.url).pathname;
    const ms = request.method === "POST" && path === "/api/media" ? uploadMs : bodyMs;
    const timed = timedBody(request.body, ms);
    // Init rather than `new Request(request, …)`: the original body is now read by the wrapper.
    const init = { method: request.method, headers: request.headers, body: timed.body, duplex: "half" };
    try {
      const outcome = await Promise.race([handler(new Request(request.url, init as RequestInit)), timed.expired]);
      if (outcome instanceof Response) return outcome;
      options.logger.warn(
        JSON.stringify({ event: "kefu-edge.request_timeout", method: request.method, path, deadlineMs: ms }),
      );
      const message = `The request body did not arrive within ${ms} ms`;
      return new HttpError(408, "request_timeout", message, {}, { connection: "close" }).toResponse();
    } finally {
      timed.stop();
    }
  };
}

function deadline(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError(name, "must be a positive number of milliseconds");
  }
  return value;
}

// The body passed through, with a deadline for its end: when it passes first, the copy errors
// (so the reader learns at once) and `expired` resolves.
function timedBody(source: ReadableStream<Uint8Array>, ms: number): {
  body: ReadableStream<Uint8Array>;
  expired: Promise<"expired">;
  stop(): void;
} {
  const reader = source.getReader();
  let ended = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expire!: () => void;
  const expired = new Promise<"expired">((resolve) => (expire = () => resolve("expired")));
  const stop = () => {
    ended = true;
    clearTimeout(timer);
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setTimeout(() => {
        if (ended) return;
        ended = true;
        controller.error(new Error("Request body did not arrive in time"));
        reader.cancel().catch(() => {});
        expire();
      }, ms);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (ended) return; // the deadline passed while waiting: the copy has errored already
      if (done) {
        stop();
        controller.close();
      } else {
        controller.enqueue(value);
      }
    },
    cancel(reason) {
      stop();
      return reader.cancel(reason);
    },
  });
  return { body, expired, stop };
}

/**
 * What the Deno, Bun and Node servers take from their options and the environment: the address
 * (`HOST`, default 127.0.0.1; `PORT`, default 8787) and the request handler, which runs the
 * app with a background context, gives request bodies a deadline ({@link withBodyDeadline}),
 * serves the OpenAPI document ({@link withOpenApi}) and logs one line per request.
 *
 * @param app the app
 * @param env the bindings it runs with
 * @param vars the process environment
 * @param options explicit `hostname` and `port`, the body deadlines, and the app's logger
 * @returns `hostname`, `port` and `handler`
 * @example
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
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
  options: BodyDeadlineOptions & {
    hostname?: string | undefined;
    port?: number | undefined;
    app?: { logger?: ServerLogger } | undefined;
  },
): { hostname: string; port: number; handler: (request: Request) => Promise<Response> } {
  const logger = options.app?.logger ?? console;
  const run = (request: Request) => app.fetch(request, env, backgroundContext());
  return {
    hostname: options.hostname ?? (vars.HOST || "127.0.0.1"),
    port: options.port ?? Number(vars.PORT || 8787),
    handler: logRequests(withOpenApi(withBodyDeadline(run, { ...options, logger })), logger),
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
