// Checks the JSR and npm packages as their registries would: `deno doc --lint` over every
// entry, `deno publish --dry-run` (slow types, module graph), then publint and
// @arethetypeswrong/cli on the packed npm tarball. Run by `npm test`.
import { execFileSync, spawnSync } from "node:child_process";

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
const entries = ["mod.ts", "src/testing/mod.ts", "worker/mod.ts", "worker/durable_object.ts"];

function run(label, cmd, args) {
  const result = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  const output = `${result.stdout}${result.stderr}`;
  return { label, ok: result.status === 0, output };
}

const failures = [];

// deno doc --lint: every export documented, no private types in public signatures. The
// tolerated findings are other packages' types, theirs to document: the app type (KefuApp,
// which createApp returns) is Hono's own `Hono` type with the queue handler added, and the
// payload schemas (sendSchemas, subscribeMessageSchema) are zod/mini schemas, and the Durable
// Object class (KefuStore) extends workerd's DurableObject.
const doc = run("deno doc --lint", bin("deno"), ["doc", "--lint", ...entries]);
const findings = doc.output.split(/\n(?=error\[)/).filter((block) => block.startsWith("error["));
const TOLERATED = [
  /^error\[private-type-ref\]: public type '(?:createApp|KefuApp)' references private type 'Hono'/,
  /^error\[private-type-ref\]: public type '(?:sendSchemas|subscribeMessageSchema)' references private type 'ZodMiniType'/,
  /^error\[private-type-ref\]: public type 'KefuStore' references private type 'DurableObject'/,
];
const unexpected = findings.filter((f) => !TOLERATED.some((pattern) => pattern.test(f)));
if (unexpected.length > 0) failures.push({ ...doc, output: unexpected.join("\n") });

const publish = run("deno publish --dry-run", bin("deno"), ["publish", "--dry-run", "--allow-dirty"]);
if (!publish.ok || /warning\[/.test(publish.output)) failures.push(publish);

execFileSync("npm", ["run", "build", "--silent"], { stdio: "inherit" });
const publint = run("publint", bin("publint"), ["--strict"]);
if (!publint.ok) failures.push(publint);
const attw = run("attw", bin("attw"), ["--pack", ".", "--profile", "esm-only"]);
if (!attw.ok) failures.push(attw);

for (const f of failures) console.error(`\n✗ ${f.label}\n${f.output}`);
if (failures.length > 0) process.exit(1);
console.log("publish checks passed: deno doc --lint, deno publish --dry-run, publint, attw");
