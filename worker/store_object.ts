/**
 * `KefuStore`: the Durable Object class behind `DurableObjectStore` and
 * `DurableObjectConversationStore`. Each object holds one mini-program user (the claims and
 * marks of the user's pushes, the send window, and the user's conversation: its history,
 * who answers it), one mini program's list of conversations (its directory, `dir:<appId>`,
 * which the users' objects keep up to date) or one shard of other keys, in its own SQLite
 * database, so every operation is strongly consistent and atomic.
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
  ConversationDirectoryObject,
  ConversationEntry,
  ConversationListOptions,
  ConversationObject,
  ConversationPage,
  ConversationSettings,
  DirectoryAddress,
  DirectoryNotice,
  DurableObjectNamespaceLike,
  Handoff,
  HandoffChange,
  HandoffResult,
  HandoffState,
  HistoryPage,
  MediaCopy,
  ObjectSettings,
  OutboundInput,
  Reservation,
  SendWindow,
  StoreOperation,
} from "../mod.ts";
// Private helpers shared with the other engines (see src/internal/README.md): what the app's
// list keeps of a conversation, the checks of a page's options, the directory's name.
import { checkListOptions, directoryObjectName, listedOf } from "../src/internal/conversation_list.ts";
import { type Changed, ConversationTables, type Done, earliest } from "./conversation_tables.ts";
import { DirectoryTables } from "./conversation_directory.ts";
import { deleteCopies, type MediaBucketLike } from "./media_keys.ts";
import { type AttemptResult, type HubSocket, type HubState, InboxTables, LiveHub } from "./inbox/mod.ts";

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
  /** Keeps the object running until `promise` settles, after the call that started it has been answered. */
  waitUntil(promise: Promise<unknown>): void;
  /** The Hibernation API's WebSockets (the agent inbox's live updates, on a directory object). */
  acceptWebSocket?: HubState["acceptWebSocket"];
  /** The sockets accepted, by tag. */
  getWebSockets?: HubState["getWebSockets"];
  /** Answers a socket's keep-alive without waking the object. */
  setWebSocketAutoResponse?: HubState["setWebSocketAutoResponse"];
}

/** How often the alarm deletes what has expired, at most. */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * A Durable Object holding, in SQLite, key-value entries with expiry (`fetch`, from
 * `DurableObjectStore`) and one user's conversation (Workers RPC methods, from
 * `DurableObjectConversationStore`: one call per operation). Each operation runs
 * synchronously, so nothing else in the object interleaves with it; the conversation's run
 * in a transaction, after which a user's object tells the app's directory object (another
 * `KefuStore`) what changed, without its caller waiting. The alarm deletes expired entries
 * and claims, history older than the retention its callers ask for, and what a directory no
 * longer needs, with no request needed.
 *
 * @example Export it from your worker's entry (a Workers runtime only)
 * ```ts ignore
 * export { KefuStore } from "@kefu/edge/worker/durable-object";
 * ```
 */
export class KefuStore extends DurableObject implements ConversationObject, ConversationDirectoryObject {
  readonly #state: KefuStoreState;
  readonly #env: Record<string, unknown>;
  #conversation: ConversationTables | undefined;
  #directory: DirectoryTables | undefined;
  #inbox: InboxTables | undefined;
  /** Whether an update of the app's directory is on its way. */
  #updating = false;
  /** The newest change not sent to the directory yet. */
  #nextUpdate: { address: DirectoryAddress; changed: Changed } | undefined;
  /** The alarm's time as this instance knows it: `undefined` until read, `null` when none is set. */
  #alarmAt: number | null | undefined;
  /** The worker's media bucket (`KEFU_MEDIA`), whose copies leave with their history entries. */
  readonly #media: MediaBucketLike | undefined;
  /** The agent inbox's sockets (a directory object's), made when first needed. */
  #live: LiveHub | undefined;

