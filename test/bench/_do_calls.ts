// Durable Object calls per push, counted at the stub, for the worker bench (worker.ts).
//
// The worker under count is the shipped app (worker/index.ts's default export) or the app as
// it was before conversations (createApp with `conversations: () => undefined`), wrapped by an
// entry that hands the app a KEFU_STORE whose stubs count every call made on them (a
// `fetch`, an RPC method), and sorts each call by when it was made:
// - "answer": while the request from WeChat is being answered (before the app's response);
// - "after": after the answer, in the request's `waitUntil` tasks;
// - "consumer": while a queue batch is being consumed (`queue()`).
// Pushes are sent one at a time, and the next one waits until the previous one's `waitUntil`
// tasks have settled and, in queue mode, the consumer has taken it, so no two of these run at
// once; a call made while two did could not be sorted, and fails the count.
//
// The wrapper adds two routes of its own (`/__bench/calls`, `/__bench/reset`); nothing else
// of the app changes: the same bundle code, bindings and settings.
import { join } from "node:path";

/** Which app the counting entry wraps. */
export type CountedApp = "shipped" | "before-conversations";

/** A push to send: path with the signed query, body and content type. */
export interface CountedPush {
  path: string;
  body: string;
  contentType: string;
}

/** Calls on KEFU_STORE stubs, by method name, in each phase. */
export interface CallLog {
  answer: string[];
  after: string[];
  consumer: string[];
}

/** What the counting entry reports. */
interface Report extends CallLog {
  /** Calls made while a request and a queue batch (or a batch and a request's tasks) ran at once. */
  ambiguous: string[];
  /** `waitUntil` tasks not settled yet. */
  pendingTasks: number;
  /** `queue()` invocations running. */
  batchesActive: number;
  /** Messages the consumer has been given (redeliveries included). */
  consumed: number;
  /** Deliveries of a message after its first (a retry makes more calls). */
  redelivered: number;
  /** Requests that started while another was being answered (the sorting would be wrong). */
  overlaps: number;
}

/** Per push: calls made while WeChat waited, after its answer, and in the consumer. */
export interface PerPush {
  pushes: number;
  answer: number;
  after: number;
  consumer: number;
  /** Method names of one push's calls, in order, per phase (the last push's). */
  methods: CallLog;
}

/**
 * The source of the counting entry. `root` is the repository (modules are imported by path).
 * The Durable Object class is exported as the shipped entry exports it.
 */
export function countingWorkerSource(root: string, app: CountedApp): string {
  const appImport = app === "shipped"
    ? `import app from ${JSON.stringify(join(root, "worker", "index.ts"))};`
    : `import { createApp } from ${JSON.stringify(join(root, "worker", "app.ts"))};
import { kvStore } from ${JSON.stringify(join(root, "worker", "kv_binding.ts"))};
// worker/index.ts before conversations: push claims, marks and windows through the key-value layer.
const app = createApp({ store: kvStore, conversations: () => undefined });`;
  return `${appImport}
export { KefuStore } from ${JSON.stringify(join(root, "worker", "store_object.ts"))};

const calls = { answer: [], after: [], consumer: [], ambiguous: [] };
let answering = 0;
let pendingTasks = 0;
let batchesActive = 0;
let consumed = 0;
let redelivered = 0;
let overlaps = 0;

// Every call made on a stub is logged under the phase it was made in.
function countingStub(stub) {
  return new Proxy(stub, {
    get(target, name) {
      const value = target[name];
      if (typeof name !== "string" || typeof value !== "function") return value;
      return (...args) => {
        calls[phase()].push(name);
        return target[name](...args);
      };
    },
  });
}

// Each call is sorted by what runs when it is made: a request being answered, a queue batch,
// or neither (a request's waitUntil tasks). When two of them run at once the call cannot be
// sorted, and the run is refused (see "ambiguous").
function phase() {
  if (answering > 0) return batchesActive > 0 ? "ambiguous" : "answer";
  if (batchesActive > 0) return pendingTasks > 0 ? "ambiguous" : "consumer";
  return "after";
}

// One counting namespace and env per real one, kept for the isolate's life as the real
// binding is: the app caches its stores per namespace.
const namespaces = new WeakMap();
function countingNamespace(namespace) {
  let counted = namespaces.get(namespace);
  if (counted === undefined) {
    counted = new Proxy(namespace, {
      get(target, name) {
        const value = target[name];
        if (name === "get" || name === "getByName") return (...args) => countingStub(target[name](...args));
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    namespaces.set(namespace, counted);
  }
  return counted;
}

const envs = new WeakMap();
function countedEnv(env) {
  let counted = envs.get(env);
  if (counted === undefined) envs.set(env, counted = { ...env, KEFU_STORE: countingNamespace(env.KEFU_STORE) });
  return counted;
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__bench/calls") {
      return Response.json({ ...calls, pendingTasks, batchesActive, consumed, redelivered, overlaps });
    }
    if (pathname === "/__bench/reset") {
      for (const list of Object.values(calls)) list.length = 0;
      consumed = redelivered = overlaps = 0;
      return Response.json({});
    }
    if (answering > 0) overlaps++;
    answering++;
    const counted = {
      waitUntil(promise) {
        pendingTasks++;
        ctx.waitUntil(Promise.resolve(promise).finally(() => pendingTasks--));
      },
      passThroughOnException() {
        ctx.passThroughOnException();
      },
      props: ctx.props,
    };
    try {
      return await app.fetch(request, countedEnv(env), counted);
    } finally {
      answering--;
    }
  },
  async queue(batch, env, ctx) {
    batchesActive++;
    for (const message of batch.messages) if (message.attempts > 1) redelivered++;
    try {
      await app.queue(batch, countedEnv(env), ctx);
    } finally {
      consumed += batch.messages.length;
      batchesActive--;
    }
  },
};
`;
}

