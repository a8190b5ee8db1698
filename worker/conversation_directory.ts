/**
 * Private: an app's list of conversations in the SQLite database of the app's directory
 * object (a `KefuStore` named `dir:<appId>`). The users' objects tell it about each change
 * after their own transaction, without their callers waiting (see `KefuStore`); each notice
 * carries the conversation as the list keeps it and the version the user's object gave the
 * change, and the directory keeps the newest version of each user, so notices that arrive
 * late or out of order change nothing, and the next one repairs one that failed.
 *
 * Each place a conversation takes in the list is stamped with the directory's counter (its
 * tick); while a walk of the list may be going on, a conversation that moves leaves a ghost of
 * its old place, so a walk lists each conversation once, where it stood when the walk began
 * (see src/internal/conversation_list.ts).
 *
 * @module
 */
import type {
  ConversationFilter,
  ConversationPage,
  ConversationSettings,
  ConversationSummary,
  DirectoryNotice,
} from "../mod.ts";
// The list's rules are shared by every engine and are not public API: the directory applies
// the very functions the memory and Deno KV engines apply (see src/internal/README.md).
import {
  byPlace,
  type CheckedListOptions,
  encodeListCursor,
  idleSince,
  type ListedConversation,
  type ListPlace,
  summaryOf,
  WALK_MS,
} from "../src/internal/conversation_list.ts";
import { earliest, numberOrUndefined, type SqlLike, tableExists } from "./conversation_tables.ts";

const SCHEMA = [
  // One row per user: the newest version heard of, and the conversation (`listed`, JSON) with
  // its place and who answers, or `listed` NULL once purged (kept a while, so that a notice
  // from before the purge, arriving late, cannot bring the user back).
  "CREATE TABLE IF NOT EXISTS directory (" +
  "open_id TEXT PRIMARY KEY, version INTEGER NOT NULL, activity_at INTEGER, listed_tick INTEGER, " +
  "state TEXT, idle_since INTEGER, listed TEXT, purged_at INTEGER)",
  "CREATE INDEX IF NOT EXISTS directory_place ON directory (activity_at, open_id) WHERE listed IS NOT NULL",
  "CREATE INDEX IF NOT EXISTS directory_purged ON directory (purged_at) WHERE listed IS NULL",
  // Places left while a walk could be going on.
  "CREATE TABLE IF NOT EXISTS directory_ghosts (activity_at INTEGER NOT NULL, open_id TEXT NOT NULL, " +
  "listed_tick INTEGER NOT NULL, unlisted_tick INTEGER NOT NULL, unlisted_at INTEGER NOT NULL, " +
  "PRIMARY KEY (activity_at, open_id))",
  "CREATE INDEX IF NOT EXISTS directory_ghosts_user ON directory_ghosts (open_id)",
  "CREATE INDEX IF NOT EXISTS directory_ghosts_unlisted ON directory_ghosts (unlisted_at)",
  // The counter, and until when a walk may be going on.
  "CREATE TABLE IF NOT EXISTS directory_clock (" +
  "id INTEGER PRIMARY KEY CHECK (id = 1), tick INTEGER NOT NULL, walk_until INTEGER NOT NULL)",
  "INSERT OR IGNORE INTO directory_clock (id, tick, walk_until) VALUES (1, 0, 0)",
];

