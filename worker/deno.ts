/**
 * The app on Deno: `Deno.serve` on loopback, tokens and push dedupe marks in Deno KV.
 *
 * `npx deno run -A --unstable-kv worker/deno.ts`
 *
 * Reads the worker's variables from the environment, plus `PORT` (default 8787),
 * `HOST` (default 127.0.0.1) and `DENO_KV_PATH` (default Deno's own location).
 *
 * @module
 */
import { type DenoKvLike, DenoKvStore } from "../mod.ts";
import { createApp } from "./app.ts";
import { backgroundContext } from "./background.ts";
import type { Env } from "./env.ts";

// Declared here so this file type-checks with Web and Workers types as well as Deno's.
interface DenoServer {
  readonly addr: { hostname: string; port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoLike {
  env: { toObject(): Record<string, string> };
  openKv(path?: string): Promise<DenoKvLike & { close(): void }>;
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
}

/** Options of {@link serveDeno}; each defaults to the environment. */
export interface DenoServeOptions {
  /** Variables; default `Deno.env.toObject()`. */
  env?: Record<string, string>;
  /** Default `PORT`, else 8787; 0 picks a free port. */
  port?: number;
  /** Default `HOST`, else 127.0.0.1. */
  hostname?: string;
  /** Deno KV path; default `DENO_KV_PATH`, else Deno's default. `":memory:"` for tests. */
  kvPath?: string;
}

/** A running server. */
export interface RunningServer {
  /** The origin it listens on, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** Stops the server and closes the KV database. */
  close(): Promise<void>;
}

/**
 * Starts the app on `Deno.serve`.
 *
 * @param options variables, port, hostname and KV path
 * @returns the running server
 * @example
 * ```ts ignore
 * const server = await serveDeno({ port: 0, kvPath: ":memory:" });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export async function serveDeno(options: DenoServeOptions = {}): Promise<RunningServer> {
  const deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
  const vars = options.env ?? deno.env.toObject();
  const kvPath = options.kvPath ?? vars.DENO_KV_PATH;
  const kv = await (kvPath === undefined || kvPath === "" ? deno.openKv() : deno.openKv(kvPath));
  const store = new DenoKvStore(kv);
  const app = createApp({ store: () => store });
  const env: Env = { ...vars };
  const server = deno.serve(
    {
      hostname: options.hostname ?? (vars.HOST || "127.0.0.1"),
      port: options.port ?? Number(vars.PORT || 8787),
      onListen: () => {},
    },
    (request) => app.fetch(request, env, backgroundContext()),
  );
  const url = `http://${server.addr.hostname}:${server.addr.port}`;
  return {
    url,
    async close() {
      await server.shutdown();
      kv.close();
    },
  };
}

if ((import.meta as { main?: boolean }).main) {
  const server = await serveDeno();
  console.log(`kefu-edge listening on ${server.url}`);
}
