// Worker benchmarks:
// 1. bundle size as deployed: `wrangler deploy --dry-run` of the app with wrangler.toml as
//    shipped (main worker/index.ts, minify = true), gzipped as wrangler reports it (node:zlib,
//    default level), against a hello-world Hono worker built the same way (target <= 60 KiB
//    gzip), and the largest parts of the bundle from esbuild's metafile;
// 2. Durable Object calls per push, counted at the stub (every call on a KEFU_STORE stub,
//    also those after WeChat was answered: see _do_calls.ts), in the shipped app and in the app
//    before conversations (createApp with `conversations: () => undefined`), in one run:
//    with a FORWARD_URL answering at once (targets: <= 2 while WeChat waits; in queue mode 1
//    before the answer and <= 2 in the consumer) and with no handler configured (diagnostic);
//    and the calls of one history page of 50 entries (target 1);
// 3. encrypted push requests per second through the shipped bundle on workerd (miniflare,
//    loopback), against the hello-world bundle in the same harness, alternating in rounds
//    (target >= 0.6x the hello world); then the same app on Bun (worker/bun.ts) and on Deno
//    (worker/deno.ts: conversations and its queue on Deno KV; target >= 0.4x) against a
//    hello-world Hono on the same runtime.
//    On workerd the app runs as shipped: each user's conversation (push claims, send window,
//    history) in the KEFU_STORE Durable Objects (SQLite-backed, local in miniflare). A second
//    hello world makes the same Durable Object calls per push as the app was counted making
//    in 2. (same methods, like arguments) on the same KefuStore class: the app against it is
//    what the app costs beyond the storage it must do (target >= 0.9x).
//    Diagnostic rows: the app before conversations, the app with KV only (no Durable Object)
//    against a hello world doing the same KV calls, and the app with the in-memory dedupe store;
// 4. time to answer WeChat with a handler that takes 1 s (a FORWARD_URL that answers after
//    1 s): queue mode (KEFU_QUEUE bound: the push is enqueued and answered, the queue consumer
//    runs the handler) against handling while WeChat waits, p50 and p99 over the same pushes.
//
// Every push is a safe-mode (AES) XML text message with its own MsgId, signed and encrypted by
// the emulator before any timing starts; every answer must be HTTP 200 `success`.
//
// Run: `npm run bench`, or alone: `node --expose-gc --import tsx test/bench/worker.ts`.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { createEmulator } from "../../src/testing/mod.ts";
import { hashPassword } from "../../worker/inbox/mod.ts";
import { AES_KEY, APP_ID, median, OPEN_ID, printTable, type Row, sized, TEXT, TOKEN } from "./_lib.ts";
import { callsPerPush, callsPerRequest, countingWorkerSource, type PerPush } from "./_do_calls.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const HONO = join(ROOT, "node_modules", "hono", "dist", "index.js");

/** What the app needs to answer pushes (and /api); no TRANSFER_TO_KF, WELCOME_TEXT or FORWARD_URL. */
const APP_VARS = {
  WECHAT_APPID: APP_ID,
  WECHAT_SECRET: "bench-secret-not-used",
  WECHAT_TOKEN: TOKEN,
  WECHAT_AES_KEY: AES_KEY,
  API_KEY: "bench-api-key",
};
/** Variables that would change what the default handler does; never passed on. */
const HANDLER_VARS = ["TRANSFER_TO_KF", "WELCOME_TEXT", "FORWARD_URL", "FORWARD_SECRET", "WECHAT_EMULATOR"];
const OPEN_IDS = [OPEN_ID, "o9AgO5Kd5ggOC-bXrbNODIiE3bGZ", "o9AgO5Kd5ggOC-bXrbNODIiE3bGa"];
/**
 * The users the throughput rows' pushes come from: many, as in production, where one user's
 * messages are a few in a minute. (One user's burst is handled in the order sent, each
 * message waiting for the one before it: that is the guarantee, not throughput.)
 */
const THROUGHPUT_USERS = Array.from({ length: 512 }, (_, i) => `o9AgO5Kd5ggOC-bXrbN${String(i).padStart(9, "0")}`);

/**
 * Issue 19: 60 KiB gzip with the agent inbox's server code (its page files are static assets). The
 * 50 KiB of issue 18 was set before conversations, media copies, the AI bot and Chatwoot.
 */
const TARGET_GZIP_KIB = 60;
/** How many of the bundle's largest parts get a row. */
const LARGEST_PARTS = 4;
const TARGET_RATIO = 0.6;
/** The Deno server on Deno KV against a hello world on Deno. */
const TARGET_DENO_RATIO = 0.4;
/** The app against a hello world doing the same storage operations. */
const TARGET_RATIO_SAME_STORAGE = 0.9;
/** The shipped bindings: KV for tokens, the KefuStore Durable Objects for claims and windows. */
const AS_SHIPPED: Storage = { kv: true, durableObject: true };
/** How long the handler of the answer-time rows takes. */
const HANDLER_MS = 1000;
/** Timed pushes per mode in the answer-time rows (after ANSWER_WARMUP untimed ones). */
const ANSWER_PUSHES = sized(160, 80);
const ANSWER_WARMUP = sized(32, 16);
/**
 * Timed requests per server on workerd, split into ROUNDS rounds: local Durable Objects make
 * these servers slow, and the suite must stay within minutes. Rounds of 200 move with the
 * machine's load; the CPU rows (time workerd spent per push) move much less.
 */
const REQUESTS = sized(2000, 800);
/** Timed requests per server on Bun and Deno: they are faster, and short rounds are noisy. */
const REQUESTS_FAST = sized(4000, 1000);
/** Timed requests per server with miniflare's local KV as the store (the slowest on workerd), and their warm-up. */
const KV_REQUESTS = sized(600, 300);
const KV_WARMUP = sized(100, 50);
/**
 * Timed requests per server on Deno: each push commits to a Deno KV database on a file, which
 * makes the Deno server the slowest target here; fewer keep the suite within minutes.
 */