  /**
   * Called by the Workers runtime.
   *
   * @param state the object's state (its SQLite storage)
   * @param env the worker's bindings (a user's object finds the app's directory object there;
   *   `KEFU_MEDIA`, when bound, is where copies of media are)
   */
  constructor(state: KefuStoreState, env: unknown) {
    // The runtime passes its own state object, of which KefuStoreState names the part used here.
    super(state as never, env as never);
    this.#state = state;
    this.#env = (env ?? {}) as Record<string, unknown>;
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
    // An agent's page, handed over by the worker's `/inbox/live` once it let the agent in.
    if (LiveHub.isUpgrade(request)) return this.#hub().accept(request);
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
   * @param settings the caller's idle timeout and retention, and where the app's directory is
   * @returns claimed or taken, who answers and the window
   */
  async accept(input: AcceptInput, settings: ObjectSettings): Promise<AcceptResult> {
    return await this.#run(settings, (c, now) => c.accept(input, settings, now));
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
    return await this.#run({}, (c, now) => c.replaceClaim(key, expected, value, ttlSeconds, now));
  }

  /**
   * Holds a window message for a send (see `ConversationStore.reserve`).
   *
   * @param onlyIn the states that allow the send
   * @param settings the caller's idle timeout and retention, and where the app's directory is
   * @returns the decision
   */
  async reserve(onlyIn: readonly HandoffState[] | undefined, settings: ObjectSettings): Promise<Reservation> {
    return await this.#run(settings, (c, now) => c.reserve(onlyIn, settings, now));
  }

  /**
   * Records what was sent (see `ConversationStore.recordOutbound`).
   *
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @param settings the caller's idle timeout and retention, and where the app's directory is
   * @returns the entry as recorded
   */
  async recordOutbound(
    input: OutboundInput & { reserved: boolean },
    settings: ObjectSettings,
  ): Promise<ConversationEntry> {
    return await this.#run(settings, (c, now) => c.recordOutbound(input, settings, now));
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
   * @param settings the caller's idle timeout and retention, and where the app's directory is
   * @returns whether it changed, and the handoff now
   */
  async setHandoff(change: HandoffChange, settings: ObjectSettings): Promise<HandoffResult> {
    return await this.#run(settings, (c, now) => c.setHandoff(change, settings, now));
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
    return await this.#run({}, (c, now) => ({ result: c.recordMediaCopy(copy, settings, now) }));
  }

  /**
   * Deletes the conversation; the push claims stay, without their entries (see
   * `ConversationStore.purge`). Resolves once the app's directory has let the user go (a
   * purge is a deletion asked for: it fails, to be asked again, rather than leave the user
   * listed).
   *
   * @param settings where the app's directory is
   */
  async purge(settings?: ObjectSettings): Promise<void> {
    const tables = this.#tables();
    const changed = this.#state.storage.transactionSync(() => tables.purge());
    const update = this.#tellDirectory(settings?.directory, changed);
    if (update !== undefined) await update;
  }

  /**
   * Takes a user's change into the app's list (called by the user's object on the app's
   * directory object).
   *
   * @param notice the user, the change's version and the conversation (`null`: purged)
   */
  async updateDirectory(notice: DirectoryNotice): Promise<void> {
    const directory = this.#directory ??= new DirectoryTables(this.#state.storage.sql);
    const now = Date.now();
    const due = this.#state.storage.transactionSync(() => directory.update(notice, now));
    // Agents' open inbox pages learn which conversation changed (not what), and read it.
    if (this.#state.getWebSockets !== undefined) {
      this.#hub().broadcast({
        type: "changed",
        openId: notice.openId,
        version: notice.version,
        ...(notice.listed === null ? { purged: true as const } : {}),
      }, now);
    }
    if (due !== undefined) await this.#armSweep(due);
  }

  /**
   * Called by the runtime for a message from an inbox page's socket. The pages' keep-alive
   * (`ping`) is answered by the runtime itself; nothing else is expected, and nothing is done.
   */
  webSocketMessage(): void {}

  /**
   * Called by the runtime when an inbox page's socket closes: closes the object's end.
   *
   * @param socket the socket
   * @param code the page's close code
   */
  webSocketClose(socket: HubSocket, code: number): void {
    LiveHub.closed(socket, code);
  }

  /**
   * A page of the app's list (called on the app's directory object; see `ConversationStore.list`).
   *
   * @param options the filter, the page size and the cursor
   * @param settings the caller's idle timeout
   * @returns the page
   */
  listDirectory(options: ConversationListOptions, settings: ConversationSettings): ConversationPage {
    const directory = this.#directory ??= new DirectoryTables(this.#state.storage.sql);
    const now = Date.now();
    const checked = checkListOptions(options, now);
    // The ghosts a first page's walk makes the directory keep arm the alarm as they are written.
    return this.#state.storage.transactionSync(() => directory.page(checked, settings, now));
  }

