// The shared test registry: case files call `test(name, fn)` once; a thin entry per
// runtime (test/node, test/deno, test/bun, test/worker for workerd) hands every case to
// that runtime's runner.
export interface TestCase {
  name: string;
  fn: () => unknown | Promise<unknown>;
  /** Only for runtimes that have what the case needs (e.g. the file system). */
  runtimes?: readonly Runtime[];
}
/** Where the shared cases run: Node (20, 22 and 24), Deno, Bun and workerd. */
export type Runtime = "node" | "deno" | "bun" | "workerd";

export const cases: TestCase[] = [];

/** Registers a case that runs on every runtime, or only on `runtimes`. */
export function test(name: string, fn: TestCase["fn"], runtimes?: readonly Runtime[]): void {
  if (cases.some((c) => c.name === name)) throw new Error(`Duplicate test name: ${name}`);
  cases.push(runtimes === undefined ? { name, fn } : { name, fn, runtimes });
}

/** The cases that apply to `runtime`. */
export function casesFor(runtime: Runtime): TestCase[] {
  return cases.filter((c) => c.runtimes === undefined || c.runtimes.includes(runtime));
}
