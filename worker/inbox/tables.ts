/**
 * Private to the inbox: what the app's inbox object (a `KefuStore`, named `inbox:<appId>`) keeps
 * in its SQLite database: the key that signs sessions and CSRF tokens, and the count of login
 * attempts per name and per client address. Every method runs synchronously, so `KefuStore`
 * runs each as one transaction that nothing interleaves with.
 *
 * @module
 */
import type { SqlLike } from "../conversation_tables.ts";
import { randomToken } from "./base64url.ts";

/** How long a window of login attempts lasts: 15 minutes from its first attempt. */
export const ATTEMPT_WINDOW_MS = 15 * 60 * 1000;

/** Attempts allowed in a window, by the kind of key (its prefix). */
const LIMITS: ReadonlyArray<readonly [prefix: string, limit: number]> = [["name:", 5], ["ip:", 20]];

/** The answer to a login attempt. */
export interface AttemptResult {
  /** Whether the attempt may go on (it was counted); `false`: it was not counted. */
  allowed: boolean;
  /** When refused, the seconds until the fullest window ends; 0 when allowed. */
  retryAfterSeconds: number;
}

const SCHEMA = [
  "CREATE TABLE IF NOT EXISTS inbox_key (id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL)",
  "CREATE TABLE IF NOT EXISTS inbox_attempts (key TEXT PRIMARY KEY, started_at INTEGER NOT NULL, count INTEGER NOT NULL)",
  "CREATE INDEX IF NOT EXISTS inbox_attempts_started_at ON inbox_attempts (started_at)",
];

function limitOf(key: unknown): number {
  const limit = typeof key === "string" && key.length <= 200
    ? LIMITS.find(([prefix]) => key.startsWith(prefix))?.[1]
    : undefined;
  if (limit === undefined) throw new TypeError('an attempt key must start with "name:" or "ip:"');
  return limit;
}

/**
 * The inbox's tables in one object's SQLite database, created when first used.
 *
 * @example In a Durable Object (`KefuStore` wraps each call in a transaction)
 * ```ts ignore
 * const tables = new InboxTables(ctx.storage.sql);
 * const { allowed } = tables.attempt(["name:alice", "ip:203.0.113.9"], Date.now());
 * ```
 */
export class InboxTables {
  readonly #sql: SqlLike;

  /**
   * Creates the tables if they are not there.
   *
   * @param sql the object's SQLite database
   */
  constructor(sql: SqlLike) {
    this.#sql = sql;
    for (const statement of SCHEMA) sql.exec(statement);
  }

  /**
   * The key that signs sessions and CSRF tokens: 32 random bytes, base64url, made the first
   * time it is asked for and the same ever after.
   *
   * @returns the key
   */
  key(): string {
    const row = this.#sql.exec("SELECT key FROM inbox_key WHERE id = 1").toArray()[0];
    if (row !== undefined) return String(row.key);
    const key = randomToken(32);
    this.#sql.exec("INSERT INTO inbox_key (id, key) VALUES (1, ?)", key);
    return key;
  }

  /**
   * Counts a login attempt under each key (`name:<name>`, `ip:<address>`), unless one of them
   * has had its limit (5 a name, 20 an address) in its current window: then nothing is counted
   * and the attempt is refused. A window lasts 15 minutes from its first attempt. Windows that
   * have ended are deleted here (by the `started_at` index: only those rows are read).
   *
   * @param keys the attempt's keys
   * @param now the time, ms
   * @returns whether it may go on, and when to try again
   * @throws {TypeError} for a key of no known kind
   */
  attempt(keys: readonly string[], now: number): AttemptResult {
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > 4) {
      throw new TypeError("attempt takes 1 to 4 keys");
    }
    const limits = keys.map(limitOf);
    const since = now - ATTEMPT_WINDOW_MS;
    this.#sql.exec("DELETE FROM inbox_attempts WHERE started_at <= ?", since);
    let retryAfterMs = 0;
    keys.forEach((key, i) => {
      const row = this.#sql.exec("SELECT started_at, count FROM inbox_attempts WHERE key = ?", key).toArray()[0];
      if (row !== undefined && Number(row.count) >= limits[i]!) {
        retryAfterMs = Math.max(retryAfterMs, Number(row.started_at) + ATTEMPT_WINDOW_MS - now);
      }
    });
    if (retryAfterMs > 0) return { allowed: false, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) };
    for (const key of keys) {
      this.#sql.exec(
        "INSERT INTO inbox_attempts (key, started_at, count) VALUES (?, ?, 1) " +
          "ON CONFLICT (key) DO UPDATE SET count = count + 1",
        key,
        now,
      );
    }
    return { allowed: true, retryAfterSeconds: 0 };
  }

  /**
   * Forgets the attempts under `key` (a name's, after its agent signed in).
   *
   * @param key the key, e.g. `name:alice`
   */
  reset(key: string): void {
    this.#sql.exec("DELETE FROM inbox_attempts WHERE key = ?", key);
  }
}