  /**
   * The key that signs the agent inbox's sessions and CSRF tokens (called on the app's inbox
   * object, `inbox:<appId>`): 32 random bytes, base64url, made on the first call and kept.
   *
   * @returns the key
   */
  inboxKey(): Promise<string> {
    const inbox = this.#inboxTables();
    return Promise.resolve(this.#state.storage.transactionSync(() => inbox.key()));
  }

  /**
   * Counts a login attempt to the agent inbox under each key (`name:<name>`: 5 in 15 minutes,
   * `ip:<address>`: 20), or refuses it, uncounted, when one of them is at its limit (called on
   * the app's inbox object).
   *
   * @param keys the attempt's keys
   * @returns whether it may go on, and in how many seconds to try again when not
   */
  inboxAttempt(keys: string[]): Promise<AttemptResult> {
    const inbox = this.#inboxTables();
    return Promise.resolve(this.#state.storage.transactionSync(() => inbox.attempt(keys, Date.now())));
  }

  /**
   * Forgets the login attempts under `key` (a name's, once its agent signed in; called on the
   * app's inbox object).
   *
   * @param key the key, e.g. `name:alice`
   */
  inboxReset(key: string): Promise<void> {
    const inbox = this.#inboxTables();
    this.#state.storage.transactionSync(() => inbox.reset(key));
    return Promise.resolve();
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
      const directory = DirectoryTables.exist(sql) ? DirectoryTables.sweep(sql, now) : undefined;
      return earliest(
        next === null || next === undefined ? undefined : Number(next),
        earliest(conversation, directory),
      );
    });
    // The runtime clears the alarm that fired.
    this.#alarmAt = null;
    await this.#armSweep(due ?? null);
  }

  /** The inbox's tables, created the first time the object is asked for them. */
  #inboxTables(): InboxTables {
    return this.#inbox ??= new InboxTables(this.#state.storage.sql);
  }

  /** The conversation's tables, created the first time the object keeps a conversation. */
  #tables(): ConversationTables {
    return this.#conversation ??= new ConversationTables(this.#state.storage.sql);
  }

  /**
   * Runs a conversation operation as one transaction, tells the app's directory what changed
   * (without waiting for it), then makes sure the alarm will delete what it wrote.
   */
  async #run<T>(
    settings: Pick<ObjectSettings, "directory">,
    operation: (tables: ConversationTables, now: number) => Done<T>,
  ): Promise<T> {
    const tables = this.#tables();
    const { result, due, changed } = this.#state.storage.transactionSync(() => operation(tables, Date.now()));
    // The caller (the push WeChat waits on) is answered without waiting for the directory: a
    // failed update is logged, and the next change, which carries the whole conversation again,
    // repairs it.
    if (settings.directory !== undefined && changed !== undefined) this.#queueUpdate(settings.directory, changed);
    if (due !== undefined) await this.#armSweep(due);
    return result;
  }

  /**
   * Sends the directory the newest change, one update at a time: changes made while one is on
   * its way are folded into the next (each carries the whole conversation), so a burst of a
   * user's changes costs the directory two calls, not one a change.
   */
  #queueUpdate(address: DirectoryAddress, changed: Changed): void {
    this.#nextUpdate = { address, changed };
    if (this.#updating) return;
    this.#updating = true;
    this.#state.waitUntil((async () => {
      try {
        for (let next = this.#nextUpdate; next !== undefined; next = this.#nextUpdate) {
          this.#nextUpdate = undefined;
          await this.#tellDirectory(next.address, next.changed)?.catch(directoryFailed);
        }
      } finally {
        this.#updating = false;
      }
    })());
  }

  /**
   * Sends a change to the app's directory object: one Workers RPC call, whose promise it
   * returns (`undefined` when there is nothing to send, or no directory to send it to).
   *
   * Why a directory object of the same class, told after the user's transaction: the list
   * needs an index across users, which no user's object has; a second object of the namespace
   * the worker already binds needs no new binding or migration (D1 would need both, and a
   * write to it from each change), and a call made after the transaction, not awaited, keeps
   * it out of the time WeChat waits. The directory keeps the newest version per user, so
   * calls that race or arrive late do no harm.
   */
  #tellDirectory(address: DirectoryAddress | undefined, changed: Changed | undefined): Promise<void> | undefined {
    if (address === undefined || changed === undefined) return undefined;
    const namespace = this.#env[address.binding] as DurableObjectNamespaceLike | undefined;
    if (namespace === undefined || typeof namespace.idFromName !== "function") {
      if (!unboundLogged) console.warn(JSON.stringify({ event: "kefu-edge.directory_unbound" }));
      unboundLogged = true;
      return undefined;
    }
    const notice: DirectoryNotice = {
      openId: address.openId,
      version: changed.version,
      listed: changed.head === undefined ? null : listedOf(address.openId, changed.head),
    };
    const directory = namespace.get(namespace.idFromName(directoryObjectName(address.appId)));
    return Promise.resolve((directory as unknown as ConversationDirectoryObject).updateDirectory(notice));
  }

  /** The inbox's sockets on this (directory) object. */
  #hub(): LiveHub {
    return this.#live ??= new LiveHub(this.#state as KefuStoreState & HubState);
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

/** Whether the missing directory binding was logged (once per isolate). */
let unboundLogged = false;

/** Logs a failed directory update (its error's name only: no user, no content). */
function directoryFailed(err: unknown): void {
  const error = err instanceof Error ? err.name : typeof err;
  console.warn(JSON.stringify({ event: "kefu-edge.directory_update_failed", error }));
}
