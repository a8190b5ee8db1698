import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts"],
    testTimeout: 30_000,
    // Most of these files wait on servers they start (wrangler, workerd, Chromium, Deno, Bun):
    // three at once on 2 cores halves the suite's time (210 s -> 112 s, measured) with every test
    // still passing; vitest's default there is one at a time.
    maxWorkers: 3,
  },
});
