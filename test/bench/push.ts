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
import {
  AES_KEY,
  APP_ID,
  compare,
  median,
  OPEN_ID,
  printTable,
  type Row,
  sized,
  TEXT,
  timePerCall,
  TOKEN,
} from "./_lib.ts";

const NONCE = "415670741";
const ITERATIONS = sized(6_000, 2_000);
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
    FromUserName: OPEN_ID,
    CreateTime: timestamp,
    MsgType: "text",
    Content: TEXT,
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

// --- The same work, written plainly ------------------------------------------------------
//
// What the push path must do for one encrypted JSON message, and nothing more, written the
// way a careful hand-written endpoint would: check `signature` and `msg_signature` (SHA-1 of
// the sorted parts), read the body through a 64 KiB limit (counting what arrives, whatever
// Content-Length says), decrypt WeChat's AES-256-CBC (PKCS#7 to 32 bytes) and check the AppID
// at its end, parse the JSON with the 64-bit MsgId kept exact (quoted before JSON.parse, which
// would round it), and claim the message in memory (a lease, then the done mark after the
// handler), so a retry is answered without running the handler again.
// Its crypto is either the runtime's WebCrypto (`crypto.subtle`: what any runtime has) or
// node-webot's wechat-crypto (node:crypto underneath), as the diagnostic row does.

/** The signature and decryption a plain endpoint uses. */
interface PlainCrypto {
  sha1Hex(text: string): Promise<string> | string;
  /** The decrypted plaintext of `Encrypt` (random 16 bytes, length, message, AppID), unpadded. */
  decrypt(encrypt: string): Promise<{ message: string; appId: string }> | { message: string; appId: string };
}

const BODY_LIMIT = 64 * 1024;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** WebCrypto: SHA-1 digests, and AES-CBC with one extra block so WebCrypto's 16-byte unpadding passes. */
function subtleCrypto(): PlainCrypto {
  const keyBytes = base64Bytes(`${AES_KEY}=`);
  const iv = keyBytes.slice(0, 16);
  const key = crypto.subtle.importKey("raw", keyBytes, "AES-CBC", false, ["encrypt", "decrypt"]);
  const hex = (buffer: ArrayBuffer) =>
    Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  return {
    sha1Hex: async (text) => hex(await crypto.subtle.digest("SHA-1", utf8Encoder.encode(text))),
    async decrypt(encrypt) {
      const cipher = base64Bytes(encrypt);
      if (cipher.length === 0 || cipher.length % 32 !== 0) throw new Error("bad ciphertext length");
      const aes = await key;
      // WeChat pads to 32 bytes, WebCrypto checks PKCS#7 to 16: append the block that decrypts
      // to a full 16-byte pad (the encryption of nothing, chained on the last block), then
      // strip WeChat's own padding by hand.
      const last = cipher.slice(cipher.length - 16);
      const extra = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, aes, new Uint8Array(0)));
      const padded = new Uint8Array(cipher.length + 16);
      padded.set(cipher);
      padded.set(extra, cipher.length);
      const plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, aes, padded));
      const pad = plain[plain.length - 1]!;
      if (pad < 1 || pad > 32) throw new Error("bad padding");
      const content = plain.subarray(16, plain.length - pad);
      const length = new DataView(content.buffer, content.byteOffset, content.byteLength).getUint32(0);
      return {
        message: utf8Decoder.decode(content.subarray(4, 4 + length)),
        appId: utf8Decoder.decode(content.subarray(4 + length)),
      };
    },
  };
}

/** node-webot's wechat-crypto (node:crypto underneath); `undefined` where it does not load. */
function wechatCrypto(): PlainCrypto | undefined {
  try {
    const require = createRequire(import.meta.url);
    const WXBizMsgCrypt = require("wechat-crypto") as new (token: string, key: string, id: string) => {
      decrypt(text: string): { message: string; id: string };
    };
    const cryptor = new WXBizMsgCrypt(TOKEN, AES_KEY, APP_ID);
    return {
      sha1Hex: (text) => createHash("sha1").update(text).digest("hex"),
      decrypt(encrypt) {
        const { message, id } = cryptor.decrypt(encrypt);
        return { message, appId: id };
      },
    };
  } catch {
    return undefined;
  }
}

