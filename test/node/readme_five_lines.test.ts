// The README's "In five lines", run as written against the emulator: in process (the only
// change is the package name, which points at this repository's entry, and the global fetch,
// which the emulator answers: the lines use the default, as a user's code would), and as the
// README says to run them, with `deno serve` (the package name mapped to this repository by
// an import map, the emulator answering fetch from a module evaluated before them).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { createEmulator } from "../../src/testing/mod.ts";
import { freePort } from "./_dev_server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// The values the lines use: the emulator accepts exactly these.
const APP_ID = "wx1234567890abcdef";
const OPEN_ID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";

let dir: string;
let source: string;
const realFetch = globalThis.fetch;

beforeAll(async () => {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const section = /<!-- five-lines:start -->([\s\S]*?)<!-- five-lines:end -->/.exec(readme)?.[1] ?? "";
  source = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  dir = await mkdtemp(join(tmpdir(), "kefu-five-lines-"));
});
afterAll(async () => {
  globalThis.fetch = realFetch;
  await rm(dir, { recursive: true, force: true });
});

test("the five lines are at most five lines of code, importing the package", () => {
  const code = source.split("\n").filter((line) => line.trim() !== "" && !line.trim().startsWith("//"));
  expect(code.length).toBeGreaterThan(2);
  expect(code.length).toBeLessThanOrEqual(5);
  expect(code[0]).toBe('import { MiniProgram } from "kefu-edge";');
});

test("the five lines send the text, then verify, answer and handle each push once", async () => {
  const emulator = createEmulator({ appId: APP_ID, appSecret: "APPSECRET", push: { token: "TOKEN" } });
  const user = emulator.user(OPEN_ID);
  await user.says("你好"); // the user writes first: WeChat's send window opens
  globalThis.fetch = emulator.fetch;
  const file = join(dir, "five_lines.ts");
  await writeFile(file, source.replace('"kefu-edge"', JSON.stringify(pathToFileURL(join(ROOT, "mod.ts")).href)));
  const logged = vi.spyOn(console, "log").mockImplementation(() => {});
  const refusals: unknown[][] = [];
  const warned = vi.spyOn(console, "warn").mockImplementation((...args) => void refusals.push(args));
  const errored = vi.spyOn(console, "error").mockImplementation((...args) => void refusals.push(args));
  try {
    const lines = (await import(pathToFileURL(file).href)) as {
      default: { fetch(request: Request): Promise<Response> };
    };
    globalThis.fetch = realFetch;
    expect(user.inbox().filter((e) => e.kind === "message").map((e) => e.message)).toEqual([
      { content: "您好，请问有什么可以帮您？" },
    ]);

    const push = await user.says("我的订单到哪了？");
    const first = await push.deliver((request) => lines.default.fetch(request));
    const retry = await push.deliver((request) => lines.default.fetch(request));
    expect([first.ok, retry.ok]).toEqual([true, true]);
    expect(logged.mock.calls).toEqual([["text"]]);

    const forged = new Request(push.request().url.replace(/signature=[0-9a-f]+/, "signature=" + "0".repeat(40)), {
      method: "POST",
      body: await push.request().text(),
    });
    expect((await lines.default.fetch(forged)).status).toBe(401);
    expect(logged.mock.calls).toHaveLength(1);
    // The refusal is logged once, with its reason.
    expect(refusals).toHaveLength(1);
    expect(JSON.parse(String(refusals[0]![0]))).toMatchObject({ reason: "bad_signature", status: 401 });
  } finally {
    logged.mockRestore();
    warned.mockRestore();
    errored.mockRestore();
    globalThis.fetch = realFetch;
  }
});

// The emulator as the served lines meet it: evaluated first (the served entry imports it, then
// re-exports the lines' default export), it answers their fetch calls to WeChat, once the user
// has written, and reports each on stderr with what the user has received so far.
const EMULATE = (testing: string) => `
import { createEmulator } from ${JSON.stringify(testing)};
const emulator = createEmulator({ appId: "${APP_ID}", appSecret: "APPSECRET", push: { token: "TOKEN" } });
const spoke = emulator.user("${OPEN_ID}").says("你好");
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const request = new Request(input, init);
  if (new URL(request.url).hostname !== "api.weixin.qq.com") return realFetch(request);
  await spoke;
  const response = await emulator.fetch(request);
  const inbox = emulator.inbox("${OPEN_ID}").map((entry) => entry.kind === "message" ? entry.message : entry);
  console.error("emulator: " + JSON.stringify({ path: new URL(request.url).pathname, inbox }));
  return response;
};
`;

test(
  "the five lines run as shown with deno serve: the text is sent, each push handled once, a forgery refused",
  async () => {
    const deno = join(ROOT, "node_modules", ".bin", "deno");
    await writeFile(join(dir, "server.ts"), source);
    await writeFile(
      join(dir, "deno.json"),
      JSON.stringify({ imports: { "kefu-edge": pathToFileURL(join(ROOT, "mod.ts")).href } }),
    );
    await writeFile(join(dir, "emulate.ts"), EMULATE(pathToFileURL(join(ROOT, "src", "testing", "mod.ts")).href));
    await writeFile(join(dir, "main.ts"), 'import "./emulate.ts";\nexport { default } from "./server.ts";\n');
    const port = await freePort();
    // The README's command (deno serve --allow-net server.ts), with where to listen, and the entry that loads the emulator first.
    const child: ChildProcess = spawn(
      deno,
      ["serve", "--allow-net", "--host", "127.0.0.1", "--port", String(port), "main.ts"],
      {
        cwd: dir,
        env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      while (!stderr.includes(`Listening on`) && !stdout.includes(`Listening on`) && Date.now() < deadline) {
        if (child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The top-level send ran before the server listened: one message reached the user.
      const reports = stderr.split("\n").filter((line) => line.startsWith("emulator: ")).map((line) =>
        JSON.parse(line.slice("emulator: ".length)) as { path: string; inbox: unknown[] }
      );
      expect(reports.map((r) => r.path), stderr).toEqual(["/cgi-bin/stable_token", "/cgi-bin/message/custom/send"]);
      expect(reports.at(-1)!.inbox).toEqual([{ content: "您好，请问有什么可以帮您？" }]);

      // WeChat's side of the pushes, from an emulator with the same push token.
      const wechat = createEmulator({ appId: APP_ID, appSecret: "APPSECRET", push: { token: "TOKEN" } });
      const push = await wechat.user(OPEN_ID).says("我的订单到哪了？");
      const toServer = (request: Request) => {
        const target = new URL(request.url);
        return fetch(new Request(`${url}${target.pathname}${target.search}`, request));
      };
      const first = await push.deliver(toServer);
      const retry = await push.deliver(toServer);
      expect([first.ok, retry.ok]).toEqual([true, true]);
      const forged = await toServer(
        new Request(push.request().url.replace(/signature=[0-9a-f]+/, "signature=" + "0".repeat(40)), {
          method: "POST",
          body: await push.request().text(),
        }),
      );
      expect(forged.status).toBe(401);
      await forged.body?.cancel();
      // The handler logged the one message once: the retry was a duplicate, the forgery never reached it.
      expect(stdout.split("\n").filter((line) => line === "text")).toEqual(["text"]);
    } finally {
      child.kill();
      await new Promise((resolve) => child.once("exit", resolve));
    }
  },
  90_000,
);
