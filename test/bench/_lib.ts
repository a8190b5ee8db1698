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

/** Runs `fn` `iterations` times after `warmup` runs; returns mean ms per call. */
export async function timePerCall(fn: () => Promise<unknown>, iterations: number, warmup = 50): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await fn();
  return (performance.now() - start) / iterations;
}

/** Alternates two functions in rounds so drift affects both alike; returns mean ms per call of each. */
export async function compare(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  iterations: number,
  rounds = 5,
): Promise<[number, number]> {
  let ta = 0;
  let tb = 0;
  for (let r = 0; r < rounds; r++) {
    ta += await timePerCall(a, Math.ceil(iterations / rounds), r === 0 ? 50 : 5);
    tb += await timePerCall(b, Math.ceil(iterations / rounds), r === 0 ? 50 : 5);
  }
  return [ta / rounds, tb / rounds];
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
