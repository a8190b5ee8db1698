import { test } from "vitest";
import { casesFor } from "../cases/_registry.ts";
import "../cases/all.ts";

for (const c of casesFor("node")) test(c.name, c.fn, 30_000);
