// The published package, as users get it: `npm pack`, installed into a fresh project,
// imported by plain `node` (dist/ JavaScript) and by Bun (the .ts source), running the
// examples the README shows. Deno's example runs in the Deno suite (test/deno).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, test } from "vitest";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../", import.meta.url));
const bun = join(repo, "node_modules", ".bin", "bun");
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
  for (const name of ["node.mjs", "bun.ts"]) await copyFile(join(repo, "examples", name), join(app, name));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the tarball holds the build, the sources Bun and JSR use, and nothing else", () => {
  for (const needed of ["dist/mod.js", "dist/mod.d.ts", "dist/src/testing/mod.js", "dist/worker/mod.js", "mod.ts"]) {
    assert.ok(files.includes(needed), `${needed} is packed`);
  }
  const stray = files.filter((f) => /^(test|examples|\.ci)\/|\.test\.ts$|_test\.ts$|vitest|wrangler\.toml/.test(f));
  assert.deepEqual(stray, []);
});

test("plain node imports kefu-edge and kefu-edge/testing from the tarball and sends a message", async () => {
  const { stdout } = await run(process.execPath, ["node.mjs"], { cwd: app });
  assert.deepEqual(JSON.parse(stdout), [{ content: "Hi from node 👋" }]);
});

test("bun runs the README's Bun example against the installed package", async () => {
  const { stdout } = await run(bun, ["bun.ts"], { cwd: app });
  assert.deepEqual(JSON.parse(stdout), [{ content: "Hi from bun 👋" }]);
});

test("the README shows each runtime's example exactly as tested", async () => {
  const readme = await readFile(join(repo, "README.md"), "utf8");
  for (const name of ["node.mjs", "bun.ts", "deno.ts"]) {
    const source = await readFile(join(repo, "examples", name), "utf8");
    assert.ok(readme.includes(source.trim()), `README contains examples/${name}`);
  }
});
