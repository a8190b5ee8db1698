import { casesFor } from "../cases/_registry.ts";
import "../cases/all.ts";

for (const c of casesFor("deno")) {
  Deno.test({ name: c.name, fn: async () => void (await c.fn()), sanitizeOps: false, sanitizeResources: false });
}
