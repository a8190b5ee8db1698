// The shared core cases (test/cases) inside workerd, as on Node, Deno and Bun; the cases that
// need a file system list the runtimes that have one.
import { test } from "vitest";
import { casesFor } from "../cases/_registry.ts";
import "../cases/all.ts";

for (const c of casesFor("workerd")) test(c.name, c.fn, 30_000);
