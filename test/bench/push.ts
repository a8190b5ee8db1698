// Push benchmark: per-message throughput of the full receive path — verify
// signature and msg_signature, decrypt, parse — for a typical encrypted text message in
// XML and in JSON, through PushReceiver.handle with a handler that does nothing and a
// unique MsgId per message (so deduplication never short-cuts the work).
//
// On Node it is compared in the same run with node-webot's packages doing the same work
// the way the `wechat` middleware does: `wechat-crypto` (getSignature + decrypt) and
// xml2js (parseString with trim, then the middleware's formatMessage), with the same
// Request in and Response out on both sides. Deno and Bun print our figures (and the
// peer's when its CommonJS packages load there).
//
// Our crypto runs on node:crypto where the runtime has it (all three do). One more row
// forces the WebCrypto path (WebCrypto AES, SHA-1 in JavaScript) — what Workers run — so
// the fallback's cost stays visible.
//
// Run: `npm run bench`, or directly: `node --import tsx test/bench/push.ts`,
// `deno run -A test/bench/push.ts`, `bun test/bench/push.ts`.
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { MiniProgram, PushReceiver } from "../../mod.ts";
import { type CryptoPath, forceCryptoPath } from "../../src/runtime/crypto.ts";
import { compare, median, printTable, type Row, timePerCall } from "./_lib.ts";

const TOKEN = "benchToken123";
const AES_KEY = "kefuEdgeBenchKey0123456789abcdefghijklmnopq";
const APP_ID = "wxbench0000000001";
const NONCE = "415670741";
const ITERATIONS = 10_000;
/** How many deliveries are in flight at once in the throughput rows: a server under load. */
const IN_FLIGHT = 16;
const ROUNDS = 10;
// Every timing helper warms up with at most 500 calls first; each side has its own pool.
const POOL = ITERATIONS + 500 + ROUNDS * IN_FLIGHT;

type Format = "json" | "xml";

interface Delivery {
  url: string;
  body: string;
  contentType: string;
}

/** WeChat's encryption, done once up front with node:crypto so the timed loops only receive. */
function encrypt(message: string): string {
  const key = Buffer.from(`${AES_KEY}=`, "base64");
  const text = Buffer.from(message, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(text.length);
  const full = Buffer.concat([randomBytes(16), length, text, Buffer.from(APP_ID)]);
  const pad = 32 - (full.length % 32);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([full, Buffer.alloc(pad, pad)])), cipher.final()]).toString(
    "base64",
  );
}

function sign(...parts: string[]): string {
  return createHash("sha1").update(parts.sort().join("")).digest("hex");
}

/** A typical customer-service text message, encrypted and signed as WeChat sends it. */
function delivery(format: Format, msgId: string, timestamp: string): Delivery {
  const fields = {
    ToUserName: "gh_97417a04a28d",
    FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    CreateTime: timestamp,
    MsgType: "text",
    Content: "你好，我想咨询一下订单 #20240425-0042 的发货时间，谢谢！",
  };
  const inner = format === "json"
    ? JSON.stringify({ ...fields, CreateTime: Number(timestamp) }).replace(/}$/, `,"MsgId":${msgId}}`)
    : `<xml><ToUserName><![CDATA[${fields.ToUserName}]]></ToUserName><FromUserName><![CDATA[${fields.FromUserName}]]></FromUserName><CreateTime>${timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${fields.Content}]]></Content><MsgId>${msgId}</MsgId></xml>`;
  const ciphertext = encrypt(inner);
  const body = format === "json"
    ? JSON.stringify({ ToUserName: fields.ToUserName, Encrypt: ciphertext })
    : `<xml><ToUserName><![CDATA[${fields.ToUserName}]]></ToUserName><Encrypt><![CDATA[${ciphertext}]]></Encrypt></xml>`;
  const query = new URLSearchParams({
    signature: sign(TOKEN, timestamp, NONCE),
    timestamp,
    nonce: NONCE,
    openid: fields.FromUserName,
    encrypt_type: "aes",
    msg_signature: sign(TOKEN, timestamp, NONCE, ciphertext),
  });
  return {
    url: `https://example.com/wechat/callback?${query}`,
    body,
    contentType: format === "json" ? "application/json" : "text/xml",
  };
}

function pool(format: Format, timestamp: string, base: bigint): Delivery[] {
  return Array.from({ length: POOL }, (_, i) => delivery(format, String(base + BigInt(i)), timestamp));
}

