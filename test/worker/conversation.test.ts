// Conversations on real Durable Objects inside workerd: the contract every engine keeps, run
// against DurableObjectConversationStore (each user's KefuStore object, over Workers RPC); one
// RPC call per operation, counted at the stub; the statements accept runs, read through
// SQLite's query planner (keys and indexes, never a scan of the history); retention and
// expired claims deleted by the object's alarm, with no request; purge down to the claims.
import { env as workerEnv } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import {
  type AcceptInput,
  type ConversationDirectoryObject,
  type ConversationRef,
  DurableObjectConversationStore,
  objectNameOf,
} from "../../mod.ts";
import { userObjectName } from "../../src/stores/durable_object_store.ts";
import { userPart } from "../../src/internal/store_keys.ts";
import { conversationCases } from "../cases/_conversation_suite.ts";
import { CONVERSATION_SQL } from "../../worker/conversation_tables.ts";
import { DIRECTORY_SQL, DirectoryTables } from "../../worker/conversation_directory.ts";
import { WALK_MS } from "../../src/internal/conversation_list.ts";
import type { KefuStore } from "../../worker/store_object.ts";
import { countingNamespace } from "./_helpers.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const APP_ID = "wxconversation02";
let users = 0;

function freshRef(): ConversationRef {
  return { appId: APP_ID, openId: `o-do-${Date.now().toString(36)}-${users++}` };
}

/** A new stub of the object that keeps `ref`'s conversation. */
function stubOf(ref: ConversationRef): DurableObjectStub {
  const ns = workerEnv.KEFU_STORE;
  return ns.get(ns.idFromName(userObjectName(ref.appId, userPart(ref.openId))));
}

/** Runs `fn` inside the object that keeps `ref`'s conversation, with the object and its state. */
function inObject<R>(ref: ConversationRef, fn: (store: KefuStore, state: DurableObjectState) => R | Promise<R>) {
  return runInDurableObject(stubOf(ref), (instance, state) => fn(instance as unknown as KefuStore, state));
}

function userText(key: string, text: string): AcceptInput {
  return {
    key,
    claim: `lease:${key}`,
    ttlSeconds: 60,
    entry: { sender: "user", type: "message", msgType: "text", text },
    action: { kind: "message", at: Date.now() },
  };
}

/** Rows of one of the object's tables, read inside the object. */
function rows(ref: ConversationRef, query: string): Promise<Record<string, unknown>[]> {
  return inObject(ref, (_instance, state) => state.storage.sql.exec(query).toArray());
}

/** The version of the last change of `ref`'s conversation, in its object. */
async function userVersion(ref: ConversationRef): Promise<number> {
  const found = await inObject(ref, (_i, state) => {
    const table = state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'conversation_listing'").toArray();
    return table.length === 0 ? [] : state.storage.sql.exec("SELECT version FROM conversation_listing").toArray();
  });
  return Number(found[0]?.version ?? 0);
}

/** The version of `ref`'s last change the app's directory object has taken. */
async function directoryVersion(ref: ConversationRef): Promise<number> {
  const ns = workerEnv.KEFU_STORE;
  const found = await runInDurableObject(ns.get(ns.idFromName(`dir:${ref.appId}`)), (_i, state) => {
    const table = state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'directory'").toArray();
    return table.length === 0
      ? []
      : state.storage.sql.exec("SELECT version FROM directory WHERE open_id = ?", ref.openId).toArray();
  });
  return Number(found[0]?.version ?? 0);
}

/**
 * A store that notes every conversation it changes, and waits until the apps' directory
 * objects have taken each one's last change (the users' objects tell them after answering).
 */
function settling(store: DurableObjectConversationStore) {
  const touched = new Map<string, ConversationRef>();
  const noting = new Proxy(store, {
    get(target, name: keyof DurableObjectConversationStore) {
      const method = target[name] as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        const ref = args[0] as ConversationRef;
        if (typeof ref === "object" && typeof ref.openId === "string") touched.set(`${ref.appId} ${ref.openId}`, ref);
        return method.apply(target, args);
      };
    },
  });
  const settle = async () => {
    for (const ref of touched.values()) {
      const deadline = Date.now() + 5000;
      while (await directoryVersion(ref) < await userVersion(ref)) {
        if (Date.now() > deadline) throw new Error("the directory did not take a change within 5 s");
        await sleep(5);
      }
    }
  };
  return { store: noting, settle };
}

