import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { test } from "./_registry.ts";

// The worker is built on the public SDK: from the core it imports what mod.ts exports, and
// a private helper from src/internal/ only with a comment at the import that says why and
// points at src/internal/README.md (the documented exception).
const ROOT = new URL("../../", import.meta.url);
const WORKER = new URL("worker/", ROOT);

/** Every import or re-export specifier of `code`, with the line its statement starts on (0-based). */
function importsOf(code: string): { specifier: string; line: number; endLine: number }[] {
  const found: { specifier: string; line: number; endLine: number }[] = [];
  // `import … from "x"`, `export … from "x"`, `import("x")` and the bare `import "x"`.
  const statement = /^[ \t]*(?:import|export)\b(?:[^;]*?(?:\bfrom|\bimport\s*\())?\s*["']([^"']+)["']/gm;
  for (const match of code.matchAll(statement)) {
    const line = code.slice(0, match.index).split("\n").length - 1;
    found.push({ specifier: match[1]!, line, endLine: line + match[0].split("\n").length - 1 });
  }
  return found;
}

/** The `//` comment block right above the import group that the statement at `line` belongs to. */
function commentAbove(lines: string[], line: number, groups: { line: number; endLine: number }[]): string {
  let at = line - 1;
  for (;;) {
    const group = groups.find((g) => g.endLine === at);
    if (group === undefined) break;
    at = group.line - 1;
  }
  const comment: string[] = [];
  while (at >= 0 && /^\s*\/\//.test(lines[at]!)) comment.unshift(lines[at--]!);
  return comment.join("\n");
}

// Block comments (JSDoc examples import too) are blanked, keeping the line numbers.
function withoutBlockComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, " "));
}

test("worker/ imports from the core only what mod.ts exports, or src/internal/ by a documented exception", async () => {
  const files = (await readdir(WORKER)).filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"));
  assert.ok(files.length > 10, "found the worker's files");
  const offenders: string[] = [];
  let core = 0;
  for (const file of files) {
    const url = new URL(file, WORKER);
    const text = await readFile(url, "utf8");
    const lines = text.split("\n");
    const imports = importsOf(withoutBlockComments(text));
    for (const { specifier, line } of imports) {
      if (!specifier.startsWith(".")) continue;
      const path = new URL(specifier, url).href.slice(ROOT.href.length);
      if (path === "mod.ts") {
        core++;
      } else if (path.startsWith("src/internal/")) {
        core++;
        if (!commentAbove(lines, line, imports).includes("src/internal/README.md")) {
          offenders.push(`${file}:${line + 1}: ${path} without a comment saying why (see src/internal/README.md)`);
        }
      } else if (path.startsWith("src/") || !path.startsWith("worker/")) {
        offenders.push(`${file}:${line + 1}: ${path} is neither mod.ts nor src/internal/`);
      }
    }
  }
  assert.ok(core > 10, `found the worker's imports from the core (${core})`);
  assert.deepEqual(offenders, []);
}, ["node", "deno", "bun"]);

// The dev server (`withEmulator`, in src/testing/dev_server/) is the one part of src/ built on
// the worker, and it enters the worker through worker/dev_seam.ts alone: the worker's private
// pieces it uses are named in one file, and a change to any other worker/ file cannot break
// the dev server unseen.
const SRC = new URL("src/", ROOT);
const DEV_SERVER = "src/testing/dev_server/";
const DEV_SEAM = "worker/dev_seam.ts";

/** The `.ts` files below `dir`, as paths from the repository root. */
async function tsFilesUnder(dir: URL): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const url = new URL(entry.isDirectory() ? `${entry.name}/` : entry.name, dir);
    if (entry.isDirectory()) found.push(...await tsFilesUnder(url));
    else if (entry.name.endsWith(".ts")) found.push(url.href.slice(ROOT.href.length));
  }
  return found;
}

test("src/ reaches the worker only from the dev server, and only through worker/dev_seam.ts", async () => {
  const files = await tsFilesUnder(SRC);
  assert.ok(files.filter((file) => file.startsWith(DEV_SERVER)).length >= 3, "found the dev server's files");
  const offenders: string[] = [];
  let throughSeam = 0;
  for (const file of files) {
    const url = new URL(file, ROOT);
    for (const { specifier, line } of importsOf(withoutBlockComments(await readFile(url, "utf8")))) {
      if (!specifier.startsWith(".")) continue;
      const path = new URL(specifier, url).href.slice(ROOT.href.length);
      if (!path.startsWith("worker/")) continue;
      if (!file.startsWith(DEV_SERVER)) {
        offenders.push(`${file}:${line + 1}: ${path} (only the dev server uses the worker)`);
      } else if (path !== DEV_SEAM) offenders.push(`${file}:${line + 1}: ${path} (import it through ${DEV_SEAM})`);
      else throughSeam++;
    }
  }
  assert.ok(throughSeam >= 3, `found the dev server's imports of ${DEV_SEAM} (${throughSeam})`);
  assert.deepEqual(offenders, []);
}, ["node", "deno", "bun"]);

// The worker's files import one another without a cycle (types too): the shared types live in
// worker/types.ts and worker/queue_types.ts, so a route never imports the app that mounts it.
test("worker/ files import one another without a cycle", async () => {
  const files = (await readdir(WORKER)).filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"));
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const url = new URL(file, WORKER);
    const imported = importsOf(withoutBlockComments(await readFile(url, "utf8")))
      .map(({ specifier }) => new URL(specifier, url).href)
      .filter((href) => href.startsWith(WORKER.href))
      .map((href) => href.slice(WORKER.href.length));
    edges.set(file, imported);
  }
  assert.ok([...edges.values()].flat().length > 30, "found the worker's imports of its own files");
  const cycles: string[] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]): void => {
    if (path.includes(file)) {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    if (done.has(file)) return;
    for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
}, ["node", "deno", "bun"]);
