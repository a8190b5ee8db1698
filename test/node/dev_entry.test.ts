// The dev entry stays out of production: `wrangler deploy --dry-run` of wrangler.toml (the
// production entry, worker/index.ts) bundles no emulator, no /_emulator/ route, no chat page and
// no dev value, while the same build of dev/worker.ts does (so the markers below are the right ones).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_ENTRY, DEV_VARS, ROOT, wranglerEnv } from "../../scripts/_dev_server.ts";

const run = promisify(execFile);
// Strings only the emulator (its checks, its exchange log) and the dev routes contain: string
// literals, not class or function names, which the minifier renames (wrangler.toml: keep_names = false).
const MARKERS = [
  "/users/:openId/miniprogrampages",
  "/_emulator",
  "maxRecorded must be a whole number",
  "more characters)",
  "kefu-edge.dev_route_refused",
];
const DEV_VALUES = Object.values(DEV_VARS).filter((value) => value !== "on" && value !== "off");

let out: string;

async function bundle(entry: string[]): Promise<string> {
  const dir = await mkdtemp(join(out, "bundle-"));
  const wrangler = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", dir, ...entry], {
    cwd: ROOT,
    env: wranglerEnv(),
    timeout: 30_000,
  });
  return await readFile(join(dir, entry.length === 0 ? "index.js" : "worker.js"), "utf8");
}

describe("production bundle", () => {
  let production: string;
  let dev: string;

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), "kefu-bundle-"));
    [production, dev] = await Promise.all([bundle([]), bundle([DEV_ENTRY])]);
  }, 60_000);

  afterAll(async () => {
    if (out !== undefined) await rm(out, { recursive: true, force: true });
  });

  it("the dev entry's bundle has the emulator and the dev routes", () => {
    for (const marker of MARKERS) expect(dev, marker).toContain(marker);
  });

  it("wrangler.toml's entry (worker/index.ts) has neither, nor any dev value", () => {
    // The app's own routes are there (mounted as the /wechat and /api sub-apps).
    for (const route of ['"/callback"', '"/subscribe-messages"']) expect(production).toContain(route);
    for (const marker of MARKERS) expect(production, marker).not.toContain(marker);
    for (const value of DEV_VALUES) expect(production, value).not.toContain(value);
  });

  it("wrangler.toml's bundle answers a bad field with zod's English message (the locale is not tree-shaken)", async () => {
    const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
    const mf = new Miniflare({
      modules: true,
      script: production,
      compatibilityDate: /^compatibility_date = "([^"]+)"$/m.exec(toml)![1]!,
      bindings: { WECHAT_APPID: "wx1234567890abcdef", WECHAT_SECRET: "secret-value", API_KEY: "api-key-value" },
      kvNamespaces: ["WECHAT_KV"],
    });
    try {
      const res = await mf.dispatchFetch("http://localhost/api/typing", {
        method: "POST",
        headers: { authorization: "Bearer api-key-value", "content-type": "application/json" },
        body: JSON.stringify({ command: "Typing" }),
      });
      const body = await res.json() as { error: { field: string; message: string } };
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(body.error.field).toBe("touser");
      expect(body.error.message).toBe("Invalid touser: Invalid input: expected string, received undefined");
    } finally {
      await mf.dispose();
    }
  });

  it("wrangler.toml's bundle logs an SDK error by its class's name (minified without keep_names)", async () => {
    // A WeChat that answers every typing call with an API error.
    const upstream = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify(
          req.url?.startsWith("/cgi-bin/stable_token")
            ? { access_token: "TOKEN", expires_in: 7200 }
            : { errcode: 40003, errmsg: "invalid openid" },
        ),
      );
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    let stderr = "";
    const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
    expect(toml).toMatch(/^keep_names = false$/m);
    const mf = new Miniflare({
      modules: true,
      script: production,
      compatibilityDate: /^compatibility_date = "([^"]+)"$/m.exec(toml)![1]!,
      bindings: {
        WECHAT_APPID: "wx1234567890abcdef",
        WECHAT_SECRET: "secret-value",
        API_KEY: "api-key-value",
        WECHAT_API_BASE: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      },
      kvNamespaces: ["WECHAT_KV"],
      handleRuntimeStdio: (_out: Readable, err: Readable) =>
        void err.on("data", (chunk: Buffer) => (stderr += chunk.toString())),
    });
    try {
      const res = await mf.dispatchFetch("http://localhost/api/typing", {
        method: "POST",
        headers: { authorization: "Bearer api-key-value", "content-type": "application/json" },
        body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
      });
      expect(res.status).toBe(502);
      expect((await res.json() as { error: { code: string } }).error.code).toBe("wechat_api_error");
      const deadline = Date.now() + 5_000;
      while (!stderr.includes("answered 502") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(stderr).toMatch(/kefu-edge: POST \/api\/typing answered 502: WeChatApiError: /);
    } finally {
      await mf.dispose();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it("wrangler.toml carries no dev value and serves public/ alone as assets (not the emulator's chat page)", async () => {
    const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
    expect(toml).toMatch(/^main = "worker\/index.ts"$/m);
    expect(toml.match(/^\s*directory\s*=.*$/gm)).toEqual(['directory = "./public"']);
    expect(toml).not.toContain("dev_server");
    for (const value of DEV_VALUES) expect(toml, value).not.toContain(value);
  });
});
