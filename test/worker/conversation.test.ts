// Conversations on real Durable Objects inside workerd: the contract every engine keeps, run
// against DurableObjectConversationStore (each user's KefuStore object, over Workers RPC); one
// RPC call per operation, counted at the stub; the statements accept runs, read through
// SQLite's query planner (keys and indexes, never a scan of the history); retention and
// expired claims deleted by the object's alarm, with no request; purge down to the claims.
import { env as workerEnv } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type AcceptInput, type ConversationRef, DurableObjectConversationStore, objectNameOf } from "../../mod.ts";
import { userObjectName } from "../../src/stores/durable_object_store.ts";
import { userPart } from "../../src/internal/store_keys.ts";
import { conversationCases } from "../cases/_conversation_suite.ts";
import { CONVERSATION_SQL } from "../../worker/conversation_tables.ts";
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

describe("conversation contract (DurableObjectConversationStore, KefuStore objects)", () => {
  for (const [name, fn] of conversationCases) {
    // The objects run on workerd's clock: let real time pass.
    it(
      name,
      () =>
        fn((settings = {}) =>
          Promise.resolve({ store: new DurableObjectConversationStore(workerEnv.KEFU_STORE, settings), advance: sleep })
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
