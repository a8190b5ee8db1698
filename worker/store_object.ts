/**
 * `KefuStore`: the Durable Object class behind `DurableObjectStore` and
 * `DurableObjectConversationStore`. Each object holds one mini-program user (the claims and
 * marks of the user's pushes, the send window, and the user's conversation: its history,
 * who answers it) or one shard of other keys, in its own SQLite database, so every
 * operation is strongly consistent and atomic.
 *
 * It extends workerd's `DurableObject` (from `cloudflare:workers`), which its conversation
 * methods need to be called over Workers RPC: only a Workers runtime can load this file, so
 * `@kefu/edge/worker` does not export it; `@kefu/edge/worker/durable-object` does, and the
 * shipped worker's entry (`worker/index.ts`) exports it to the runtime.
 *
 * Bind it in `wrangler.toml` (SQLite-backed, so it runs on the Workers free plan too) and
 * export it from your worker's entry:
 *
 * ```toml
 * [[durable_objects.bindings]]
 * name = "KEFU_STORE"
 * class_name = "KefuStore"
 *
 * [[migrations]]
 * tag = "v1"
 * new_sqlite_classes = ["KefuStore"]
 * ```
 *
 * @module
 */
import { DurableObject as WorkerdDurableObject } from "cloudflare:workers";
import type {
  AcceptInput,
  AcceptResult,
  ConversationEntry,
  ConversationObject,
  ConversationSettings,
  Handoff,
  HandoffChange,
  HandoffResult,
  HandoffState,
  HistoryPage,
  MediaCopy,
  OutboundInput,
  Reservation,
  SendWindow,
  StoreOperation,
} from "../mod.ts";
import { ConversationTables, type Done, earliest } from "./conversation_tables.ts";
import { deleteCopies, type MediaBucketLike } from "./media_keys.ts";

/**
 * workerd's `DurableObject`, as far as {@link KefuStore} relies on it: the base class that
 * makes the runtime serve its methods over RPC. Typed here rather than through Workers' types,
 * so the class type-checks, documents and builds where `cloudflare:workers` does not exist
 * (Deno, the npm build), and its declarations need no Workers types.
 */
const DurableObject: abstract new (state: never, env: never) => object = WorkerdDurableObject;

/** The part of a SQLite-backed Durable Object's state that {@link KefuStore} uses. */
export interface KefuStoreState {
  /** The object's storage. */
  storage: {
    /** The object's SQLite database. */
    sql: {
      /** Runs one statement synchronously. */
      exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[]; rowsWritten: number };
    };
    /** Runs `closure` as one transaction: all its writes, or none if it throws. */
    transactionSync<T>(closure: () => T): T;
    /** The time of the scheduled alarm, or `null`. */
    getAlarm(): Promise<number | null>;
    /** Schedules the alarm. */
    setAlarm(scheduledTime: number): Promise<void>;
  };
}

/** How often the alarm deletes what has expired, at most. */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * A Durable Object holding, in SQLite, key-value entries with expiry (`fetch`, from
 * `DurableObjectStore`) and one user's conversation (Workers RPC methods, from
 * `DurableObjectConversationStore`: one call per operation). Each operation runs
 * synchronously, so nothing else in the object interleaves with it; the conversation's run
 * in a transaction. The alarm deletes expired entries and claims, and history older than the
 * retention its callers ask for, with no request needed.
 *
 * @example Export it from your worker's entry (a Workers runtime only)
 * ```ts ignore
 * export { KefuStore } from "@kefu/edge/worker/durable-object";
 * ```
 */
export class KefuStore extends DurableObject implements ConversationObject {
  readonly #state: KefuStoreState;
  #conversation: ConversationTables | undefined;
  /** The alarm's time as this instance knows it: `undefined` until read, `null` when none is set. */
  #alarmAt: number | null | undefined;
  /** The worker's media bucket (`KEFU_MEDIA`), whose copies leave with their history entries. */
  readonly #media: MediaBucketLike | undefined;

