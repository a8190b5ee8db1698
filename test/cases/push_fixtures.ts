// Shared helpers of the push cases (registers no test). The oracles here use node:crypto,
// an implementation independent of src/push, so expected values are never computed by
// the code under test.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { MiniProgram, type PushHandler, type PushMessage, type PushOptions } from "../../mod.ts";
import officialVectors from "../fixtures/official_push.json" with { type: "json" };

export interface Vectors {
  url_verification: { token: string; timestamp: string; nonce: string; echostr: string; signature: string };
  plain_post: { token: string; timestamp: string; nonce: string; signature: string; body: string };
  safe_post: {
    token: string;
    encodingAESKey: string;
    appId: string;
    query: string;
    body: string;
    decrypted: string;
  };
  encrypted_reply: {
    token: string;
    encodingAESKey: string;
    appId: string;
    random: string;
    plaintext: string;
    encrypt: string;
    timestamp: string;
    nonce: string;
    msg_signature: string;
  };
}

/** The official vectors of WeChat's message-push documentation (test/fixtures/README.md). */
export function loadVectors(): Promise<Vectors> {
  return Promise.resolve(officialVectors as Vectors);
}

// Distinctive values, so a test can prove none of them leaks into a response or a log.
export const TOKEN = "Tok3nSecretValue";
export const AES_KEY = "kefuEdgeTestKey0123456789abcdefghijklmnopqr";
export const OTHER_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";
export const APP_ID = "wx1234567890abcdef";
export const NOW_SECONDS = 1_714_112_445;
export const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
export const GH_ID = "gh_97417a04a28d";

/** Independent WeChat signature: hex SHA-1 of the sorted parts. */
export function sign(...parts: string[]): string {
  return createHash("sha1").update([...parts].sort().join("")).digest("hex");
}

function aesKey(encodingAESKey: string): Buffer {
  const key = Buffer.from(`${encodingAESKey}=`, "base64");
  if (key.length !== 32) throw new Error("Test key must decode to 32 bytes");
  return key;
}

/** Independent WeChat encryption of raw bytes that already carry their padding. */
export function encryptRaw(padded: Uint8Array, encodingAESKey = AES_KEY): string {
  const key = aesKey(encodingAESKey);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString("base64");
}

/** FullStr = random(16) + length(4, BE) + message + appId, with WeChat's PKCS#7 to 32. */
export function fullStr(message: Uint8Array, appId = APP_ID, random: Uint8Array = randomBytes(16)): Uint8Array {
  const app = Buffer.from(appId, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(message.length);
  const body = Buffer.concat([random, length, message, app]);
  const pad = 32 - (body.length % 32);
  return Buffer.concat([body, Buffer.alloc(pad, pad)]);
}

/** Independent WeChat encryption of a message. */
export function encryptOracle(message: string | Uint8Array, options: { appId?: string; key?: string } = {}): string {
  const bytes = typeof message === "string" ? Buffer.from(message, "utf8") : message;
  return encryptRaw(fullStr(bytes, options.appId ?? APP_ID), options.key ?? AES_KEY);
}

/** Independent WeChat decryption: returns the message, the trailing appId and the pad value. */
export function decryptOracle(
  encrypt: string,
  encodingAESKey = AES_KEY,
): { message: string; appId: string; pad: number; random: Buffer } {
  const key = aesKey(encodingAESKey);
  const decipher = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(encrypt, "base64")), decipher.final()]);
  const pad = plain[plain.length - 1]!;
  const content = plain.subarray(0, plain.length - pad);
  const length = content.readUInt32BE(16);
  return {
    message: content.subarray(20, 20 + length).toString("utf8"),
    appId: content.subarray(20 + length).toString("utf8"),
    pad,
    random: content.subarray(0, 16),
  };
}

/** A message of every typed kind, as the parser must return it, and its JSON and XML bodies. */
export interface Sample {
  name: string;
  expected: Record<string, string | number>;
  json: string;
  xml: string;
}

function xmlOf(fields: Record<string, string | number>): string {
  const inner = Object.entries(fields)
    .map(([k, v]) => typeof v === "number" || /^\d+$/.test(v) ? `<${k}>${v}</${k}>` : `<${k}><![CDATA[${v}]]></${k}>`)
    .join("\n  ");
  return `<xml>\n  ${inner}\n</xml>`;
}

function sample(name: string, fields: Record<string, string | number>, rawMsgId?: string): Sample {
  // The JSON body carries MsgId as a bare number, as WeChat sends it.
  let json = JSON.stringify(fields);
  if (rawMsgId !== undefined) json = json.replace(`"MsgId":"${rawMsgId}"`, `"MsgId":${rawMsgId}`);
  return { name, expected: fields, json, xml: xmlOf(fields) };
}

const common = { ToUserName: GH_ID, FromUserName: OPENID, CreateTime: NOW_SECONDS };

