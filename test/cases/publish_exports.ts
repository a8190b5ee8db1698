import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import packageJson from "../../package.json" with { type: "json" };
import { test } from "./_registry.ts";

// Subpaths only npm publishes: the Node server (on Hono's Node adapter) has no use on JSR,
// where Deno serves the app itself.
const NPM_ONLY = ["./worker/node"];

// JSR (deno.json) and npm (package.json) must publish the same subpaths at the same version.
// Imported as JSON modules rather than read from disk, so the case also runs in workerd.
test("deno.json and package.json export the same subpaths at the same version", () => {
  const deno = denoJson as { version: string; exports: Record<string, string> };
  const pkg = packageJson as { version: string; exports: Record<string, string | Record<string, string>> };
  assert.equal(pkg.version, deno.version, "versions match");
  const npmSubpaths = Object.keys(pkg.exports).filter((k) => k !== "./package.json" && !NPM_ONLY.includes(k))
    .sort();
  assert.deepEqual(npmSubpaths, Object.keys(deno.exports).sort());
  for (const [subpath, source] of Object.entries(deno.exports)) {
    const target = pkg.exports[subpath];
    assert.ok(target !== undefined && typeof target === "object", `${subpath} has conditions`);
    assert.equal(target.bun, source, `${subpath}: Bun takes the same .ts source as JSR`);
    const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, ".js");
    assert.equal(target.import, built, `${subpath}: Node takes the build of that source`);
    assert.equal(target.types, built.replace(/\.js$/, ".d.ts"), `${subpath}: types of that build`);
  }
  for (const subpath of NPM_ONLY) {
    const target = pkg.exports[subpath];
    assert.ok(target !== undefined && typeof target === "object", `${subpath} is published on npm`);
    assert.equal(target.bun, undefined, `${subpath}: not offered to Bun as source`);
  }
});

// src/push/mod.ts is the push folder's entry: it exports only public names, each of which
// mod.ts re-exports (type exports are erased; the values show the rule).
test("src/push/mod.ts exports no value that mod.ts does not", async () => {
  const root: Record<string, unknown> = await import("../../mod.ts");
  const push: Record<string, unknown> = await import("../../src/push/mod.ts");
  assert.ok(Object.keys(push).length >= 4, "found the push entry's values");
  for (const [name, value] of Object.entries(push)) assert.equal(root[name], value, name);
});
