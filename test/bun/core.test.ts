import { test } from "bun:test";
import { casesFor } from "../cases/_registry.ts";
import "../cases/all.ts";

for (const c of casesFor("bun")) test(c.name, async () => void (await c.fn()), 30_000);
