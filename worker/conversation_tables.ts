/**
 * Private: the conversation of one user in the SQLite database of the user's `KefuStore`
 * object. Three tables beside the object's `kv` table: the conversation's head (one row, its
 * state as JSON), the claims of the user's pushes, and the history, one row per entry, keyed
 * by `seq` and indexed by time for retention. Every operation reads what it needs by primary
 * key, applies one of the conversation's rules and writes the result, all synchronously, so
 * the object runs it as one step that nothing interleaves with; `KefuStore` wraps each in a
 * transaction.
 *
 * @module
 */
import type {
  AcceptInput,
  AcceptResult,
  ConversationEntry,
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
} from "../mod.ts";
// The conversation's rules are shared by every engine and are not public API: the Durable
// Object applies the very functions the memory and Deno KV engines apply (see
// src/internal/README.md).
import {
  applyAccept,
  applyHandoff,
  applyMediaCopy,
  applyOutbound,
  applyReserve,
  type ClaimRow,
  type ConversationHead,
  effectiveHandoff,
  liveWindow,
  RELEASED_CLAIM_MS,
  retentionCutoff,
  settlePending,
} from "../src/internal/conversation_rules.ts";

/** The part of a Durable Object's SQLite database that the object uses. */
export interface SqlLike {
  /** Runs one statement synchronously. */
  exec(query: string, ...bindings: unknown[]): { toArray(): Record<string, unknown>[]; rowsWritten: number };
}

const DAY_MS = 24 * 3600 * 1000;

/** The tables, created the first time an object keeps a conversation. */
const SCHEMA = [
  // One row: the conversation's state as JSON, and the retention its last write asked for
  // (the alarm, which no request brings settings to, deletes history by it).
  "CREATE TABLE IF NOT EXISTS conversation_head (" +
  "id INTEGER PRIMARY KEY CHECK (id = 1), head TEXT NOT NULL, retention_ms INTEGER NOT NULL)",
  // A released claim keeps its row (value NULL) so that a retry appends nothing again; `seq`
  // is the entry the push was appended as, dropped by a purge.
  "CREATE TABLE IF NOT EXISTS conversation_claims (" +
  "key TEXT PRIMARY KEY, value TEXT, expires_at INTEGER NOT NULL, seq INTEGER)",
  "CREATE INDEX IF NOT EXISTS conversation_claims_expires_at ON conversation_claims (expires_at)",
  "CREATE TABLE IF NOT EXISTS conversation_history (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, entry TEXT NOT NULL)",
  "CREATE INDEX IF NOT EXISTS conversation_history_at ON conversation_history (at)",
  // One row: the version of the conversation's last change, which the app's directory keeps
  // the newest of (it outlives a purge, so the purge's own version is newer than any before).
  "CREATE TABLE IF NOT EXISTS conversation_listing (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
];

/**
 * Every statement an operation runs, by name. Each reads or writes by primary key (or the
 * `at` index, for retention), so an operation costs the same on a conversation of any
 * length; the workerd tests check their query plans.
 */