const DENO_REQUESTS = sized(1500, 500);
const ROUNDS = 10;
/** Untimed requests per server first (JIT, connections, KV). */
const WARMUP = sized(300, 100);
const CONCURRENCY = 16;
const START_TIMEOUT_MS = 30_000;
/** Linux's USER_HZ, the unit of CPU times in /proc/<pid>/stat (100 on every common build). */
const CLOCK_TICKS = 100;

// The hello world of the issue, plus a push route that reads the body and answers "success"
// (a server that leaves the body unread is slower on Deno, and would flatter the app).
export const HELLO_WORKER = `import { Hono } from "hono";
const app = new Hono();
app.get("/", (c) => c.text("hi"));
app.post("/wechat/callback", async (c) => {
  await c.req.text();
  return c.text("success");
});
export default app;
`;

// The hello world plus the KV traffic of one push when KV is the only store (the app with
// no KEFU_STORE bound): read the claim, write a lease, read and write the send window, then
// write the done mark after the handler: what miniflare's local KV costs on its own.
const HELLO_KV_WORKER = `import { Hono } from "hono";
interface Kv {
  get(key: string): Promise<string | null>;
  put(key: string, value: string, options: { expirationTtl: number }): Promise<void>;
}
const app = new Hono<{ Bindings: { WECHAT_KV: Kv } }>();
app.post("/wechat/callback", async (c) => {
  await c.req.text();
  const kv = c.env.WECHAT_KV;
  const user = "u." + c.req.query("openid");
  const key = "kefu-edge:push:bench:" + user + ":msg:" + c.req.query("msg_signature");
  const window = "kefu-edge:window:bench:" + user;
  if ((await kv.get(key)) === null) {
    await kv.put(key, "lease:0", { expirationTtl: 60 });
    await kv.get(window);
    await kv.put(window, '{"kind":"message","count":0}', { expirationTtl: 172800 });
    await kv.put(key, "done:success", { expirationTtl: 660 });
  }
  return c.text("success");
});
export default app;
`;

// The hello world plus the Durable Object traffic of one push as the app makes it when
// KEFU_STORE is bound: the calls the app was counted making per push in this run (CALLS, e.g.
// "accept,replaceClaim"), each on a new stub of the user's object of the same KefuStore class,
// with arguments like the app's (the push accepted into the conversation with its text, the
// claim replaced by the done mark).
const HELLO_DO_WORKER = `import { Hono } from "hono";
export { KefuStore } from ${JSON.stringify(join(ROOT, "worker", "store_object.ts"))};
import { settingsOf } from ${JSON.stringify(join(ROOT, "src", "internal", "conversation_rules.ts"))};
const settings = settingsOf({});
const TEXT = ${JSON.stringify(TEXT)};
interface Stub {
  accept(input: unknown, settings: unknown): Promise<unknown>;
  replaceClaim(key: string, expected: string, value: string | null, ttlSeconds: number): Promise<boolean>;
  claim(key: string): Promise<string | null>;
  window(): Promise<unknown>;
  fetch(url: string, init: RequestInit): Promise<Response>;
}
interface Namespace {
  idFromName(name: string): unknown;
  get(id: unknown): Stub;
}
const app = new Hono<{ Bindings: { KEFU_STORE: Namespace; CALLS: string } }>();
app.post("/wechat/callback", async (c) => {
  await c.req.text();
  const ns = c.env.KEFU_STORE;
  const id = ns.idFromName("user:bench:u." + c.req.query("openid"));
  const key = "kefu-edge:push:bench:" + c.req.query("msg_signature");
  const claim = "lease:" + crypto.randomUUID();
  const at = Date.now();
  for (const call of c.env.CALLS.split(",")) {
    const stub = ns.get(id);
    switch (call) {
      case "accept": {
        const entry = { sender: "user", type: "message", msgType: "text", text: TEXT, deliveryId: key };
        await stub.accept({ key, claim, ttlSeconds: 60, entry, action: { kind: "message", at } }, settings);
        break;
      }
      case "replaceClaim":
        await stub.replaceClaim(key, claim, "done:success", 660);
        break;
      case "claim":
        await stub.claim(key);
        break;
      case "window":
        await stub.window();
        break;
      case "fetch": {
        const op = { op: "setIfAbsent", key: key + ":run", value: claim, ttlSeconds: 60 };
        await (await stub.fetch("https://kefu-store/", { method: "POST", body: JSON.stringify(op) })).json();
        break;
      }
      default:
        throw new Error("hello+DO has no stand-in for the app's call " + call);
    }
  }
  return c.text("success");
});
export default app;
`;

// The app as it was before conversations: push claims, dedupe marks and send windows through the
// key-value layer (DurableObjectStore over the same KefuStore objects), as `createApp` did.
const APP_BEFORE_CONVERSATIONS_WORKER = `import { createApp } from ${JSON.stringify(join(ROOT, "worker", "app.ts"))};
import { kvStore } from ${JSON.stringify(join(ROOT, "worker", "kv_binding.ts"))};
export { KefuStore } from ${JSON.stringify(join(ROOT, "worker", "store_object.ts"))};
export default createApp({ store: kvStore, conversations: () => undefined });
`;

// The app's own code with the in-memory dedupe store (no KV binding): what the app costs
// without miniflare's KV.
const APP_MEMORY_WORKER = `import { createApp } from ${JSON.stringify(join(ROOT, "worker", "app.ts"))};
export default createApp();
`;

// The same hello world served by Bun or Deno; hono is imported by path, so no config is needed.
const HELLO_SERVER = `import { Hono } from ${JSON.stringify(pathToFileURL(HONO).href)};
const app = new Hono();
app.get("/", (c) => c.text("hi"));
app.post("/wechat/callback", async (c) => {
  await c.req.text();
  return c.text("success");
});
const hostname = "127.0.0.1";
if (globalThis.Bun) {
  const server = Bun.serve({ hostname, port: 0, fetch: app.fetch });
  console.log("hello listening on http://" + hostname + ":" + server.port);
} else {
  Deno.serve({ hostname, port: 0, onListen: (a) => console.log("hello listening on http://" + hostname + ":" + a.port) }, app.fetch);
}
`;

