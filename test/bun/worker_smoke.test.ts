// Smoke tests of the documented one-line server commands, each started as its own process on a
// free loopback port (PORT=0; the server prints its URL), against a stub WeChat upstream:
//   npx bun worker/bun.ts
//   npx deno run -A --unstable-kv worker/deno.ts
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const API_KEY = "smoke-key-0123456789";
const seen: string[] = [];
let upstream: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      seen.push(`${url.pathname} ${url.searchParams.get("access_token") ?? ""}`);
      await request.arrayBuffer();
      if (url.pathname === "/cgi-bin/stable_token") {
        return Response.json({ access_token: "SMOKE_TOKEN", expires_in: 7200 });
      }
      return Response.json({ errcode: 0, errmsg: "ok" });
    },
  });
});

afterAll(() => upstream.stop(true));

interface Started {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
}

/**
 * Starts `command`, waits for "listening on <url>" on stdout, and returns the URL and the
 * process; its stderr is collected for the test to check rather than printed.
 */
async function start(command: string[]): Promise<Started> {
  const proc = Bun.spawn(command, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      DENO_KV_PATH: ":memory:",
      WECHAT_APPID: "wx1234567890abcdef",
      WECHAT_SECRET: "smoke-secret",
      WECHAT_TOKEN: "",
      API_KEY,
      WECHAT_API_BASE: `http://127.0.0.1:${upstream.port}`,
      WECHAT_EMULATOR: "off",
      NO_COLOR: "1",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let stderr = "";
  void (async () => {
    const errDecoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderr += errDecoder.decode(chunk);
  })();
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let output = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    output += decoder.decode(value, { stream: true });
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
    if (match?.[1] !== undefined) {
      reader.releaseLock();
      return { url: match[1], proc, stderr: () => stderr };
    }
  }
  proc.kill();
  throw new Error(`Server did not start: ${output}\nstderr: ${stderr}`);
}

/** The stderr lines once `line` is among them (the log may trail the response a little). */
async function loggedLines(started: Started, line: string): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  while (!started.stderr().includes(line) && Date.now() < deadline) await Bun.sleep(20);
  return started.stderr().split("\n").filter((l) => l !== "");
}

async function smoke(command: string[]): Promise<void> {
  seen.length = 0;
  const started = await start(command);
  const { url, proc } = started;
  try {
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    const denied = await fetch(`${url}/api/typing`, { method: "POST" });
    expect(denied.status).toBe(401);
    await denied.arrayBuffer();

    const typing = await fetch(`${url}/api/typing`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
    });
    expect(typing.status).toBe(200);
    expect(await typing.json()).toEqual({ errcode: 0, errmsg: "ok" });
    expect(seen).toEqual(["/cgi-bin/stable_token ", "/cgi-bin/message/custom/typing SMOKE_TOKEN"]);

    const push = await fetch(`${url}/wechat/callback?signature=x&timestamp=1&nonce=1&echostr=1`);
    expect(push.status).toBe(503); // WECHAT_TOKEN unset: fail closed
    expect((await push.json()).error.variable).toBe("WECHAT_TOKEN");
    // The one line an operator gets for it, and nothing else on stderr.
    const line =
      "kefu-edge: GET /wechat/callback answered 503: ConfigError: Missing configuration: WECHAT_TOKEN is not set";
    expect(await loggedLines(started, line)).toEqual([line]);
  } finally {
    proc.kill();
    await proc.exited;
  }
}

test("npx bun worker/bun.ts serves /health and /api", () => smoke([process.execPath, "worker/bun.ts"]), 60_000);

test(
  "npx deno run -A --unstable-kv worker/deno.ts serves /health and /api",
  () => smoke([`${ROOT}node_modules/.bin/deno`, "run", "-A", "--unstable-kv", "worker/deno.ts"]),
  60_000,
);

test("the Bun server never loads the emulator: WECHAT_EMULATOR=on is refused by name", async () => {
  const { serveBun } = await import("../../worker/bun.ts");
  const logged: string[] = [];
  const server = serveBun({
    port: 0,
    hostname: "127.0.0.1",
    env: { WECHAT_APPID: "wx1234567890abcdef", WECHAT_SECRET: "s", API_KEY, WECHAT_EMULATOR: "on" },
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
  });
  try {
    const typing = await fetch(`${server.url}/api/typing`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
    });
    expect(typing.status).toBe(503);
    expect((await typing.json()).error.variable).toBe("WECHAT_EMULATOR");
    expect((await fetch(`${server.url}/_emulator/`)).status).toBe(404);
    expect(logged).toEqual([
      "kefu-edge: POST /api/typing answered 503: ConfigError: Invalid configuration: WECHAT_EMULATOR is on, " +
      "but this entry has no emulator (use worker/dev.ts)",
    ]);
  } finally {
    await server.close();
  }
});
