// The shipped worker entry (worker/index.ts) as `wrangler dev` runs it, for the Miniflare tests:
// bundled with esbuild, served by workerd through Miniflare with a real Durable Object namespace,
// KV namespace and (optionally) Queue; a forward target on loopback that checks each forward's
// signature and counts what arrived; the emulated WeChat that pushes to the worker.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable } from "node:stream";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { createEmulator } from "../../src/testing/mod.ts";
import { verifyForward } from "../../worker/forward.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const APP_ID = "wxminiflare000001";
export const TOKEN = "miniflareToken1";
export const AES_KEY = "kefuEdgeMiniflareKey0123456789abcdefghijklm";
export const FORWARD_SECRET = "miniflare-forward-secret";
export const OPEN_ID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";

/** `worker/index.ts` bundled as wrangler bundles it for workerd. */
export async function bundleWorker(): Promise<string> {
  const out = await build({
    entryPoints: [`${ROOT}worker/index.ts`],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    // workerd's own modules (the Durable Object class extends `cloudflare:workers`'s), as wrangler leaves them.
    external: ["cloudflare:*"],
    logLevel: "silent",
  });
  return out.outputFiles[0]!.text;
}

/** A forward target on loopback. */
export interface ForwardReceiver {
  /** Its URL, for `FORWARD_URL`. */
  url: string;
  /** MsgIds of the forwards that arrived and verified, in order. */
  arrived: string[];
  /** MsgIds of the forwards answered 200 (the worker waited for the answer), in order. */
  answered: string[];
  /** MsgIds of the forwards the worker gave up on (it closed the connection before the answer). */
  abandoned: string[];
  /** How long it takes to answer a forward, in ms (`Infinity`: never); change it at will. */
  delayMs: number;
  /** Forgets what arrived. */
  clear(): void;
  close(): Promise<void>;
}

/** Starts a {@link ForwardReceiver} that answers each verified forward 200 after `delayMs`. */
export async function startForwardReceiver(delayMs = 0): Promise<ForwardReceiver> {
  const receiver: ForwardReceiver = {
    url: "",
    arrived: [],
    answered: [],
    abandoned: [],
    delayMs,
    clear() {
      for (const list of [receiver.arrived, receiver.answered, receiver.abandoned]) list.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = new Request(`http://127.0.0.1${req.url}`, {
      method: "POST",
      headers: req.headers as Record<string, string>,
      body: Buffer.concat(chunks),
    });
    const verified = await verifyForward(request, FORWARD_SECRET);
    if (verified === null) return void res.writeHead(401).end();
    const msgId = String(/"MsgId":"?(\d+)/.exec(verified.body)?.[1]);
    receiver.arrived.push(msgId);
    res.on("close", () => {
      if (!res.writableFinished) receiver.abandoned.push(msgId);
    });
    if (!Number.isFinite(receiver.delayMs)) return; // hangs until the worker gives up or is gone
    await new Promise((r) => setTimeout(r, receiver.delayMs));
    if (res.destroyed) return;
    res.writeHead(200).end("ok", () => receiver.answered.push(msgId));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kefu`;
  return receiver;
}

/** The shipped worker, running, with its log lines collected. */
export interface RunningWorker {
  mf: Miniflare;
  /** Its origin. */
  base: string;
  logs: string[];
}

/**
 * The worker with the shipped bindings (KV, the KefuStore objects and, with `queue`, the push
 * queue) and safe-mode push settings forwarding to `forwardUrl`.
 */
export async function startWorker(
  script: string,
  options: {
    forwardUrl: string;
    queue: boolean;
    vars?: Record<string, string>;
    maxBatchSize?: number;
    /** A folder for Durable Object and KV storage that outlives this worker (a later one sees it). */
    persist?: string;
  },
): Promise<RunningWorker> {
  const logs: string[] = [];
  const collect = (stream: Readable) => stream.on("data", (d: Buffer) => logs.push(...d.toString().split("\n")));
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2026-04-01",
    host: "127.0.0.1",
    port: 0,
    bindings: {
      WECHAT_APPID: APP_ID,
      WECHAT_SECRET: "miniflare-secret-not-used",
      WECHAT_TOKEN: TOKEN,
      WECHAT_AES_KEY: AES_KEY,
      API_KEY: "miniflare-api-key",
      TRANSFER_TO_KF: "off",
      FORWARD_URL: options.forwardUrl,
      FORWARD_SECRET,
      ...options.vars,
    },
    kvNamespaces: ["WECHAT_KV"],
    ...(options.persist === undefined
      ? {}
      : { durableObjectsPersist: join(options.persist, "do"), kvPersist: join(options.persist, "kv") }),
    durableObjects: { KEFU_STORE: { className: "KefuStore", useSQLite: true } },
    ...(options.queue
      ? {
        queueProducers: { KEFU_QUEUE: "kefu-edge-pushes" },
        queueConsumers: {
          "kefu-edge-pushes": { maxBatchSize: options.maxBatchSize ?? 10, maxBatchTimeout: 1, maxRetries: 3 },
        },
      }
      : {}),
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => (collect(stdout), collect(stderr)),
  });
  const url = await mf.ready;
  return { mf, base: url.origin, logs };
}

/** The emulated WeChat, pushing to the worker in safe mode (XML). */
export function wechat(): ReturnType<typeof createEmulator> {
  return createEmulator({
    appId: APP_ID,
    appSecret: "miniflare-secret-not-used",
    push: { token: TOKEN, encodingAESKey: AES_KEY, format: "xml" },
  });
}

/** Sends one of the emulator's push requests to the worker at `base`, as WeChat's servers would. */
export async function deliver(base: string, request: Request): Promise<{ status: number; text: string }> {
  const url = new URL(request.url);
  const res = await fetch(base + url.pathname + url.search, {
    method: "POST",
    headers: { "content-type": "text/xml" },
    body: await request.text(),
  });
  return { status: res.status, text: await res.text() };
}

/** Resolves once `check()` holds; rejects after `ms`. */
export async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}
