// The README's Deno example, run as a user would (deno.json maps "@kefu/edge" to this
// checkout, as `deno add jsr:@kefu/edge` maps it to JSR).
import assert from "node:assert/strict";

Deno.test("the Deno example sends a message to an emulated user", async () => {
  const example = new URL("../../examples/deno.ts", import.meta.url);
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    await import(example.href);
  } finally {
    console.log = original;
  }
  assert.deepEqual(JSON.parse(lines.join("\n")), [{ content: "Hi from deno 👋" }]);
});
