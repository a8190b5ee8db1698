/**
 * The app on Node: Hono's Node adapter (`@hono/node-server`) on loopback, tokens and push
 * dedupe marks in memory (one process; use a shared store through `createApp({ store })` to
 * run several).
 *
 * In a clone of kefu-edge: `node --import tsx worker/node.ts`. From the installed package:
 * `node node_modules/kefu-edge/dist/worker/node.js`, or `serveNode()` from
 * `kefu-edge/worker/node` in your own entry.
 *
 * Reads the worker's variables from the environment, plus `PORT` (default 8787) and
 * `HOST` (default 127.0.0.1). Writes one line per request (method, path, status, ms) to the
 * logger's `info`; a port already in use ends it with one line saying so and exit code 1.
 *
 * @module
 */
import { serve } from "@hono/node-server";
import { MemoryStore } from "../mod.ts";
import { type AppOptions, createApp } from "./app.ts";
import type { Env } from "./env.ts";
import {
  type BodyDeadlineOptions,
  listenError,
  runMain,
  type RunningServer,
  type ServerLogger,
  serverSettings,
} from "./servers.ts";

// Declared here so this file type-checks with Web and Workers types as well as Node's.
interface ProcessLike {
  env: Record<string, string | undefined>;
  argv: string[];
  exit(code: number): never;
}

interface ListeningServer {
  once(event: "listening", listener: () => void): unknown;
  once(event: "error", listener: (err: unknown) => void): unknown;
  address(): unknown;
  closeAllConnections?(): void;
  close(callback: () => void): unknown;
}

/**
 * Options of {@link serveNode}; each defaults to the environment. `bodyTimeoutMs` and
 * `uploadTimeoutMs` bound the wait for a request's body (408 after 10 s, 60 s for uploads).
 */
export interface NodeServeOptions extends BodyDeadlineOptions {
  /** Variables; default `process.env`. */
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
 * Starts the app on Node's HTTP server, through `@hono/node-server`.
 *
 * @param options variables, port and hostname
 * @returns the running server, once it listens
 * @example
 * ```ts ignore
 * import { serveNode } from "kefu-edge/worker/node";
 * const server = await serveNode({ port: 0, env: { WECHAT_APPID: "wx1234567890abcdef" } });
 * console.log((await fetch(`${server.url}/health`)).status); // 200
 * await server.close();
 * ```
 */
export async function serveNode(options: NodeServeOptions = {}): Promise<RunningServer> {
  const vars = options.env ?? (globalThis as unknown as { process: ProcessLike }).process.env;
  const store = new MemoryStore();
  const app = createApp({ ...options.app, store: () => store });
  const env: Env = Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)) as Env;
  const { hostname, port, handler } = serverSettings(app, env, vars, options);
  // Node's own Request and Response stay in place: the SDK and the app use them.
  const server = serve({ fetch: handler, hostname, port, overrideGlobalObjects: false }) as unknown as ListeningServer;
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", (err) => reject(listenError(err, hostname, port)));
  });
  const address = server.address() as { port?: number } | null;
  return {
    url: `http://${hostname}:${address?.port ?? port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Whether this module is the program Node was started with (`node worker/node.ts` or `dist/worker/node.js`). */
async function isMain(process: ProcessLike): Promise<boolean> {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  const here = decodeURIComponent(new URL((import.meta as { url: string }).url).pathname);
  if (here === entry) return true;
  // Started through a symlink (a linked package): the same file under another path.
  const fsModule = "node:fs";
  const { realpathSync } = await import(fsModule) as { realpathSync(path: string): string };
  try {
    return realpathSync(entry) === realpathSync(here);
  } catch {
    return false;
  }
}

const nodeProcess = (globalThis as unknown as { process?: ProcessLike }).process;
if (nodeProcess !== undefined && await isMain(nodeProcess)) {
  await runMain(async () => console.log(`kefu-edge listening on ${(await serveNode()).url}`), (line) => {
    console.error(line);
    nodeProcess.exit(1);
  });
}
