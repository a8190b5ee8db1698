// `npm run deploy`: checks wrangler.toml for what a first deploy must replace (scripts/_deploy_check.ts),
// then runs `wrangler deploy` with the given arguments, e.g. `npm run deploy -- --dry-run`.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { configPath, deployRefusals } from "./_deploy_check.ts";
import { ROOT } from "./_dev_server.ts";

const args = process.argv.slice(2);
const config = resolve(configPath(args));
const refusals = deployRefusals(readFileSync(config, "utf8"));
if (refusals.length > 0) {
  console.error(`kefu-edge: not deploying: ${config} is not ready`);
  for (const refusal of refusals) console.error(`  - ${refusal}`);
  console.error("See docs/deploying.md, the first-deploy checklist.");
  process.exitCode = 1;
} else {
  const wrangler = spawn(process.execPath, [
    join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"),
    "deploy",
    ...args,
  ], {
    stdio: "inherit",
  });
  process.exitCode = await new Promise<number>((done) => wrangler.once("exit", (code) => done(code ?? 1)));
}
