// The bindings and main module of wrangler.toml, as the workerd tests see them through `cloudflare:workers`.
declare namespace Cloudflare {
  interface Env {
    WECHAT_KV: KVNamespace;
    KEFU_STORE: DurableObjectNamespace;
    KEFU_QUEUE: Queue;
  }
  interface GlobalProps {
    mainModule: typeof import("../../worker/index.ts");
  }
}
