// `npm run bench`: runs every benchmark suite, prints one table per suite and writes all
// rows to test/bench/results.json. `npm run bench -- --docs` also rewrites the tables of
// docs/performance.md from this run (with the date and the machine it ran on).
//
// `--quick`: fewer iterations everywhere (a few minutes; noisier ratios, the same counts); its
// rows are printed only. `--only <word>[,<word>]`: only the suites whose name contains a word
// (`--only worker`, `--only deno`, `--only push`); their rows replace those suites' rows in
// results.json. Neither goes with `--docs`, whose tables come from one full run.
import { execFileSync } from "node:child_process";
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const onlyAt = args.indexOf("--only");
const only = onlyAt === -1 ? undefined : (args[onlyAt + 1] ?? "").toLowerCase().split(",").filter(Boolean);
const docs = args.includes("--docs");
if (onlyAt !== -1 && (only === undefined || only.length === 0)) {
  throw new Error("--only needs a suite word, e.g. --only worker");
}
if (docs && (quick || only !== undefined)) throw new Error("--docs records one full run: leave out --quick and --only");
// Read by _lib.ts when the suites load, and by the runtimes started below (they inherit it).
if (quick) process.env.KEFU_BENCH_QUICK = "1";
const { printTable, round } = await import("./_lib.ts");
type Row = import("./_lib.ts").Row;
const selected = (name: string) => only === undefined || only.some((word) => name.toLowerCase().includes(word));

const suites: Array<[string, string]> = [
  ["core", "./core.ts"],
  ["push on Node", "./push.ts"],
  ["worker", "./worker.ts"],
  ["upload", "./upload.ts"],
];

const started = performance.now();
/** The machine's load when the run began: these cores are often shared. */
const loadAtStart = loadavg()[0]!;
const results: Record<string, Row[]> = {};
for (const [name, path] of suites) {
  if (!selected(name)) continue;
  let mod: { run?: () => Promise<Row[]> };
  try {
    mod = await import(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND" && String(err).includes(path.slice(2))) continue;
    throw err;
  }
  if (typeof mod.run !== "function") continue;
  console.log(`\n## ${name}\n`);
  const suiteStarted = performance.now();
  const rows = await mod.run();
  printTable(rows);
  console.log(`(${seconds(suiteStarted)} s)`);
  results[name] = rows;
}
// The push path on Deno and Bun: the same bench file, run by each runtime.
const bin = (name: string) => fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));
const benchFile = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
collect("push on Deno", [bin("deno"), "run", "-A", benchFile("push.ts"), "--json"], "Deno");
collect("push on Bun", [bin("bun"), benchFile("push.ts"), "--json"], "Bun");
// Conversations on Deno KV, and the Deno server's Deno KV operations: run by Deno, which has the database.
collect("conversations on Deno KV", [
  bin("deno"),
  "run",
  "-A",
  "--unstable-kv",
  benchFile("deno_kv_conversation.ts"),
  "--json",
]);
collect("Deno server on Deno KV", [bin("deno"), "run", "-A", "--unstable-kv", benchFile("deno_server.ts"), "--json"]);
console.log(`\nran in ${((performance.now() - started) / 60_000).toFixed(1)} min`);

/** Runs a bench file in another runtime (it prints its rows as JSON, last) and keeps its rows as `name`. */
function collect(name: string, [cmd, ...args]: string[], runtime?: string): void {
  if (!selected(name)) return;
  const suiteStarted = performance.now();
  const out = execFileSync(cmd!, args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  const rows = (JSON.parse(out.trim().split("\n").pop()!) as Row[]).map((r) =>
    runtime === undefined ? r : { ...r, metric: `${runtime}: ${r.metric}` }
  );
  console.log(`\n## ${name}\n`);
  printTable(rows);
  console.log(`(${seconds(suiteStarted)} s)`);
  results[name] = rows;
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(0);
}

const file = new URL("./results.json", import.meta.url);
if (quick) {
  console.log("\n--quick: rows printed only; results.json keeps the last full run");
} else {
  const now = new Date().toISOString();
  let kept: Record<string, Row[]> = {};
  let dates: Record<string, string> = {};
  if (only !== undefined) {
    // A partial run replaces its suites' rows and keeps the others', each with its own date.
    const last = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as {
      date?: string;
      dates?: Record<string, string>;
      results?: Record<string, Row[]>;
    };
    kept = last.results ?? {};
    dates = Object.fromEntries(Object.keys(kept).map((name) => [name, last.dates?.[name] ?? last.date ?? ""]));
  }
  for (const name of Object.keys(results)) dates[name] = now;
  const all = { ...kept, ...results };
  await writeFile(
    file,
    JSON.stringify({ date: now, machine: machine(), node: process.version, dates, results: all }, null, 2) + "\n",
  );
  console.log(`\nwrote ${file.pathname}`);
}
if (docs) await recordInDocs(results);

function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
    `${platform()} ${release()}`;
}

/** Rewrites the tables of docs/performance.md (between the bench markers) from this run. */
async function recordInDocs(all: Record<string, Row[]>): Promise<void> {
  const page = new URL("../../docs/performance.md", import.meta.url);
  const text = await readFile(page, "utf8");
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  if (!text.includes(start) || !text.includes(end)) {
    throw new Error(`${fileURLToPath(page)} has no ${start} … ${end} markers: the tables were not written`);
  }
  const versions = `Node ${process.version}, ${runtimeVersion("deno")}, ${runtimeVersion("bun")}`;
  const lines = [
    start,
    `Measured by \`npm run bench -- --docs\` on ${new Date().toISOString().slice(0, 10)}, on ${machine()} ` +
    `(${versions}), load average ${
      loadAtStart.toFixed(1)
    } at the start (the cores are shared with other work); every ` +
    `ratio compares against a baseline or peer measured in the same run, in ${
      ((performance.now() - started) / 60_000).toFixed(1)
    } minutes. Absolute numbers move with machine load; ratios less so.`,
    "",
  ];
  for (const [name, rows] of Object.entries(all)) {
    lines.push(
      `**${name}**`,
      "",
      "| metric | value | baseline | ratio | target | met |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const r of rows) {
      const ratio = r.ratio === undefined ? "" : `${round(r.ratio)}×`;
      const met = r.met === undefined ? "" : r.met ? "yes" : "**no**";
      lines.push(
        `| ${r.metric} | ${round(r.value)} ${r.unit} | ${r.baseline ?? ""} | ${ratio} | ${r.target ?? ""} | ${met} |`,
      );
    }
    lines.push("");
  }
  lines.push(end);
  const updated = text.slice(0, text.indexOf(start)) + lines.join("\n") + text.slice(text.indexOf(end) + end.length);
  await writeFile(page, updated);
  const deno = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));
  execFileSync(deno, ["fmt", "--quiet", fileURLToPath(page)]);
  console.log("updated the tables of docs/performance.md");
}

function runtimeVersion(name: "deno" | "bun"): string {
  const out = execFileSync(bin(name), ["--version"], { encoding: "utf8" }).trim().split("\n")[0]!;
  return name === "bun" ? `Bun ${out}` : out.replace(/^deno /, "Deno ").replace(/ \(.*$/, "");
}
