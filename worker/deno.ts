/**
 * The app on Deno: `Deno.serve` on loopback, tokens, push claims and dedupe marks in Deno
 * KV (atomic, so processes sharing one database handle each message once), conversations in
 * the same database (a `DenoKvConversationStore`), and durable push
 * handling on Deno KV's queue: a verified push is enqueued and answered at once, the
 * handler runs from `listenQueue` with retries and backoff, and a message that never
 * succeeds is logged and kept in Deno KV under `["kefu-edge-dead-letters", <deliveryId>]`
 * for `/api/dead-letters`, as on Workers (Deno KV's own `keysIfUndelivered`,
 * `["kefu-edge-dead-letter", <deliveryId>]`, catches a job whose delivery itself keeps failing).
 *
 * `npx deno run -A --unstable-kv worker/deno.ts`
 *
 * Reads the worker's variables from the environment, plus `PORT` (default 8787),
 * `HOST` (default 127.0.0.1), `DENO_KV_PATH` (default Deno's own location) and
 * `KEFU_QUEUE` (`off` handles pushes while WeChat waits). Writes one line per request
 * (method, path, status, ms) to the logger's `info`; a port already in use ends it with one
 * line saying so and exit code 1.
 *
 * @module
 */
import { type DenoKvConversationLike, DenoKvConversationStore, DenoKvStore, type PushJob } from "../mod.ts";
import { type AppOptions, createApp } from "./app.ts";
import { QUEUE_MAX_RETRIES, retryDelaySeconds } from "./push_route.ts";
import type { QueueLike } from "./queue_types.ts";
import { denoKvDeadLetters, type DenoKvListLike } from "./dead_letters/mod.ts";
import { type Env, optionalVar } from "./env.ts";
import { type BodyDeadlineOptions, listenError, runMain, type ServerLogger, serverSettings } from "./servers.ts";