  /**
   * Called by the Workers runtime.
   *
   * @param state the object's state (its SQLite storage)
   * @param env the worker's bindings (`KEFU_MEDIA`, when bound, is where copies of media are)
   */
  constructor(state: KefuStoreState, env: unknown) {
    // The runtime passes its own state object, of which KefuStoreState names the part used here.
    super(state as never, env as never);
    this.#state = state;
    this.#media = (env as { KEFU_MEDIA?: MediaBucketLike } | null | undefined)?.KEFU_MEDIA ?? undefined;
    const { sql } = state.storage;
    sql.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER)");
    sql.exec("CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL");
  }

  /**
   * Runs one operation from `DurableObjectStore`.
   *
   * @param request a `POST` with a {@link StoreOperation} as JSON
   * @returns `{ value }` for `get`, `{ written }` for `setIfAbsent` and `compareAndSet`, `{}` otherwise; 400 for anything else
   */
  async fetch(request: Request): Promise<Response> {
    let operation: StoreOperation;
    try {
      operation = await request.json() as StoreOperation;
    } catch {
      return Response.json({ error: "not JSON" }, { status: 400 });
    }
    if (typeof operation?.key !== "string") return Response.json({ error: "no key" }, { status: 400 });
    const now = Date.now();
    const expiresAt = typeof operation.ttlSeconds === "number"
      ? now + Math.max(1, Math.ceil(operation.ttlSeconds * 1000))
      : null;
    const { sql } = this.#state.storage;
    switch (operation.op) {
      case "get": {
        const row = sql.exec("SELECT value, expires_at FROM kv WHERE key = ?", operation.key).toArray()[0];
        const live = row !== undefined && (row.expires_at === null || Number(row.expires_at) > now);
        return Response.json({ value: live ? String(row.value) : null });
      }
      case "set":
        if (typeof operation.value !== "string") break;
        sql.exec(
          "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
          operation.key,
          operation.value,
          expiresAt,
        );
        await this.#armSweep(expiresAt);
        return Response.json({});
      case "setIfAbsent": {
        if (typeof operation.value !== "string") break;
        // One statement: insert, or take the place of an entry that has expired; a live
        // entry is left alone and nothing is written.
        const { rowsWritten } = sql.exec(
          "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) " +
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at " +
            "WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?",
          operation.key,
          operation.value,
          expiresAt,
          now,
        );
        if (rowsWritten > 0) await this.#armSweep(expiresAt);
        return Response.json({ written: rowsWritten > 0 });
      }
      case "delete":
        sql.exec("DELETE FROM kv WHERE key = ?", operation.key);
        return Response.json({});
      case "compareAndSet": {
        if (typeof operation.expected !== "string") break;
        const live = "key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)";
        if (operation.value === null) {
          const { rowsWritten } = sql.exec(`DELETE FROM kv WHERE ${live}`, operation.key, operation.expected, now);
          return Response.json({ written: rowsWritten > 0 });
        }
        if (typeof operation.value !== "string") break;
        const { rowsWritten } = sql.exec(
          `UPDATE kv SET value = ?, expires_at = ? WHERE ${live}`,
          operation.value,
          expiresAt,
          operation.key,
          operation.expected,
          now,
        );
        if (rowsWritten > 0) await this.#armSweep(expiresAt);
        return Response.json({ written: rowsWritten > 0 });
      }
    }
    return Response.json({ error: "unknown operation" }, { status: 400 });
  }

  /**
   * Accepts a verified push into the conversation (see `ConversationStore.accept`).
   *
   * @param input the claim and the entry
   * @param settings the caller's idle timeout and retention
   * @returns claimed or taken, who answers and the window
   */
  async accept(input: AcceptInput, settings: ConversationSettings): Promise<AcceptResult> {
    return await this.#run((c, now) => c.accept(input, settings, now));
  }

  /**
   * The claim on a push (see `ConversationStore.claim`).
   *
   * @param key the push's dedupe key
   * @returns the claim, or `null`
   */
  claim(key: string): string | null {
    return this.#tables().claim(key, Date.now());
  }

  /**
   * Replaces a claim that still holds `expected` (see `ConversationStore.replaceClaim`).
   *
   * @param key the push's dedupe key
   * @param expected the claim it must hold
   * @param value the new claim, or `null` to free it
   * @param ttlSeconds how long the new claim lives
   * @returns whether it held `expected`
   */
  async replaceClaim(key: string, expected: string, value: string | null, ttlSeconds: number): Promise<boolean> {
    return await this.#run((c, now) => c.replaceClaim(key, expected, value, ttlSeconds, now));
  }

  /**
   * Holds a window message for a send (see `ConversationStore.reserve`).
   *
   * @param onlyIn the states that allow the send
   * @param settings the caller's idle timeout and retention
   * @returns the decision
   */
  async reserve(onlyIn: readonly HandoffState[] | undefined, settings: ConversationSettings): Promise<Reservation> {
    return await this.#run((c, now) => c.reserve(onlyIn, settings, now));
  }

  /**
   * Records what was sent (see `ConversationStore.recordOutbound`).
   *
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @param settings the caller's idle timeout and retention
   * @returns the entry as recorded
   */
  async recordOutbound(
    input: OutboundInput & { reserved: boolean },
    settings: ConversationSettings,
  ): Promise<ConversationEntry> {
    return await this.#run((c, now) => c.recordOutbound(input, settings, now));
  }

  /**
   * A page of history, newest first (see `ConversationStore.history`).
   *
   * @param options `before` (a `seq`) and `limit`
   * @param settings the caller's retention: older entries are not returned
   * @returns the page, or `null` when there is no conversation
   */
  history(options: { before?: number | undefined; limit: number }, settings: ConversationSettings): HistoryPage | null {
    return this.#tables().history(options, settings, Date.now());
  }

  /**
   * Who answers (see `ConversationStore.handoff`).
   *
   * @param settings the caller's idle timeout
   * @returns the handoff, or `null` when there is no conversation
   */
  handoff(settings: ConversationSettings): Handoff | null {
    return this.#tables().handoff(settings, Date.now());
  }

  /**
   * Changes who answers (see `ConversationStore.setHandoff`).
   *
   * @param change the new state, who makes the change and why
   * @param settings the caller's idle timeout and retention
   * @returns whether it changed, and the handoff now
   */
  async setHandoff(change: HandoffChange, settings: ConversationSettings): Promise<HandoffResult> {
    return await this.#run((c, now) => c.setHandoff(change, settings, now));
  }

  /**
   * The send window (see `ConversationStore.window`).
   *
   * @returns the window, or `undefined`
   */
  window(): SendWindow | undefined {
    return this.#tables().window(Date.now());
  }

  /**
   * Records where a copy of an entry's media is kept (see `ConversationStore.recordMediaCopy`).
   *
   * @param copy the entry, its media_id and the copy's key
   * @param settings the caller's retention: an entry past it is gone
   * @returns whether the entry was there to record it on
   */
  async recordMediaCopy(copy: MediaCopy, settings: ConversationSettings): Promise<boolean> {
    return await this.#run((c, now) => ({ result: c.recordMediaCopy(copy, settings, now) }));
  }

  /** Deletes the conversation; the push claims stay, without their entries (see `ConversationStore.purge`). */
  purge(): void {
    const tables = this.#tables();
    this.#state.storage.transactionSync(() => tables.purge());
  }

  /**
   * Deletes what has expired (and the copies of media of the history it deletes), and comes back
   * while something with an expiry remains. A bucket that fails fails the alarm, which the
   * runtime runs again, before any entry is deleted.
   */
  async alarm(): Promise<void> {
    const { sql } = this.#state.storage;
    const now = Date.now();
    if (this.#media !== undefined && ConversationTables.exist(sql)) {
      const copies = ConversationTables.expiredMedia(sql, now);
      if (copies.length > 0) await deleteCopies(this.#media, copies);
    }
    const due = this.#state.storage.transactionSync(() => {
      sql.exec("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", now);
      const next = sql.exec("SELECT MIN(expires_at) AS next FROM kv WHERE expires_at IS NOT NULL").toArray()[0]?.next;
      const conversation = ConversationTables.exist(sql) ? ConversationTables.sweep(sql, now) : undefined;
      return earliest(next === null || next === undefined ? undefined : Number(next), conversation);
    });
    // The runtime clears the alarm that fired.
    this.#alarmAt = null;
    await this.#armSweep(due ?? null);
  }

  /** The conversation's tables, created the first time the object keeps a conversation. */
  #tables(): ConversationTables {
    return this.#conversation ??= new ConversationTables(this.#state.storage.sql);
  }

  /** Runs a conversation operation as one transaction, then makes sure the alarm will delete what it wrote. */
  async #run<T>(operation: (tables: ConversationTables, now: number) => Done<T>): Promise<T> {
    const tables = this.#tables();
    const { result, due } = this.#state.storage.transactionSync(() => operation(tables, Date.now()));
    if (due !== undefined) await this.#armSweep(due);
    return result;
  }

  /**
   * Makes sure the alarm runs by `dueAt` (and not sooner than SWEEP_INTERVAL_MS from now):
   * sets it when none is set or the one set is later. One storage read per instance, to
   * learn the alarm; none after that unless the alarm moves.
   */
  async #armSweep(dueAt: number | null): Promise<void> {
    if (dueAt === null) return;
    const at = Math.max(dueAt, Date.now() + SWEEP_INTERVAL_MS);
    if (this.#alarmAt === undefined) this.#alarmAt = await this.#state.storage.getAlarm();
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.#state.storage.setAlarm(at);
  }
}