// The Deno hello world with the least Deno KV work exactly once across processes needs: per
// push, a claim (an atomic commit checked on the key) before the handler and a done mark
// after it, on a database file as the shipped server uses. What it loses against the bare
// hello world bounds what any exactly-once server on Deno KV can reach.
const HELLO_KV_SERVER = `import { Hono } from ${JSON.stringify(pathToFileURL(HONO).href)};
const kv = await Deno.openKv(Deno.env.get("HELLO_KV_PATH"));
const app = new Hono();
app.post("/wechat/callback", async (c) => {
  await c.req.text();
  const key = ["claim", crypto.randomUUID()];
  await kv.atomic().check({ key, versionstamp: null }).set(key, "lease", { expireIn: 5000 }).commit();
  await kv.atomic().set(key, "done", { expireIn: 600000 }).commit();
  return c.text("success");
});
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (a) => console.log("hello listening on http://127.0.0.1:" + a.port) }, app.fetch);
`;

const execFileP = promisify(execFile);

interface Push {
  /** Path and signed query. */
  path: string;
  body: string;
  contentType: string;
}

interface Server {
  base: string;
  stop(): Promise<void>;
  /** CPU time its processes have used so far, in ms, where the system tells (Linux). */
  cpuMs?: () => number;
}

export interface Bundle {
  /** The one JS module wrangler wrote. */
  file: string;
  bytes: number;
  gzip: number;
  /** Minified bytes in the output per package or source folder, largest first. */
  parts: Array<[string, number]>;
}

// ---------------------------------------------------------------- bundle size

/**
 * `wrangler deploy --dry-run --outdir <out>` in `cwd`, offline and without telemetry. The
 * throwaway workers ask for `minify = true` in their own wrangler.toml, like the shipped one.
 */
