// The Deno server (worker/deno.ts) on Deno KV: how many Deno KV operations a push costs, and a
// history page. The server runs as shipped (serveDeno: conversations and the push queue in one
// Deno KV database on a file, no handler configured), and every operation on the database is
// counted at the `Deno.Kv` object (get, getMany, list, set, delete, atomic commit, enqueue),
// sorted by what it was made for, through an AsyncLocalStorage context set around each request
// and each queue delivery:
// - "answer": while the request from WeChat is being answered;
// - "after": by the request's work that goes on after its answer;
// - "consumer": in a delivery of the Deno KV queue (the push handler's run).
// Pushes are sent one at a time; in queue mode each waits for its delivery to end.
// A history page's operations are counted as round trips too: operations started while
// another of the same request is in flight share its round trip.
//
// Run: `npm run bench` (it runs this file with Deno), or alone:
// `npx deno run -A --unstable-kv test/bench/deno_server.ts` (`--json` prints the rows).
import { AsyncLocalStorage } from "node:async_hooks";
import { serveDeno } from "../../worker/deno.ts";
import { createEmulator } from "../../src/testing/mod.ts";
import { AES_KEY, APP_ID, OPEN_ID, printTable, type Row, sized, TEXT, TOKEN } from "./_lib.ts";

type Phase = "answer" | "after" | "consumer";

interface DenoKvish {
  [name: string]: unknown;
  atomic(): { commit(): Promise<unknown> } & Record<string, unknown>;
  list(...args: unknown[]): AsyncIterable<unknown>;
  listenQueue(handler: (value: unknown) => Promise<void> | void): Promise<void>;
}
// Declared here, as worker/deno.ts does, so the bench folder type-checks with Node's types too.
const Deno = (globalThis as unknown as {
  Deno: {
    args: string[];
    openKv(path?: string): Promise<DenoKvish>;
    serve(options: unknown, handler: (request: Request) => Promise<Response>): unknown;
    makeTempDir(): Promise<string>;
    remove(path: string, options: { recursive: boolean }): Promise<void>;
  };
}).Deno;

const API_KEY = "bench-api-key";
/** Counted pushes per mode (after one uncounted). */
const PUSHES = sized(20, 5);
const HISTORY_PAGE = 50;

/** The context of a request or a queue delivery. */
interface Context {
  phase: Phase;
  /** Operations of this context in flight. */
  inFlight: number;
  /** Round trips: operations started while none of this context's was in flight. */
  trips: number;
}

const context = new AsyncLocalStorage<Context>();
const ops: Record<Phase, string[]> = { answer: [], after: [], consumer: [] };
/** Operations made outside any request or delivery (startup, the queue's own machinery). */
const outside: string[] = [];
let deliveriesActive = 0;
let deliveriesDone = 0;

/** Counts one operation of `name` for the context it is made in, for as long as `run` runs. */
async function counted<T>(name: string, run: () => Promise<T>): Promise<T> {
  const ctx = context.getStore();
  if (ctx === undefined) outside.push(name);
  else {
    ops[ctx.phase].push(name);
    if (ctx.inFlight++ === 0) ctx.trips++;
  }
  try {
    return await run();
  } finally {
    if (ctx !== undefined) ctx.inFlight--;
  }
}

/** A Deno.Kv whose operations are counted. */
function countingKv(kv: DenoKvish): DenoKvish {
  return new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (typeof value !== "function" || typeof name !== "string") return value;
      switch (name) {
        case "atomic":
          return () => {
            const op = target.atomic();
            const proxy: unknown = new Proxy(op, {
              get(t, n) {
                const v = Reflect.get(t, n, t);
                if (n === "commit") return () => counted("commit", () => t.commit());
                if (typeof v !== "function") return v;
                // check/set/delete/... return the operation itself: keep returning the proxy.
                return (...args: unknown[]) => {
                  const r = (v as (...a: unknown[]) => unknown).apply(t, args);
                  return r === t ? proxy : r;
                };
              },
            });
            return proxy;
          };
        case "list":
          return (...args: unknown[]) => {
            const iterable = target.list(...args);
            return {
              [Symbol.asyncIterator]() {
                const ctx = context.getStore();
                let started = false;
                let ended = false;
                const it = iterable[Symbol.asyncIterator]();
                const end = () => {
                  if (!ended && started && ctx !== undefined) ctx.inFlight--;
                  ended = true;
                };
                return {
                  async next() {
                    if (!started) {
                      started = true;
                      if (ctx === undefined) outside.push("list");
                      else {
                        ops[ctx.phase].push("list");
                        if (ctx.inFlight++ === 0) ctx.trips++;
                      }
                    }
                    const r = await it.next();
                    if (r.done) end();
                    return r;
                  },
                  async return(value?: unknown) {
                    end();
                    return await it.return?.(value) ?? { done: true, value };
                  },
                };
              },
            };
          };
        case "listenQueue":
          return (handler: (value: unknown) => Promise<void> | void) =>
            target.listenQueue(async (value) => {
              deliveriesActive++;
              try {
                await context.run({ phase: "consumer", inFlight: 0, trips: 0 }, () => handler(value));
              } finally {
                deliveriesActive--;
                deliveriesDone++;
              }
            });
        case "close":
          return () => (value as () => void).call(target);
        default:
          return (...args: unknown[]) =>
            counted(name, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      }
    },
  });
}

