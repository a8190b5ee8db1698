// The published package, as users get it: `npm pack`, installed into a fresh project,
// imported by plain `node` (dist/ JavaScript) and by Bun (the .ts source), running the
// examples docs/sdk.md shows, and a team's own worker (examples/own-worker) run against the
// emulator and the chat page with docs/emulator.md's `wrangler dev` command. Deno's example runs in
// the Deno suite (test/deno).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, test } from "vitest";
import { wranglerEnv } from "../../scripts/_dev_server.ts";
import { type DevServer, startServer } from "./_dev_server.ts";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../", import.meta.url));
const bun = join(repo, "node_modules", ".bin", "bun");
const pkg = "kefu-edge";
let dir: string;
let app: string;
let files: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kefu-edge-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<
    { filename: string; files: { path: string }[] }
  >;
  files = packed!.files.map((f) => f.path);
  app = join(dir, "app");
  await mkdir(app);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "smoke", private: true, type: "module" }));
  await run("npm", ["install", join(dir, packed!.filename), "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: app,
  });
  for (const name of ["node.mjs", "bun.ts", "conversation-bot.mjs", "ai-bot.mjs"]) {
    await copyFile(join(repo, "examples", name), join(app, name));
  }
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the tarball holds the build, the sources Bun and JSR use, and nothing else", () => {
  const needs = ["dist/mod.js", "dist/mod.d.ts", "dist/src/testing/mod.js", "dist/worker/mod.js", "mod.ts"];
  // The OpenAPI document the servers serve: dist/'s for Node, the source tree's for Bun and Deno.
  for (const needed of [...needs, "dist/public/openapi.json", "public/openapi.json"]) {
    assert.ok(files.includes(needed), `${needed} is packed`);
  }
  // Bun imports the worker's .ts sources: each route folder's too (worker/dead_letters/mod.ts...).
  const folders = readdirSync(join(repo, "worker"), { withFileTypes: true }).filter((e) => e.isDirectory());
  assert.ok(folders.length > 0, "the worker has route folders");
  for (const folder of folders) {
    for (const name of readdirSync(join(repo, "worker", folder.name)).filter((n) => n.endsWith(".ts"))) {
      assert.ok(files.includes(`worker/${folder.name}/${name}`), `worker/${folder.name}/${name} is packed`);
    }
  }
  const stray = files.filter((f) =>
    /^(test|examples|dev|tools|scripts|\.ci)\/|\.test\.ts$|_test\.ts$|vitest|wrangler\.toml|tsconfig/.test(f)
  );
  assert.deepEqual(stray, []);
});

test("plain node imports kefu-edge and kefu-edge/testing from the tarball and sends a message", async () => {
  const { stdout } = await run(process.execPath, ["node.mjs"], { cwd: app });
  assert.deepEqual(JSON.parse(stdout), [{ content: "Hi from node 👋" }]);
});

/** A docs page holds the example whole, which prints, run from the installed package, what the page shows. */
async function runsAsShown(doc: string, example: string): Promise<void> {
  const page = await readFile(join(repo, "docs", doc), "utf8");
  const source = await readFile(join(repo, "examples", example), "utf8");
  assert.ok(page.includes(source.trim()), `docs/${doc} contains examples/${example}`);
  const printed = page.slice(page.indexOf("It prints:")).match(/```text\n([\s\S]*?)```/)?.[1];
  assert.ok(printed !== undefined, "the page shows the output");
  const { stdout } = await run(process.execPath, [example], { cwd: app });
  assert.equal(stdout, printed);
}

test("docs/conversations.md's example runs as shown from the installed package and prints what the page says", () =>
  runsAsShown("conversations.md", "conversation-bot.mjs"));

test("docs/ai-bot.md's example runs as shown from the installed package and prints what the page says", () =>
  runsAsShown("ai-bot.md", "ai-bot.mjs"));