export const CONVERSATION_SQL = {
  readHead: "SELECT head FROM conversation_head WHERE id = 1",
  readRetention: "SELECT retention_ms FROM conversation_head WHERE id = 1",
  writeHead: "INSERT INTO conversation_head (id, head, retention_ms) VALUES (1, ?, ?) " +
    "ON CONFLICT (id) DO UPDATE SET head = excluded.head, retention_ms = excluded.retention_ms",
  updateHead: "UPDATE conversation_head SET head = ? WHERE id = 1",
  readClaim: "SELECT value, expires_at, seq FROM conversation_claims WHERE key = ?",
  writeClaim: "INSERT INTO conversation_claims (key, value, expires_at, seq) VALUES (?, ?, ?, ?) " +
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, seq = excluded.seq",
  replaceClaim: "UPDATE conversation_claims SET value = ?, expires_at = ? " +
    "WHERE key = ? AND value = ? AND expires_at > ?",
  append: "INSERT INTO conversation_history (seq, at, entry) VALUES (?, ?, ?)",
  readEntry: "SELECT entry, at FROM conversation_history WHERE seq = ?",
  writeEntry: "UPDATE conversation_history SET entry = ? WHERE seq = ?",
  // Newest first from `before`, walking the primary key; the unary `+` keeps the planner off
  // the `at` index, which would sort the whole history.
  page: "SELECT entry FROM conversation_history WHERE seq < ? AND +at >= ? ORDER BY seq DESC LIMIT ?",
  purgeHead: "DELETE FROM conversation_head",
  purgeHistory: "DELETE FROM conversation_history",
  purgeClaims: "UPDATE conversation_claims SET seq = NULL WHERE seq IS NOT NULL",
  sweepClaims: "DELETE FROM conversation_claims WHERE expires_at <= ?",
  sweepHistory: "DELETE FROM conversation_history WHERE at < ?",
  // The copies of media the sweep is about to delete with their entries (few rows: the range
  // comes from the `at` index, and only entries with media carry a key).
  expiredMedia: "SELECT json_extract(entry, '$.mediaKey') AS key FROM conversation_history " +
    "WHERE at < ? AND json_extract(entry, '$.mediaKey') IS NOT NULL",
  nextClaimExpiry: "SELECT MIN(expires_at) AS next FROM conversation_claims",
  oldestEntry: "SELECT MIN(at) AS oldest FROM conversation_history",
  nextVersion: "INSERT INTO conversation_listing (id, version) VALUES (1, 1) " +
    "ON CONFLICT (id) DO UPDATE SET version = version + 1 RETURNING version",
} as const;

/** What an operation returns, and the earliest time the alarm has something to delete because of it. */
export interface Done<T> {
  /** The operation's result. */
  result: T;
  /** When something it wrote is due for deletion (a claim's expiry, an entry's retention), ms. */
  due?: number | undefined;
  /** The conversation after a change (`head` undefined: purged), for the app's directory. */
  changed?: Changed | undefined;
}

/** A change to tell the app's directory about. */
export interface Changed {
  /** The change's version: each change of the conversation has a greater one. */
  version: number;
  /** The conversation now; `undefined` once purged. */
  head: ConversationHead | undefined;
}

/**
 * One user's conversation in an object's SQLite database: the operations of
 * `ConversationStore`, each synchronous. Settings come with every call (the caller owns
 * them); `now` is the object's clock.
 */
export class ConversationTables {
  readonly #sql: SqlLike;

  /**
   * Creates the tables when they are missing.
   *
   * @param sql the object's SQLite database
   */
  constructor(sql: SqlLike) {
    this.#sql = sql;
    for (const statement of SCHEMA) sql.exec(statement);
  }

  /**
   * Whether an object's database has conversation tables at all (a shard of other keys has none).
   *
   * @param sql the object's SQLite database
   * @returns whether the tables exist
   */
  static exist(sql: SqlLike): boolean {
    return tableExists(sql, "conversation_head");
  }

