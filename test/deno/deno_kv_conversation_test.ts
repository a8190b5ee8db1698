// The conversation contract on DenoKvConversationStore (deno test --unstable-kv): once on an
// in-memory database, once on a database file opened by two connections, as two processes of a
// server open it (each operation alternates between them, so concurrent operations of a case
// race through both, and only Deno KV's atomic checks keep them apart). The store's clock is
// the test's, moved by `advance`.
import { type ConversationStore, DenoKvConversationStore } from "../../mod.ts";
import { conversationCases, type ConversationTestSettings } from "../cases/_conversation_suite.ts";
import { WALK_MS as WALK } from "../../src/internal/conversation_list.ts";

/** A store that sends each call to the next of `stores` in turn. */
function alternating(stores: ConversationStore[]): ConversationStore {
  let next = 0;
  const pick = () => stores[next++ % stores.length]!;
  return new Proxy({} as ConversationStore, {
    get: (_, name: keyof ConversationStore) => (...args: unknown[]) =>
      (pick()[name] as (...args: unknown[]) => unknown)(...args),
  });
}

for (const [name, fn] of conversationCases) {
  Deno.test(`DenoKvConversationStore (:memory:): ${name}`, async () => {
    const kv = await Deno.openKv(":memory:");
    try {
      await fn((settings: Partial<ConversationTestSettings> = {}) => {
        let now = Date.now();
        const store = new DenoKvConversationStore(kv, { ...settings, now: () => now });
        return Promise.resolve({ store, advance: (ms: number) => Promise.resolve(void (now += ms)) });
      });
    } finally {
      kv.close();
    }
  });

  Deno.test(`DenoKvConversationStore (one file, two connections): ${name}`, async () => {
    const path = await Deno.makeTempFile({ suffix: ".sqlite" });
    const [kvA, kvB] = [await Deno.openKv(path), await Deno.openKv(path)];
    try {
      await fn((settings: Partial<ConversationTestSettings> = {}) => {
        let now = Date.now();
        const clock = { now: () => now };
        const store = alternating([
          new DenoKvConversationStore(kvA, { ...settings, ...clock }),
          new DenoKvConversationStore(kvB, { ...settings, ...clock }),
        ]);
        return Promise.resolve({ store, advance: (ms: number) => Promise.resolve(void (now += ms)) });
      });
    } finally {
      kvA.close();
      kvB.close();
      await Deno.remove(path).catch(() => {});
    }
  });
}

/** Every key the store keeps for `openId`, by kind: the head, history seqs, and claims with their rows. */
async function keysOf(kv: Deno.Kv, openId: string) {
  const found = { head: false, seqs: [] as number[], claims: [] as { key: string; seq?: number }[] };
  for await (const { key, value } of kv.list({ prefix: ["kefu-edge-conv", "wxkv", openId] })) {
    if (key[3] === "head") found.head = true;
    else if (key[3] === "h") found.seqs.push(key[4] as number);
    else if (key[3] === "claim") found.claims.push({ key: key[4] as string, ...value as { seq?: number } });
  }
  return found;
}

function text(key: string) {
  return {
    key,
    claim: `lease:${key}`,
    ttlSeconds: 60,
    entry: { sender: "user" as const, type: "message" as const, msgType: "text", text: `text ${key}` },
    action: { kind: "message" as const, at: Date.now() },
  };
}

Deno.test("DenoKvConversationStore: purge of a long conversation deletes every history key over several commits and keeps the claims without their entries", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DenoKvConversationStore(kv);
    const ref = { appId: "wxkv", openId: "o-long" };
    // More entries than one purge commit deletes (800).
    for (let i = 0; i < 2000; i++) await store.accept(ref, text(`k${i}`));
    const before = await keysOf(kv, "o-long");
    if (before.seqs.length !== 2000 || !before.head || before.claims.length !== 2000) {
      throw new Error(`set-up: ${before.seqs.length} entries, ${before.claims.length} claims`);
    }
    await store.purge(ref);
    const after = await keysOf(kv, "o-long");
    const numbered = after.claims.filter((claim) => claim.seq !== undefined).length;
    const summary = { head: after.head, entries: after.seqs.length, claims: after.claims.length, numbered };
    const expected = { head: false, entries: 0, claims: 2000, numbered: 0 };
    if (JSON.stringify(summary) !== JSON.stringify(expected)) {
      throw new Error(`after purge: ${JSON.stringify(summary)}, expected ${JSON.stringify(expected)}`);
    }
    const retry = await store.accept(ref, { ...text("k7"), claim: "lease:again" });
    if (retry.outcome !== "taken" || (await store.history(ref, { limit: 5 })) !== null) {
      throw new Error("a retry of a purged user's push came back into the history");
    }
  } finally {
    kv.close();
  }
});