async function report(base: string): Promise<Report> {
  return await (await fetch(`${base}/__bench/calls`)).json() as Report;
}

async function settled(base: string, done: (r: Report) => boolean, what: string, ms = 30_000): Promise<Report> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await report(base);
    if (done(r)) return r;
    if (Date.now() > deadline) throw new Error(`counting worker: ${what} did not happen in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Sends `pushes` one at a time to the counting worker at `base` (each answered 200 `success`,
 * its `waitUntil` tasks settled before the next), waits for the consumer in queue mode, and
 * returns the calls per push. `warmup` pushes go first, uncounted.
 */
export async function callsPerPush(
  base: string,
  pushes: readonly CountedPush[],
  options: { queue: boolean; warmup: number },
): Promise<PerPush> {
  const send = async (push: CountedPush) => {
    const res = await fetch(base + push.path, {
      method: "POST",
      body: push.body,
      headers: { "content-type": push.contentType },
    });
    const text = await res.text();
    if (res.status !== 200 || text !== "success") {
      throw new Error(`counting worker answered HTTP ${res.status} ${text.slice(0, 300)}`);
    }
    await settled(base, (r) => r.pendingTasks === 0, "the waitUntil tasks settling");
  };
  const drain = (sent: number) =>
    settled(base, (r) => !options.queue || (r.consumed >= sent && r.batchesActive === 0), "the consumer taking all");
  const warm = pushes.slice(0, options.warmup);
  const counted = pushes.slice(options.warmup);
  for (const push of warm) await send(push);
  await drain(warm.length);
  await fetch(`${base}/__bench/reset`);
  let last: CallLog = { answer: [], after: [], consumer: [] };
  let before = await report(base);
  for (const push of counted) {
    await send(push);
    const now = options.queue ? await drain(counted.indexOf(push) + 1) : await report(base);
    last = {
      answer: now.answer.slice(before.answer.length),
      after: now.after.slice(before.after.length),
      consumer: now.consumer.slice(before.consumer.length),
    };
    before = now;
  }
  const r = await drain(counted.length);
  if (r.ambiguous.length > 0) throw new Error(`counting worker: ${r.ambiguous.length} calls could not be sorted`);
  if (r.overlaps > 0) throw new Error(`counting worker: ${r.overlaps} requests overlapped; the phases would be wrong`);
  if (r.redelivered > 0) throw new Error(`counting worker: ${r.redelivered} queue redeliveries; a push failed`);
  const n = counted.length;
  return {
    pushes: n,
    answer: r.answer.length / n,
    after: r.after.length / n,
    consumer: r.consumer.length / n,
    methods: last,
  };
}

/** Calls on stubs made while answering one `GET` of `path` (with the API key), and its JSON. */
export async function callsPerRequest(
  base: string,
  path: string,
  apiKey: string,
): Promise<{ calls: string[]; body: unknown }> {
  await fetch(`${base}/__bench/reset`);
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${apiKey}` } });
  const body = await res.json();
  if (res.status !== 200) {
    throw new Error(`counting worker: GET ${path} answered ${res.status} ${JSON.stringify(body)}`);
  }
  const r = await settled(base, (x) => x.pendingTasks === 0, "the waitUntil tasks settling");
  return { calls: [...r.answer, ...r.after], body };
}
