// Checks the JSR and npm packages as their registries would: `deno doc --lint` over every
// entry, `deno publish --dry-run` (slow types, module graph), then publint and
// @arethetypeswrong/cli on the packed npm tarball, and the published types in a plain Node
// TypeScript project (lib es2022 and @types/node, no DOM, no skipLibCheck). Run by `npm test`.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

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
// which createApp returns) is Hono's own `Hono` type with the queue handler added (the route
// folders' builders return a `Hono` sub-app too), the payload schemas (sendSchemas,
// subscribeMessageSchema, the conversation routes' schemas) are zod/mini schemas, and the Durable Object class (KefuStore)
// extends workerd's DurableObject.
const doc = run("deno doc --lint", bin("deno"), ["doc", "--lint", ...entries]);
const findings = doc.output.split(/\n(?=error\[)/).filter((block) => block.startsWith("error["));
const TOLERATED = [
  /^error\[private-type-ref\]: public type '(?:createApp|KefuApp|deadLetterRoutes|conversationRoutes)' references private type 'Hono'/,
  /^error\[private-type-ref\]: public type '(?:sendSchemas|subscribeMessageSchema|historyQuerySchema|agentNameSchema|handoffBodySchema)' references private type 'ZodMiniType'/,
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

// A Node project without the DOM lib: every .d.ts the three entries reach must compile there.
// kefu-edge (this build) and @types/node are linked in; hono and zod resolve from here.
const root = fileURLToPath(new URL("..", import.meta.url));
const project = mkdtempSync(join(tmpdir(), "kefu-edge-types-"));
try {
  mkdirSync(join(project, "node_modules", "@types"), { recursive: true });
  symlinkSync(root, join(project, "node_modules", "kefu-edge"), "dir");
  symlinkSync(join(root, "node_modules", "@types", "node"), join(project, "node_modules", "@types", "node"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "node-types", private: true, type: "module" }));
  const compilerOptions = {
    target: "es2022",
    lib: ["es2022"],
    types: ["node"],
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  };
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["index.ts"] }));
  writeFileSync(
    join(project, "index.ts"),
    [
      'import * as core from "kefu-edge";',
      'import * as testing from "kefu-edge/testing";',
      'import * as worker from "kefu-edge/worker";',
      'const emulator = testing.createEmulator({ appId: "wx1", appSecret: "secret" });',
      'export const mp = new core.MiniProgram({ appId: "wx1", appSecret: "secret", fetch: emulator.fetch });',
      "export const app = worker.createApp();",
      "export { core, testing, worker };",
    ].join("\n"),
  );
  const types = run("tsc: the published types with lib es2022 + @types/node", bin("tsc"), ["-p", project]);
  if (!types.ok) failures.push(types);
} finally {
  rmSync(project, { recursive: true, force: true });
}

for (const f of failures) console.error(`\n✗ ${f.label}\n${f.output}`);
if (failures.length > 0) process.exit(1);
console.log("publish checks passed: deno doc --lint, deno publish --dry-run, publint, attw, Node types without DOM");