/** Reads at most BODY_LIMIT bytes as they arrive; `undefined` when the body is larger. */
async function readBounded(request: Request): Promise<string | undefined> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > BODY_LIMIT) return undefined;
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > BODY_LIMIT) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return utf8Decoder.decode(chunks[0]);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return utf8Decoder.decode(bytes);
}

/** The same work as the push path for encrypted JSON, with `plain`'s crypto; counts handler runs. */
function sameWork(plain: PlainCrypto, nowMs: number): Peer & { handled: () => number } {
  const claims = new Map<string, { done: boolean; until: number }>();
  let handled = 0;
  const handler = () => void handled++;
  const refuse = (status: number, text: string) => new Response(text, { status });
  return {
    handled: () => handled,
    async handle(request) {
      const query = new URL(request.url).searchParams;
      const timestamp = query.get("timestamp") ?? "";
      const nonce = query.get("nonce") ?? "";
      if (Math.abs(nowMs / 1000 - Number(timestamp)) > 300) return refuse(401, "stale timestamp");
      if (await plain.sha1Hex([TOKEN, timestamp, nonce].sort().join("")) !== query.get("signature")) {
        return refuse(401, "bad signature");
      }
      const body = await readBounded(request);
      if (body === undefined) return refuse(413, "too large");
      const encrypt = (JSON.parse(body) as { Encrypt?: unknown }).Encrypt;
      if (typeof encrypt !== "string") return refuse(400, "no Encrypt");
      if (await plain.sha1Hex([TOKEN, timestamp, nonce, encrypt].sort().join("")) !== query.get("msg_signature")) {
        return refuse(401, "bad msg_signature");
      }
      const { message, appId } = await plain.decrypt(encrypt);
      if (appId !== APP_ID) return refuse(403, "wrong AppID");
      // MsgId is a 64-bit integer: JSON.parse would round it, so it is read as a string.
      const parsed = JSON.parse(message.replace(/"MsgId"\s*:\s*(\d+)/, '"MsgId":"$1"')) as Record<string, unknown>;
      if (parsed.MsgType !== "text" || typeof parsed.MsgId !== "string") throw new Error("same-work parsed it wrong");
      const key = `${parsed.FromUserName}:${parsed.MsgId}`;
      const now = Date.now();
      const held = claims.get(key);
      if (held !== undefined && (held.done || held.until > now)) return new Response("success");
      claims.set(key, { done: false, until: now + 5_000 });
      // The handler (it does nothing, as ours does), awaited as a receiver awaits it.
      await Promise.resolve(handler());
      claims.set(key, { done: true, until: now + 660_000 });
      return new Response("success");
    },
  };
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
  /**
   * What the row compares with: node-webot's packages doing the raw work (default), or the
   * same work as the push path written plainly (see sameWork) with WebCrypto or wechat-crypto.
   */
  against?: "peer" | "same work" | "same work, wechat-crypto";
  /** The row's metric; default "<format> encrypted text: verify + decrypt + parse, <name>". */
  metric?: string;
}

