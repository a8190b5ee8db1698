// What every server entry must do once started against a stub WeChat (worker/deno.ts,
// worker/bun.ts, worker/node.ts; their tests start them): /health, /openapi.json, /api with and without the
// key, a push refused while WECHAT_TOKEN is unset with one line on stderr, and one request line
// per request on stdout, never with the query string. node:assert, so Node and Bun share it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/** The bearer key the servers under test are started with. */
export const SMOKE_API_KEY = "smoke-key-0123456789";

/** A started server: its origin and what it printed so far. */
export interface SmokeServer {
  url: string;
  stdout(): string;
  stderr(): string;
}

/** The lines of one stream once `line` is among them (the log may trail the response a little). */
export async function loggedLines(output: () => string, line: string | RegExp): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  const has = () => typeof line === "string" ? output().includes(line) : line.test(output());
  while (!has() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return output().split("\n").filter((l) => l !== "");
}

/**
 * Runs the checks against `server`, whose upstream records each call it gets in `seen`
 * (`<path> <access_token>`), answering stable_token with `SMOKE_TOKEN`.
 */
export async function serverSmoke(server: SmokeServer, seen: string[]): Promise<void> {
  const { url } = server;
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });

  // The OpenAPI document, which Workers serve as a static asset: the server serves the same file.
  const openApi = await fetch(`${url}/openapi.json`);
  assert.equal(openApi.status, 200);
  assert.match(openApi.headers.get("content-type") ?? "", /^application\/json/);
  const published = JSON.parse(readFileSync(new URL("../../public/openapi.json", import.meta.url), "utf8"));
  assert.deepEqual(await openApi.json(), published);

  const denied = await fetch(`${url}/api/typing`, { method: "POST" });
  assert.equal(denied.status, 401);
  await denied.arrayBuffer();

  const typing = await fetch(`${url}/api/typing`, {
    method: "POST",
    headers: { authorization: `Bearer ${SMOKE_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
  });
  assert.equal(typing.status, 200);
  assert.deepEqual(await typing.json(), { errcode: 0, errmsg: "ok" });
  assert.deepEqual(seen, ["/cgi-bin/stable_token ", "/cgi-bin/message/custom/typing SMOKE_TOKEN"]);

  const push = await fetch(`${url}/wechat/callback?signature=x&timestamp=1&nonce=1&echostr=1`);
  assert.equal(push.status, 503); // WECHAT_TOKEN unset: fail closed
  assert.equal((await push.json() as { error: { variable: string } }).error.variable, "WECHAT_TOKEN");
  // The one line an operator gets for it, and nothing else on stderr.
  const line =
    "kefu-edge: GET /wechat/callback answered 503: ConfigError: Missing configuration: WECHAT_TOKEN is not set";
  assert.deepEqual(await loggedLines(server.stderr, line), [line]);

  // One line per request on stdout: method, path, status, ms, and never the query string.
  const requests = (await loggedLines(server.stdout, /GET \/wechat\/callback 503/)).slice(1);
  const expected = [
    /^kefu-edge: GET \/health 200 \d+ms$/,
    /^kefu-edge: GET \/openapi\.json 200 \d+ms$/,
    /^kefu-edge: POST \/api\/typing 401 \d+ms$/,
    /^kefu-edge: POST \/api\/typing 200 \d+ms$/,
    /^kefu-edge: GET \/wechat\/callback 503 \d+ms$/,
  ];
  assert.equal(requests.length, expected.length, requests.join("\n"));
  expected.forEach((pattern, i) => assert.match(requests[i]!, pattern));
  assert.doesNotMatch(server.stdout(), /signature|echostr|\?/);
}

/** What the servers' `serve*` functions take for this check. */
interface ServeOptions {
  port: number;
  hostname: string;
  env: Record<string, string>;
  app: { logger: { info(message: string): void; warn(): void; error(): void } };
}

/**
 * A server started in process by `serve` (serveBun, serveNode) logs each request through the
 * app logger's `info`, without the query.
 */
export async function logsThroughInfo(
  serve: (
    options: ServeOptions,
  ) => { url: string; close(): Promise<void> } | Promise<{ url: string; close(): Promise<void> }>,
): Promise<void> {
  const lines: string[] = [];
  const server = await serve({
    port: 0,
    hostname: "127.0.0.1",
    env: { WECHAT_APPID: "wx1234567890abcdef" },
    app: { logger: { info: (m) => void lines.push(m), warn() {}, error() {} } },
  });
  try {
    await (await fetch(`${server.url}/health?token=hidden`)).arrayBuffer();
    await (await fetch(`${server.url}/nowhere`)).arrayBuffer();
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[0]!, /^kefu-edge: GET \/health 200 \d+ms$/);
    assert.match(lines[1]!, /^kefu-edge: GET \/nowhere 404 \d+ms$/);
  } finally {
    await server.close();
  }
}
