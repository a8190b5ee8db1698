// One conversation contract, run against every ConversationStore engine (in memory here, Deno KV
// under deno test, the Durable Object inside workerd). Its checks are written here rather than
// taken from node:assert, so the suite type-checks with Workers' types too.
import type {
  AcceptInput,
  ConversationListOptions,
  ConversationPage,
  ConversationRef,
  ConversationStore,
  ConversationSummary,
} from "../../mod.ts";

const assert = {
  equal(actual: unknown, expected: unknown, what = "value"): void {
    if (!Object.is(actual, expected)) {
      throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
  },
  deepEqual(actual: unknown, expected: unknown, what = "values"): void {
    assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
  },
};

/** Settings a fixture's store is made with. */
export interface ConversationTestSettings {
  /** A takeover idle this long goes back to the bot, ms. */
  idleMs: number;
  /** History older than this many days is deleted (fractions allowed, for tests). */
  historyDays: number;
}

export interface ConversationFixture {
  store: ConversationStore;
  /** Makes time pass for the store: moves its clock, or sleeps when it runs on real time. */
  advance(ms: number): Promise<void>;
  /** Whether the store runs on real time (`advance` sleeps): long waits are then left out. */
  realTime?: boolean;
  /**
   * Waits until the app's list has every change made so far (the Durable Object engine updates
   * it after answering); the other engines change it with each operation.
   */
  settle?(): Promise<void>;
  close?(): Promise<void> | void;
}

export type ConversationCase = [
  name: string,
  fn: (make: (settings?: Partial<ConversationTestSettings>) => Promise<ConversationFixture>) => Promise<void>,
];

let users = 0;
/** A conversation of its own for each case (engines may share state across cases). */
function freshRef(): ConversationRef {
  return { appId: "wxconversation01", openId: `o-contract-${Date.now().toString(36)}-${users++}` };
}

let apps = 0;
/** An app of its own for each case that lists conversations. */
function freshApp(): string {
  return `wxlist${Date.now().toString(36)}${apps++}`;
}

function userText(key: string, text: string, at = Date.now()): AcceptInput {
  return {
    key,
    claim: `lease:${key}:1`,
    ttlSeconds: 5,
    entry: { sender: "user", type: "message", msgType: "text", text, deliveryId: `d-${key}` },
    action: { kind: "message", at },
  };
}

function userImage(key: string, mediaId: string): AcceptInput {
  return {
    key,
    claim: `lease:${key}:1`,
    ttlSeconds: 5,
    entry: { sender: "user", type: "message", msgType: "image", mediaId, deliveryId: `d-${key}` },
    action: { kind: "message", at: Date.now() },
  };
}

const THREE_DAYS_MS = 3 * 24 * 3600 * 1000;

/** Every page of a walk from its first, with the cursors followed. */
async function walk(
  store: ConversationStore,
  appId: string,
  options: ConversationListOptions,
): Promise<ConversationPage[]> {
  const pages = [await store.list(appId, options)];
  while (pages.at(-1)!.nextCursor !== null && pages.length < 50) {
    pages.push(await store.list(appId, { ...options, cursor: pages.at(-1)!.nextCursor! }));
  }
  return pages;
}

function ids(conversations: ConversationSummary[]): string[] {
  return conversations.map((c) => c.openId);
}

/** The field a ValidationError names, or what else was thrown. */
async function refusedField(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "accepted";
  } catch (err) {
    return (err as { field?: string }).field ?? `no field: ${String(err)}`;
  }
}

function botText(text: string, outcome: "ok" | number = "ok") {
  return { entry: { sender: "bot" as const, type: "message" as const, msgType: "text", text, outcome }, spend: true };
}

