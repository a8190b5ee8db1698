// CloudflareKvStore against real Workers KV in workerd, through miniflare.
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, test } from "vitest";
import { CloudflareKvStore, type KvNamespaceLike } from "../../mod.ts";
import { storeCases } from "../cases/_store_suite.ts";

interface KvWithList extends KvNamespaceLike {
  list(options: { prefix: string }): Promise<{ keys: Array<{ name: string; expiration?: number }> }>;
}

let mf: Miniflare;
let kv: KvWithList;
beforeAll(async () => {
  mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null) } }",
    kvNamespaces: ["KV"],
  });
  kv = (await mf.getKVNamespace("KV")) as unknown as KvWithList;
});
afterAll(() => mf?.dispose());

for (const [name, fn] of storeCases) {
  test(`CloudflareKvStore: ${name}`, () => fn({ store: new CloudflareKvStore(kv), minTtlSeconds: 60, atomic: false }));
}

test("CloudflareKvStore: TTLs reach KV as expirations, raised to KV's 60 s minimum", async () => {
  const store = new CloudflareKvStore(kv);
  const before = Math.floor(Date.now() / 1000);
  await store.set("kefu-exp:long", "v", { ttlSeconds: 7000 });
  await store.set("kefu-exp:short", "v", { ttlSeconds: 5 });
  await store.set("kefu-exp:none", "v");
  const { keys } = await kv.list({ prefix: "kefu-exp:" });
  const expiration = Object.fromEntries(keys.map((k) => [k.name, k.expiration]));
  const after = Math.ceil(Date.now() / 1000);
  assert.ok(expiration["kefu-exp:long"]! >= before + 7000 && expiration["kefu-exp:long"]! <= after + 7000);
  assert.ok(expiration["kefu-exp:short"]! >= before + 60 && expiration["kefu-exp:short"]! <= after + 60);
  assert.equal(expiration["kefu-exp:none"], undefined);
});
