// A request whose body stops, sent over a raw TCP connection (node:net, which Deno and Bun
// both have): the headers and the first bytes of a longer declared body, then nothing. The
// Deno and Bun server tests use it to see whether, and when, the server answers or closes.
import { connect } from "node:net";
import { buildPush } from "../../src/testing/mod.ts";

/** What came back over the connection. */
export interface StalledOutcome {
  /** The answer's status, when a whole answer arrived. */
  status: number | undefined;
  /** The answer's body (or whatever part of an answer arrived). */
  body: string;
  /** Whether the server closed the connection. */
  closed: boolean;
  /** Milliseconds from the last byte sent to the answer (or the close, or `capMs`). */
  elapsedMs: number;
}

/**
 * POSTs `path` to `origin` declaring `declaredBytes` of body and sending only `sentBytes` of
 * it; resolves when a whole answer arrived, the server closed the connection, or `capMs`
 * passed (then with `status` undefined and `closed` false).
 */
export function stalledRequest(
  origin: string,
  path: string,
  options: { headers?: Record<string, string>; declaredBytes: number; sentBytes: number; capMs: number },
): Promise<StalledOutcome> {
  const { hostname, port } = new URL(origin);
  const headers = { ...options.headers, host: `${hostname}:${port}`, "content-length": String(options.declaredBytes) };
  const head = `POST ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = "";
    let started = 0;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(cap);
      socket.destroy();
      const parsed = parseAnswer(received);
      resolve({ ...parsed, closed, elapsedMs: Date.now() - started });
    };
    const cap = setTimeout(() => finish(false), options.capMs);
    socket.on("connect", () => {
      socket.write(head + "x".repeat(options.sentBytes), () => (started = Date.now()));
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("utf8");
      if (parseAnswer(received).status !== undefined) finish(false);
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

// A whole HTTP/1.1 answer with a Content-Length (what the servers under test send for JSON).
function parseAnswer(text: string): { status: number | undefined; body: string } {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { status: undefined, body: text };
  const head = text.slice(0, end);
  const body = text.slice(end + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  const whole = length !== undefined && new TextEncoder().encode(body).byteLength >= Number(length);
  return { status: whole && !Number.isNaN(status) ? status : undefined, body };
}

/** The server settings the deadline tests start their server with. */
export const DEADLINE_SERVER = {
  env: {
    WECHAT_APPID: "wx1234567890abcdef",
    WECHAT_SECRET: "deadline-secret",
    WECHAT_TOKEN: "DeadlineToken0123",
    API_KEY: "deadline-key-0123456789",
  },
  bodyTimeoutMs: 300,
} as const;

/**
 * Against a server started with {@link DEADLINE_SERVER}: a signed push and an authenticated
 * `/api/messages` call whose bodies stop after 20 bytes (each waited for up to 5 s), then the
 * same push whole, through `fetch`.
 */
export async function stallPushAndApi(origin: string): Promise<{ stalled: StalledOutcome[]; whole: Response }> {
  const { WECHAT_APPID: appId, WECHAT_TOKEN: token, API_KEY: apiKey } = DEADLINE_SERVER.env;
  const message = {
    ToUserName: "gh_1",
    FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    CreateTime: Math.floor(Date.now() / 1000),
    MsgType: "text",
    Content: "stalled",
    MsgId: "7360000000000000123",
  };
  const push = await buildPush({ appId, token, format: "xml" }, message);
  const target = new URL(push.url);
  const stalled = [
    await stalledRequest(origin, target.pathname + target.search, {
      headers: { "content-type": "text/xml" },
      declaredBytes: push.body.length,
      sentBytes: 20,
      capMs: 5000,
    }),
    await stalledRequest(origin, "/api/messages", {
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      declaredBytes: 200,
      sentBytes: 20,
      capMs: 5000,
    }),
  ];
  const whole = await fetch(origin + target.pathname + target.search, {
    method: "POST",
    headers: { "content-type": "text/xml" },
    body: push.body,
  });
  return { stalled, whole };
}