function toRequest(d: Delivery): Request {
  return new Request(d.url, { method: "POST", headers: { "content-type": d.contentType }, body: d.body });
}

/** Cycles through a pool of distinct deliveries. */
function cursor(deliveries: Delivery[]): () => Delivery {
  let i = 0;
  return () => deliveries[i++ % deliveries.length]!;
}

// --- node-webot, as the `wechat` middleware uses it ------------------------------

interface Peer {
  handle(request: Request, format: Format): Promise<Response>;
}

type XmlNode = Record<string, unknown[]>;

function loadPeer(): Peer | undefined {
  try {
    const require = createRequire(import.meta.url);
    const WXBizMsgCrypt = require("wechat-crypto") as new (token: string, key: string, id: string) => {
      getSignature(timestamp: string, nonce: string, encrypt: string): string;
      decrypt(text: string): { message: string; id: string };
    };
    const xml2js = require("xml2js") as {
      parseString(xml: string, options: { trim: boolean }, cb: (err: unknown, result: { xml: XmlNode }) => void): void;
    };
    const cryptor = new WXBizMsgCrypt(TOKEN, AES_KEY, APP_ID);
    const parseXml = (xml: string) =>
      new Promise<XmlNode>((resolve, reject) =>
        xml2js.parseString(xml, { trim: true }, (err, result) => err ? reject(err) : resolve(result.xml))
      );
    // The middleware's formatMessage: xml2js arrays of one become plain values.
    const formatMessage = (result: XmlNode): Record<string, unknown> => {
      const message: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(result)) {
        if (!Array.isArray(value) || value.length === 0) continue;
        if (value.length === 1) {
          const v = value[0];
          message[key] = typeof v === "object" ? formatMessage(v as XmlNode) : String(v ?? "").trim();
        } else {
          message[key] = value.map((v) => formatMessage(v as XmlNode));
        }
      }
      return message;
    };
    return {
      async handle(request, format) {
        const query = new URL(request.url).searchParams;
        const timestamp = query.get("timestamp") ?? "";
        const nonce = query.get("nonce") ?? "";
        if (sign(TOKEN, timestamp, nonce) !== query.get("signature")) {
          return new Response("Invalid signature", { status: 401 });
        }
        const text = await request.text();
        const outer = format === "xml" ? formatMessage(await parseXml(text)) : JSON.parse(text);
        const encrypted = String(outer.Encrypt);
        if (cryptor.getSignature(timestamp, nonce, encrypted) !== query.get("msg_signature")) {
          return new Response("Invalid signature", { status: 401 });
        }
        const { message, id } = cryptor.decrypt(encrypted);
        if (id !== APP_ID) return new Response("Invalid appid", { status: 403 });
        const parsed = format === "xml" ? formatMessage(await parseXml(message)) : JSON.parse(message);
        if (parsed.MsgType !== "text") throw new Error("Peer parsed the wrong message");
        return new Response("success");
      },
    };
  } catch {
    return undefined;
  }
}

// --- The benchmark -------------------------------------------------------------------

async function expectSuccess(response: Promise<Response>): Promise<void> {
  const r = await response;
  const text = await r.text();
  if (text !== "success") throw new Error(`Benchmark request failed: ${r.status} ${text}`);
}

/** Mean ms per call of `count` calls with `inFlight` of them running at once. */
async function concurrentPerCall(fn: () => Promise<unknown>, count: number, inFlight: number): Promise<number> {
  let started = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (started++ < count) await fn();
  }));
  return (performance.now() - start) / count;
}

/** Like _lib's compare(), with `inFlight` calls at once: alternating rounds, medians. */
async function compareConcurrent(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  iterations: number,
  inFlight: number,
): Promise<{ a: number; b: number; ratio: number }> {
  await concurrentPerCall(a, 500, inFlight);
  await concurrentPerCall(b, 500, inFlight);
  const per = Math.ceil(iterations / ROUNDS);
  const ta: number[] = [];
  const tb: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const first = r % 2 === 0;
    if (first) ta.push(await concurrentPerCall(a, per, inFlight));
    tb.push(await concurrentPerCall(b, per, inFlight));
    if (!first) ta.push(await concurrentPerCall(a, per, inFlight));
  }
  return { a: median(ta), b: median(tb), ratio: median(ta.map((x, i) => x / tb[i]!)) };
}

/**
 * Our receiver over a fresh store, fed distinct deliveries; counts handler runs. `standalone`
 * builds a PushReceiver on its own, as a user who only receives would: the same checks and
 * exactly-once claims, without the MiniProgram's send-window tracking.
 */
