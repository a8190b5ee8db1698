import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { test } from "./_registry.ts";

// The portable core may use runtime modules only in the adapter files DESIGN.md allows.
const ADAPTERS = new Set(["runtime/read_file.ts", "runtime/crypto.ts"]);
const RUNTIME_USE = [
  /\bfrom\s+["'](node:|bun:|cloudflare:)/,
  /\bimport\s*\(\s*["'](node:|bun:|cloudflare:)/,
  /(?<![\w$#.])require\s*\(/,
  /\bDeno\s*\./,
  /\bBun\s*\./,
  /\bprocess\s*\.\s*(env|versions|argv)/,
  // How the adapters reach node: modules without an import statement.
  /\bgetBuiltinModule\b/,
];

async function listTs(dir: URL, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...await listTs(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`));
    else if (entry.name.endsWith(".ts")) out.push(`${prefix}${entry.name}`);
  }
  return out;
}

// Reads the source tree from disk: workerd has no view of the repository's files.
test("src/ uses no runtime module outside its adapter files", async () => {
  const src = new URL("../../src/", import.meta.url);
  const files = await listTs(src);
  assert.ok(files.length > 10, "found the source files");
  const offenders: string[] = [];
  for (const file of files) {
    if (ADAPTERS.has(file)) continue;
    const text = await readFile(new URL(file, src), "utf8");
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const pattern of RUNTIME_USE) if (pattern.test(code)) offenders.push(`${file}: ${pattern}`);
  }
  assert.deepEqual(offenders, []);
}, ["node", "deno", "bun"]);
