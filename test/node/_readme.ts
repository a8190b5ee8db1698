// Reads a section of the docs between `<!-- name:start -->` and `<!-- name:end -->` (the quick
// start in docs/quick-start.md, the install commands in README.md): its `<!-- run: name -->` blocks and the answers shown under
// them; runs the blocks in one shell, in order; and compares an actual answer with a shown
// one, `…` standing for any value.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../../scripts/_dev_server.ts";

export interface RunBlock {
  name: string;
  /** The shell commands, verbatim. */
  commands: string;
  /** The fence language of the shown answer (`json` or `text`) and its text. */
  expected: { lang: "json" | "text"; text: string };
}

/** Where each marked section lives, relative to the repository's root. */
export const SECTIONS = {
  quickstart: "docs/quick-start.md",
  install: "README.md",
  "first-minutes": "README.md",
} as const;

/** The text between the `name` markers of the file that holds them. */
export function docSection(name: keyof typeof SECTIONS): string {
  const file = SECTIONS[name];
  const text = readFileSync(join(ROOT, file), "utf8");
  const start = text.indexOf(`<!-- ${name}:start -->`);
  const end = text.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`${file} has no ${name} markers`);
  return text.slice(start, end);
}

/** The quick start's text (docs/quick-start.md), between its markers. */
export function quickStart(): string {
  return docSection("quickstart");
}

const RUN_BLOCK = /<!-- run: ([a-z0-9-]+) -->\n\n```sh\n([\s\S]*?)```\n\n```(json|text)\n([\s\S]*?)```/g;

/** Every run block of the quick start, in order. */
export function runBlocks(section: string = quickStart()): RunBlock[] {
  return [...section.matchAll(RUN_BLOCK)].map((m) => ({
    name: m[1]!,
    commands: m[2]!,
    expected: { lang: m[3] as "json" | "text", text: m[4]! },
  }));
}

/** A shown string with `…` in it, as a regular expression over the whole actual string. */
function glob(pattern: string): RegExp {
  const parts = pattern.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*?")}$`);
}

/**
 * The differences between an actual JSON value and the shown one: `"…"` matches any
 * value, a string with `…` matches any string of that shape, objects must have the same
 * keys, arrays the same length.
 */
export function jsonDifferences(shown: unknown, actual: unknown, path = "$"): string[] {
  if (shown === "…") return actual === undefined ? [`${path}: missing`] : [];
  if (typeof shown === "string" && shown.includes("…")) {
    return typeof actual === "string" && glob(shown).test(actual) ? [] : [`${path}: ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return [`${path}: not an array: ${JSON.stringify(actual)}`];
    if (shown.length !== actual.length) return [`${path}: ${actual.length} items, README shows ${shown.length}`];
    return shown.flatMap((item, i) => jsonDifferences(item, actual[i], `${path}[${i}]`));
  }
  if (typeof shown === "object" && shown !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) {
      return [`${path}: not an object: ${JSON.stringify(actual)}`];
    }
    const keys = new Set([...Object.keys(shown), ...Object.keys(actual)]);
    return [...keys].flatMap((key) =>
      key in shown
        ? key in actual
          ? jsonDifferences(
            (shown as Record<string, unknown>)[key],
            (actual as Record<string, unknown>)[key],
            `${path}.${key}`,
          )
          : [`${path}.${key}: missing`]
        : [`${path}.${key}: not shown in the README`]
    );
  }
  return Object.is(shown, actual) ? [] : [`${path}: ${JSON.stringify(actual)}, README shows ${JSON.stringify(shown)}`];
}

/** The shown lines (except `…` lines) that no actual line matches. */
export function textDifferences(shown: string, actual: string): string[] {
  const lines = actual.split(/\r?\n/);
  return shown.split("\n")
    .filter((line) => line.trim() !== "" && line.trim() !== "…")
    .filter((line) => !lines.some((candidate) => glob(line).test(candidate)))
    .map((line) => `no line matches: ${line}`);
}

/** The differences between an actual answer and the one shown under a block. */
export function answerDifferences(expected: RunBlock["expected"], stdout: string): string[] {
  if (expected.lang === "text") return textDifferences(expected.text, stdout);
  let actual: unknown;
  try {
    actual = JSON.parse(stdout);
  } catch {
    return [`not JSON: ${stdout.slice(0, 500)}`];
  }
  return jsonDifferences(JSON.parse(expected.text), actual);
}

/** What one block printed, and how its commands exited. */
export interface Ran {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ShellOptions {
  /** The folder the shell starts in. */
  cwd: string;
  /** The shell's whole environment. */
  env: NodeJS.ProcessEnv;
  /** Where the outputs go (a folder that is created). */
  outputs: string;
  /** The shell is killed after this long. */
  timeoutMs: number;
}

/**
 * Runs every block verbatim, in order, in one bash, so variables, the current folder and files carry
 * over as they would in a reader's terminal; each block's stdout, stderr and exit code are
 * kept apart.
 */
export async function runInOneShell(blocks: RunBlock[], options: ShellOptions): Promise<Map<string, Ran>> {
  const out = options.outputs;
  await mkdir(out, { recursive: true });
  const script = blocks.map((block, i) =>
    `{\n${block.commands}\n} > '${out}/${i}.out' 2> '${out}/${i}.err'\necho $? > '${out}/${i}.rc'\n`
  ).join("");
  await new Promise<void>((resolve, reject) => {
    const bash = spawn("bash", ["-c", script], { cwd: options.cwd, env: options.env, stdio: "ignore" });
    const timer = setTimeout(() => bash.kill("SIGKILL"), options.timeoutMs);
    bash.once("error", reject);
    bash.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const results = new Map<string, Ran>();
  for (const [i, block] of blocks.entries()) {
    const read = (ext: string) => readFile(join(out, `${i}.${ext}`), "utf8").catch(() => "");
    results.set(block.name, {
      stdout: await read("out"),
      stderr: await read("err"),
      exitCode: Number((await read("rc")).trim() || "-1"),
    });
  }
  return results;
}