Deno.test("DenoKvConversationStore: pushes accepted while a purge runs leave no entry without a head, nor one past it", async () => {
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  const [kvA, kvB] = [await Deno.openKv(path), await Deno.openKv(path)];
  try {
    const [a, b] = [new DenoKvConversationStore(kvA), new DenoKvConversationStore(kvB)];
    const ref = { appId: "wxkv", openId: "o-racing" };
    for (let i = 0; i < 1000; i++) await a.accept(ref, text(`old${i}`));
    // The purge (on one connection) takes several commits; pushes arrive on the other
    // meanwhile, and a few after it.
    let purged = false;
    let after = 0;
    let arrived = 0;
    const arriving = (async () => {
      while (after < 3) {
        await b.accept(ref, text(`new${arrived++}`));
        if (purged) after++;
      }
    })();
    await a.purge(ref).finally(() => purged = true);
    await arriving;
    const { head, seqs } = await keysOf(kvA, "o-racing");
    const page = await a.history(ref, { limit: 200 });
    const last = page?.entries[0]?.seq ?? 0;
    // Whatever the purge left is one whole conversation: entries 1..n under a head numbered n.
    const whole = seqs.length === last && seqs.every((seq, i) => seq === i + 1) && (seqs.length === 0 || head);
    if (!whole) {
      throw new Error(`left: head ${head}, seqs ${seqs.slice(0, 5)}...(${seqs.length}), page's newest ${last}`);
    }
    if (seqs.length < 3) throw new Error(`${seqs.length} entries left: pushes after the purge were deleted`);
    const texts = page?.entries.map((entry) => entry.text) ?? [];
    if (texts.some((t) => t?.startsWith("text old"))) throw new Error("an entry from before the purge is still there");
  } finally {
    kvA.close();
    kvB.close();
    await Deno.remove(path).catch(() => {});
  }
});

/** The app's index as kept: each place `[activityAt, openId]` with whether it is a ghost. */
async function placesOf(kv: Deno.Kv, appId: string) {
  const places: { at: number; openId: string; ghost: boolean }[] = [];
  for await (const { key, value } of kv.list({ prefix: ["kefu-edge-conv-dir", appId] })) {
    places.push({ at: key[2] as number, openId: key[3] as string, ghost: "ghost" in (value as object) });
  }
  return places;
}

function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

Deno.test("DenoKvConversationStore: the app's index holds one place per conversation, moved in the operation's commit; ghosts only while a walk may go on; purge deletes them all", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    let now = 1_000_000;
    const store = new DenoKvConversationStore(kv, { now: () => now });
    const [a, b] = [{ appId: "wxidx", openId: "o-a" }, { appId: "wxidx", openId: "o-b" }];
    await store.accept(a, text("a1"));
    now += 10;
    await store.accept(b, text("b1"));
    now += 10;
    await store.accept(a, text("a2")); // moves: the old place is deleted, no walk going on
    expectEqual(await placesOf(kv, "wxidx"), [
      { at: 1_000_010, openId: "o-b", ghost: false },
      { at: 1_000_020, openId: "o-a", ghost: false },
    ], "no walk: one place each");
    await store.reserve(a, {}); // the window changes, the place stays
    expectEqual((await placesOf(kv, "wxidx")).length, 2, "rewritten in place");
    await store.list("wxidx", { limit: 1 }); // a walk begins
    now += 10;
    await store.accept(b, text("b2"));
    expectEqual(await placesOf(kv, "wxidx"), [
      { at: 1_000_010, openId: "o-b", ghost: true },
      { at: 1_000_020, openId: "o-a", ghost: false },
      { at: 1_000_030, openId: "o-b", ghost: false },
    ], "while walking: a ghost of the place left");
    await store.purge(b);
    const left: unknown[] = [];
    for await (const { key } of kv.list({ prefix: ["kefu-edge-conv", "wxidx", "o-b"] })) left.push(key);
    expectEqual(await placesOf(kv, "wxidx"), [{ at: 1_000_020, openId: "o-a", ghost: false }], "purged: no place left");
    expectEqual(left.filter((key) => (key as unknown[])[3] !== "claim"), [], "purged: nothing but claims");
    now += WALK + 1;
    await store.accept(a, text("a3"));
    expectEqual(await placesOf(kv, "wxidx"), [{ at: now, openId: "o-a", ghost: false }], "the walk is over: no ghost");
  } finally {
    kv.close();
  }
});