export async function wranglerBuild(cwd: string, outdir: string): Promise<Bundle> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    // Without the banner wrangler skips its npm update check as well.
    WRANGLER_HIDE_BANNER: "true",
    CI: "true",
    NO_COLOR: "1",
  };
  for (const name of ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CLOUDFLARE_ACCOUNT_ID"]) delete env[name];
  try {
    const metafile = join(outdir, "..", `${outdir.split("/").pop()}-meta.json`);
    await execFileP(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, "--metafile", metafile], {
      cwd,
      env,
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`wrangler dry run in ${cwd} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
  const scripts = (await readdir(outdir)).filter((f) => /\.m?js$/.test(f));
  if (scripts.length !== 1) throw new Error(`expected one module in ${outdir}, found ${scripts.join(", ")}`);
  const file = join(outdir, scripts[0]!);
  const content = await readFile(file);
  const meta = JSON.parse(await readFile(join(outdir, "..", `${outdir.split("/").pop()}-meta.json`), "utf8")) as {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
  };
  const output = Object.entries(meta.outputs).find(([name]) => /\.m?js$/.test(name))?.[1];
  const parts = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const part = bundlePart(input);
    parts.set(part, (parts.get(part) ?? 0) + bytesInOutput);
  }
  return {
    file,
    bytes: content.byteLength,
    gzip: gzipSync(content).byteLength,
    parts: [...parts].sort((a, b) => b[1] - a[1]),
  };
}

/** A package (zod by top-level folder: its core and its API are told apart) or a source folder. */
function bundlePart(input: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(input);
  if (pkg === null) return input.split("/").slice(0, 2).join("/");
  if (pkg[1] === "zod") return `zod/${pkg[2]!.split("/").slice(0, 2).join("/")}`;
  return pkg[1]!;
}

/** The bundle rows: the app against the hello world, and the app's largest parts. */
export function bundleRows(app: Bundle, hello: Bundle): Row[] {
  const kib = (n: number) => n / 1024;
  return [
    {
      bench: "bundle",
      metric: "wrangler deploy --dry-run as deployed, gzip",
      value: kib(app.gzip),
      unit: "KiB",
      baseline: `hello-world Hono ${kib(hello.gzip).toFixed(1)} KiB`,
      ratio: app.gzip / hello.gzip,
      target: `<= ${TARGET_GZIP_KIB} KiB`,
      met: kib(app.gzip) <= TARGET_GZIP_KIB,
    },
    {
      bench: "bundle",
      metric: "wrangler deploy --dry-run as deployed, minified",
      value: kib(app.bytes),
      unit: "KiB",
      baseline: `hello-world Hono ${kib(hello.bytes).toFixed(1)} KiB`,
      ratio: app.bytes / hello.bytes,
    },
    ...app.parts.slice(0, LARGEST_PARTS).map(([part, bytes]): Row => ({
      bench: "bundle",
      metric: `largest part: ${part}, minified`,
      value: kib(bytes),
      unit: "KiB",
    })),
  ];
}

// ---------------------------------------------------------------- pushes and load

/**
 * Encrypted XML text pushes, each with its own MsgId, signed for the current time: the
 * servers check the timestamp against their own clocks (300 s of skew allowed).
 */
async function buildPushes(count: number, users: readonly string[] = OPEN_IDS): Promise<Push[]> {
  const now = Date.now();
  const emulator = createEmulator({
    appId: APP_ID,
    appSecret: APP_VARS.WECHAT_SECRET,
    push: { token: TOKEN, encodingAESKey: AES_KEY, format: "xml" },
    now: () => now,
  });
  const pushes: Push[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < count; i++) {
    const action = await emulator.user(users[i % users.length]!).says(TEXT);
    ids.add(String(action.msgId));
    const request = action.request();
    const url = new URL(request.url);
    pushes.push({
      path: url.pathname + url.search,
      body: await request.text(),
      contentType: request.headers.get("content-type") ?? "text/xml",
    });
  }
  if (ids.size !== count) throw new Error(`expected ${count} distinct MsgIds, got ${ids.size}`);
  return pushes;
}

/** Sends every push to `base` with CONCURRENCY in flight; returns requests per second. Throws on any bad answer. */
async function drive(label: string, base: string, pushes: readonly Push[], latencies?: number[]): Promise<number> {
  let next = 0;
  let failures = 0;
  let first: string | undefined;
  const fail = (detail: string) => {
    failures++;
    first ??= detail;
  };
  const loop = async () => {
    for (let i = next++; i < pushes.length; i = next++) {
      const push = pushes[i]!;
      const sent = performance.now();
      try {
        const res = await fetch(base + push.path, {
          method: "POST",
          body: push.body,
          headers: { "content-type": push.contentType },
        });
        const text = await res.text();
        latencies?.push(performance.now() - sent);
        if (res.status !== 200 || text !== "success") fail(`HTTP ${res.status} ${text.slice(0, 300)}`);
      } catch (err) {
        fail(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err));
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  const seconds = (performance.now() - start) / 1000;
  if (failures > 0) {
    throw new Error(`${label}: ${failures} of ${pushes.length} answers were not 200 "success"; first: ${first}`);
  }
  return pushes.length / seconds;
}

interface Target {
  label: string;
  start(): Promise<Server>;
}

interface Measured {
  /** Median req/s over the rounds. */
  rps: number;
  /** Median of the per-round ratios to the first target (the baseline). */
  ratio: number;
  /** req/s of each round. */
  rounds: number[];
  /** The server's CPU time per request of each round, in ms (when known). */
  cpu?: number[];
}

/** `a` against `b` measured in the same rounds: median of the per-round ratios. */
function versus(a: Measured, b: Measured): Measured {
  return { ...a, ratio: median(a.rounds.map((v, r) => v / b.rounds[r]!)) };
}

/**
 * Starts every target, warms each up, then times them in rounds on fresh pushes (the order
 * rotates each round, so drift on this shared machine hits all alike), and stops them all.
 * The first target is the baseline of the ratios.
 */
async function measure(
  targets: readonly Target[],
  pushes: readonly Push[],
  requests: number,
  warmup = WARMUP,
): Promise<Measured[]> {
  if (pushes.length < warmup + requests) throw new Error(`${warmup + requests} pushes needed`);
  const servers: Server[] = [];
  try {
    for (const target of targets) servers.push(await target.start());
    const warm = pushes.slice(0, warmup);
    for (const [i, server] of servers.entries()) await drive(targets[i]!.label, server.base, warm);
    const per = Math.ceil(requests / ROUNDS);
    const rps: number[][] = targets.map(() => []);
    const cpu: number[][] = targets.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      const slice = pushes.slice(warmup + r * per, warmup + (r + 1) * per);
      for (let k = 0; k < targets.length; k++) {
        const i = (r + k) % targets.length;
        const cpuBefore = servers[i]!.cpuMs?.();
        rps[i]!.push(await drive(targets[i]!.label, servers[i]!.base, slice));
        if (cpuBefore !== undefined) cpu[i]!.push((servers[i]!.cpuMs!() - cpuBefore) / slice.length);
      }
    }
    const base = rps[0]!;
    return rps.map((values, i) => ({
      rps: median(values),
      ratio: median(values.map((v, r) => v / base[r]!)),
      rounds: values,
      ...(cpu[i]!.length === ROUNDS ? { cpu: cpu[i] } : {}),
    }));
  } finally {
    for (const server of servers.reverse()) await server.stop().catch(() => {});
  }
}

// ---------------------------------------------------------------- servers

/** The `compatibility_flags` of wrangler.toml, read by run(). */
let compatibilityFlags: string[] = [];

/** The storage a workerd target gets, as wrangler.toml binds it (all local, in memory). */
interface Storage {
  /** `WECHAT_KV`. */
  kv?: boolean;
  /** `KEFU_STORE`: the KefuStore class the script exports, SQLite-backed. */
  durableObject?: boolean;
  /** `KEFU_QUEUE` and its consumer, with the shipped consumer settings. */
  queue?: boolean;
}

async function startWorkerd(
  scriptPath: string,
  compatibilityDate: string,
  bindings: Record<string, string>,
  storage: Storage = {},
): Promise<Server> {
  // Miniflare starts workerd as a child: the new one is this server's (targets start one at a time).
  const before = new Set(childProcesses());
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    // Module names are relative to this; the default (the cwd) cannot reach the temp dir.
    modulesRoot: dirname(scriptPath),
    compatibilityDate,
    compatibilityFlags,
    host: "127.0.0.1",
    port: 0,
    bindings,
    // In memory, as miniflare keeps them unless told to persist.
    ...(storage.kv ? { kvNamespaces: ["WECHAT_KV"] } : {}),
    ...(storage.durableObject ? { durableObjects: { KEFU_STORE: { className: "KefuStore", useSQLite: true } } } : {}),
    ...(storage.queue
      ? {
        queueProducers: { KEFU_QUEUE: "kefu-edge-pushes" },
        queueConsumers: { "kefu-edge-pushes": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10 } },
      }
      : {}),
  });
  try {
    const url = await mf.ready;
    const started = childProcesses().filter((pid) => !before.has(pid) && processName(pid) === "workerd");
    return {
      base: url.origin,
      stop: () => mf.dispose(),
      ...(started.length === 0 ? {} : { cpuMs: () => started.reduce((sum, pid) => sum + processCpuMs(pid), 0) }),
    };
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw err;
  }
}

/** This process's descendants, from Linux's /proc; none elsewhere. */
function childProcesses(pid = process.pid): number[] {
  const found: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const task of tasks) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue;
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
      found.push(child, ...childProcesses(child));
    }
  }
  return found;
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** User plus system CPU time of a process, in ms (Linux's clock ticks are 10 ms here). */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
  } catch {
    return 0;
  }
}

/** Starts a server process and waits for its "listening on <url>" line. */
async function startProcess(
  label: string,
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<Server> {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`${label} did not start: ${stderr}`)), START_TIMEOUT_MS);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const match = /listening on (http:\/\/[^\s]+)/i.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${label} exited (${code ?? signal}): ${stderr}`));
      });
    });
    return { base, stop: () => stopChild(child) };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** The environment of the app processes: this one's, minus anything that changes the handler. */
function appProcessEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...APP_VARS, HOST: "127.0.0.1", PORT: "0", NO_COLOR: "1", ...extra };
  for (const name of HANDLER_VARS) delete env[name];
  return env;
}

