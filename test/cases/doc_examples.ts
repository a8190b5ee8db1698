import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { test } from "./_registry.ts";

// A doc example (a runnable ```ts block of a JSDoc comment, run by `deno test --doc`) takes
// every public name from the package's entries by package name, as a reader's code would, so
// it can be pasted as it is. Only a private helper's own example reaches it by a relative path.
const ROOT = new URL("../../", import.meta.url);
const ENTRIES: Record<string, string> = {
  "@kefu/edge": "mod.ts",
  "@kefu/edge/testing": "src/testing/mod.ts",
  "@kefu/edge/worker": "worker/mod.ts",
};

/** The `.ts` files of the package's source, as paths from the repository root. */
async function sourceFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(new URL(dir, ROOT), { withFileTypes: true })) {
    if (entry.isDirectory()) found.push(...await sourceFiles(`${dir}${entry.name}/`));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) found.push(`${dir}${entry.name}`);
  }
  return found;
}

/** Each `import { … } from "./…"` of the runnable examples in `text`, with its line (1-based). */
function relativeExampleImports(text: string): { line: number; specifier: string; names: string[]; type: boolean }[] {
  const found: { line: number; specifier: string; names: string[]; type: boolean }[] = [];
  for (const block of text.matchAll(/```ts([^\n]*)\n([\s\S]*?)```/g)) {
    if (/\bignore\b/.test(block[1]!)) continue;
    const first = text.slice(0, block.index).split("\n").length + 1;
    block[2]!.split("\n").forEach((line, i) => {
      const match = /^\s*\*?\s*import\s+(type\s+)?\{([^}]*)\}\s*from\s*"(\.[^"]+)"/.exec(line);
      if (match === null) return;
      const names = match[2]!.split(",").map((name) => name.trim()).filter((name) => name !== "");
      found.push({ line: first + i, specifier: match[3]!, names, type: match[1] !== undefined });
    });
  }
  return found;
}

/** The names an entry file exports (`export { … } from` and `export type { … } from`). */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const list of text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}/gm)) {
    for (const name of list[1]!.split(",")) if (name.trim() !== "") names.add(name.trim().replace(/^type\s+/, ""));
  }
  return names;
}

test("doc examples import public names by package name (@kefu/edge, /testing, /worker)", async () => {
  const entries = await Promise.all(
    Object.entries(ENTRIES).map(async ([name, path]) => ({
      name,
      values: await import(new URL(path, ROOT).href) as Record<string, unknown>,
      names: exportedNames(await readFile(new URL(path, ROOT), "utf8")),
    })),
  );
  const files = ["mod.ts", ...await sourceFiles("src/"), ...await sourceFiles("worker/")];
  const offenders: string[] = [];
  let checked = 0;
  for (const file of files) {
    const url = new URL(file, ROOT);
    for (const { line, specifier, names, type } of relativeExampleImports(await readFile(url, "utf8"))) {
      const module = await import(new URL(specifier, url).href) as Record<string, unknown>;
      for (const written of names) {
        checked++;
        const name = written.replace(/^type\s+/, "");
        // A value is the entry's when it is the very same object; a type, when an entry names it.
        const entry = type || written.startsWith("type ")
          ? entries.find((e) => e.names.has(name))
          : entries.find((e) => Object.hasOwn(e.values, name) && e.values[name] === module[name]);
        if (entry !== undefined) offenders.push(`${file}:${line}: import ${name} from "${entry.name}"`);
      }
    }
  }
  assert.ok(checked > 50, `found the examples' relative imports (${checked})`);
  assert.deepEqual(offenders, []);
}, ["node", "deno", "bun"]);