// The server opens its database and serves through these: each request runs in its own context.
// (Deno's own properties are configurable getters: replaced by defining them again.)
const openKv = Deno.openKv.bind(Deno);
Object.defineProperty(Deno, "openKv", { value: async (path?: string) => countingKv(await openKv(path)) });
const serve = Deno.serve.bind(Deno);
let lastRequest: Context | undefined;
const countingServe: typeof Deno.serve = (options, handler) =>
  serve(options, (request: Request) => {
    const ctx: Context = { phase: "answer", inFlight: 0, trips: 0 };
    lastRequest = ctx;
    return context.run(ctx, async () => {
      try {
        return await handler(request);
      } finally {
        ctx.phase = "after";
      }
    });
  });
Object.defineProperty(Deno, "serve", { value: countingServe });

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Deno server: ${what} did not happen in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

interface PerPush {
  answer: number;
  after: number;
  consumer: number;
  /** The last push's operations, per phase. */
  last: Record<Phase, string[]>;
}

/** Sends pushes one at a time to a server started with `queue`; operations per push. */
async function perPush(
  queue: boolean,
  dir: string,
): Promise<{ perPush: PerPush; history?: { ops: string[]; trips: number } }> {
  const server = await serveDeno({
    env: {
      WECHAT_APPID: APP_ID,
      WECHAT_SECRET: "bench-secret-not-used",
      WECHAT_TOKEN: TOKEN,
      WECHAT_AES_KEY: AES_KEY,
      API_KEY,
      TRANSFER_TO_KF: "off",
    },
    port: 0,
    hostname: "127.0.0.1",
    kvPath: `${dir}/${queue ? "queue" : "sync"}.sqlite3`,
    queue,
    app: { logger: { info() {}, warn: console.warn, error: console.error } },
  });
  try {
    const wechat = createEmulator({
      appId: APP_ID,
      appSecret: "bench-secret-not-used",
      push: { token: TOKEN, encodingAESKey: AES_KEY, format: "xml" },
    });
    const user = wechat.user(OPEN_ID);
    const count = queue ? PUSHES : Math.max(PUSHES, HISTORY_PAGE);
    const totals: Record<Phase, number> = { answer: 0, after: 0, consumer: 0 };
    let last: Record<Phase, string[]> = { answer: [], after: [], consumer: [] };
    for (let i = 0; i <= count; i++) {
      const before = { answer: ops.answer.length, after: ops.after.length, consumer: ops.consumer.length };
      const request = (await user.says(`${TEXT} ${i}`)).request();
      const url = new URL(request.url);
      const res = await fetch(server.url + url.pathname + url.search, {
        method: "POST",
        headers: { "content-type": "text/xml" },
        body: await request.text(),
      });
      const text = await res.text();
      if (res.status !== 200 || text !== "success") throw new Error(`Deno server answered ${res.status} ${text}`);
      const ctx = lastRequest!;
      await until(() => ctx.inFlight === 0, "the request's work settling");
      if (queue) await until(() => deliveriesDone >= i + 1 && deliveriesActive === 0, "the queue delivery");
      // Whatever the request still does after its answer (none is expected): a moment for it.
      await new Promise((resolve) => setTimeout(resolve, 5));
      last = {
        answer: ops.answer.slice(before.answer),
        after: ops.after.slice(before.after),
        consumer: ops.consumer.slice(before.consumer),
      };
      if (i === 0) continue; // the first push opens the database's queue and caches: not counted
      for (const phase of ["answer", "after", "consumer"] as const) totals[phase] += last[phase].length;
    }
    const result = {
      perPush: {
        answer: totals.answer / count,
        after: totals.after / count,
        consumer: totals.consumer / count,
        last,
      },
    };
    if (queue) return result;
    const before = ops.answer.length;
    const res = await fetch(`${server.url}/api/users/${OPEN_ID}/messages?limit=${HISTORY_PAGE}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const page = await res.json() as { entries?: unknown[] };
    if (res.status !== 200 || page.entries?.length !== HISTORY_PAGE) {
      throw new Error(`history page: ${res.status} with ${page.entries?.length} entries, not ${HISTORY_PAGE}`);
    }
    return { ...result, history: { ops: ops.answer.slice(before), trips: lastRequest!.trips } };
  } finally {
    await server.close();
  }
}

/** Runs the counts and returns their rows. */
export async function run(): Promise<Row[]> {
  const dir = await Deno.makeTempDir();
  try {
    const queued = await perPush(true, dir);
    const sync = await perPush(false, dir);
    const list = (names: string[]) => names.length === 0 ? "none" : names.join(", ");
    const q = queued.perPush;
    const s = sync.perPush;
    const history = sync.history!;
    return [
      {
        bench: "calls",
        metric: `Deno KV operations per push, Deno server (queue, as shipped), before WeChat is answered (${
          list(q.last.answer)
        })`,
        value: q.answer,
        unit: "ops",
      },
      {
        bench: "calls",
        metric: `Deno KV operations per push, Deno server (queue, as shipped), after the answer (${
          list([...q.last.after, ...q.last.consumer])
        })`,
        value: q.after + q.consumer,
        unit: "ops",
      },
      {
        bench: "calls",
        metric: `Deno KV operations per push, Deno server with KEFU_QUEUE=off (${
          list([...s.last.answer, ...s.last.after])
        })`,
        value: s.answer + s.after,
        unit: "ops",
      },
      {
        bench: "calls",
        metric: `Deno KV round trips of GET /api/users/:openId/messages?limit=${HISTORY_PAGE} (${
          list(history.ops)
        }, started together)`,
        value: history.trips,
        unit: "round trips",
        target: "1",
        met: history.trips === 1,
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if ((import.meta as { main?: boolean }).main) {
  const rows = await run();
  // `--json`: machine-readable rows, for `npm run bench`.
  if (Deno.args.includes("--json")) console.log(JSON.stringify(rows));
  else printTable(rows);
}
