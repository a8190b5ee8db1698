// The `cloudflare:test` module, from the workerd test toolchain (tools/workerd, installed by
// scripts/toolchain.mjs before the type check).
/// <reference path="../../tools/workerd/node_modules/@cloudflare/vitest-plugin/types/cloudflare-test.d.ts" />
// The bindings and main module of wrangler.toml, as the workerd tests see them through `cloudflare:workers`.
declare namespace Cloudflare {
  interface Env {
    WECHAT_KV: KVNamespace;
    ASSETS: Fetcher;
    KEFU_STORE: DurableObjectNamespace;
    KEFU_QUEUE: Queue;
    KEFU_MEDIA: R2Bucket;
  }
  interface GlobalProps {
    mainModule: typeof import("../../worker/index.ts");
  }
}