export const conversationCases: ConversationCase[] = [
  ["accept: the first delivery claims, appends once and opens the window; retries find the claim", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    const first = await store.accept(ref, userText("m1", "你好"));
    assert.equal(first.outcome, "claimed");
    assert.equal(first.handoff.state, "bot");
    assert.equal(first.window?.kind, "message");
    assert.equal(first.window?.remaining, 5);
    const retry = await store.accept(ref, { ...userText("m1", "你好"), claim: "lease:m1:2" });
    assert.deepEqual([retry.outcome, retry.current], ["taken", "lease:m1:1"], "a retry while held");
    assert.equal(await store.replaceClaim(ref, "m1", "lease:m1:1", "done:success", 300), true);
    const later = await store.accept(ref, { ...userText("m1", "你好"), claim: "lease:m1:3" });
    assert.deepEqual([later.outcome, later.current], ["taken", "done:success"], "a retry once done");
    assert.equal(await store.claim(ref, "m1"), "done:success");
    const page = await store.history(ref, { limit: 10 });
    assert.equal(page?.entries.length, 1, "appended once");
    assert.deepEqual(
      [page?.entries[0]?.seq, page?.entries[0]?.sender, page?.entries[0]?.text, page?.entries[0]?.deliveryId],
      [1, "user", "你好", "d-m1"],
    );
  }],
  ["accept: a released claim is claimed again by the next delivery, without a second entry", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "one"));
    assert.equal(await store.replaceClaim(ref, "m1", "lease:m1:wrong", null, 0), false, "not our lease");
    assert.equal(await store.replaceClaim(ref, "m1", "lease:m1:1", null, 0), true, "released");
    assert.equal(await store.claim(ref, "m1"), null);
    const again = await store.accept(ref, { ...userText("m1", "one"), claim: "lease:m1:2" });
    assert.equal(again.outcome, "claimed");
    assert.equal((await store.history(ref, { limit: 10 }))?.entries.length, 1);
  }],
  ["accept: a lease that ran out (its holder died) is taken over, without a second entry", async (make) => {
    const { store, advance } = await make();
    const ref = freshRef();
    await store.accept(ref, { ...userText("m1", "one"), ttlSeconds: 0.3 });
    assert.equal((await store.accept(ref, { ...userText("m1", "one"), claim: "lease:m1:2" })).outcome, "taken");
    await advance(400);
    assert.equal((await store.accept(ref, { ...userText("m1", "one"), claim: "lease:m1:3" })).outcome, "claimed");
    assert.equal((await store.history(ref, { limit: 10 }))?.entries.length, 1);
  }],
  ["accept: `takeOver` takes a live claim by how it starts, says what it replaced, and nothing else", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, { ...userText("m1", "one"), claim: "queued:success", ttlSeconds: 300 });
    const run = { ...userText("m1", "one"), claim: "lease:run:1", takeOver: ["queued:", "enqueuing:"] };
    const taken = await store.accept(ref, run);
    assert.deepEqual([taken.outcome, taken.current, taken.window?.kind], ["claimed", "queued:success", "message"]);
    assert.equal(await store.claim(ref, "m1"), "lease:run:1");
    // A live lease (another run) and a done mark are not in `takeOver`: found, not replaced.
    const busy = await store.accept(ref, { ...run, claim: "lease:run:2" });
    assert.deepEqual([busy.outcome, busy.current], ["taken", "lease:run:1"], "while another run holds it");
    assert.equal(await store.replaceClaim(ref, "m1", "lease:run:1", "done:success", 300), true);
    const done = await store.accept(ref, { ...run, claim: "lease:run:3" });
    assert.deepEqual([done.outcome, done.current], ["taken", "done:success"], "once done");
    assert.equal((await store.history(ref, { limit: 10 }))?.entries.length, 1, "appended once");
    // Ten consumers at once: one takes it.
    await store.accept(ref, { ...userText("m2", "two"), claim: "enqueuing:e:1:success", ttlSeconds: 300 });
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.accept(ref, { ...run, key: "m2", claim: `lease:run:${i}` })),
    );
    assert.equal(runs.filter((r) => r.outcome === "claimed").length, 1, "one of ten consumers");
  }],
  [
    "order: a later push waits while an earlier one is pending (kept, not claimed), then goes once it is done",
    async (make) => {
      const { store } = await make();
      const ref = freshRef();
      const inOrder = (key: string, wait: boolean) => ({ key, wait, graceMs: 60_000 });
      const before = Date.now();
      await store.accept(ref, { ...userText("m1", "one"), order: inOrder("0001:01", false) });
      const waiting = await store.accept(ref, { ...userText("m2", "two"), order: inOrder("0001:02", true) });
      assert.equal(waiting.outcome, "waiting");
      const due = waiting.retryAt ?? 0;
      assert.equal(due >= before + 4000 && due <= Date.now() + 5000, true, "back when the earlier lease runs out");
      assert.equal(await store.claim(ref, "m2"), null, "nothing claimed");
      assert.equal(
        (await store.accept(ref, { ...userText("m2", "two"), order: inOrder("0001:02", true) })).outcome,
        "waiting",
      );
      // An earlier push that is not pending any more holds nothing back: done settles it.
      assert.equal(await store.replaceClaim(ref, "m1", "lease:m1:1", "done:success", 300), true);
      const goes = await store.accept(ref, { ...userText("m2", "two"), order: inOrder("0001:02", true) });
      assert.deepEqual([goes.outcome, goes.passed], ["claimed", undefined]);
      const texts = (await store.history(ref, { limit: 10 }))?.entries.map((e) => e.text);
      assert.deepEqual(texts, ["two", "one"], "each kept once, in arrival order");
    },
  ],
  [
    "order: a queued retry holds later pushes until its time; dead settles it; one overdue past graceMs is passed",
    async (make) => {
      const { store, advance } = await make();
      const ref = freshRef();
      const inOrder = (key: string, wait: boolean, graceMs = 60_000) => ({ key, wait, graceMs });
      await store.accept(ref, { ...userText("m1", "one"), order: inOrder("0001:01", false) });
      const retryAt = Date.now() + 3_600_000;
      assert.equal(await store.replaceClaim(ref, "m1", "lease:m1:1", `queued:success:1:${retryAt}`, 300), true);
      const waiting = await store.accept(ref, { ...userText("m2", "two"), order: inOrder("0001:02", true) });
      assert.deepEqual([waiting.outcome, waiting.retryAt], ["waiting", retryAt], "until the queue brings it back");
      assert.equal(await store.replaceClaim(ref, "m1", `queued:success:1:${retryAt}`, "dead:success:1", 300), true);
      const released = await store.accept(ref, { ...userText("m2", "two"), order: inOrder("0001:02", true) });
      assert.equal(released.outcome, "claimed", "a dead letter releases the ones behind it");
      assert.equal(await store.replaceClaim(ref, "m2", "lease:m2:1", "done:success", 300), true);
      // m3's lease runs out unrenewed (its holder died): m4 waits no more than graceMs past that.
      await store.accept(ref, { ...userText("m3", "three"), ttlSeconds: 0.2, order: inOrder("0002:03", false) });
      await advance(400);
      const passed = await store.accept(ref, { ...userText("m4", "four"), order: inOrder("0002:04", true, 100) });
      assert.deepEqual([passed.outcome, passed.passed], ["claimed", 1], "m3, overdue, passed over");
    },
  ],
  ["accept: of 20 concurrent deliveries of one push exactly one claims it; one entry", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.accept(ref, { ...userText("race", "once"), claim: `lease:${i}` })),
    );
    assert.equal(results.filter((r) => r.outcome === "claimed").length, 1);
    assert.equal((await store.history(ref, { limit: 50 }))?.entries.length, 1);
  }],
  ["history: newest first, paged by `before`, the last page says so; an unknown user has none", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    for (let i = 1; i <= 7; i++) await store.accept(ref, userText(`m${i}`, `text ${i}`));
    const first = await store.history(ref, { limit: 3 });
    assert.deepEqual(first?.entries.map((e) => e.text), ["text 7", "text 6", "text 5"]);
    assert.equal(first?.before, 5);
    const second = await store.history(ref, { limit: 3, before: first!.before! });
    assert.deepEqual(second?.entries.map((e) => e.seq), [4, 3, 2]);
    const last = await store.history(ref, { limit: 3, before: second!.before! });
    assert.deepEqual([last?.entries.map((e) => e.seq), last?.before], [[1], null]);
    assert.equal(await store.history(freshRef(), { limit: 3 }), null);
    assert.equal(await store.handoff(freshRef()), null);
  }],
  ["handoff: an agent takes over (recorded with who and why); a second agent is refused; hand back", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "转人工"));
    const asked = await store.setHandoff(ref, { state: "waiting", by: "bot", reason: "the user asked" });
    assert.deepEqual([asked.changed, asked.handoff.state], [true, "waiting"]);
    const take = { state: "human" as const, from: ["bot", "waiting"] as const };
    const alice = await store.setHandoff(ref, { ...take, by: "agent:alice", reason: "taking it" });
    assert.deepEqual([alice.changed, alice.handoff.state, alice.handoff.agent], [true, "human", "alice"]);
    const bob = await store.setHandoff(ref, { ...take, by: "agent:bob" });
    assert.deepEqual([bob.changed, bob.handoff.agent], [false, "alice"], "one agent wins");
    const back = await store.setHandoff(ref, { state: "bot", by: "agent:alice", reason: "answered" });
    assert.equal(back.changed, true);
    const entries = (await store.history(ref, { limit: 10 }))!.entries.filter((e) => e.type === "handoff");
    assert.deepEqual(
      entries.map((e) => [e.from, e.to, e.sender, e.agent ?? null, e.reason ?? null]),
      [
        ["human", "bot", "agent:alice", "alice", "answered"],
        ["waiting", "human", "agent:alice", "alice", "taking it"],
        ["bot", "waiting", "bot", null, "the user asked"],
      ],
    );
  }],
  ["handoff: a takeover left without an agent reply past the idle time goes back to the bot", async (make) => {
    const { store, advance } = await make({ idleMs: 300 });
    const ref = freshRef();
    await store.accept(ref, userText("m1", "hi"));
    await store.setHandoff(ref, { state: "human", by: "agent:alice" });
    await advance(150);
    await store.recordOutbound(ref, {
      entry: { sender: "agent:alice", type: "message", msgType: "text", text: "在的", outcome: "ok" },
      spend: true,
      reserved: false,
    });
    await advance(200); // 350 ms since the takeover, 200 since the agent wrote
    assert.equal((await store.handoff(ref))?.state, "human", "the agent's reply restarts the idle time");
    await advance(200);
    assert.equal((await store.handoff(ref))?.state, "bot");
    const accepted = await store.accept(ref, userText("m2", "还在吗"));
    assert.equal(accepted.handoff.state, "bot");
    const idle = (await store.history(ref, { limit: 10 }))!.entries.find((e) => e.type === "handoff" && e.to === "bot");
    assert.deepEqual([idle?.from, idle?.sender, idle?.reason], ["human", "system", "idle"]);
  }],
  ["handoff: a closed conversation is reopened as the bot's by the user's next message", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "thanks"));
    await store.setHandoff(ref, { state: "closed", by: "agent:alice", reason: "resolved" });
    const next = await store.accept(ref, userText("m2", "one more thing"));
    assert.equal(next.handoff.state, "bot");
    const seqs = (await store.history(ref, { limit: 10 }))!.entries.map((e) => `${e.type}:${e.to ?? e.text}`);
    assert.deepEqual(seqs, ["message:one more thing", "handoff:bot", "handoff:closed", "message:thanks"]);
  }],
  [
    "reserve: 5 messages in the window, then closed; a failed send gives its message back; 45015 closes",
    async (make) => {
      const { store } = await make();
      const ref = freshRef();
      const unknown = await store.reserve(freshRef(), {});
      assert.deepEqual([unknown.decision, unknown.window], ["ok", undefined], "nothing known: WeChat decides");
      await store.accept(ref, userText("m1", "hi"));
      const decisions: string[] = [];
      for (let i = 0; i < 6; i++) decisions.push((await store.reserve(ref, {})).decision);
      assert.deepEqual(decisions, ["ok", "ok", "ok", "ok", "ok", "closed"]);
      await store.recordOutbound(ref, {
        entry: { sender: "bot", type: "message", msgType: "text", text: "x", outcome: -1 },
        spend: true,
        reserved: true,
      });
      assert.equal((await store.window(ref))?.remaining, 1, "given back");
      await store.recordOutbound(ref, {
        entry: { sender: "bot", type: "message", msgType: "text", text: "x", outcome: 45015 },
        spend: true,
        reserved: true,
      });
      assert.equal((await store.window(ref))?.remaining, 0, "closed by WeChat");
      assert.equal((await store.reserve(ref, {})).decision, "closed");
    },
  ],
  ["reserve: of 20 concurrent sends in a fresh window exactly 5 go ahead", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "hi"));
    const results = await Promise.all(Array.from({ length: 20 }, () => store.reserve(ref, {})));
    assert.equal(results.filter((r) => r.decision === "ok").length, 5);
  }],
  ["reserve: a bot send after a person took over is refused before any call", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "hi"));
    assert.equal((await store.reserve(ref, { onlyIn: ["bot"] })).decision, "ok");
    await store.setHandoff(ref, { state: "human", by: "agent:alice" });
    const refused = await store.reserve(ref, { onlyIn: ["bot"] });
    assert.deepEqual([refused.decision, refused.handoff.state], ["state", "human"]);
    assert.equal((await store.window(ref))?.remaining, 4, "nothing held for the refused send");
  }],
  [
    "outbound: typing is recorded without spending the window; an unreserved successful send spends one",
    async (make) => {
      const { store } = await make();
      const ref = freshRef();
      await store.accept(ref, userText("m1", "a"));
      await store.accept(ref, userText("m2", "b"));
      await store.recordOutbound(ref, {
        entry: { sender: "bot", type: "typing", msgType: "Typing", outcome: "ok" },
        spend: false,
        reserved: false,
      });
      const page = await store.history(ref, { limit: 1 });
      assert.equal(page?.entries[0]?.type, "typing");
      await store.recordOutbound(ref, {
        entry: { sender: "agent:alice", type: "message", msgType: "text", text: "c", outcome: "ok" },
        spend: true,
        reserved: false,
      });
      assert.equal((await store.window(ref))?.remaining, 4, "an unreserved successful send spends one");
    },
  ],
  [
    "list: most recent activity first; each with a preview of its last message, unread, window and handoff",
    async (make) => {
      const { store, advance, settle } = await make();
      const appId = freshApp();
      const [a, b, c] = ["o-a", "o-b", "o-c"].map((openId) => ({ appId, openId }));
      const long = "长".repeat(100);
      await store.accept(a!, userText("a1", long));
      await advance(5);
      await store.accept(b!, {
        ...userText("b1", ""),
        entry: { sender: "user", type: "message", msgType: "image", mediaId: "MEDIA_b1" },
      });
      await advance(5);
      await store.accept(c!, userText("c1", "你好"));
      await advance(5);
      await store.accept({ appId: freshApp(), openId: "o-other-app" }, userText("x1", "not this app"));
      await store.accept(a!, userText("a2", "还在吗"));
      await settle?.();
      const page = await store.list(appId);
      assert.deepEqual(ids(page.conversations), ["o-a", "o-c", "o-b"], "most recent activity first");
      assert.equal(page.nextCursor, null);
      const [first, , last] = page.conversations;
      assert.deepEqual(
        [first?.lastMessage?.text, first?.lastMessage?.sender, first?.lastMessage?.seq, first?.unread],
        ["还在吗", "user", 2, 2],
      );
      assert.deepEqual([first?.window?.kind, first?.window?.remaining], ["message", 5]);
      assert.deepEqual(first?.handoff.state, "bot");
      assert.equal(first?.lastActivityAt, (await store.history(a!, { limit: 1 }))?.entries[0]?.at, "lastActivityAt");
      assert.deepEqual([last?.lastMessage?.msgType, last?.lastMessage?.text], ["image", "[图片]"], "an image in words");
      assert.equal(JSON.stringify(last).includes("MEDIA_b1"), false, "no media id in the list");
      // A long text: its first 79 characters and an ellipsis, nothing more of it.
      await store.accept(c!, userText("c2", long));
      await settle?.();
      const cut = (await store.list(appId, { limit: 1 })).conversations[0]?.lastMessage?.text;
      assert.deepEqual([Array.from(cut ?? "").length, cut?.endsWith("…")], [80, true], "preview cut to 80");
    },
  ],
  ["list: unread counts the user's messages since the last reply that went out (bot, agent or api)", async (make) => {
    const { store, settle } = await make();
    const appId = freshApp();
    const ref = { appId, openId: "o-unread" };
    const unread = async () => {
      await settle?.();
      const [only] = (await store.list(appId)).conversations;
      return [only?.unread, only?.lastMessage?.sender];
    };
    for (const key of ["m1", "m2", "m3"]) await store.accept(ref, userText(key, key));
    assert.deepEqual(await unread(), [3, "user"]);
    await store.recordOutbound(ref, { ...botText("refused", 45015), reserved: false });
    assert.deepEqual(await unread(), [3, "user"], "a send WeChat refused resets nothing and is not the last message");
    await store.recordOutbound(ref, {
      entry: { sender: "bot", type: "typing", msgType: "Typing", outcome: "ok" },
      spend: false,
      reserved: false,
    });
    assert.deepEqual(await unread(), [3, "user"], "typing is no reply");
    await store.recordOutbound(ref, {
      entry: { sender: "api", type: "message", msgType: "text", text: "您好", outcome: "ok" },
      spend: true,
      reserved: false,
    });
    assert.deepEqual(await unread(), [0, "api"]);
    await store.accept(ref, userText("m4", "m4"));
    assert.deepEqual(await unread(), [1, "user"]);
    await store.recordOutbound(ref, {
      entry: { sender: "agent:alice", type: "message", msgType: "text", text: "在的", outcome: "ok" },
      spend: true,
      reserved: false,
    });
    assert.deepEqual(await unread(), [0, "agent:alice"]);
    await store.recordOutbound(ref, { ...botText("ok"), reserved: false });
    assert.deepEqual(await unread(), [0, "bot"]);
  }],
  ["list: filtered by handoff state; a takeover left idle counts as the bot's", async (make) => {
    const { store, advance, settle } = await make({ idleMs: 400 });
    const appId = freshApp();
    const ref = (openId: string) => ({ appId, openId });
    for (const openId of ["o-bot", "o-waiting", "o-human", "o-closed"]) {
      await store.accept(ref(openId), userText(`${openId}-1`, "hi"));
      await advance(2);
    }
    await store.setHandoff(ref("o-waiting"), { state: "waiting", by: "bot", reason: "asked" });
    await advance(2);
    await store.setHandoff(ref("o-human"), { state: "human", by: "agent:alice" });
    await advance(2);
    await store.setHandoff(ref("o-closed"), { state: "closed", by: "agent:bob" });
    await settle?.();
    const listed = async (state: "bot" | "waiting" | "human" | "closed" | "all") =>
      ids((await store.list(appId, { state })).conversations);
    assert.deepEqual(await listed("waiting"), ["o-waiting"]);
    assert.deepEqual(await listed("human"), ["o-human"]);
    const [human] = (await store.list(appId, { state: "human" })).conversations;
    assert.deepEqual([human?.handoff.agent, typeof human?.handoff.since], ["alice", "number"]);
    assert.deepEqual(await listed("bot"), ["o-bot"]);
    assert.deepEqual(await listed("closed"), ["o-closed"]);
    assert.deepEqual(await listed("all"), ["o-closed", "o-human", "o-waiting", "o-bot"], "all, by the handoffs' time");
    await advance(500);
    assert.deepEqual(await listed("human"), [], "the takeover lapsed");
    assert.deepEqual(await listed("bot"), ["o-human", "o-bot"]);
    const lapsed = (await store.list(appId, { state: "bot" })).conversations[0];
    assert.deepEqual([lapsed?.handoff.state, lapsed?.handoff.agent], ["bot", undefined]);
  }],
  ["list: a walk lists each conversation once, at its place when it began, while activity goes on", async (make) => {
    const { store, advance, settle } = await make();
    const appId = freshApp();
    const ref = (i: number) => ({ appId, openId: `o-walk-${i}` });
    for (let i = 0; i < 7; i++) {
      await store.accept(ref(i), userText(`w${i}`, `first ${i}`));
      await advance(3);
    }
    await settle?.();
    const first = await store.list(appId, { limit: 3 });
    assert.deepEqual(ids(first.conversations), ["o-walk-6", "o-walk-5", "o-walk-4"]);
    // Between pages: one not listed yet writes again (it moves to the top), one listed writes
    // again, a new user writes, one not listed yet is purged.
    await store.accept(ref(1), userText("w1b", "moved"));
    await advance(3);
    await store.accept(ref(5), userText("w5b", "again"));
    await store.accept(ref(7), userText("w7", "new"));
    await store.purge(ref(2));
    await settle?.();
    const second = await store.list(appId, { limit: 3, cursor: first.nextCursor! });
    assert.deepEqual(ids(second.conversations), ["o-walk-3", "o-walk-1", "o-walk-0"], "at their places as it began");
    assert.equal(second.conversations[1]?.lastMessage?.text, "moved", "with what it holds now");
    assert.equal(second.nextCursor, null);
    // One at a time, with a move before every page: still each once.
    const seen: string[] = [];
    let page = await store.list(appId, { limit: 1 });
    for (let n = 0; n < 20; n++) {
      seen.push(...ids(page.conversations));
      if (page.nextCursor === null) break;
      await store.accept(ref([0, 1, 3, 4, 5, 6, 7][n % 7]!), userText(`again-${n}`, `again ${n}`));
      await advance(2);
      await settle?.();
      page = await store.list(appId, { limit: 1, cursor: page.nextCursor });
    }
    assert.deepEqual(
      seen,
      ["o-walk-7", "o-walk-5", "o-walk-1", "o-walk-6", "o-walk-4", "o-walk-3", "o-walk-0"],
      "once each, in the order as the walk began",
    );
    const fresh = await walk(store, appId, { limit: 2 });
    assert.deepEqual(ids(fresh.flatMap((p) => p.conversations)).length, 7, "a new walk: everyone still there");
    assert.equal(ids(fresh[0]!.conversations)[0], "o-walk-6", "the latest activity (the last move) first");
  }],
  ["list: a filtered walk pages through only its state; bad options are refused naming the field", async (make) => {
    const { store, advance, settle, realTime } = await make();
    const appId = freshApp();
    for (let i = 0; i < 6; i++) {
      const ref = { appId, openId: `o-f-${i}` };
      await store.accept(ref, userText(`f${i}`, "hi"));
      if (i % 2 === 0) await store.setHandoff(ref, { state: "waiting", by: "user" });
      await advance(2);
    }
    await settle?.();
    const pages = await walk(store, appId, { state: "waiting", limit: 2 });
    assert.deepEqual(ids(pages.flatMap((p) => p.conversations)), ["o-f-4", "o-f-2", "o-f-0"]);
    assert.equal(pages.every((p) => p.conversations.length <= 2), true);
    assert.equal(await refusedField(() => store.list(appId, { state: "robot" as "bot" })), "state");
    for (const limit of [0, 201, 1.5]) assert.equal(await refusedField(() => store.list(appId, { limit })), "limit");
    for (const cursor of ["", "not a cursor!", "e30", btoa('[1,"zz",0,0,"o"]')]) {
      assert.equal(await refusedField(() => store.list(appId, { cursor })), "cursor", `cursor ${cursor}`);
    }
    if (!realTime) {
      const page = await store.list(appId, { limit: 1 });
      await advance(15 * 60_000 + 1);
      assert.equal(await refusedField(() => store.list(appId, { cursor: page.nextCursor! })), "cursor", "expired");
    }
  }],
  ["list: a purged user leaves the list; an app never seen has an empty one", async (make) => {
    const { store, advance, settle } = await make();
    const appId = freshApp();
    await store.accept({ appId, openId: "o-stays" }, userText("s1", "hi"));
    await advance(2);
    await store.accept({ appId, openId: "o-purged" }, userText("p1", "my phone is 138..."));
    await settle?.();
    assert.deepEqual(ids((await store.list(appId)).conversations), ["o-purged", "o-stays"]);
    await store.purge({ appId, openId: "o-purged" });
    await settle?.();
    const page = await store.list(appId);
    assert.deepEqual(ids(page.conversations), ["o-stays"]);
    // The purged user's words, not a number a timestamp may happen to contain.
    assert.equal(JSON.stringify(page).includes("my phone"), false);
    assert.deepEqual(await store.list(freshApp()), { conversations: [], nextCursor: null });
  }],
  ["purge: history, window and handoff are gone; a retry of a handled push is still no new entry", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "my phone is 138..."));
    await store.replaceClaim(ref, "m1", "lease:m1:1", "done:success", 300);
    await store.purge(ref);
    await store.purge(ref); // idempotent
    assert.equal(await store.history(ref, { limit: 10 }), null);
    assert.equal(await store.handoff(ref), null);
    assert.equal(await store.window(ref), undefined);
    const retry = await store.accept(ref, { ...userText("m1", "my phone is 138..."), claim: "lease:m1:2" });
    assert.deepEqual([retry.outcome, retry.current], ["taken", "done:success"], "exactly once survives");
    assert.equal(await store.history(ref, { limit: 10 }), null, "nothing of the user came back");
  }],
  ["purge: a bot still answering a deleted user is refused, and its late record brings nothing back", async (make) => {
    const { store } = await make();
    const ref = freshRef();
    await store.accept(ref, userText("m1", "my phone is 139..."));
    const held = await store.reserve(ref, { onlyIn: ["bot"] }); // the bot starts its reply
    assert.equal(held.decision, "ok");
    await store.purge(ref); // the user revokes meanwhile
    await store.recordOutbound(ref, {
      entry: { sender: "bot", type: "message", msgType: "text", text: "noted: 139...", outcome: "ok" },
      spend: true,
      reserved: true,
    });
    assert.equal(await store.history(ref, { limit: 10 }), null, "the bot's late record starts no conversation");
    assert.equal((await store.reserve(ref, { onlyIn: ["bot"] })).decision, "deleted", "the bot's next send");
    assert.equal(await store.history(ref, { limit: 10 }), null, "a refused reserve keeps nothing either");
    // Your service (or an agent) may still write to the user: that starts a conversation again.
    await store.recordOutbound(ref, {
      entry: { sender: "api", type: "subscribe", msgType: "TPL", outcome: "ok" },
      spend: false,
      reserved: false,
    });
    assert.deepEqual((await store.history(ref, { limit: 10 }))?.entries.map((e) => e.sender), ["api"]);
  }],
  ["retention: history older than historyDays is deleted by the store itself", async (make) => {
    // 0.5 s of retention, as a fraction of a day.
    const { store, advance } = await make({ historyDays: 0.5 / 86_400 });
    const ref = freshRef();
    await store.accept(ref, userText("m1", "old"));
    await advance(700);
    await store.accept(ref, userText("m2", "new"));
    const page = await store.history(ref, { limit: 10 });
    assert.deepEqual(page?.entries.map((e) => e.text), ["new"]);
  }],
  [
    "media: a user's image says when WeChat forgets it; a copy is recorded on its entry, and only there",
    async (make) => {
      const { store } = await make();
      const ref = freshRef();
      await store.accept(ref, userText("m1", "look"));
      const accepted = await store.accept(ref, userImage("m2", "MEDIA_2"));
      assert.equal(accepted.seq, 2, "the entry the push was appended as");
      const retry = await store.accept(ref, { ...userImage("m2", "MEDIA_2"), claim: "lease:m2:2" });
      assert.equal(retry.seq, undefined, "a retry appends nothing");
      const [image, text] = (await store.history(ref, { limit: 10 }))!.entries;
      assert.deepEqual(
        [image?.mediaId, image?.mediaExpiresAt === image!.at + THREE_DAYS_MS, image?.mediaKey],
        ["MEDIA_2", true, undefined],
      );
      assert.equal(text?.mediaExpiresAt, undefined, "a text has no media to expire");
      const key = `media/${ref.appId}/${ref.openId}/MEDIA_2`;
      assert.equal(await store.recordMediaCopy(ref, { seq: 2, mediaId: "OTHER", key }), false, "another media_id");
      assert.equal(await store.recordMediaCopy(ref, { seq: 1, mediaId: "MEDIA_2", key }), false, "another entry");
      assert.equal(await store.recordMediaCopy(ref, { seq: 9, mediaId: "MEDIA_2", key }), false, "no such entry");
      assert.equal(await store.recordMediaCopy(ref, { seq: 2, mediaId: "MEDIA_2", key }), true);
      const page = (await store.history(ref, { limit: 10 }))!.entries;
      assert.deepEqual(page.map((e) => e.mediaKey ?? null), [key, null]);
      assert.equal(page[0]?.mediaId, "MEDIA_2", "the media_id stays beside the copy");
      const sent = await store.recordOutbound(ref, {
        entry: { sender: "bot", type: "message", msgType: "image", mediaId: "UPLOADED", outcome: "ok" },
        spend: true,
        reserved: false,
      });
      assert.equal(sent.mediaExpiresAt, undefined, "an upload's expiry is not known from its send");
    },
  ],
  ["media: no copy is recorded for a purged conversation or an entry past retention", async (make) => {
    const { store, advance } = await make({ historyDays: 0.5 / 86_400 });
    const purged = freshRef();
    await store.accept(purged, userImage("m1", "MEDIA_P"));
    await store.purge(purged);
    const copy = { seq: 1, mediaId: "MEDIA_P", key: "media/x/y/MEDIA_P" };
    assert.equal(await store.recordMediaCopy(purged, copy), false, "purged");
    assert.equal(await store.history(purged, { limit: 10 }), null, "and nothing came back");
    const old = freshRef();
    await store.accept(old, userImage("m1", "MEDIA_O"));
    await advance(700);
    assert.equal(await store.recordMediaCopy(old, { ...copy, mediaId: "MEDIA_O" }), false, "past retention");
  }],
];
