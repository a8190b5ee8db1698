/**
 * `KefuStore`: the Durable Object class behind `DurableObjectStore`. Each object holds
 * the entries of one mini-program user (claims and marks of the user's pushes, the send
 * window) or of one shard of other keys, in its own SQLite database, so every operation
 * on a key is strongly consistent and `setIfAbsent` is atomic.
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
import type { StoreOperation } from "../mod.ts";

/** The part of a SQLite-backed Durable Object's state that {@link KefuStore} uses. */
export interface KefuStoreState {
  /** The object's storage. */
  storage: {
    /** The object's SQLite database. */
    sql: {
      /** Runs one statement synchronously. */
      exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[]; rowsWritten: number };
    };
    /** The time of the scheduled alarm, or `null`. */
    getAlarm(): Promise<number | null>;
    /** Schedules the alarm. */
    setAlarm(scheduledTime: number): Promise<void>;
  };
}

/** How often expired entries are swept, at most. */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * A Durable Object holding key-value entries with expiry in SQLite. Operations arrive as
 * `POST` JSON bodies from `DurableObjectStore`; each runs as one synchronous SQL statement,
 * which nothing else in the object can interleave with.
 *
 * The schema leaves room for more per-user tables (a conversation history) beside `kv`.
 *
 * @example Export it from your worker's entry
 * ```ts ignore
 * export { KefuStore } from "@kefu/edge/worker";
 * ```
 */
export class KefuStore {
  readonly #state: KefuStoreState;
  #sweepArmed = false;

  /**
   * Called by the Workers runtime.
   *
   * @param state the object's state (its SQLite storage)
   * @param _env the worker's bindings (unused)
   */
  constructor(state: KefuStoreState, _env?: unknown) {
    this.#state = state;
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

  /** Removes expired entries, and comes back while entries with an expiry remain. */
  async alarm(): Promise<void> {
    const { sql } = this.#state.storage;
    const now = Date.now();
    sql.exec("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", now);
    const next = sql.exec("SELECT MIN(expires_at) AS next FROM kv WHERE expires_at IS NOT NULL").toArray()[0]?.next;
    this.#sweepArmed = false;
    if (next !== null && next !== undefined) await this.#armSweep(Number(next));
  }

  async #armSweep(expiresAt: number | null): Promise<void> {
    if (expiresAt === null || this.#sweepArmed) return;
    this.#sweepArmed = true;
    if (await this.#state.storage.getAlarm() === null) {
      await this.#state.storage.setAlarm(Math.max(expiresAt, Date.now() + SWEEP_INTERVAL_MS));
    }
  }
}
