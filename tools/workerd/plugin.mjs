// The workerd Vitest integration, resolved from this folder's own install (see package.json).
export { cloudflareTest } from "@cloudflare/vitest-plugin";