describe("conversation contract (DurableObjectConversationStore, KefuStore objects)", () => {
  for (const [name, fn] of conversationCases) {
    // The objects run on workerd's clock: let real time pass.
    it(
      name,
      () =>
        fn((settings = {}) =>
          Promise.resolve({
            ...settling(new DurableObjectConversationStore(workerEnv.KEFU_STORE, settings)),
            advance: sleep,
            realTime: true,
          })
        ),
    );
  }
});

describe("the conversation object", () => {
  it("makes exactly one RPC call, on a new stub, per ConversationStore operation", async () => {
    const { namespace, calls, stubs } = countingNamespace();
    const store = new DurableObjectConversationStore(namespace);
    const ref = freshRef();
    const operations: Array<[string, () => Promise<unknown>]> = [
      ["accept", () => store.accept(ref, userText("m1", "hi"))],
      ["claim", () => store.claim(ref, "m1")],
      ["replaceClaim", () => store.replaceClaim(ref, "m1", "lease:m1", "done:success", 60)],
      ["reserve", () => store.reserve(ref, { onlyIn: ["bot"] })],
      ["recordOutbound", () =>
        store.recordOutbound(ref, {
          entry: { sender: "bot", type: "message", msgType: "text", text: "hello", outcome: "ok" },
          spend: true,
          reserved: true,
        })],
      ["history", () => store.history(ref, { limit: 50 })],
      ["handoff", () => store.handoff(ref)],
      ["setHandoff", () => store.setHandoff(ref, { state: "human", by: "agent:alice" })],
      ["window", () => store.window(ref)],
      ["recordMediaCopy", () => store.recordMediaCopy(ref, { seq: 1, mediaId: "M1", key: "media/x/y/M1" })],
      ["purge", () => store.purge(ref)],
    ];
    for (const [method, run] of operations) {
      const [before, stubsBefore] = [calls.length, stubs()];
      await run();
      expect(calls.slice(before), method).toEqual([method]);
      expect(stubs() - stubsBefore, `${method}: stubs made`).toBe(1);
    }
  });

  it("accept reads and writes by key: no statement it runs scans the history or the claims", async () => {
    const ref = freshRef();
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE);
    for (let i = 0; i < 40; i++) await store.accept(ref, userText(`m${i}`, `text ${i}`));
    // The statements one accept runs, recorded at the object's own database as it runs them.
    const ran = await inObject(ref, async (instance, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec;
      const seen: Array<{ query: string; bindings: unknown[] }> = [];
      sql.exec = ((query: string, ...bindings: unknown[]) => {
        seen.push({ query, bindings });
        return exec.call(sql, query, ...bindings);
      }) as typeof sql.exec;
      try {
        await instance.accept(userText("m-planned", "planned"), { idleMs: 60_000, historyDays: 30 });
      } finally {
        sql.exec = exec;
      }
      return seen;
    });
    expect(ran.map((s) => s.query).sort()).toEqual(
      [
        CONVERSATION_SQL.readHead,
        CONVERSATION_SQL.readClaim,
        CONVERSATION_SQL.writeClaim,
        CONVERSATION_SQL.writeHead,
        CONVERSATION_SQL.append,
        CONVERSATION_SQL.nextVersion,
      ].sort(),
    );
    const plans = await inObject(
      ref,
      (_instance, state) =>
        ran.map(({ query, bindings }) => ({
          query,
          plan: state.storage.sql.exec(`EXPLAIN QUERY PLAN ${query}`, ...bindings).toArray().map((r) =>
            String(r.detail)
          ),
        })),
    );
    for (const { query, plan } of plans) {
      for (const step of plan) {
        expect(step, query).not.toMatch(/^SCAN/);
        expect(step, query).toMatch(/USING (INTEGER PRIMARY KEY|PRIMARY KEY|INDEX|COVERING INDEX)/);
      }
    }
    // The two reads are lookups by key (writes by key have no read step to plan).
    const reads = plans.filter((p) => p.query.startsWith("SELECT"));
    expect(reads.map((p) => p.plan.length)).toEqual([1, 1]);
    // A page of history walks the primary key from `before`, without sorting.
    const page = await inObject(
      ref,
      (_instance, state) =>
        state.storage.sql.exec(`EXPLAIN QUERY PLAN ${CONVERSATION_SQL.page}`, 30, 0, 51).toArray().map((r) =>
          String(r.detail)
        ),
    );
    expect(page).toEqual([
      expect.stringMatching(/^SEARCH conversation_history USING INTEGER PRIMARY KEY \(rowid<\?\)$/),
    ]);
  });

  it("the alarm deletes history past retention and expired claims, with no request", async () => {
    const ref = freshRef();
    // Retention 0.4 s (as a fraction of a day), a claim that lives 0.3 s.
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE, { historyDays: 0.4 / 86_400 });
    await store.accept(ref, { ...userText("m1", "old"), ttlSeconds: 0.3 });
    await store.replaceClaim(ref, "m1", "lease:m1", "done:success", 0.3);
    expect((await rows(ref, "SELECT seq FROM conversation_history")).length).toBe(1);
    expect(await inObject(ref, (_i, state) => state.storage.getAlarm())).not.toBeNull();
    await sleep(500);
    expect(await runDurableObjectAlarm(stubOf(ref))).toBe(true);
    expect(await rows(ref, "SELECT seq FROM conversation_history")).toEqual([]);
    expect(await rows(ref, "SELECT key FROM conversation_claims")).toEqual([]);
    // The conversation itself stays (who answers, the window); nothing is left to expire.
    expect((await store.handoff(ref))?.state).toBe("bot");
    expect(await inObject(ref, (_i, state) => state.storage.getAlarm())).toBeNull();
  });

  it("the alarm keeps history within retention and comes back for it", async () => {
    const ref = freshRef();
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE, { historyDays: 1 });
    await store.accept(ref, userText("m1", "recent"));
    await evictDurableObject(stubOf(ref)); // the object forgets what it knew of its alarm
    expect(await runDurableObjectAlarm(stubOf(ref))).toBe(true);
    expect((await store.history(ref, { limit: 10 }))?.entries.map((e) => e.text)).toEqual(["recent"]);
    const alarm = await inObject(ref, (_i, state) => state.storage.getAlarm());
    // Back when the claim expires (60 s, but not sooner than the 10-minute sweep interval).
    expect(alarm).toBeGreaterThan(Date.now() + 9 * 60_000);
    expect(alarm).toBeLessThan(Date.now() + 11 * 60_000);
  });

  it("purge leaves only the claims, without the entries they were appended as", async () => {
    const ref = freshRef();
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE);
    await store.accept(ref, userText("m1", "my phone is 138..."));
    await store.replaceClaim(ref, "m1", "lease:m1", "done:success", 300);
    await store.setHandoff(ref, { state: "human", by: "agent:alice", reason: "asked for a refund" });
    await store.purge(ref);
    expect(await rows(ref, "SELECT * FROM conversation_head")).toEqual([]);
    expect(await rows(ref, "SELECT * FROM conversation_history")).toEqual([]);
    expect(await rows(ref, "SELECT key, value, seq FROM conversation_claims")).toEqual([
      { key: "m1", value: "done:success", seq: null },
    ]);
  });

  it("keeps a user's conversation in the object that holds the user's push claims under DurableObjectStore", () => {
    const ref = { appId: APP_ID, openId: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY" };
    expect(userObjectName(ref.appId, userPart(ref.openId))).toBe(
      objectNameOf(`kefu-edge:push:${APP_ID}:${userPart(ref.openId)}:msg:1`),
    );
  });
});

