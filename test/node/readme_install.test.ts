// The README's install-from-source commands, run verbatim in one shell: on a `git clone` of
// this repository's committed HEAD (so they see what a reader's clone holds) in which the
// README's first command, `npm ci`, ran, from an empty folder beside it. npm installs from its
// cache where it can (the root `npm ci` filled it); Bun and Deno are the clone's own (the
// blocks put its node_modules/.bin on PATH) and fetch the three runtime dependencies from the
// npm registry into their caches.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { answerDifferences, docSection, type Ran, runBlocks, runInOneShell } from "./_readme.ts";

const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { name: string; version: string };
const TARBALL = `${pkg.name}-${pkg.version}.tgz`;

/** The test's own checks of each block, from what the package is, not from the output. */
const CHECKS: Record<string, (ran: Ran, dir: string) => Promise<void> | void> = {
  "npm-tarball": async ({ stdout }, dir) => {
    expect(stdout.split("\n")).toContain(TARBALL);
    const app = JSON.parse(await readFile(join(dir, "my-app", "package.json"), "utf8"));
    expect(app.dependencies[pkg.name]).toBe(`file:../kefu-edge/${TARBALL}`);
    expect(lastLine(stdout)).toBe("function");
  },
  "npm-git": async ({ stdout }, dir) => {
    const app = JSON.parse(await readFile(join(dir, "my-git-app", "package.json"), "utf8"));
    expect(app.dependencies[pkg.name]).toMatch(/^git\+file:\/\//);
    // Installed from git, the package still ships its build (prepare ran) and nothing else.
    const installed = join(dir, "my-git-app", "node_modules", pkg.name);
    expect(JSON.parse(await readFile(join(installed, "package.json"), "utf8")).version).toBe(pkg.version);
    await expect(readFile(join(installed, "dist", "worker", "mod.js"), "utf8")).resolves.toContain("createApp");
    await expect(readFile(join(installed, "test", "node", "core.test.ts"))).rejects.toThrow();
    expect(lastLine(stdout)).toBe("function function 200");
  },
  "bun-tarball": ({ stdout }) => expect(lastLine(stdout)).toBe("function"),
  "deno-link": ({ stdout }) => expect(stdout.trim()).toBe("function function"),
};

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

const blocks = runBlocks(docSection("install"));
let dir: string;
let results: Map<string, Ran>;

describe("README install from a clone", () => {
  it("has a check here for every run block, and every sh block is a run block", () => {
    expect(blocks.map((b) => b.name)).toEqual(Object.keys(CHECKS));
    // npm ci ran once in the clone; running it again would pull node_modules from under a running npm start.
    for (const block of blocks) expect(block.commands, block.name).not.toMatch(/\bnpm ci\b/);
    // Bun and Deno: the reader's own, else the clone's.
    for (const name of ["bun-tarball", "deno-link"]) {
      expect(blocks.find((b) => b.name === name)!.commands.split("\n")[0]).toBe(
        'PATH="$PATH:$KEFU_EDGE/node_modules/.bin"',
      );
    }
    expect(docSection("install").match(/```sh\n/g)?.length).toBe(blocks.length);
    // Each block works on the clone in $KEFU_EDGE: the test's clone of HEAD, a reader's own.
    for (const block of blocks) expect(block.commands, block.name).toContain('"$KEFU_EDGE');
  });

  describe("run in one shell", () => {
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "kefu-install-"));
      const clone = join(dir, "kefu-edge");
      const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
      execFileSync("git", ["clone", "--quiet", ROOT, clone]);
      execFileSync("git", ["checkout", "--quiet", "--detach", head], { cwd: clone });
      await mkdir(join(dir, ".out"));
      // A reader's shell: none of the npm variables of the `npm test` running this, and no
      // node_modules/.bin on PATH (npm puts this repository's there), so bun and deno are
      // found only where the blocks say.
      const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
      env.PATH = (process.env.PATH ?? "").split(delimiter).filter((entry) => !/node_modules[\\/]\.bin/.test(entry))
        .join(delimiter);
      env.KEFU_EDGE = clone;
      env.npm_config_prefer_offline = "true";
      env.NO_COLOR = "1";
      // The README's first command, in the clone.
      execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: clone, env, stdio: "ignore" });
      results = await runInOneShell(blocks, { cwd: dir, env, outputs: join(dir, ".out"), timeoutMs: 270_000 });
    }, 300_000);

    afterAll(async () => {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    for (const block of blocks) {
      it(`${block.name}: works as the README shows`, async () => {
        const ran = results.get(block.name)!;
        const context = `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`;
        expect(ran.exitCode, context).toBe(0);
        expect(answerDifferences(block.expected, ran.stdout), context).toEqual([]);
        await CHECKS[block.name]!(ran, dir);
      });
    }
  });
});