function pushRow(
  metric: string,
  baseline: Measured,
  result: Measured,
  target?: number,
  baselineName = "hello-world Hono",
): Row {
  return {
    bench: "push",
    metric,
    value: result.rps,
    unit: "req/s",
    baseline: `${baselineName} ${baseline.rps.toFixed(0)} req/s`,
    ratio: result.ratio,
    ...(target !== undefined ? { target: `>= ${target}x`, met: result.ratio >= target } : {}),
  };
}

/**
 * workerd's CPU time per push of `result` against `baseline`'s, in the same rounds: what the
 * shared machine's load does to wall time hardly moves it. `undefined` where CPU times are not known.
 */
function cpuRow(metric: string, baseline: Measured, result: Measured, baselineName: string): Row | undefined {
  if (baseline.cpu === undefined || result.cpu === undefined) return undefined;
  const base = baseline.cpu;
  return {
    bench: "push",
    metric,
    value: median(result.cpu) * 1000,
    unit: "µs",
    baseline: `${baselineName} ${(median(base) * 1000).toFixed(0)} µs`,
    ratio: median(result.cpu.map((v, r) => v / base[r]!)),
  };
}

/** A temp dir with a worker entry, a minimal wrangler.toml and this repo's node_modules. */
/** A throwaway worker folder: `source` as its entry, with a wrangler.toml built like the shipped one. */
export async function workerDir(dir: string, source: string, compatibilityDate: string): Promise<string> {
  await mkdir(dir);
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  await writeFile(join(dir, "index.ts"), source);
  await writeFile(
    join(dir, "wrangler.toml"),
    // Minified as wrangler.toml builds the app: without keep_names.
    `name = "bench"\nmain = "index.ts"\ncompatibility_date = "${compatibilityDate}"\nminify = true\nkeep_names = false\n` +
      `compatibility_flags = ${JSON.stringify(compatibilityFlags)}\n`,
  );
  return dir;
}

// ---------------------------------------------------------------- answer times

/** A FORWARD_URL on loopback that reads the forward and answers 200 after `delayMs`. */
async function forwardReceiver(
  delayMs: number,
): Promise<{ url: string; received: () => number; stop(): Promise<void> }> {
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      setTimeout(() => res.writeHead(200).end("ok"), delayMs);
    });
    req.on("error", () => {});
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/kefu`,
    received: () => received,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * The app as shipped with a handler that takes HANDLER_MS (a slow FORWARD_URL), once with
 * KEFU_QUEUE bound and once without; the two are driven in alternating rounds over fresh
 * pushes, CONCURRENCY in flight, and every answer to WeChat is timed.
 */
async function answerTimes(file: string, compatibilityDate: string, appVars: Record<string, string>): Promise<Row[]> {
  const receiver = await forwardReceiver(HANDLER_MS);
  const vars = { ...appVars, FORWARD_URL: receiver.url, FORWARD_SECRET: "bench-forward-secret" };
  const modes = [
    { label: "app while WeChat waits, 1 s handler", storage: AS_SHIPPED },
    { label: "app in queue mode, 1 s handler", storage: { ...AS_SHIPPED, queue: true } },
  ];
  const pushes = await buildPushes(modes.length * (ANSWER_WARMUP + ANSWER_PUSHES));
  const servers: Server[] = [];
  try {
    for (const mode of modes) servers.push(await startWorkerd(file, compatibilityDate, vars, mode.storage));
    let next = 0;
    const take = (n: number) => pushes.slice(next, next += n);
    for (const [i, server] of servers.entries()) await drive(modes[i]!.label, server.base, take(ANSWER_WARMUP));
    const times: number[][] = modes.map(() => []);
    const per = Math.ceil(ANSWER_PUSHES / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < modes.length; k++) {
        const i = (r + k) % modes.length;
        await drive(modes[i]!.label, servers[i]!.base, take(per), times[i]);
      }
    }
    if (receiver.received() === 0) throw new Error("no push reached the handler");
    const [sync, queued] = times as [number[], number[]];
    return [50, 99].map((p): Row => {
      const base = percentile(sync, p);
      const value = percentile(queued, p);
      return {
        bench: "push",
        metric: `time to answer WeChat, p${p}, queue mode (handler takes 1 s)`,
        value,
        unit: "ms",
        baseline: `handled while WeChat waits ${base.toFixed(0)} ms`,
        ratio: value / base,
      };
    });
  } finally {
    for (const server of servers.reverse()) await server.stop().catch(() => {});
    await receiver.stop();
  }
}

// ---------------------------------------------------------------- the inbox's live updates

/** Issue 19: new messages appear on an agent's open page within 1 s. */
const TARGET_LIVE_MS = 1000;
/** Timed messages (after a few untimed), each from its own user. */
const LIVE_PUSHES = sized(40, 10);

/**
 * The shipped bundle in Miniflare (Durable Objects, while WeChat waits), an agent signed in
 * with a password and holding the inbox's socket: for each push, the time from WeChat sending
 * it to the socket's `changed` for that user, and to the first page of the list showing the
 * user (the socket, then the read the page makes).
 */
async function inboxLiveTimes(
  file: string,
  compatibilityDate: string,
  appVars: Record<string, string>,
): Promise<Row[]> {
  const password = "bench-inbox-password";
  const agents = `bench:${await hashPassword(password, { iterations: 1000 })}`;
  const mf = new Miniflare({
    modules: true,
    scriptPath: file,
    modulesRoot: dirname(file),
    compatibilityDate,
    compatibilityFlags,
    bindings: { ...appVars, INBOX_AGENTS: agents },
    kvNamespaces: ["WECHAT_KV"],
    durableObjects: { KEFU_STORE: { className: "KefuStore", useSQLite: true } },
  });
  try {
    const origin = "http://127.0.0.1";
    const login = await mf.dispatchFetch(`${origin}/inbox/login`, {
      method: "POST",
      body: new URLSearchParams({ name: "bench", password }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", origin },
      redirect: "manual",
    });
    const cookie = /^(kefu_inbox=[^;]+)/.exec(login.headers.get("set-cookie") ?? "")?.[1];
    if (cookie === undefined) throw new Error(`inbox sign-in failed: ${login.status}`);
    const upgrade = await mf.dispatchFetch(`${origin}/inbox/live`, {
      headers: { upgrade: "websocket", origin, cookie },
    });
    const socket = upgrade.webSocket;
    if (socket === null) throw new Error(`inbox socket refused: ${upgrade.status}`);
    const heard = new Map<string, number>();
    const waiting = new Map<string, () => void>();
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as { type: string; openId?: string };
      if (message.type !== "changed" || message.openId === undefined || heard.has(message.openId)) return;
      heard.set(message.openId, performance.now());
      waiting.get(message.openId)?.();
    });
    socket.accept();
    const users = Array.from({ length: LIVE_PUSHES + 3 }, (_, i) => `o9AgO5Kd5ggOC-live${String(i).padStart(9, "0")}`);
    const pushes = await buildPushes(users.length, users);
    const toSocket: number[] = [];
    const toList: number[] = [];
    for (const [i, push] of pushes.entries()) {
      const openId = users[i]!;
      const told = new Promise<void>((resolve, reject) => {
        waiting.set(openId, resolve);
        setTimeout(() => reject(new Error(`no live update for ${openId} within 10 s`)), 10_000).unref();
      });
      // From the moment WeChat sends the push: the socket may hear of it before WeChat has its answer.
      const sent = performance.now();
      const res = await mf.dispatchFetch(`${origin}${push.path}`, {
        method: "POST",
        body: push.body,
        headers: { "content-type": push.contentType },
      });
      const text = await res.text();
      if (text !== "success") throw new Error(`push answered ${res.status} ${text.slice(0, 200)}`);
      await told;
      const list = await mf.dispatchFetch(`${origin}/inbox/api/conversations?limit=5`, { headers: { cookie } });
      const page = await list.json() as { conversations: { openId: string }[] };
      if (!page.conversations.some((c) => c.openId === openId)) throw new Error("the list does not show the user");
      if (i < 3) continue; // warm-up
      toSocket.push(heard.get(openId)! - sent);
      toList.push(performance.now() - sent);
    }
    socket.close(1000, "done");
    const row = (what: string, values: number[], p: number): Row => ({
      bench: "inbox",
      metric: `agent inbox: a user's message, pushed by WeChat → ${what}, p${p} (workerd, Durable Objects)`,
      value: percentile(values, p),
      unit: "ms",
      target: `<= ${TARGET_LIVE_MS} ms`,
      met: percentile(values, p) <= TARGET_LIVE_MS,
    });
    return [
      row("the page's socket told", toSocket, 50),
      row("the page's socket told", toSocket, 99),
      row(
        "in the page's list (socket, then a list read)",
        toList,
        50,
      ),
      row("in the page's list (socket, then a list read)", toList, 99),
    ];
  } finally {
    await mf.dispose();
  }
}

