// The README's "In five lines", run as written against the emulator: the only change is
// the package name, which points at this repository's entry, and the global fetch, which
// the emulator answers (the lines use the default, as a user's code would).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { createEmulator } from "../../src/testing/mod.ts";

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