function ours(
  format: Format,
  timestamp: string,
  nowMs: number,
  standalone = false,
): { once: () => Promise<void>; handled: () => number } {
  const receiver = standalone
    ? new PushReceiver({ appId: APP_ID, token: TOKEN, encodingAESKey: AES_KEY, now: () => nowMs })
    : new MiniProgram({
      appId: APP_ID,
      appSecret: "bench-secret",
      now: () => nowMs,
      push: { token: TOKEN, encodingAESKey: AES_KEY },
    }).push;
  let handled = 0;
  const handler = () => void handled++;
  const next = cursor(pool(format, timestamp, 7_360_000_000_000_000_000n));
  return { once: () => expectSuccess(receiver.handle(toRequest(next()), handler)), handled: () => handled };
}

interface Mode {
  name: string;
  inFlight: number;
  target: string | undefined;
  /** Forced for the whole row (ciphers and signatures); default the runtime's own choice. */
  path?: CryptoPath;
  /** A PushReceiver on its own instead of a MiniProgram's (no send-window tracking). */
  standalone?: boolean;
}

async function measure(format: Format, peer: Peer | undefined, nowMs: number, modes: Mode[]): Promise<Row[]> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const label = `${format.toUpperCase()} encrypted text: verify + decrypt + parse`;
  const rows: Row[] = [];
  for (const mode of modes) {
    forceCryptoPath(mode.path);
    try {
      rows.push(await measureMode(format, peer, nowMs, timestamp, `${label}, ${mode.name}`, mode));
    } finally {
      forceCryptoPath(undefined);
    }
  }
  return rows;
}

async function measureMode(
  format: Format,
  peer: Peer | undefined,
  nowMs: number,
  timestamp: string,
  metric: string,
  mode: Mode,
): Promise<Row> {
  const mine = ours(format, timestamp, nowMs, mode.standalone);
  if (peer === undefined) {
    const ms = mode.inFlight === 1
      ? await timePerCall(mine.once, ITERATIONS)
      : await concurrentPerCall(mine.once, ITERATIONS, mode.inFlight);
    if (mine.handled() < ITERATIONS) throw new Error("The handler did not run for every message");
    return { bench: "push", metric, value: 1000 / ms, unit: "msgs/s" };
  }
  const next = cursor(pool(format, timestamp, 7_360_000_000_000_000_000n));
  const theirs = () => expectSuccess(peer.handle(toRequest(next()), format));
  const result = mode.inFlight === 1
    ? await compare(mine.once, theirs, ITERATIONS, ROUNDS)
    : await compareConcurrent(mine.once, theirs, ITERATIONS, mode.inFlight);
  if (mine.handled() < ITERATIONS) throw new Error("The handler did not run for every message");
  // compare() gives the median ratio of times (ours / peer); throughput is its inverse.
  const ratio = 1 / result.ratio;
  return {
    bench: "push",
    metric,
    value: 1000 / result.a,
    unit: "msgs/s",
    baseline: `wechat-crypto + ${format === "xml" ? "xml2js" : "JSON.parse"} ${Math.round(1000 / result.b)} msgs/s`,
    ratio,
    ...(mode.target === undefined ? {} : { target: mode.target, met: ratio >= 1 }),
  };
}

/** Runs the push benchmark and returns its rows (ratio = our throughput / the peer's). */
export async function run(): Promise<Row[]> {
  const peer = loadPeer();
  const now = Date.now();
  const modes: Mode[] = [
    { name: `${IN_FLIGHT} in flight`, inFlight: IN_FLIGHT, target: ">= 1.0x" },
    { name: "1 at a time", inFlight: 1, target: ">= 1.0x" },
  ];
  const webCrypto: Mode = { name: "1 at a time, WebCrypto path", inFlight: 1, target: undefined, path: "webcrypto" };
  // Where the JSON rows' time goes: the same receiver without the send-window tracker's two
  // store operations a message (what the peer does not do at all).
  const standalone: Mode = {
    name: "1 at a time, PushReceiver alone",
    inFlight: 1,
    target: undefined,
    standalone: true,
  };
  return [
    ...await measure("xml", peer, now, modes),
    ...await measure("json", peer, now, [...modes, webCrypto, standalone]),
  ];
}

const isMain = (import.meta as { main?: boolean }).main ?? process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const rows = await run();
  // `--json`: machine-readable rows, for `npm run bench` collecting the Deno and Bun figures.
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
  else printTable(rows);
}