// ---------------------------------------------------------------- Durable Object calls

/** Calls per push while WeChat waits (before and after the answer). */
const TARGET_SYNC_CALLS = 2;
/** Calls per push in queue mode before WeChat is answered. */
const TARGET_QUEUE_ANSWER_CALLS = 1;
/** Calls per push in queue mode after WeChat was answered (the consumer). */
const TARGET_QUEUE_CONSUMER_CALLS = 2;
/** Counted pushes per worker and mode (after one uncounted): each takes the same path. */
const COUNTED_PUSHES = sized(20, 5);
/** In queue mode each push waits for its batch (max_batch_timeout = 1 s): fewer. */
const COUNTED_QUEUED_PUSHES = 3;
/** Entries in the history page whose calls are counted. */
const HISTORY_PAGE = 50;

interface CallCounts {
  /** The shipped app with FORWARD_URL set, while WeChat waits and in queue mode. */
  forwarding: { sync: PerPush; queue: PerPush };
  /** The same app with no handler configured (what the throughput rows run). */
  plain: { sync: PerPush; queue: PerPush };
  /** Calls of `GET /api/users/:openId/messages?limit=50`. */
  history: string[];
}

/**
 * Counts the Durable Object calls per push of an app (a counting entry, see _do_calls.ts),
 * with a FORWARD_URL that answers at once and with no handler, while WeChat waits and in
 * queue mode; for the shipped app also the calls of one history page of 50 entries.
 */
async function countCalls(
  file: string,
  compatibilityDate: string,
  appVars: Record<string, string>,
  history: boolean,
): Promise<CallCounts> {
  const receiver = await forwardReceiver(0);
  try {
    const forwardVars = { ...appVars, FORWARD_URL: receiver.url, FORWARD_SECRET: "bench-forward-secret" };
    const count = async (vars: Record<string, string>, queue: boolean, openHistory = false) => {
      const server = await startWorkerd(file, compatibilityDate, vars, queue ? { ...AS_SHIPPED, queue } : AS_SHIPPED);
      try {
        // Enough pushes that the first user has a page of HISTORY_PAGE entries (users take turns).
        const n = queue ? COUNTED_QUEUED_PUSHES : Math.max(COUNTED_PUSHES, HISTORY_PAGE * OPEN_IDS.length + 2);
        const perPush = await callsPerPush(server.base, await buildPushes(1 + n), { queue, warmup: 1 });
        if (!openHistory) return { perPush, history: [] };
        const path = `/api/users/${OPEN_IDS[0]}/messages?limit=${HISTORY_PAGE}`;
        const page = await callsPerRequest(server.base, path, APP_VARS.API_KEY);
        const entries = (page.body as { entries?: unknown[] }).entries?.length;
        if (entries !== HISTORY_PAGE) throw new Error(`the history page has ${entries} entries, not ${HISTORY_PAGE}`);
        return { perPush, history: page.calls };
      } finally {
        await server.stop();
      }
    };
    const plainSync = await count(appVars, false, history);
    return {
      forwarding: { sync: (await count(forwardVars, false)).perPush, queue: (await count(forwardVars, true)).perPush },
      plain: { sync: plainSync.perPush, queue: (await count(appVars, true)).perPush },
      history: plainSync.history,
    };
  } finally {
    await receiver.stop();
  }
}