/** A new stub of the app's directory object. */
function directoryOf(appId: string): DurableObjectStub {
  const ns = workerEnv.KEFU_STORE;
  return ns.get(ns.idFromName(`dir:${appId}`));
}

function listedOf(openId: string, lastActivityAt: number, text: string) {
  return {
    openId,
    lastMessage: { seq: 1, at: lastActivityAt, sender: "user" as const, msgType: "text", text },
    unread: 1,
    window: null,
    handoff: { state: "bot" as const, since: lastActivityAt },
    lastActivityAt,
    agentAt: null,
  };
}

describe("the app's directory object", () => {
  it("answers a change without waiting for the directory: a slow directory slows no accept; a burst is folded", async () => {
    const ref = { ...freshRef(), appId: `wxdirslow${users}` };
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE);
    // Every directory takes 1.5 s over each update (the class's method, wrapped for this test).
    const proto = await runInDurableObject(directoryOf(ref.appId), (instance) => Object.getPrototypeOf(instance));
    const update = proto.updateDirectory as (this: unknown, notice: unknown) => Promise<void>;
    let updates = 0;
    proto.updateDirectory = async function (this: unknown, notice: unknown) {
      await sleep(1500);
      updates++;
      return await update.call(this, notice);
    };
    try {
      const started = Date.now();
      expect((await store.accept(ref, userText("m1", "hi"))).outcome).toBe("claimed");
      await store.recordOutbound(ref, {
        entry: { sender: "bot", type: "message", msgType: "text", text: "您好", outcome: "ok" },
        spend: true,
        reserved: false,
      });
      await store.setHandoff(ref, { state: "waiting", by: "bot", reason: "asked" });
      expect(Date.now() - started).toBeLessThan(1200); // one update alone takes 1500 ms
      expect(updates).toBe(0);
      // The updates arrive after the answers: three changes, two updates (the two made while
      // the first was on its way went as one).
      while (updates < 2 && Date.now() - started < 5000) await sleep(20);
      await sleep(100);
      expect(updates).toBe(2);
      const page = await store.list(ref.appId);
      expect(page.conversations.map((c) => [c.openId, c.lastMessage?.text, c.unread, c.handoff.state])).toEqual([
        [ref.openId, "您好", 0, "waiting"],
      ]);
    } finally {
      proto.updateDirectory = update;
    }
  });

  it("a failing directory fails no push and is repaired by the user's next change", async () => {
    const ref = { ...freshRef(), appId: `wxdirbroken${users}` };
    const store = new DurableObjectConversationStore(workerEnv.KEFU_STORE);
    await store.list(ref.appId);
    // Break the directory's table under it: every update now throws inside the directory.
    await runInDurableObject(directoryOf(ref.appId), (_i, state) => {
      state.storage.sql.exec("DROP TABLE directory");
      state.storage.sql.exec("CREATE TABLE directory (broken INTEGER)");
    });
    const warn = vi.spyOn(console, "warn");
    try {
      const accepted = await Promise.all([
        store.accept(ref, userText("m1", "one")),
        store.accept({ ...ref, openId: `${ref.openId}-b` }, userText("m2", "two")),
      ]);
      expect(accepted.map((a) => a.outcome)).toEqual(["claimed", "claimed"]);
      const failed = () =>
        warn.mock.calls.filter((call) => String(call[0]).includes("kefu-edge.directory_update_failed")).length;
      for (let i = 0; i < 200 && failed() < 2; i++) await sleep(10);
      expect(failed()).toBe(2);
      for (const [line] of warn.mock.calls) expect(String(line)).not.toContain(ref.openId);
    } finally {
      warn.mockRestore();
    }
    // Repaired: the table back (a new instance creates it), then one more change of one user.
    await runInDurableObject(directoryOf(ref.appId), (_i, state) => state.storage.sql.exec("DROP TABLE directory"));
    await evictDurableObject(directoryOf(ref.appId));
    await store.accept(ref, userText("m3", "three"));
    let page = await store.list(ref.appId);
    for (let i = 0; i < 200 && page.conversations.length === 0; i++) {
      await sleep(10);
      page = await store.list(ref.appId);
    }
    expect(page.conversations.map((c) => [c.openId, c.lastMessage?.text, c.unread])).toEqual([
      [ref.openId, "three", 2],
    ]);
  });

  it("keeps the newest change of each user: late and reordered notices change nothing, nor bring back the purged", async () => {
    const appId = `wxdirorder${users++}`;
    const dir = directoryOf(appId) as unknown as ConversationDirectoryObject;
    const settings = { idleMs: 60_000, historyDays: 30 };
    const texts = async () => (await dir.listDirectory({}, settings)).conversations.map((c) => c.lastMessage?.text);
    const now = Date.now();
    await dir.updateDirectory({ openId: "o-a", version: 2, listed: listedOf("o-a", now + 2, "second") });
    await dir.updateDirectory({ openId: "o-a", version: 1, listed: listedOf("o-a", now + 1, "first") });
    expect(await texts()).toEqual(["second"]);
    await dir.updateDirectory({ openId: "o-a", version: 4, listed: null });
    await dir.updateDirectory({ openId: "o-a", version: 3, listed: listedOf("o-a", now + 3, "third") });
    expect(await texts()).toEqual([]);
    await dir.updateDirectory({ openId: "o-a", version: 5, listed: listedOf("o-a", now + 5, "after the purge") });
    expect(await texts()).toEqual(["after the purge"]);
  });

  it("reads a page along the place indexes, for every filter, without sorting", async () => {
    const appId = `wxdirplan${users++}`;
    await new DurableObjectConversationStore(workerEnv.KEFU_STORE).list(appId);
    const plans = await runInDurableObject(directoryOf(appId), (_i, state) => {
      const out: string[][] = [];
      const filters = ["1", "d.state = 'human' AND d.idle_since >= 0", "d.state = ?"];
      for (const filter of filters) {
        for (const query of [DIRECTORY_SQL.page, DIRECTORY_SQL.pageGhosts]) {
          const sql = `EXPLAIN QUERY PLAN ${query.replace("%FILTER%", filter)}`;
          const bindings = query === DIRECTORY_SQL.page ? [1, 5, "o"] : [1, 1, 5, "o"];
          if (filter.endsWith("?")) bindings.push("waiting");
          out.push(state.storage.sql.exec(sql, ...bindings, 51).toArray().map((r) => String(r.detail)));
        }
      }
      return out;
    });
    for (const plan of plans) {
      expect(plan.join(" | ")).not.toMatch(/TEMP B-TREE|SCAN d\b|SCAN directory\b|SCAN g\b/);
      expect(plan.join(" | ")).toMatch(/USING (COVERING )?INDEX (directory_place|sqlite_autoindex_directory_ghosts_1)/);
    }
  });

  it("the alarm's sweep deletes ghosts no walk can need and purged users no late notice can bring back", async () => {
    const appId = `wxdirsweep${users++}`;
    const store = settling(new DurableObjectConversationStore(workerEnv.KEFU_STORE));
    const [a, b] = [{ appId, openId: "o-a" }, { appId, openId: "o-b" }];
    await store.store.accept(a, userText("m1", "one"));
    await store.store.accept(b, userText("m2", "two"));
    await store.settle();
    await store.store.list(appId, { limit: 1 }); // a walk begins: moves leave ghosts
    await sleep(2);
    await store.store.accept(a, userText("m3", "three"));
    await store.store.purge(b);
    await store.settle();
    const count = () =>
      runInDurableObject(directoryOf(appId), (_i, state) => [
        state.storage.sql.exec("SELECT COUNT(*) AS n FROM directory_ghosts").toArray()[0]!.n,
        state.storage.sql.exec("SELECT COUNT(*) AS n FROM directory WHERE listed IS NULL").toArray()[0]!.n,
      ]);
    expect(await count()).toEqual([1, 1]);
    expect(await runInDurableObject(directoryOf(appId), (_i, state) => state.storage.getAlarm())).not.toBeNull();
    await runInDurableObject(directoryOf(appId), (_i, state) => {
      state.storage.transactionSync(() => DirectoryTables.sweep(state.storage.sql, Date.now() + WALK_MS - 1000));
    });
    expect(await count()).toEqual([1, 1]);
    await runInDurableObject(directoryOf(appId), (_i, state) => {
      state.storage.transactionSync(() => DirectoryTables.sweep(state.storage.sql, Date.now() + WALK_MS + 1000));
    });
    expect(await count()).toEqual([0, 0]);
  });
});
