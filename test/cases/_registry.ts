// The shared test registry: case files call `test(name, fn)` once; a thin entry per
// runtime (test/node, test/deno, test/bun) hands every case to that runtime's runner.
export interface TestCase {
  name: string;
  fn: () => unknown | Promise<unknown>;
  /** Only for runtimes that have what the case needs (e.g. the file system). */
  runtimes?: readonly Runtime[];
}
export type Runtime = "node" | "deno" | "bun";

export const cases: TestCase[] = [];

/** Registers a case that runs on Node, Deno and Bun. */
export function test(name: string, fn: TestCase["fn"], runtimes?: readonly Runtime[]): void {
  if (cases.some((c) => c.name === name)) throw new Error(`Duplicate test name: ${name}`);
  cases.push(runtimes === undefined ? { name, fn } : { name, fn, runtimes });
}

/** The cases that apply to `runtime`. */
export function casesFor(runtime: Runtime): TestCase[] {
  return cases.filter((c) => c.runtimes === undefined || c.runtimes.includes(runtime));
}