  /**
   * Accepts a push: claims it and, the first time, appends it and opens the window.
   *
   * @param input the claim and the entry
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns the outcome, who answers and the window
   */
  accept(input: AcceptInput, settings: ConversationSettings, now: number): Done<AcceptResult> {
    const head = this.#head();
    const applied = applyAccept(head, this.#claim(input.key), input, now, settings);
    let due: number | undefined;
    if (applied.row !== undefined) {
      const { value, expiresAt, seq } = applied.row;
      this.#sql.exec(CONVERSATION_SQL.writeClaim, input.key, value, expiresAt, seq ?? null);
      due = expiresAt;
    }
    if (!applied.changed) return { result: applied.result, due };
    const written = this.#write(applied.head, applied.append, settings);
    return { result: applied.result, due: earliest(due, written.due), changed: written.changed };
  }

  /**
   * The claim on a push.
   *
   * @param key the push's dedupe key
   * @param now the object's clock, ms
   * @returns the claim, or `null` (none, released or expired)
   */
  claim(key: string, now: number): string | null {
    const row = this.#claim(key);
    return row !== undefined && row.value !== null && row.expiresAt > now ? row.value : null;
  }

  /**
   * Replaces a live claim that holds `expected`; `null` releases it (the row stays, so a
   * retry of the push appends nothing again).
   *
   * @param key the push's dedupe key
   * @param expected the claim it must hold
   * @param value the new claim, or `null`
   * @param ttlSeconds how long the new claim lives
   * @param now the object's clock, ms
   * @returns whether it held `expected`
   */
  replaceClaim(key: string, expected: string, value: string | null, ttlSeconds: number, now: number): Done<boolean> {
    const expiresAt = value === null ? now + RELEASED_CLAIM_MS : now + ttlSeconds * 1000;
    const { rowsWritten } = this.#sql.exec(CONVERSATION_SQL.replaceClaim, value, expiresAt, key, expected, now);
    if (rowsWritten === 0) return { result: false };
    // A pending push (see AcceptInput.order) moves on, or is settled, in the head.
    const head = settlePending(this.#head(), key, value, expiresAt, now);
    if (head !== undefined) this.#sql.exec(CONVERSATION_SQL.updateHead, JSON.stringify(head));
    return { result: true, due: expiresAt };
  }

  /**
   * Holds a window message for a send.
   *
   * @param onlyIn the states that allow the send
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns the decision
   */
  reserve(onlyIn: readonly HandoffState[] | undefined, settings: ConversationSettings, now: number): Done<Reservation> {
    const applied = applyReserve(this.#head(), onlyIn, now, settings);
    return applied.changed ? { result: applied.result, ...this.#write(applied.head, applied.append, settings) } : {
      result: applied.result,
    };
  }

  /**
   * Records what was sent.
   *
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns the entry as recorded
   */
  recordOutbound(
    input: OutboundInput & { reserved: boolean },
    settings: ConversationSettings,
    now: number,
  ): Done<ConversationEntry> {
    const applied = applyOutbound(this.#head(), input, now, settings);
    return applied.changed ? { result: applied.result, ...this.#write(applied.head, applied.append, settings) } : {
      result: applied.result,
    };
  }

  /**
   * A page of history, newest first, without what is past retention (the alarm deletes it later).
   *
   * @param options `before` (a `seq`) and `limit`
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns the page, or `null` when there is no conversation
   */
  history(
    options: { before?: number | undefined; limit: number },
    settings: ConversationSettings,
    now: number,
  ): HistoryPage | null {
    if (this.#head() === undefined) return null;
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    const rows = this.#sql.exec(CONVERSATION_SQL.page, before, retentionCutoff(now, settings), options.limit + 1)
      .toArray();
    const entries = rows.slice(0, options.limit).map((row) => JSON.parse(String(row.entry)) as ConversationEntry);
    return { entries, before: rows.length > options.limit ? entries.at(-1)!.seq : null };
  }

  /**
   * Who answers.
   *
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns the handoff, or `null` when there is no conversation
   */
  handoff(settings: ConversationSettings, now: number): Handoff | null {
    const head = this.#head();
    return head === undefined ? null : effectiveHandoff(head, now, settings);
  }

  /**
   * Changes who answers.
   *
   * @param change the new state, who makes the change and why
   * @param settings the caller's settings
   * @param now the object's clock, ms
   * @returns whether it changed, and the handoff now
   */
  setHandoff(change: HandoffChange, settings: ConversationSettings, now: number): Done<HandoffResult> {
    const applied = applyHandoff(this.#head(), change, now, settings);
    return applied.changed ? { result: applied.result, ...this.#write(applied.head, applied.append, settings) } : {
      result: applied.result,
    };
  }

  /**
   * The send window.
   *
   * @param now the object's clock, ms
   * @returns the window, or `undefined`
   */
  window(now: number): SendWindow | undefined {
    return liveWindow(this.#head()?.window, now);
  }

  /**
   * Records where a copy of an entry's media is kept.
   *
   * @param copy the entry, its media_id and the copy's key
   * @param settings the caller's settings (an entry past retention is gone)
   * @param now the object's clock, ms
   * @returns whether the entry was there to record it on
   */
  recordMediaCopy(copy: MediaCopy, settings: ConversationSettings, now: number): boolean {
    const row = this.#sql.exec(CONVERSATION_SQL.readEntry, copy.seq).toArray()[0];
    if (row === undefined || Number(row.at) < retentionCutoff(now, settings)) return false;
    const updated = applyMediaCopy(JSON.parse(String(row.entry)) as ConversationEntry, copy);
    if (updated === undefined) return false;
    this.#sql.exec(CONVERSATION_SQL.writeEntry, JSON.stringify(updated), copy.seq);
    return true;
  }

  /**
   * Deletes the conversation; the claims stay, without the entries they were appended as.
   *
   * @returns the change, for the app's directory
   */
  purge(): Changed {
    this.#sql.exec(CONVERSATION_SQL.purgeHead);
    this.#sql.exec(CONVERSATION_SQL.purgeHistory);
    this.#sql.exec(CONVERSATION_SQL.purgeClaims);
    return { version: this.#nextVersion(), head: undefined };
  }

  /**
   * The keys of the media copies that {@link ConversationTables.sweep} would delete the entries
   * of at `now` (to delete the copies first).
   *
   * @param sql the object's SQLite database (with conversation tables)
   * @param now the object's clock, ms
   * @returns the copies' keys
   */
  static expiredMedia(sql: SqlLike, now: number): string[] {
    const retention = retentionOf(sql);
    if (retention === undefined) return [];
    return sql.exec(CONVERSATION_SQL.expiredMedia, now - retention).toArray().map((row) => String(row.key));
  }

  /**
   * Deletes expired claims and history past the retention the last write asked for.
   *
   * @param sql the object's SQLite database (with conversation tables)
   * @param now the object's clock, ms
   * @returns when something is due next, or `undefined` when nothing is left to expire
   */
  static sweep(sql: SqlLike, now: number): number | undefined {
    sql.exec(CONVERSATION_SQL.sweepClaims, now);
    const retention = retentionOf(sql);
    let due = numberOrUndefined(sql.exec(CONVERSATION_SQL.nextClaimExpiry).toArray()[0]?.next);
    if (retention !== undefined) {
      sql.exec(CONVERSATION_SQL.sweepHistory, now - retention);
      const oldest = numberOrUndefined(sql.exec(CONVERSATION_SQL.oldestEntry).toArray()[0]?.oldest);
      if (oldest !== undefined) due = earliest(due, oldest + retention);
    }
    return due;
  }

  #head(): ConversationHead | undefined {
    const row = this.#sql.exec(CONVERSATION_SQL.readHead).toArray()[0];
    return row === undefined ? undefined : JSON.parse(String(row.head)) as ConversationHead;
  }

  #claim(key: string): ClaimRow | undefined {
    const row = this.#sql.exec(CONVERSATION_SQL.readClaim, key).toArray()[0];
    if (row === undefined) return undefined;
    const seq = numberOrUndefined(row.seq);
    return {
      value: row.value === null ? null : String(row.value),
      expiresAt: Number(row.expires_at),
      ...(seq === undefined ? {} : { seq }),
    };
  }

  /**
   * Writes the head and appends the entries; returns when the first of them leaves the
   * retention, and the change for the app's directory.
   */
  #write(
    head: ConversationHead,
    append: ConversationEntry[],
    settings: ConversationSettings,
  ): { due: number | undefined; changed: Changed } {
    const retentionMs = Math.round(settings.historyDays * DAY_MS);
    this.#sql.exec(CONVERSATION_SQL.writeHead, JSON.stringify(head), retentionMs);
    for (const entry of append) this.#sql.exec(CONVERSATION_SQL.append, entry.seq, entry.at, JSON.stringify(entry));
    return {
      due: append.length === 0 ? undefined : append[0]!.at + retentionMs,
      changed: { version: this.#nextVersion(), head },
    };
  }

  #nextVersion(): number {
    return Number(this.#sql.exec(CONVERSATION_SQL.nextVersion).toArray()[0]!.version);
  }
}

/** The retention the last write asked for, ms, or `undefined` when there is no conversation. */
function retentionOf(sql: SqlLike): number | undefined {
  return numberOrUndefined(sql.exec(CONVERSATION_SQL.readRetention).toArray()[0]?.retention_ms);
}

/**
 * Whether an object's database has the table `name`.
 *
 * @param sql the object's SQLite database
 * @param name the table
 * @returns whether it exists
 */
export function tableExists(sql: SqlLike, name: string): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

/**
 * A SQLite value as a number, or `undefined` for NULL.
 *
 * @param value a column's value
 * @returns the number, or `undefined`
 */
export function numberOrUndefined(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}

/**
 * The earlier of two times, either of which may be unknown.
 *
 * @param a a time, ms
 * @param b a time, ms
 * @returns the earlier, or the one known
 */
export function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
