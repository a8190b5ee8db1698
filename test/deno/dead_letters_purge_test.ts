// Dead letters in Deno KV go with their user: purgeUser deletes that user's letters (found by the
// hash each letter keeps, not the OpenID) and no one else's.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { deadLetterOf, denoKvDeadLetters } from "../../worker/mod.ts";

Deno.test("Deno KV dead letters: purgeUser deletes the user's letters and keeps the others'", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const letters = denoKvDeadLetters(kv);
    const put = (deliveryId: string, openId: string) =>
      letters.put(deadLetterOf({ deliveryId, message: { MsgType: "text", FromUserName: openId } }, "m", {
        days: 7,
        now: Date.now,
      }));
    await put("aa01", "oUserToDelete000000000000001");
    await put("aa02", "oUserToDelete000000000000001");
    await put("bb01", "oUserToKeep00000000000000002");
    assertEquals(await letters.purgeUser("oUserToDelete000000000000001"), 2);
    assertEquals((await letters.list({ limit: 10 })).letters.map((l) => l.id), ["bb01"]);
    assertEquals(await letters.purgeUser("oUserToDelete000000000000001"), 0, "idempotent");
  } finally {
    kv.close();
  }
});
