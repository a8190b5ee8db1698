// Tests inside workerd (the Workers runtime) with real KV: the bindings come from wrangler.toml.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
  test: {
    include: ["test/worker/**/*.test.ts"],
    setupFiles: ["test/worker/_setup.ts"],
    testTimeout: 30_000,
  },
});