// Declared here so this file type-checks with Web and Workers types as well as Deno's.
interface DenoServer {
  readonly addr: { hostname: string; port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoKvQueue {
  enqueue(
    value: unknown,
    options?: { delay?: number; keysIfUndelivered?: readonly (readonly string[])[] },
  ): Promise<unknown>;
  listenQueue(handler: (value: unknown) => Promise<void> | void): Promise<void>;
}
interface DenoLike {
  env: { toObject(): Record<string, string> };
  exit(code: number): never;
  openKv(path?: string): Promise<DenoKvConversationLike & DenoKvListLike & DenoKvQueue & { close(): void }>;
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
}

/**
 * Options of {@link serveDeno}; each defaults to the environment. `bodyTimeoutMs` and
 * `uploadTimeoutMs` bound the wait for a request's body (408 after 10 s, 60 s for uploads).
 * `Deno.serve` has no deadline for request headers: run the server behind a proxy that has
 * one (nginx `client_header_timeout`, Caddy `timeouts read_header`) where clients are not
 * trusted.
 */
export interface DenoServeOptions extends BodyDeadlineOptions {
  /** Variables; default `Deno.env.toObject()`. */
  env?: Record<string, string>;
  /** Default `PORT`, else 8787; 0 picks a free port. */
  port?: number;
  /** Default `HOST`, else 127.0.0.1. */
  hostname?: string;
  /** Deno KV path; default `DENO_KV_PATH`, else Deno's default. `":memory:"` for tests. */
  kvPath?: string;
  /** Handle pushes through Deno KV's queue; default on (`KEFU_QUEUE=off` turns it off). */
  queue?: boolean;
  /**
   * Delays before each retry of a queued push, in ms (its length is the number of retries).
   * Default as on Workers: 100 retries, a failed one after 5 s doubling to 20 minutes (about 31
   * hours in all), a busy one when the other consumer's claim runs out.
   */
  backoffSchedule?: number[];
  /**
   * Passed to `createApp` (your push handler, logger...). The logger's `info`, when it has one,
   * gets one line per request; default `console`.
   */
  app?: Omit<AppOptions, "store" | "queue" | "conversations" | "logger"> & { logger?: ServerLogger };
}

/** Default {@link DenoServeOptions.backoffSchedule}: as the Workers consumer retries. */
export const DENO_BACKOFF_SCHEDULE_MS: readonly number[] = Array.from(
  { length: QUEUE_MAX_RETRIES },
  (_, i) => retryDelaySeconds(i + 1) * 1000,
);

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
  // A malformed HISTORY_DAYS stops the server before it starts (ConfigError naming it).
  const historyDays = optionalVar(vars as Env, "HISTORY_DAYS");
  const kvPath = options.kvPath ?? vars.DENO_KV_PATH;
  const kv = await (kvPath === undefined || kvPath === "" ? deno.openKv() : deno.openKv(kvPath));
  const store = new DenoKvStore(kv);
  // Conversations in the same database, under their own keys: each operation one atomic commit.
  const conversations = new DenoKvConversationStore(kv, { historyDays });
  const queued = options.queue ?? vars.KEFU_QUEUE !== "off";
  const backoffSchedule = options.backoffSchedule ?? [...DENO_BACKOFF_SCHEDULE_MS];
  // A queued push travels with its attempt count; a failed attempt is enqueued again with
  // the next delay, and one that used up the schedule goes to the app's dead-letter path.
  const keysIfUndelivered = (job: unknown) => [["kefu-edge-dead-letter", String((job as PushJob).deliveryId)]];
  const queue: QueueLike = {
    send: (job) => kv.enqueue({ job, attempts: 0 }, { keysIfUndelivered: keysIfUndelivered(job) }),
  };
  const deadLetters = denoKvDeadLetters(kv);
  const app = createApp({
    ...options.app,
    store: () => store,
    conversations: () => conversations,
    queue: () => (queued ? queue : undefined),
    deadLetters: () => deadLetters,
  });
  const env: Env = { ...vars };
  const consume = async (value: unknown): Promise<void> => {
    const { job, attempts: before } = value as { job: unknown; attempts: number };
    const attempts = before + 1;
    let retry = false;
    let retryAfterSeconds: number | undefined;
    const batchOf = (queueName: string) => ({
      queue: queueName,
      messages: [{
        id: String((job as Partial<PushJob> | null)?.deliveryId ?? "job"),
        body: job,
        attempts,
        ack() {},
        retry(options?: { delaySeconds?: number }) {
          retry = true;
          retryAfterSeconds = options?.delaySeconds;
        },
      }],
    });
    await app.queue(batchOf("kefu-edge-pushes"), env);
    if (!retry) return;
    if (attempts > backoffSchedule.length) {
      retry = false;
      await app.queue(batchOf("kefu-edge-pushes-dlq"), env);
      if (!retry) return; // logged and kept; otherwise try again later rather than lose it
    }
    // The app's delay (a busy job: when the other consumer's claim runs out; a failure: its
    // backoff), unless a schedule was given.
    const delay = options.backoffSchedule === undefined && retryAfterSeconds !== undefined
      ? retryAfterSeconds * 1000
      : backoffSchedule[Math.min(attempts, backoffSchedule.length) - 1] ?? 0;
    await kv.enqueue({ job, attempts }, { delay, keysIfUndelivered: keysIfUndelivered(job) });
  };
  const { hostname, port, handler } = serverSettings(app, env, vars, options);
  let server: DenoServer;
  try {
    server = deno.serve({ hostname, port, onListen: () => {} }, handler);
  } catch (err) {
    kv.close();
    throw listenError(err, hostname, port);
  }
  const listening = queued ? kv.listenQueue(consume) : Promise.resolve();
  const url = `http://${server.addr.hostname}:${server.addr.port}`;
  return {
    url,
    async close() {
      await server.shutdown();
      kv.close();
      await listening.catch(() => {});
    },
  };
}

if ((import.meta as { main?: boolean }).main) {
  await runMain(async () => console.log(`kefu-edge listening on ${(await serveDeno()).url}`), (line) => {
    console.error(line);
    (globalThis as unknown as { Deno: DenoLike }).Deno.exit(1);
  });
}
