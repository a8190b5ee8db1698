// Tests inside workerd (the Workers runtime). Run them with `npm run test:workers`, which
// installs the integration under tools/workerd and runs it on Node 22 (scripts/toolchain.mjs).
//   worker  test/worker/*.test.ts with the bindings, date and flags of the shipped wrangler.toml.
//   cases   the shared core cases (test/cases), with wrangler.toml's compatibility date plus
//           nodejs_compat: the cases check the core against node:assert and node:crypto, which
//           the core itself never imports.
import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";
import { cloudflareTest } from "./tools/workerd/plugin.mjs";

const wranglerToml = readFileSync(new URL("./wrangler.toml", import.meta.url), "utf8");
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(wranglerToml)?.[1];
if (compatibilityDate === undefined) throw new Error("wrangler.toml has no compatibility_date");

export default defineConfig({
  test: {
    testTimeout: 30_000,
    projects: [
      {
        // KEFU_MEDIA is optional in wrangler.toml (commented out: deploying needs R2 on the
        // account); the tests bind it, Miniflare's R2 runs locally.
        plugins: [
          cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { r2Buckets: ["KEFU_MEDIA"] } }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          exclude: ["test/worker/core_cases.test.ts"],
          setupFiles: ["test/worker/_setup.ts"],
          // Projects do not inherit the root's options: a loaded machine needs the long timeout here.
          testTimeout: 30_000,
        },
      },
      {
        plugins: [cloudflareTest({ miniflare: { compatibilityDate, compatibilityFlags: ["nodejs_compat"] } })],
        test: { name: "cases", include: ["test/worker/core_cases.test.ts"], testTimeout: 30_000 },
      },
    ],
  },
});
