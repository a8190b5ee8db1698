// For the npm build only (tsconfig.build.json): `cloudflare:workers` is workerd's own module,
// which only a Workers runtime has, and worker/store_object.ts types the one thing it takes from
// it (the DurableObject base class) itself. worker/tsconfig.json checks the worker against
// @cloudflare/workers-types instead, and leaves this file out.
declare module "cloudflare:workers";
