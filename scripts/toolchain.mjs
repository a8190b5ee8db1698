// The test toolchains that do not run on Node 20, kept out of the root lockfile so that
// `npm ci` on Node 20 installs only what supports Node 20:
//   tools/node     Node 22 and 24 binaries, one npm package per platform (integrity-pinned
//                  in tools/node/package-lock.json, no install script).
//   tools/workerd  @cloudflare/vitest-plugin with the wrangler and miniflare it pins, which
//                  require Node 22: installed and run with the Node 22 of tools/node.
// Each is installed with `npm ci` from its own lockfile (npm registry only), again only
// when its package.json or lockfile changed.
//
//   node scripts/toolchain.mjs install          install both when needed
//   node scripts/toolchain.mjs workerd [args]   vitest inside workerd (test/worker), on Node 22
//   node scripts/toolchain.mjs core [args]      the shared core cases on Node 22 and Node 24
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NODE_TOOLS = join(ROOT, "tools", "node");
const WORKERD_TOOLS = join(ROOT, "tools", "workerd");
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const STAMP = ".kefu-toolchain";

/** The npm CLI script running this (npm sets npm_execpath), else the `npm` on PATH. */
function npmCli() {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && /npm-cli\.js$/.test(fromNpm)) return fromNpm;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "npm");
    if (existsSync(candidate)) {
      const real = realpathSync(candidate);
      const cli = real.endsWith(".js") ? real : join(dirname(real), "npm-cli.js");
      if (existsSync(cli)) return cli;
    }
  }
  throw new Error("cannot find the npm CLI (npm-cli.js) to install the test toolchains");
}

function fingerprint(dir, node) {
  const hash = createHash("sha256");
  for (const file of ["package.json", "package-lock.json", ".npmrc"]) {
    const path = join(dir, file);
    if (existsSync(path)) hash.update(file).update(readFileSync(path));
  }
  return hash.update(node).digest("hex");
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/** `npm ci` in `dir` with `node`, unless the last install there had the same inputs. */
function ensureInstalled(dir, node, label) {
  const want = fingerprint(dir, node);
  const stamp = join(dir, "node_modules", STAMP);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === want) return;
  console.log(`toolchain: installing ${label} into ${relative(ROOT, dir)} (npm ci)`);
  const code = run(node, [npmCli(), "ci", "--no-audit", "--no-fund"], { cwd: dir });
  if (code !== 0) throw new Error(`npm ci in ${dir} failed (exit ${code})`);
  writeFileSync(stamp, want);
}

/** The path of the Node `major` binary from tools/node for this platform, if npm has one. */
function nodeBinary(major) {
  const bin = join(NODE_TOOLS, "node_modules", `node${major}-${process.platform}-${process.arch}`, "bin", "node");
  return existsSync(bin) ? bin : undefined;
}

/** Node 22 for the workerd toolchain: tools/node's, else this Node if it is 22 or newer. */
function node22() {
  const bin = nodeBinary(22);
  if (bin) return bin;
  if (Number(process.versions.node.split(".")[0]) >= 22) return process.execPath;
  throw new Error(
    `tools/node has no Node 22 binary for ${process.platform}-${process.arch}, and this is Node ` +
      `${process.versions.node}: the workerd test toolchain needs Node 22 or newer`,
  );
}

/** Installs tools/node, then tools/workerd with its Node 22, where their inputs changed. */
function install() {
  ensureInstalled(NODE_TOOLS, process.execPath, "Node 22 and 24");
  ensureInstalled(WORKERD_TOOLS, node22(), "the workerd test toolchain (on Node 22)");
}

/**
 * The shared core cases on Node 22 and 24 at once (one vitest file each, so two cores halve
 * the time); each run's output is held and printed whole when it ends, in order.
 */
async function coreOnEveryNode(args) {
  const runs = [];
  for (const major of [22, 24]) {
    const node = nodeBinary(major);
    if (node === undefined) {
      console.log(
        `toolchain: SKIPPED the core cases on Node ${major}: npm has no binary for ${process.platform}-${process.arch}`,
      );
      continue;
    }
    const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim();
    const env = vitestEnv(node, { KEFU_NODE_MAJOR: String(major) });
    const child = spawn(node, [VITEST, "run", "test/node/core.test.ts", ...args], { cwd: ROOT, env });
    let output = "";
    child.stdout.on("data", (chunk) => output += chunk);
    child.stderr.on("data", (chunk) => output += chunk);
    const code = new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (status) => resolve(status ?? 1));
    });
    runs.push({ version, code, output: () => output });
  }
  let failed = 0;
  for (const run of runs) {
    const code = await run.code;
    console.log(`toolchain: the shared core cases on Node ${run.version}`);
    process.stdout.write(run.output());
    if (code !== 0 && failed === 0) failed = code;
  }
  return failed;
}

function vitestEnv(node, extraEnv) {
  return { ...process.env, ...extraEnv, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ""}` };
}

/** Runs vitest with `node`, that Node first on PATH for whatever the tests spawn. */
function vitest(node, args, extraEnv = {}) {
  return run(node, [VITEST, "run", ...args], { cwd: ROOT, env: vitestEnv(node, extraEnv) });
}

async function main([command, ...args]) {
  install();
  if (command === "install") return 0;
  if (command === "workerd") return vitest(node22(), ["--config", "vitest.workers.config.ts", ...args]);
  if (command === "core") return await coreOnEveryNode(args);
  console.error("usage: node scripts/toolchain.mjs install | workerd [vitest args] | core [vitest args]");
  return 2;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