test("node serves the app from the installed package: dist/worker/node.js, and serveNode from kefu-edge/worker/node", async () => {
  const entry = join(app, "node_modules", pkg, "dist", "worker", "node.js");
  const child = spawn(process.execPath, [entry], {
    cwd: app,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", WECHAT_APPID: "wx1234567890abcdef" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => void (stdout += chunk.toString()));
    const deadline = Date.now() + 20_000;
    let url: string | undefined;
    while (url === undefined && Date.now() < deadline && child.exitCode === null) {
      url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(url, stdout);
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    // The OpenAPI document, a file of the package (on Workers a static asset) the server reads.
    const openApi = await fetch(`${url}/openapi.json`);
    assert.equal(openApi.status, 200);
    const published = JSON.parse(await readFile(join(repo, "public", "openapi.json"), "utf8"));
    assert.deepEqual(await openApi.json(), published);
  } finally {
    child.kill();
  }
  await writeFile(
    join(app, "serve.mjs"),
    'import { serveNode } from "kefu-edge/worker/node";\n' +
      'const server = await serveNode({ port: 0, env: { WECHAT_APPID: "wx1234567890abcdef" } });\n' +
      "console.log((await fetch(`${server.url}/health`)).status);\n" +
      "await server.close();\n",
  );
  const { stdout } = await run(process.execPath, ["serve.mjs"], { cwd: app });
  assert.equal(stdout.trim().split("\n").at(-1), "200");
});

test("bun runs the docs' Bun example against the installed package", async () => {
  const { stdout } = await run(bun, ["bun.ts"], { cwd: app });
  assert.deepEqual(JSON.parse(stdout), [{ content: "Hi from bun 👋" }]);
});

test("docs/sdk.md shows each runtime's example exactly as tested", async () => {
  const page = await readFile(join(repo, "docs", "sdk.md"), "utf8");
  for (const name of ["node.mjs", "bun.ts", "deno.ts"]) {
    const source = await readFile(join(repo, "examples", name), "utf8");
    assert.ok(page.includes(source.trim()), `docs/sdk.md contains examples/${name}`);
  }
});

// docs/emulator.md's command for a team's own worker, run verbatim from the project's root with
// the wrangler it names (this repository's, whose version the test checks); the test changes
// only the port (a free one), and adds where to keep local state and no interactive prompt.
const OWN_WORKER_COMMAND = "npx wrangler@4.86.0 dev dev.ts --port 8788 " +
  "--assets node_modules/kefu-edge/src/testing/dev_server/assets --var WECHAT_EMULATOR:on";

test("the own worker's wrangler is the one this repository pins, and it runs on Node 20", async () => {
  const lock = JSON.parse(await readFile(join(repo, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; engines?: { node?: string } }>;
  };
  const pkg = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { engines: { node: string } };
  const wrangler = lock.packages["node_modules/wrangler"]!;
  assert.equal(/^npx wrangler@(\S+) /.exec(OWN_WORKER_COMMAND)?.[1], wrangler.version);
  // Both are ">=<major>[.minor.patch]": wrangler must run on the oldest Node line kefu-edge supports.
  const major = (range: string) => Number(/^>=(\d+)(?:\.\d+){0,2}$/.exec(range)![1]);
  assert.ok(
    major(wrangler.engines!.node!) <= major(pkg.engines.node),
    `wrangler ${wrangler.version} needs Node ${wrangler.engines!.node}; kefu-edge supports ${pkg.engines.node}`,
  );
  for (const name of ["worker.ts", "wrangler.toml"]) {
    const source = await readFile(join(repo, "examples", "own-worker", name), "utf8");
    assert.match(source, new RegExp(`npx wrangler@${wrangler.version!.replaceAll(".", "\\.")} deploy`), name);
  }
});
const OWN_WORKER_VARS = [
  "WECHAT_APPID=wx_my_dev_app",
  "WECHAT_SECRET=dev-secret",
  "WECHAT_TOKEN=dev-push-token",
  "API_KEY=dev-api-key",
].join("\n");

test("a team's own worker runs against the emulator and the chat page with the docs' command", async () => {
  const page = await readFile(join(repo, "docs", "emulator.md"), "utf8");
  assert.ok(page.includes(OWN_WORKER_COMMAND), "docs/emulator.md shows the command");
  for (const name of ["worker.ts", "dev.ts", "wrangler.toml"]) {
    const source = await readFile(join(repo, "examples", "own-worker", name), "utf8");
    if (name !== "wrangler.toml") {
      assert.ok(page.includes(source.trim()), `docs/emulator.md contains examples/own-worker/${name}`);
    }
    await copyFile(join(repo, "examples", "own-worker", name), join(app, name));
  }
  await writeFile(join(app, ".dev.vars"), OWN_WORKER_VARS);
  const [, , ...args] = OWN_WORKER_COMMAND.split(" ");
  let server: DevServer | undefined;
  try {
    server = await startServer({
      command: "node",
      args: (port, state, inspector) => [
        join(repo, "node_modules", "wrangler", "bin", "wrangler.js"),
        ...args.map((arg, i) => (args[i - 1] === "--port" ? String(port) : arg)),
        "--ip",
        "127.0.0.1",
        "--persist-to",
        state,
        "--inspector-port",
        String(inspector),
        "--show-interactive-dev-session=false",
      ],
      cwd: app,
      env: wranglerEnv(),
      ready: (output, url) => output.includes(`Ready on ${url}`),
    });
    const page = await fetch(`${server.url}/_emulator/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /^default-src 'none'; script-src 'self'/);
    assert.match(await page.text(), /<title>kefu-edge · WeChat emulator<\/title>/);
    const config = await (await fetch(`${server.url}/_emulator/config`)).json() as { appId: string };
    assert.equal(config.appId, "wx_my_dev_app");

    // The team's onMessage runs on the emulated user's push and answers through the emulator.
    const act = async (path: string, body: unknown) => {
      const res = await fetch(`${server!.url}/_emulator/users/o_team_user/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
      return await res.json() as { delivery: { ok: boolean }; received: { message?: { content?: string } }[] };
    };
    const said = await act("messages", { text: "hello" });
    assert.equal(said.delivery.ok, true);
    assert.deepEqual(said.received.map((entry) => entry.message?.content), ["You said: hello"]);
    const card = await act("miniprogrampages", { title: "Order 7", pagePath: "pages/order/index?id=7" });
    assert.deepEqual(card.received.map((entry) => entry.message?.content), ["Thanks for sharing “Order 7”"]);
  } finally {
    await server?.stop();
  }
}, 90_000);