/** The rows of the counts: the shipped app against the app before conversations, in the same run. */
function callRows(now: CallCounts, before: CallCounts): Row[] {
  const list = (calls: readonly string[]) => calls.length === 0 ? "none" : calls.join(", ");
  const row = (metric: string, value: number, old: number, calls: string[], target?: [string, boolean]): Row => ({
    bench: "calls",
    metric: `${metric} (${list(calls)})`,
    value,
    unit: "calls",
    baseline: `before conversations ${old.toFixed(0)} calls`,
    ...(old === 0 ? {} : { ratio: value / old }),
    ...(target === undefined ? {} : { target: target[0], met: target[1] }),
  });
  const rowsOf = (config: "forwarding" | "plain", label: string, targets: boolean): Row[] => {
    const { sync, queue } = now[config];
    const old = before[config];
    const syncCalls = sync.answer + sync.after + sync.consumer;
    const queueAfter = queue.after + queue.consumer;
    const prefix = targets ? "" : "diagnostic: ";
    return [
      row(
        `${prefix}Durable Object calls per push, handled while WeChat waits, ${label}`,
        syncCalls,
        old.sync.answer + old.sync.after + old.sync.consumer,
        [...sync.methods.answer, ...sync.methods.after, ...sync.methods.consumer],
        targets ? [`<= ${TARGET_SYNC_CALLS}`, syncCalls <= TARGET_SYNC_CALLS] : undefined,
      ),
      row(
        `${prefix}Durable Object calls per push, queue mode, before WeChat is answered, ${label}`,
        queue.answer,
        old.queue.answer,
        queue.methods.answer,
        targets ? [`${TARGET_QUEUE_ANSWER_CALLS}`, queue.answer <= TARGET_QUEUE_ANSWER_CALLS] : undefined,
      ),
      row(
        `${prefix}Durable Object calls per push, queue mode, after the answer (consumer), ${label}`,
        queueAfter,
        old.queue.after + old.queue.consumer,
        [...queue.methods.after, ...queue.methods.consumer],
        targets ? [`<= ${TARGET_QUEUE_CONSUMER_CALLS}`, queueAfter <= TARGET_QUEUE_CONSUMER_CALLS] : undefined,
      ),
    ];
  };
  return [
    ...rowsOf("forwarding", "FORWARD_URL set", true),
    ...rowsOf("plain", "no handler configured", false),
    {
      bench: "calls",
      metric: `Durable Object calls of GET /api/users/:openId/messages?limit=${HISTORY_PAGE} (${list(now.history)})`,
      value: now.history.length,
      unit: "calls",
      target: "1",
      met: now.history.length === 1,
    },
  ];
}

// ---------------------------------------------------------------- the suite