/** The statements, by name; a page reads each table along its place index. */
export const DIRECTORY_SQL = {
  read: "SELECT version, activity_at, listed_tick, listed IS NOT NULL AS live FROM directory WHERE open_id = ?",
  write: "INSERT INTO directory (open_id, version, activity_at, listed_tick, state, idle_since, listed, purged_at) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (open_id) DO UPDATE SET version = excluded.version, " +
    "activity_at = excluded.activity_at, listed_tick = excluded.listed_tick, state = excluded.state, " +
    "idle_since = excluded.idle_since, listed = excluded.listed, purged_at = excluded.purged_at",
  ghost: "INSERT OR REPLACE INTO directory_ghosts (activity_at, open_id, listed_tick, unlisted_tick, unlisted_at) " +
    "VALUES (?, ?, ?, ?, ?)",
  forgetGhosts: "DELETE FROM directory_ghosts WHERE open_id = ?",
  tick: "UPDATE directory_clock SET tick = tick + 1 WHERE id = 1 RETURNING tick, walk_until",
  clock: "SELECT tick, walk_until FROM directory_clock WHERE id = 1",
  beginWalk: "UPDATE directory_clock SET walk_until = ? WHERE id = 1",
  // Places taken by the walk's tick, after the cursor, in the list's order.
  page: "SELECT activity_at, open_id, listed FROM directory AS d WHERE listed IS NOT NULL AND listed_tick <= ? " +
    "AND (activity_at, open_id) < (?, ?) AND %FILTER% ORDER BY activity_at DESC, open_id DESC LIMIT ?",
  // Places left after the walk's tick, with what their conversation holds now.
  pageGhosts: "SELECT g.activity_at, g.open_id, d.listed FROM directory_ghosts AS g " +
    "JOIN directory AS d ON d.open_id = g.open_id WHERE g.listed_tick <= ? AND g.unlisted_tick > ? " +
    "AND (g.activity_at, g.open_id) < (?, ?) AND d.listed IS NOT NULL AND %FILTER% " +
    "ORDER BY g.activity_at DESC, g.open_id DESC LIMIT ?",
  sweepGhosts: "DELETE FROM directory_ghosts WHERE unlisted_at < ?",
  sweepPurged: "DELETE FROM directory WHERE listed IS NULL AND purged_at < ?",
  nextGhost: "SELECT MIN(unlisted_at) AS next FROM directory_ghosts",
  nextPurged: "SELECT MIN(purged_at) AS next FROM directory WHERE listed IS NULL",
} as const;

/** The `state` filter in SQL over the directory row `d`, and what it binds. */
function filterSql(state: ConversationFilter, now: number, idleMs: number): [string, unknown[]] {
  // A takeover idle longer than idleMs is the bot's again (see effectiveHandoff).
  const fresh = now - idleMs;
  switch (state) {
    case "all":
      return ["1", []];
    case "human":
      return ["d.state = 'human' AND d.idle_since >= ?", [fresh]];
    case "bot":
      return ["(d.state = 'bot' OR (d.state = 'human' AND d.idle_since < ?))", [fresh]];
    default:
      return ["d.state = ?", [state]];
  }
}

/** One app's list in its directory object's database. */
export class DirectoryTables {
  readonly #sql: SqlLike;

  /**
   * Creates the tables when they are missing.
   *
   * @param sql the directory object's SQLite database
   */
  constructor(sql: SqlLike) {
    this.#sql = sql;
    for (const statement of SCHEMA) sql.exec(statement);
  }

  /**
   * Whether an object's database has directory tables (only an app's directory object has).
   *
   * @param sql the object's SQLite database
   * @returns whether the tables exist
   */
  static exist(sql: SqlLike): boolean {
    return tableExists(sql, "directory_clock");
  }