export const SAMPLES: Sample[] = [
  sample(
    "text",
    { ...common, MsgType: "text", Content: '你好 <world> & "friends" 😀', MsgId: "7360000000000000123" },
    "7360000000000000123",
  ),
  sample("image", {
    ...common,
    MsgType: "image",
    PicUrl: "https://mmbiz.qpic.cn/mmbiz_jpg/abc/0",
    MediaId: "MEDIA_ID_1",
    MsgId: "7360000000000000124",
  }, "7360000000000000124"),
  sample("miniprogrampage", {
    ...common,
    MsgType: "miniprogrampage",
    Title: "订单详情",
    AppId: "wxba5fad812f8e6fb9",
    PagePath: "pages/order/detail?id=42&from=kefu",
    ThumbUrl: "https://mmbiz.qpic.cn/thumb/1",
    ThumbMediaId: "THUMB_MEDIA_ID",
    MsgId: "18446744073709551615",
  }, "18446744073709551615"),
  sample("event user_enter_tempsession", {
    ...common,
    MsgType: "event",
    Event: "user_enter_tempsession",
    SessionFrom: "order-42",
  }),
  sample("other: event debug_demo", { ...common, MsgType: "event", Event: "debug_demo", debug_str: "hello world" }),
  sample("other: voice message", {
    ...common,
    MsgType: "voice",
    MediaId: "VOICE_1",
    Format: "amr",
    MsgId: "7360000000000000125",
    BusinessId: "9001",
  }, "7360000000000000125"),
];

export interface PushRequestInit {
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** "plain" (default) or "aes": encrypts `body` into an envelope of `format`. */
  mode?: "plain" | "aes";
  format?: "json" | "xml";
  timestamp?: string;
  nonce?: string;
  token?: string;
  /** Replaces the query entirely. */
  query?: string;
  /** Overrides for individual query parameters (null removes one). */
  params?: Record<string, string | null>;
  method?: string;
  headers?: Record<string, string>;
  /** In aes mode: the Encrypt value to send instead of encrypting `body`. */
  encrypt?: string;
}

/** Builds a request as WeChat would send it, signed with the independent oracle. */
export function pushRequest(init: PushRequestInit = {}): Request {
  const timestamp = init.timestamp ?? String(NOW_SECONDS);
  const nonce = init.nonce ?? "415670741";
  const token = init.token ?? TOKEN;
  const format = init.format ?? "json";
  const params: Record<string, string | null> = { signature: sign(token, timestamp, nonce), timestamp, nonce };
  let body = init.body;
  if (init.mode === "aes") {
    const encrypt = init.encrypt ?? encryptOracle(typeof body === "string" ? body : "");
    body = format === "json"
      ? JSON.stringify({ ToUserName: GH_ID, Encrypt: encrypt })
      : `<xml><ToUserName><![CDATA[${GH_ID}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
    Object.assign(params, {
      openid: OPENID,
      encrypt_type: "aes",
      msg_signature: sign(token, timestamp, nonce, encrypt),
    });
  }
  Object.assign(params, init.params ?? {});
  const query = init.query ??
    Object.entries(params)
      .filter((entry): entry is [string, string] => entry[1] !== null)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join("&");
  const method = init.method ?? "POST";
  const contentType = format === "json" ? "application/json" : "text/xml";
  const requestInit: RequestInit & { duplex?: "half" } = {
    method,
    headers: { "content-type": contentType, ...init.headers },
  };
  if (method !== "GET" && method !== "HEAD" && body !== undefined) {
    requestInit.body = body as BodyInit;
    if (body instanceof ReadableStream) requestInit.duplex = "half";
  }
  return new Request(`https://example.com/wechat/callback?${query}`, requestInit);
}

/** Records every call of a handler. */
export function recordingHandler(
  result: (message: PushMessage, call: number) => ReturnType<PushHandler> = () => undefined,
): { handler: PushHandler; calls: PushMessage[] } {
  const calls: PushMessage[] = [];
  return {
    calls,
    handler: (message) => {
      calls.push(message);
      return result(message, calls.length);
    },
  };
}

export interface Logged {
  lines: string[];
  logger: { warn(message: string): void };
}

export function captureLogger(): Logged {
  const lines: string[] = [];
  return { lines, logger: { warn: (message) => void lines.push(message) } };
}

/** A MiniProgram with push configured; `now` is fixed at NOW_SECONDS unless given. */
export function pushApp(
  push: Partial<PushOptions> = {},
  options: { now?: () => number; logger?: Logged["logger"]; appId?: string } = {},
): MiniProgram {
  return new MiniProgram({
    appId: options.appId ?? APP_ID,
    appSecret: "APP_SECRET_VALUE_0123456789",
    fetch: () => Promise.reject(new Error("No network in push tests")),
    now: options.now ?? (() => NOW_SECONDS * 1000),
    logger: options.logger ?? captureLogger().logger,
    push: { token: TOKEN, encodingAESKey: AES_KEY, ...push },
  });
}

/** A MiniProgram in plain mode: a push token and no EncodingAESKey. */
export function plainApp(
  push: Partial<PushOptions> = {},
  options: Parameters<typeof pushApp>[1] = {},
): MiniProgram {
  return pushApp({ encodingAESKey: "", ...push }, options);
}

/** Reads an error response: status, code and the raw text (for leak checks). */
export async function readError(response: Response): Promise<{ status: number; code: string; text: string }> {
  const text = await response.text();
  const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
  if (typeof parsed.error?.code !== "string" || typeof parsed.error.message !== "string") {
    throw new Error(`Not an error body: ${text}`);
  }
  return { status: response.status, code: parsed.error.code, text };
}

/** The text content of one element of a flat XML document (test-side reader, not the SDK's parser). */
export function xmlField(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>(?:<!\\[CDATA\\[([\\s\\S]*?)\\]\\]>|([^<]*))</${name}>`).exec(xml);
  return match === null ? undefined : match[1] ?? match[2];
}

export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}