/** Runs both worker benchmarks and returns the rows. */
export async function run(): Promise<Row[]> {
  for (const path of [WRANGLER, HONO, join(BIN, "bun"), join(BIN, "deno")]) {
    if (!existsSync(path)) throw new Error(`missing ${path} (npm install)`);
  }
  const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  if (compatibilityDate === undefined) throw new Error("no compatibility_date in wrangler.toml");
  // Every workerd target runs with the shipped flags, so the rows compare like with like.
  const flagList = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? "";
  compatibilityFlags = [...flagList.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);

  const tmp = await mkdtemp(join(tmpdir(), "kefu-bench-worker-"));
  try {
    // 1. Bundles: the app as `wrangler deploy` builds it from this repo, the hello world, the
    //    workers the throughput rows compare with, and the two counting entries.
    const build = (name: string, source: string) =>
      workerDir(join(tmp, name), source, compatibilityDate).then((dir) => wranglerBuild(dir, join(tmp, `${name}-out`)));
    const [
      appBundle,
      helloBundle,
      helloKvBundle,
      helloDoBundle,
      appMemoryBundle,
      appBeforeBundle,
      countingBundle,
      countingBeforeBundle,
    ] = await Promise.all([
      wranglerBuild(ROOT, join(tmp, "app-out")),
      build("hello", HELLO_WORKER),
      build("hello-kv", HELLO_KV_WORKER),
      build("hello-do", HELLO_DO_WORKER),
      build("app-memory", APP_MEMORY_WORKER),
      build("app-before", APP_BEFORE_CONVERSATIONS_WORKER),
      build("counting", countingWorkerSource(ROOT, "shipped")),
      build("counting-before", countingWorkerSource(ROOT, "before-conversations")),
    ]);
    const rows = bundleRows(appBundle, helloBundle);

    // 2. Durable Object calls per push, counted at the stub: the shipped app, and the app before
    //    conversations in the same run.
    const appVars = { TRANSFER_TO_KF: "off", ...APP_VARS };
    const calls = await countCalls(countingBundle.file, compatibilityDate, appVars, true);
    const callsBefore = await countCalls(countingBeforeBundle.file, compatibilityDate, appVars, false);
    rows.push(...callRows(calls, callsBefore));
    // What the app did per push in the throughput rows' setting (no handler, while WeChat waits).
    const { methods } = calls.plain.sync;
    const storeCalls = [...methods.answer, ...methods.after, ...methods.consumer];

    // 3. Throughput. Pushes are signed for now; the whole run stays well inside the 300 s skew.
    const pushes = await buildPushes(WARMUP + Math.max(REQUESTS, REQUESTS_FAST), THROUGHPUT_USERS);
    const workerd = (file: string, vars: Record<string, string>, storage?: Storage) => () =>
      startWorkerd(file, compatibilityDate, vars, storage);
    const [hello, app, helloDo, appBefore, appMemory] = await measure(
      [
        { label: "hello on workerd", start: workerd(helloBundle.file, {}) },
        { label: "app on workerd", start: workerd(appBundle.file, appVars, AS_SHIPPED) },
        {
          label: "hello+DO on workerd",
          start: workerd(helloDoBundle.file, { CALLS: storeCalls.join(",") }, { durableObject: true }),
        },
        { label: "app before conversations on workerd", start: workerd(appBeforeBundle.file, appVars, AS_SHIPPED) },
        { label: "app, memory store, on workerd", start: workerd(appMemoryBundle.file, appVars) },
      ],
      pushes,
      REQUESTS,
    );
    // KV alone (miniflare's local KV is slow): fewer requests, the hello world again in the same rounds.
    const [helloAgain, appKv, helloKv] = await measure(
      [
        { label: "hello on workerd", start: workerd(helloBundle.file, {}) },
        { label: "app, KV only, on workerd", start: workerd(appBundle.file, appVars, { kv: true }) },
        { label: "hello+KV on workerd", start: workerd(helloKvBundle.file, {}, { kv: true }) },
      ],
      pushes,
      KV_REQUESTS,
      KV_WARMUP,
    );
    const n = storeCalls.length;
    rows.push(
      pushRow(
        "encrypted push req/s, workerd, as shipped (conversations in Durable Objects)",
        hello!,
        app!,
        TARGET_RATIO,
      ),
      pushRow(
        `diagnostic: hello world + the app's ${n} Durable Object calls (${storeCalls.join(", ")}), workerd`,
        hello!,
        helloDo!,
      ),
      pushRow(
        "app vs hello world making the same Durable Object calls, workerd",
        helloDo!,
        versus(app!, helloDo!),
        TARGET_RATIO_SAME_STORAGE,
        `hello world + ${n} Durable Object calls`,
      ),
      pushRow(
        "diagnostic: app before conversations (claims, window, marks as key-value calls), workerd",
        hello!,
        appBefore!,
      ),
      pushRow("diagnostic: app with KV only (no Durable Object), workerd", helloAgain!, appKv!),
      pushRow(
        "diagnostic: app with KV only vs hello world doing the same 5 KV calls, workerd",
        helloKv!,
        versus(appKv!, helloKv!),
        undefined,
        "hello world + KV",
      ),
      pushRow("diagnostic: app, dedupe in memory (no storage), workerd", hello!, appMemory!),
    );
    // Where the time goes, in CPU: the app's own work is what it adds to the same storage calls.
    for (
      const row of [
        cpuRow(
          "diagnostic: workerd CPU per push, app vs hello world making the same Durable Object calls",
          helloDo!,
          app!,
          `hello world + ${n} calls`,
        ),
        cpuRow("diagnostic: workerd CPU per push, app vs hello world", hello!, app!, "hello-world Hono"),
        cpuRow(
          "diagnostic: workerd CPU per push, app with no storage vs hello world",
          hello!,
          appMemory!,
          "hello-world Hono",
        ),
      ]
    ) if (row !== undefined) rows.push(row);

    // 4. Time to answer WeChat with a 1 s handler, queue mode against handling while WeChat waits.
    rows.push(...await answerTimes(appBundle.file, compatibilityDate, appVars));
    // 5. The agent inbox: how soon an open page hears of a user's message.
    rows.push(...await inboxLiveTimes(appBundle.file, compatibilityDate, appVars));

    const helloServer = join(tmp, "hello-server.js");
    await writeFile(helloServer, HELLO_SERVER);
    const helloEnv = { ...process.env, NO_COLOR: "1" };
    const bun = join(BIN, "bun");
    const [bunHello, bunApp] = await measure(
      [
        {
          label: "hello on Bun",
          start: () => startProcess("hello on Bun", bun, [helloServer], { cwd: tmp, env: helloEnv }),
        },
        {
          label: "app on Bun",
          start: () => startProcess("app on Bun", bun, ["worker/bun.ts"], { cwd: ROOT, env: appProcessEnv({}) }),
        },
      ],
      pushes,
      REQUESTS_FAST,
    );
    rows.push(pushRow("encrypted push req/s, Bun (MemoryStore)", bunHello!, bunApp!));

    const deno = join(BIN, "deno");
    const kvPath = join(tmp, "deno-kv.sqlite3");
    const denoApp = (label: string, extra: Record<string, string>) => ({
      label,
      start: () =>
        startProcess(label, deno, ["run", "-A", "--unstable-kv", "worker/deno.ts"], {
          cwd: ROOT,
          env: appProcessEnv(extra),
        }),
    });
    const helloKvServer = join(tmp, "hello-kv-server.js");
    await writeFile(helloKvServer, HELLO_KV_SERVER);
    const [denoHello, denoShipped, denoNoQueue, denoMemory, denoHelloKv] = await measure(
      [
        {
          label: "hello on Deno",
          start: () => startProcess("hello on Deno", deno, ["run", "-A", helloServer], { cwd: tmp, env: helloEnv }),
        },
        denoApp("app on Deno", { DENO_KV_PATH: kvPath }),
        denoApp("app on Deno, no queue", { DENO_KV_PATH: `${kvPath}.sync`, KEFU_QUEUE: "off" }),
        denoApp("app on Deno, KV in memory", { DENO_KV_PATH: ":memory:" }),
        {
          label: "hello on Deno with a claim and a done mark",
          start: () =>
            startProcess("hello on Deno with a claim and a done mark", deno, [
              "run",
              "-A",
              "--unstable-kv",
              helloKvServer,
            ], {
              cwd: tmp,
              env: { ...helloEnv, HELLO_KV_PATH: join(tmp, "hello-kv.sqlite3") },
            }),
        },
      ],
      pushes,
      DENO_REQUESTS,
    );
    rows.push(
      pushRow(
        "encrypted push req/s, Deno server (worker/deno.ts: conversations and queue on Deno KV)",
        denoHello!,
        denoShipped!,
        TARGET_DENO_RATIO,
      ),
      pushRow("diagnostic: Deno server with KEFU_QUEUE=off (Deno KV on a file)", denoHello!, denoNoQueue!),
      pushRow("diagnostic: Deno server on an in-memory Deno KV (no disk writes; queue on)", denoHello!, denoMemory!),
      pushRow(
        "bound: a Deno hello world making only a claim and a done mark on Deno KV (a file), the least exactly once needs",
        denoHello!,
        denoHelloKv!,
      ),
      {
        ...pushRow(
          "diagnostic: Deno server with KEFU_QUEUE=off against that bound",
          denoHelloKv!,
          { ...denoNoQueue!, ratio: denoNoQueue!.rps / denoHelloKv!.rps },
          undefined,
          "hello world with a claim and a done mark",
        ),
      },
    );
    return rows;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printTable(await run());
}