async function measure(format: Format, peer: Peer | undefined, nowMs: number, modes: Mode[]): Promise<Row[]> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const label = `${format.toUpperCase()} encrypted text: verify + decrypt + parse`;
  const rows: Row[] = [];
  for (const mode of modes) {
    forceCryptoPath(mode.path);
    try {
      const metric = mode.metric ?? `${mode.target === undefined ? "diagnostic: " : ""}${label}, ${mode.name}`;
      rows.push(await measureMode(format, peer, nowMs, timestamp, metric, mode));
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
  let baseline: { handle: Peer["handle"]; name: string; handled?: () => number } | undefined;
  if (mode.against === undefined || mode.against === "peer") {
    baseline = peer && { handle: peer.handle, name: `wechat-crypto + ${format === "xml" ? "xml2js" : "JSON.parse"}` };
  } else {
    const plain = mode.against === "same work" ? subtleCrypto() : wechatCrypto();
    const work = plain && sameWork(plain, nowMs);
    const name = mode.against === "same work" ? "same work, WebCrypto" : "same work, wechat-crypto";
    baseline = work && { handle: work.handle, name, handled: work.handled };
  }
  if (baseline === undefined) {
    const ms = mode.inFlight === 1
      ? await timePerCall(mine.once, ITERATIONS)
      : await concurrentPerCall(mine.once, ITERATIONS, mode.inFlight);
    if (mine.handled() < ITERATIONS) throw new Error("The handler did not run for every message");
    return { bench: "push", metric, value: 1000 / ms, unit: "msgs/s" };
  }
  const next = cursor(pool(format, timestamp, 7_360_000_000_000_000_000n));
  const theirs = () => expectSuccess(baseline.handle(toRequest(next()), format));
  const result = mode.inFlight === 1
    ? await compare(mine.once, theirs, ITERATIONS, ROUNDS)
    : await compareConcurrent(mine.once, theirs, ITERATIONS, mode.inFlight);
  if (mine.handled() < ITERATIONS) throw new Error("The handler did not run for every message");
  if (baseline.handled !== undefined && baseline.handled() < ITERATIONS) {
    throw new Error("The same-work baseline did not run its handler for every message");
  }
  // compare() gives the median ratio of times (ours / baseline); throughput is its inverse.
  const ratio = 1 / result.ratio;
  return {
    bench: "push",
    metric,
    value: 1000 / result.a,
    unit: "msgs/s",
    baseline: `${baseline.name} ${Math.round(1000 / result.b)} msgs/s`,
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
  // JSON: the full push path (a MiniProgram's receiver: exactly-once claims and the send
  // window) against the same work written plainly, held to >= 1.0x; the raw peer, which does
  // none of the claims, the body limit or the exact ids, stays as a diagnostic.
  const sameWork = (inFlight: number, target?: string): Mode => ({
    name: `${inFlight === 1 ? "1 at a time" : `${inFlight} in flight`}`,
    metric: `JSON encrypted text: full push path vs the same work written plainly (WebCrypto), ${
      inFlight === 1 ? "1 at a time" : `${inFlight} in flight`
    }`,
    inFlight,
    target,
    against: "same work",
  });
  const json: Mode[] = [
    sameWork(IN_FLIGHT, ">= 1.0x"),
    sameWork(1, ">= 1.0x"),
    {
      name: "1 at a time, against the same work with wechat-crypto",
      metric: "diagnostic: JSON encrypted text: full push path vs the same work with wechat-crypto, 1 at a time",
      inFlight: 1,
      target: undefined,
      against: "same work, wechat-crypto",
    },
    {
      name: "WebCrypto path",
      metric: "diagnostic: JSON encrypted text: full push path on its WebCrypto path (as on Workers) vs the same " +
        "work written plainly (WebCrypto), 1 at a time",
      inFlight: 1,
      target: undefined,
      path: "webcrypto",
      against: "same work",
    },
    ...modes.map((m): Mode => ({ ...m, name: `${m.name}, raw peer`, target: undefined })),
    { name: "1 at a time, WebCrypto path, raw peer", inFlight: 1, target: undefined, path: "webcrypto" },
    // Where the time goes: the same receiver without the send-window tracker's two store
    // operations a message.
    { name: "1 at a time, PushReceiver alone, raw peer", inFlight: 1, target: undefined, standalone: true },
  ];
  return [
    ...await measure("xml", peer, now, modes),
    ...await measure("json", peer, now, json),
  ];
}

const isMain = (import.meta as { main?: boolean }).main ?? process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const rows = await run();
  // `--json`: machine-readable rows, for `npm run bench` collecting the Deno and Bun figures.
  if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
  else printTable(rows);
}
