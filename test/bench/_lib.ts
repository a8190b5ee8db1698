// Shared benchmark helpers: rows, timing loops and the table printer.
export interface Row {
  bench: string;
  /** What was measured, e.g. "send per call". */
  metric: string;
  value: number;
  unit: string;
  /** What the ratio compares against, measured in the same run. */
  baseline?: string;
  /** value / baseline value (for times: lower is better unless stated). */
  ratio?: number;
  /** The target, in words, e.g. "<= 1.10x". */
  target?: string;
  /** Whether the target was met. */
  met?: boolean;
}

/** The mini program every bench pushes to (its push Token and EncodingAESKey). */
export const APP_ID = "wxbench0000000001";
export const TOKEN = "benchToken123";
export const AES_KEY = "kefuEdgeBenchKey0123456789abcdefghijklmnopq";
/** The user of the benches' messages. */
export const OPEN_ID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
/** A typical customer-service text message. */
export const TEXT = "你好，我想咨询一下订单 #20240425-0042 的发货时间，谢谢！";

const proc = (globalThis as { process?: { env: Record<string, string | undefined>; argv: string[] } }).process;

/**
 * `npm run bench -- --quick` (or KEFU_BENCH_QUICK=1, which run.ts sets for the suites and the
 * runtimes it starts): fewer iterations everywhere, for a run in a few minutes. The ratios are
 * noisier; the counts are the same.
 */
export const QUICK: boolean = proc?.env.KEFU_BENCH_QUICK === "1" || (proc?.argv.includes("--quick") ?? false);

/** `full`, or `short` in a quick run. */
export function sized<T>(full: T, short: T): T {
  return QUICK ? short : full;
}

/** Runs `fn` `iterations` times after `warmup` runs; returns mean ms per call. */
export async function timePerCall(fn: () => Promise<unknown>, iterations: number, warmup = 50): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await fn();
  return (performance.now() - start) / iterations;
}

/**
 * Compares two functions on a shared, noisy machine: both are warmed up, then timed in
 * alternating rounds (order flipped each round) so drift hits both alike. Returns the
 * median per-call time of each, in ms, and the median of the per-round ratios a/b.
 */
export async function compare(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  iterations: number,
  rounds = 10,
): Promise<{ a: number; b: number; ratio: number }> {
  for (let i = 0; i < 500; i++) {
    await a();
    await b();
  }
  const per = Math.ceil(iterations / rounds);
  const ta: number[] = [];
  const tb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      ta.push(await timePerCall(a, per, 0));
      tb.push(await timePerCall(b, per, 0));
    } else {
      tb.push(await timePerCall(b, per, 0));
      ta.push(await timePerCall(a, per, 0));
    }
  }
  return { a: median(ta), b: median(tb), ratio: median(ta.map((x, i) => x / tb[i]!)) };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function printTable(rows: Row[]): void {
  const header = ["bench", "metric", "value", "baseline", "ratio", "target", "met"];
  const lines = rows.map((r) => [
    r.bench,
    r.metric,
    `${round(r.value)} ${r.unit}`,
    r.baseline ?? "",
    r.ratio === undefined ? "" : `${round(r.ratio)}x`,
    r.target ?? "",
    r.met === undefined ? "" : r.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  console.log(fmt(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const l of lines) console.log(fmt(l));
}

export function round(n: number): string {
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}
