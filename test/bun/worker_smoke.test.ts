// Smoke tests of the documented one-line server commands, each started as its own process on a
// free loopback port (PORT=0; the server prints its URL), against a stub WeChat upstream:
//   npx bun worker/bun.ts
//   npx deno run -A --unstable-kv worker/deno.ts
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import { logsThroughInfo, serverSmoke, SMOKE_API_KEY } from "../cases/_server_smoke.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const API_KEY = SMOKE_API_KEY;
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
  /** Everything the server wrote to stdout so far (the request lines). */
  stdout(): string;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
}

/** The environment of a server started by these tests. */
function serverEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
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
    ...extra,
  };
}

/**
 * Starts `command`, waits for "listening on <url>" on stdout, and returns the URL and the
 * process; its stderr is collected for the test to check rather than printed.
 */
async function start(command: string[]): Promise<Started> {
  const proc = Bun.spawn(command, { cwd: ROOT, env: serverEnv(), stdout: "pipe", stderr: "pipe" });
  let stderr = "";
  let stdout = "";
  void (async () => {
    const errDecoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderr += errDecoder.decode(chunk);
  })();
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) stdout += decoder.decode(chunk);
  })();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && proc.exitCode === null) {
    const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
    if (match?.[1] !== undefined) return { url: match[1], proc, stdout: () => stdout, stderr: () => stderr };
    await Bun.sleep(20);
  }
  proc.kill();
  throw new Error(`Server did not start: ${stdout}\nstderr: ${stderr}`);
}

async function smoke(command: string[]): Promise<void> {
  seen.length = 0;
  const started = await start(command);
  try {
    await serverSmoke(started, seen);
  } finally {
    started.proc.kill();
    await started.proc.exited;
  }
}

test("npx bun worker/bun.ts serves /health and /api", () => smoke([process.execPath, "worker/bun.ts"]), 60_000);

test(
  "npx deno run -A --unstable-kv worker/deno.ts serves /health and /api",
  () => smoke([`${ROOT}node_modules/.bin/deno`, "run", "-A", "--unstable-kv", "worker/deno.ts"]),
  60_000,
);

// A port already in use: one line that says so on stderr, nothing else, exit code 1.
async function portTaken(command: string[]): Promise<void> {
  const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
  try {
    const proc = Bun.spawn(command, {
      cwd: ROOT,
      env: serverEnv({ PORT: String(taken.port) }),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout as ReadableStream).text(),
      new Response(proc.stderr as ReadableStream).text(),
    ]);
    expect([code, stdout, stderr]).toEqual([
      1,
      "",
      `kefu-edge: Cannot listen on 127.0.0.1:${taken.port}: the port is in use (stop the other server or set PORT)\n`,
    ]);
  } finally {
    await taken.stop(true);
  }
}

test("npx bun worker/bun.ts on a taken port says so in one line and exits 1", () =>
  portTaken([
    process.execPath,
    "worker/bun.ts",
  ]), 60_000);

test(
  "npx deno run -A --unstable-kv worker/deno.ts on a taken port says so in one line and exits 1",
  () => portTaken([`${ROOT}node_modules/.bin/deno`, "run", "-A", "--unstable-kv", "worker/deno.ts"]),
  60_000,
);

test("serveBun logs each request through the app logger's info, without the query", async () => {
  const { serveBun } = await import("../../worker/bun.ts");
  await logsThroughInfo(serveBun);
});

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
      "but this app has no emulator (wrap it with withEmulator from kefu-edge/testing)",
    ]);
  } finally {
    await server.close();
  }
});
