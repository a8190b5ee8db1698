// Smoke tests of the Node server (worker/node.ts, on @hono/node-server), as the Bun and Deno
// servers are tested (test/bun/worker_smoke.test.ts): `node --import tsx worker/node.ts` on a
// free loopback port (PORT=0; it prints its URL) against a stub WeChat upstream, a taken port,
// and serveNode in process.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { serveNode } from "../../worker/node.ts";
import { logsThroughInfo, serverSmoke, SMOKE_API_KEY } from "../cases/_server_smoke.ts";

const API_KEY = SMOKE_API_KEY;
const COMMAND = [process.execPath, "--import", "tsx", "worker/node.ts"];
const seen: string[] = [];
let upstream: Server;

/** A local server's port. */
const portOf = (server: Server) => (server.address() as AddressInfo).port;

beforeAll(async () => {
  upstream = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    seen.push(`${url.pathname} ${url.searchParams.get("access_token") ?? ""}`);
    request.resume().once("end", () => {
      const body = url.pathname === "/cgi-bin/stable_token"
        ? { access_token: "SMOKE_TOKEN", expires_in: 7200 }
        : { errcode: 0, errmsg: "ok" };
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
});

afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: "0",
    HOST: "127.0.0.1",
    WECHAT_APPID: "wx1234567890abcdef",
    WECHAT_SECRET: "smoke-secret",
    WECHAT_TOKEN: "",
    API_KEY,
    WECHAT_API_BASE: `http://127.0.0.1:${portOf(upstream)}`,
    WECHAT_EMULATOR: "off",
    NO_COLOR: "1",
    ...extra,
  };
}

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function run(env: NodeJS.ProcessEnv): Run {
  const child = spawn(COMMAND[0]!, COMMAND.slice(1), { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => void (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

test("node --import tsx worker/node.ts serves /health and /api", async () => {
  seen.length = 0;
  const server = run(serverEnv());
  try {
    const deadline = Date.now() + 30_000;
    let url: string | undefined;
    while (url === undefined && Date.now() < deadline && server.child.exitCode === null) {
      url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout())?.[1];
      if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(url, server.stderr()).toBeDefined();
    await serverSmoke({ url: url!, stdout: server.stdout, stderr: server.stderr }, seen);
  } finally {
    server.child.kill();
    await server.exited;
  }
}, 60_000);

test("node --import tsx worker/node.ts on a taken port says so in one line and exits 1", async () => {
  const taken = createServer((_request, response) => response.end("taken"));
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  try {
    const server = run(serverEnv({ PORT: String(portOf(taken)) }));
    expect([await server.exited, server.stdout(), server.stderr()]).toEqual([
      1,
      "",
      `kefu-edge: Cannot listen on 127.0.0.1:${
        portOf(taken)
      }: the port is in use (stop the other server or set PORT)\n`,
    ]);
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
}, 60_000);

test("serveNode logs each request through the app logger's info, without the query", () => logsThroughInfo(serveNode));
