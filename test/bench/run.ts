// `npm run bench`: runs every benchmark suite, prints one table per suite and writes
// all rows to test/bench/results.json.
import { writeFile } from "node:fs/promises";
import { printTable, type Row } from "./_lib.ts";

const suites: Array<[string, string]> = [
  ["core (issue 2)", "./core.ts"],
  ["push (issue 3)", "./push.ts"],
  ["worker (issue 4)", "./worker.ts"],
];

const results: Record<string, Row[]> = {};
for (const [name, path] of suites) {
  let mod: { run?: () => Promise<Row[]> };
  try {
    mod = await import(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND" && String(err).includes(path.slice(2))) continue;
    throw err;
  }
  if (typeof mod.run !== "function") continue;
  console.log(`\n## ${name}\n`);
  const rows = await mod.run();
  printTable(rows);
  results[name] = rows;
}
const file = new URL("./results.json", import.meta.url);
await writeFile(
  file,
  JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + "\n",
);
console.log(`\nwrote ${file.pathname}`);