  /**
   * Applies a user's notice, unless the directory has heard of a newer change already.
   *
   * @param notice the user, the change's version and the conversation (`null`: purged)
   * @param now the directory's clock, ms
   * @returns when the alarm has something to delete because of it (a ghost, a purged user)
   */
  update(notice: DirectoryNotice, now: number): number | undefined {
    const row = this.#sql.exec(DIRECTORY_SQL.read, notice.openId).toArray()[0];
    if (row !== undefined && Number(row.version) >= notice.version) return undefined;
    const clock = this.#sql.exec(DIRECTORY_SQL.tick).toArray()[0]!;
    const tick = Number(clock.tick);
    const { listed } = notice;
    if (listed === null) {
      this.#sql.exec(DIRECTORY_SQL.forgetGhosts, notice.openId);
      this.#sql.exec(DIRECTORY_SQL.write, notice.openId, notice.version, null, null, null, null, null, now);
      return now + WALK_MS;
    }
    const live = row !== undefined && Number(row.live) === 1;
    let listedTick = live ? Number(row.listed_tick) : tick;
    let due: number | undefined;
    if (live && Number(row.activity_at) !== listed.lastActivityAt) {
      if (Number(clock.walk_until) > now) {
        this.#sql.exec(DIRECTORY_SQL.ghost, Number(row.activity_at), notice.openId, listedTick, tick, now);
        due = now + WALK_MS;
      }
      listedTick = tick;
    }
    this.#sql.exec(
      DIRECTORY_SQL.write,
      notice.openId,
      notice.version,
      listed.lastActivityAt,
      listedTick,
      listed.handoff.state,
      idleSince(listed),
      JSON.stringify(listed),
      null,
    );
    return due;
  }

  /**
   * A page of the list (see `ConversationStore.list`).
   *
   * @param options the checked filter, page size and cursor
   * @param settings the caller's idle timeout
   * @param now the directory's clock, ms
   * @returns the page
   */
  page(options: CheckedListOptions, settings: Pick<ConversationSettings, "idleMs">, now: number): ConversationPage {
    const { state, limit, cursor } = options;
    let walk: { walk: string; startedAt: number } | undefined = cursor;
    if (walk === undefined) {
      const tick = Number(this.#sql.exec(DIRECTORY_SQL.clock).toArray()[0]!.tick);
      this.#sql.exec(DIRECTORY_SQL.beginWalk, now + WALK_MS);
      walk = { walk: tick.toString(16), startedAt: now };
    }
    const tick = Number.parseInt(walk.walk, 16);
    const [filter, bindings] = filterSql(state, now, settings.idleMs);
    const from = cursor === undefined ? [Number.MAX_SAFE_INTEGER, ""] : [cursor.activityAt, cursor.openId];
    const live = this.#sql.exec(DIRECTORY_SQL.page.replace("%FILTER%", filter), tick, ...from, ...bindings, limit + 1);
    const ghosts = this.#sql.exec(
      DIRECTORY_SQL.pageGhosts.replace("%FILTER%", filter),
      tick,
      tick,
      ...from,
      ...bindings,
      limit + 1,
    );
    const found: { place: ListPlace; summary: ConversationSummary }[] = [...live.toArray(), ...ghosts.toArray()]
      .map((row) => ({
        place: { activityAt: Number(row.activity_at), openId: String(row.open_id) },
        summary: summaryOf(JSON.parse(String(row.listed)) as ListedConversation, now, settings),
      }))
      .sort((a, b) => byPlace(a.place, b.place));
    const more = found.length > limit;
    if (more) found.length = limit;
    return {
      conversations: found.map((f) => f.summary),
      nextCursor: more ? encodeListCursor(walk, found.at(-1)!.place) : null,
    };
  }

  /**
   * Deletes ghosts no walk can need any more, and purged users no late notice can bring back.
   *
   * @param sql the directory object's SQLite database
   * @param now the object's clock, ms
   * @returns when something is due next, or `undefined`
   */
  static sweep(sql: SqlLike, now: number): number | undefined {
    sql.exec(DIRECTORY_SQL.sweepGhosts, now - WALK_MS);
    sql.exec(DIRECTORY_SQL.sweepPurged, now - WALK_MS);
    const ghost = numberOrUndefined(sql.exec(DIRECTORY_SQL.nextGhost).toArray()[0]?.next);
    const purged = numberOrUndefined(sql.exec(DIRECTORY_SQL.nextPurged).toArray()[0]?.next);
    return earliest(
      ghost === undefined ? undefined : ghost + WALK_MS,
      purged === undefined ? undefined : purged + WALK_MS,
    );
  }
}
