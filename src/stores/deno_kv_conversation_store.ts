/**
 * {@link DenoKvConversationStore}: conversations in Deno KV, each operation one atomic commit.
 *
 * @module
 */
import type { SendWindow } from "../customer_service/send_window.ts";
import {
  type Applied,
  applyAccept,
  applyHandoff,
  applyMediaCopy,
  applyOutbound,
  applyReplaceClaim,
  applyReserve,
  type ClaimRow,
  type ConversationHead,
  type ConversationSettings,
  type ConversationSettingsOptions,
  effectiveHandoff,
  liveClaim,
  liveWindow,
  newHead,
  RELEASED_CLAIM_MS,
  retentionCutoff,
  settingsOf,
  settlePending,
} from "../internal/conversation_rules.ts";
import {
  checkListOptions,
  encodeListCursor,
  type ListedConversation,
  listedOf,
  type ListPlace,
  passes,
  summaryOf,
  WALK_MS,
} from "../internal/conversation_list.ts";
import type {
  AcceptInput,
  AcceptResult,
  ConversationEntry,
  ConversationListOptions,
  ConversationPage,
  ConversationRef,
  ConversationStore,
  ConversationSummary,
  Handoff,
  HandoffChange,
  HandoffResult,
  HandoffState,
  HistoryPage,
  MediaCopy,
  OutboundInput,
  Reservation,
} from "../conversation/types.ts";
import { type DenoKvAtomicLike, type DenoKvKey, type DenoKvLike, whenUnlocked } from "./deno_kv_store.ts";

/** An entry of a `Deno.Kv` as reads return it (`versionstamp` is `null` when there is none). */
export interface DenoKvEntryLike {
  /** The entry's key. */
  key: readonly unknown[];
  /** Its value, or `null`. */
  value: unknown;
  /** Its version, or `null` when there is no entry. */
  versionstamp: string | null;
}

/**
 * The part of a `Deno.Kv` that {@link DenoKvConversationStore} uses: {@link DenoKvLike} plus
 * reads of several keys at once and listing by key range. Pass the real `await Deno.openKv()`.
 */
export interface DenoKvConversationLike extends DenoKvLike {
  /** Reads several entries in one consistent read. */
  getMany(keys: readonly DenoKvKey[]): Promise<DenoKvEntryLike[]>;
  /** Lists entries under `prefix`, from `start` (inclusive) to `end` (exclusive), in key order or reversed. */
  list(
    selector: { prefix: DenoKvKey; start?: DenoKvKey; end?: DenoKvKey },
    options?: { limit?: number; reverse?: boolean },
  ): AsyncIterable<DenoKvEntryLike>;
}

/** Options of {@link DenoKvConversationStore}. */
export interface DenoKvConversationOptions extends ConversationSettingsOptions {
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
}

/** The first part of every key the store writes. */
const ROOT = "kefu-edge-conv";
/** The first part of the keys of the apps' lists: `[DIRECTORY, appId, activityAt, openId]`. */
const DIRECTORY = "kefu-edge-conv-dir";
/** The first part of the key that says until when a walk of an app's list may go on. */
const WALKS = "kefu-edge-conv-walk";
/** How long ghosts of places are kept: a walk's life, and room for clocks that differ. */
const GHOST_MS = WALK_MS + 60_000;
/** Entries of a list a page reads at most (a filter that few conversations pass may leave a page short). */
const SCAN_BUDGET = 2000;
/**
 * How often an operation reads and tries again when another writer changed the conversation
 * between its read and its commit. Each failed try means another operation committed, so
 * only a flood of writes to one user's conversation uses them up.
 */
const MAX_CONFLICTS = 200;
/** History entries a purge deletes per commit (Deno KV takes up to 1000 mutations a commit). */
const PURGE_ENTRIES = 800;
/** Claims a purge rewrites per commit (each is checked; Deno KV takes up to 100 checks a commit). */
const PURGE_CLAIMS = 90;
/** Ghosts of the user's old places a purge deletes per commit (two keys each). */
const PURGE_GHOSTS = 50;

/**
 * A place in an app's list, as kept under `[DIRECTORY, appId, activityAt, openId]`: the
 * conversation there now (`listed`, and `created`, the versionstamp of the commit that took
 * the place when the entry was rewritten since), or a ghost of a place it left while a walk
 * could be going on (`ghost`: the versionstamp that took it; the entry's own is when it left).
 */
type PlaceValue = { listed: ListedConversation; created?: string } | { ghost: string };

/** A conversation's head as stored: with the versionstamp its place was taken at, once the head was rewritten since. */
type StoredHead = ConversationHead & { placed?: string | undefined };

/**
 * Conversations in Deno KV, for Deno servers (`--unstable-kv`) and Deno Deploy. Every
 * operation reads what it needs (the conversation's head and, for a push, its claim), applies
 * the conversation's rules and writes the result in one atomic commit checked on what it
 * read, so processes sharing one database agree: of concurrent deliveries of a push exactly
 * one claims it, of concurrent sends no more than the window allows go ahead. (`purge` of a
 * history longer than 800 entries takes a commit per 800, oldest first; the conversation is
 * gone with the last one.)
 *
 * Keys live under `["kefu-edge-conv", appId, openId]`: the conversation's head, its claims
 * (`"claim", key`) and its history (`"h", seq`), so a page of history is one range read
 * however long the conversation is. The app's list is an index,
 * `["kefu-edge-conv-dir", appId, lastActivityAt, openId]`, moved in the same commit as the
 * operation that changes the conversation's activity, so a page of it is one range read too. History entries expire after `historyDays` (Deno KV
 * deletes them by itself; reads skip older ones until it has), and claims keep their expiry in
 * their value, because Deno KV's `expireIn` is a hint.
 *
 * @example Accept a push, read the history (`--unstable-kv`)
 * ```ts
 * import { DenoKvConversationStore } from "@kefu/edge";
 * const kv = await Deno.openKv(":memory:"); // or Deno.openKv() for Deno's default database
 * const store = new DenoKvConversationStore(kv, { historyDays: 30 });
 * const ref = { appId: "wx1", openId: "o1" };
 * const accepted = await store.accept(ref, {
 *   key: "m1",
 *   claim: "lease:1",
 *   ttlSeconds: 5,
 *   entry: { sender: "user", type: "message", msgType: "text", text: "你好" },
 *   action: { kind: "message", at: Date.now() },
 * });
 * const page = await store.history(ref, { limit: 10 });
 * console.log(accepted.outcome, page?.entries[0]?.text, accepted.window?.remaining); // "claimed" "你好" 5
 * kv.close();
 * ```
 */
export class DenoKvConversationStore implements ConversationStore {
  readonly #kv: DenoKvConversationLike;
  readonly #now: () => number;
  readonly #settings: ConversationSettings;

  /**
   * Keeps conversations in an open `Deno.Kv`.
   *
   * @param kv an open `Deno.Kv` (it may be shared with a {@link DenoKvStore}: the keys differ)
   * @param options the clock, the idle timeout and the history retention
   */
  constructor(kv: DenoKvConversationLike, options: DenoKvConversationOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? Date.now;
    this.#settings = settingsOf(options);
  }

  /**
   * Accepts a verified push (see {@link ConversationStore.accept}): one read of the head and
   * the push's claim, one commit.
   *
   * @param ref the conversation
   * @param input the claim and the entry
   * @returns claimed or taken, who answers and the window
   */
  accept(ref: ConversationRef, input: AcceptInput): Promise<AcceptResult> {
    const claimKey = [...prefix(ref), "claim", input.key];
    return this.#change(ref, [claimKey], ([found], head, now) => {
      const applied = applyAccept(head, claimRow(found?.value), input, now, this.#settings);
      return {
        ...applied,
        claims: applied.row === undefined ? [] : [{ key: claimKey, row: applied.row }],
      };
    });
  }

  /**
   * The claim on a push.
   *
   * @param ref the conversation
   * @param key the push's dedupe key
   * @returns the claim, or `null`
   */
  async claim(ref: ConversationRef, key: string): Promise<string | null> {
    const found = await whenUnlocked(() => this.#kv.get([...prefix(ref), "claim", key]));
    return liveClaim(claimRow(found.value), this.#now());
  }

  /**
   * Replaces a claim that still holds `expected`, checked on the claim and the head read (a
   * pending push moves on, or is settled, in the head).
   *
   * @param ref the conversation
   * @param key the push's dedupe key
   * @param expected the claim it must hold
   * @param value the new claim, or `null` to free it
   * @param ttlSeconds how long the new claim lives
   * @returns whether it held `expected`
   */
  async replaceClaim(
    ref: ConversationRef,
    key: string,
    expected: string,
    value: string | null,
    ttlSeconds: number,
  ): Promise<boolean> {
    const claimKey = [...prefix(ref), "claim", key];
    // The head is read too: a pending push (see AcceptInput.order) moves on or is settled in it.
    return await this.#change(ref, [claimKey], ([found], head, now) => {
      const row = applyReplaceClaim(claimRow(found?.value), expected, value, ttlSeconds, now);
      if (row === undefined) return { head: head ?? newHead(now), append: [], result: false, changed: false };
      const settled = settlePending(head, key, value, row.expiresAt, now);
      return {
        head: settled ?? head ?? newHead(now),
        append: [],
        result: true,
        changed: settled !== undefined,
        claims: [{ key: claimKey, row }],
      };
    });
  }

  /**
   * Holds a window message for a send.
   *
   * @param ref the conversation
   * @param options `onlyIn`: the states that allow the send
   * @returns the decision
   */
  reserve(ref: ConversationRef, options: { onlyIn?: readonly HandoffState[] | undefined }): Promise<Reservation> {
    return this.#change(ref, [], (_, head, now) => applyReserve(head, options.onlyIn, now, this.#settings));
  }

  /**
   * Records what was sent.
   *
   * @param ref the conversation
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @returns the entry as recorded
   */
  recordOutbound(ref: ConversationRef, input: OutboundInput & { reserved: boolean }): Promise<ConversationEntry> {
    return this.#change(ref, [], (_, head, now) => applyOutbound(head, input, now, this.#settings));
  }

  /**
   * A page of history, newest first: one range read from `before` down, entries older than
   * the retention skipped.
   *
   * @param ref the conversation
   * @param options `before` (a `seq`) and `limit`
   * @returns the page, or `null` for an unknown conversation
   */
  async history(
    ref: ConversationRef,
    options: { before?: number | undefined; limit: number },
  ): Promise<HistoryPage | null> {
    const history = [...prefix(ref), "h"];
    const range = options.before === undefined
      ? { prefix: history }
      : { prefix: history, end: [...history, options.before] };
    // The head says whether the conversation exists; read beside the page, not before it.
    const [found, listed] = await Promise.all([
      whenUnlocked(() => this.#kv.get([...prefix(ref), "head"])),
      this.#list(range, { reverse: true, limit: options.limit + 1 }),
    ]);
    if (head(found.value) === undefined) return null;
    const cutoff = retentionCutoff(this.#now(), this.#settings);
    const entries: ConversationEntry[] = [];
    for (const { value } of listed) {
      const entry = value as ConversationEntry;
      // Older than the retention: Deno KV has not removed it yet, and everything older is too.
      if (entry.at < cutoff) break;
      entries.push(entry);
    }
    const more = entries.length > options.limit;
    if (more) entries.length = Math.max(0, options.limit);
    const last = entries.at(-1);
    return { entries, before: more && last !== undefined ? last.seq : null };
  }

  /**
   * Who answers.
   *
   * @param ref the conversation
   * @returns the handoff, or `null` for an unknown conversation
   */
  async handoff(ref: ConversationRef): Promise<Handoff | null> {
    const current = await this.#head(ref);
    return current === undefined ? null : effectiveHandoff(current, this.#now(), this.#settings);
  }

  /**
   * Changes who answers.
   *
   * @param ref the conversation
   * @param change the new state, who makes the change and why
   * @returns whether it changed, and the handoff now
   */
  setHandoff(ref: ConversationRef, change: HandoffChange): Promise<HandoffResult> {
    return this.#change(ref, [], (_, head, now) => applyHandoff(head, change, now, this.#settings));
  }

  /**
   * The send window.
   *
   * @param ref the conversation
   * @returns the window, or `undefined`
   */
  async window(ref: ConversationRef): Promise<SendWindow | undefined> {
    return liveWindow((await this.#head(ref))?.window, this.#now());
  }

  /**
   * Records where a copy of an entry's media is kept: one read of the entry, one commit checked
   * on it (the entry keeps its expiry).
   *
   * @param ref the conversation
   * @param copy the entry, its media_id and the copy's key
   * @returns whether the entry was there to record it on
   */
  async recordMediaCopy(ref: ConversationRef, copy: MediaCopy): Promise<boolean> {
    const key = [...prefix(ref), "h", copy.seq];
    for (let conflicts = 0;; conflicts++) {
      const found = await whenUnlocked(() => this.#kv.get(key));
      const now = this.#now();
      const entry = found.value as ConversationEntry | null;
      const cutoff = retentionCutoff(now, this.#settings);
      const updated = entry === null || entry.at < cutoff ? undefined : applyMediaCopy(entry, copy);
      if (updated === undefined) return false;
      const expireIn = Math.max(1, Math.round(updated.at - cutoff));
      const write = this.#kv.atomic().check({ key, versionstamp: found.versionstamp }).set(key, updated, { expireIn });
      if ((await whenUnlocked(() => write.commit())).ok) return true;
      tooBusy(conflicts);
    }
  }

  /**
   * A page of the app's conversations, most recent activity first (see
   * {@link ConversationStore.list}): one reversed range read of the app's index (more when a
   * filter skips many), plus a read of the heads of conversations that moved during the walk.
   * A first page begins the walk with a commit, whose versionstamp stamps it.
   *
   * @param appId the mini program
   * @param options the filter, the page size and the cursor
   * @returns the page, and the cursor of the next
   * @throws {ValidationError} naming `state`, `limit` or `cursor`
   */
  async list(appId: string, options: ConversationListOptions = {}): Promise<ConversationPage> {
    const now = this.#now();
    const { state, limit, cursor } = checkListOptions(options, now);
    let walk: { walk: string; startedAt: number } | undefined = cursor;
    if (walk === undefined) {
      const write = this.#kv.atomic().set([WALKS, appId], { until: now + WALK_MS });
      const { versionstamp } = await whenUnlocked(() => write.commit());
      walk = { walk: versionstamp!, startedAt: now };
    }
    const found: { place: ListPlace; summary: ConversationSummary }[] = [];
    let end: DenoKvKey | undefined = cursor === undefined
      ? undefined
      : [DIRECTORY, appId, cursor.activityAt, cursor.openId];
    let passed: ListPlace | undefined;
    const batch = Math.min(500, state === "all" ? limit + 1 : 4 * (limit + 1));
    for (let scanned = 0; found.length <= limit && scanned < SCAN_BUDGET;) {
      const entries = await this.#list({ prefix: [DIRECTORY, appId], ...(end === undefined ? {} : { end }) }, {
        reverse: true,
        limit: batch,
      });
      const ghosts = await this.#moved(appId, entries.filter((e) => visibleGhost(e, walk.walk)));
      for (const entry of entries) {
        scanned += 1;
        passed = { activityAt: entry.key[2] as number, openId: entry.key[3] as string };
        const value = entry.value as PlaceValue;
        const listed = "ghost" in value
          ? visibleGhost(entry, walk.walk) ? ghosts.get(passed.openId) : undefined
          : (value.created ?? entry.versionstamp!) <= walk.walk
          ? value.listed
          : undefined;
        if (listed !== undefined && passes(listed, state, now, this.#settings)) {
          found.push({ place: passed, summary: summaryOf(listed, now, this.#settings) });
          if (found.length > limit) break;
        }
      }
      if (entries.length < batch && found.length <= limit) {
        passed = undefined; // the end of the list
        break;
      }
      end = entries.at(-1)!.key as DenoKvKey;
    }
    const more = found.length > limit;
    if (more) found.length = limit;
    const next = more ? found.at(-1)!.place : passed;
    return {
      conversations: found.map((f) => f.summary),
      nextCursor: next === undefined ? null : encodeListCursor(walk, next),
    };
  }

  /** What the list holds now of the conversations whose ghosts a walk met (purged ones left out). */
  async #moved(appId: string, ghosts: DenoKvEntryLike[]): Promise<Map<string, ListedConversation>> {
    const openIds = ghosts.map((g) => g.key[3] as string);
    const chunks: string[][] = [];
    // Deno KV reads at most 10 keys at once.
    for (let i = 0; i < openIds.length; i += 10) chunks.push(openIds.slice(i, i + 10));
    const read = await Promise.all(
      chunks.map((chunk) =>
        whenUnlocked(() => this.#kv.getMany(chunk.map((openId) => [...prefix({ appId, openId }), "head"])))
      ),
    );
    const listed = new Map<string, ListedConversation>();
    read.flat().forEach((found, i) => {
      const current = head(found.value);
      if (current !== undefined) listed.set(openIds[i]!, listedOf(openIds[i]!, current));
    });
    return listed;
  }

  /**
   * Deletes the user's conversation: its history, a batch a commit, then its head (last, with
   * the history left, in one commit checked on the head, so a push accepted meanwhile is
   * either deleted with it or comes after it); the push claims stay, without their entries.
   *
   * @param ref the conversation
   */
  async purge(ref: ConversationRef): Promise<void> {
    const headKey = [...prefix(ref), "head"];
    for (let conflicts = 0;;) {
      const [found, entries, claims, ghosts] = await Promise.all([
        whenUnlocked(() => this.#kv.get(headKey)),
        this.#list({ prefix: [...prefix(ref), "h"] }, { limit: PURGE_ENTRIES }),
        // All of them: a claim lives minutes after its push, so a user has few at once.
        this.#list({ prefix: [...prefix(ref), "claim"] }, {}),
        this.#list({ prefix: [...prefix(ref), "ghost"] }, { limit: PURGE_GHOSTS }),
      ]);
      const numbered = claims.filter((claim) => claimRow(claim.value)?.seq !== undefined);
      if (found.versionstamp === null && entries.length === 0 && numbered.length === 0 && ghosts.length === 0) return;
      const now = this.#now();
      const last = entries.length < PURGE_ENTRIES && numbered.length <= PURGE_CLAIMS && ghosts.length < PURGE_GHOSTS;
      // Only the last commit, which deletes the head, is checked on it: the batches before it
      // delete entries and strip claims whatever the head does meanwhile, so pushes that keep
      // arriving during a long purge cannot make every batch conflict.
      let write = last
        ? this.#kv.atomic().check({ key: headKey, versionstamp: found.versionstamp })
        : this.#kv.atomic();
      for (const claim of numbered.slice(0, PURGE_CLAIMS)) {
        const { value, expiresAt } = claimRow(claim.value)!;
        const key = claim.key as DenoKvKey;
        write = setClaim(write.check({ key, versionstamp: claim.versionstamp }), key, { value, expiresAt }, now);
      }
      for (const entry of entries) write = write.delete(entry.key as DenoKvKey);
      for (const ghost of ghosts) {
        write = write.delete(ghost.key as DenoKvKey).delete(placeKey(ref, ghost.key[4] as number));
      }
      if (last) {
        write = write.delete(headKey);
        const current = head(found.value);
        if (current !== undefined) write = write.delete(placeKey(ref, current.activityAt));
      }
      const { ok } = await whenUnlocked(() => write.commit());
      if (ok && last) return;
      if (!ok) tooBusy(conflicts++);
    }
  }

  async #head(ref: ConversationRef): Promise<ConversationHead | undefined> {
    return head((await whenUnlocked(() => this.#kv.get([...prefix(ref), "head"]))).value);
  }

  async #list(
    selector: { prefix: DenoKvKey; end?: DenoKvKey },
    options: { limit?: number; reverse?: boolean },
  ): Promise<DenoKvEntryLike[]> {
    return await whenUnlocked(async () => {
      const out: DenoKvEntryLike[] = [];
      for await (const entry of this.#kv.list(selector, options)) out.push(entry);
      return out;
    });
  }

  /**
   * Runs one operation: reads the head (and `extra` keys) in one read, applies `rule`, and
   * writes what it changed in one commit checked on every key read; reads again and reapplies
   * when another writer got in between.
   */
  async #change<R>(
    ref: ConversationRef,
    extra: DenoKvKey[],
    rule: (extra: (DenoKvEntryLike | undefined)[], head: ConversationHead | undefined, now: number) =>
      & Applied<R>
      & { claims?: { key: DenoKvKey; row: ClaimRow }[] },
  ): Promise<R> {
    const headKey = [...prefix(ref), "head"];
    const walkKey = [WALKS, ref.appId];
    for (let conflicts = 0;; conflicts++) {
      const [found, walking, ...rest] = await whenUnlocked(() => this.#kv.getMany([headKey, walkKey, ...extra]));
      const now = this.#now();
      const before = head(found?.value);
      const applied = rule(rest, before, now);
      const claims = applied.claims ?? [];
      if (!applied.changed && claims.length === 0) return applied.result;
      let write = this.#kv.atomic().check(
        { key: headKey, versionstamp: found?.versionstamp ?? null },
        ...extra.map((key, i) => ({ key, versionstamp: rest[i]?.versionstamp ?? null })),
      );
      if (applied.changed) {
        write = this.#place(write, ref, before, found?.versionstamp ?? null, applied.head, walking, now);
        const expireIn = Math.max(1, Math.round(this.#settings.historyDays * 86_400_000));
        for (const entry of applied.append) write = write.set([...prefix(ref), "h", entry.seq], entry, { expireIn });
      }
      for (const claim of claims) write = setClaim(write, claim.key, claim.row, now);
      if ((await whenUnlocked(() => write.commit())).ok) return applied.result;
      tooBusy(conflicts);
    }
  }

  /**
   * Writes the new head and the conversation's place in the app's list, in the commit that
   * changes it: the same place rewritten, or a new one, the old one deleted (or left as a ghost
   * while a walk may be going on; the commit is then checked on the walk key too, so a walk
   * that begins meanwhile makes it try again).
   */
  #place(
    write: DenoKvAtomicLike,
    ref: ConversationRef,
    before: StoredHead | undefined,
    headStamp: string | null,
    after: ConversationHead,
    walking: DenoKvEntryLike | undefined,
    now: number,
  ): DenoKvAtomicLike {
    const listed = listedOf(ref.openId, after);
    const { placed: _, ...fresh } = after as StoredHead;
    const key = placeKey(ref, after.activityAt);
    if (before === undefined) return write.set([...prefix(ref), "head"], fresh).set(key, { listed });
    // The versionstamp that took the current place: the head's own, unless rewritten since.
    const created = before.placed ?? headStamp!;
    if (before.activityAt === after.activityAt) {
      return write.set([...prefix(ref), "head"], { ...fresh, placed: created }).set(key, { listed, created });
    }
    const old = placeKey(ref, before.activityAt);
    const until = (walking?.value as { until?: number } | null)?.until;
    write = write.check({ key: [WALKS, ref.appId], versionstamp: walking?.versionstamp ?? null });
    write = typeof until === "number" && until > now
      ? write.set(old, { ghost: created }, { expireIn: GHOST_MS }).set(
        [...prefix(ref), "ghost", before.activityAt],
        true,
        { expireIn: GHOST_MS },
      )
      : write.delete(old);
    return write.set([...prefix(ref), "head"], fresh).set(key, { listed });
  }
}

/** A place in the app's list. */
function placeKey(ref: ConversationRef, activityAt: number): DenoKvKey {
  return [DIRECTORY, ref.appId, activityAt, ref.openId];
}

/** Whether a list entry is a ghost of a place taken at `walk` and left after it. */
function visibleGhost(entry: DenoKvEntryLike, walk: string): boolean {
  const value = entry.value as PlaceValue;
  return "ghost" in value && value.ghost <= walk && walk < entry.versionstamp!;
}

function prefix(ref: ConversationRef): DenoKvKey {
  return [ROOT, ref.appId, ref.openId];
}

/**
 * Writes a claim row. Deno KV may remove it once both the claim and the time a released claim
 * is kept have passed: until then a retry of the push finds it and appends nothing again.
 */
function setClaim(write: DenoKvAtomicLike, key: DenoKvKey, row: ClaimRow, now: number): DenoKvAtomicLike {
  const expireIn = Math.max(1, Math.ceil(row.expiresAt - now)) + RELEASED_CLAIM_MS;
  return write.set(key, row, { expireIn });
}

function claimRow(value: unknown): ClaimRow | undefined {
  const row = value as ClaimRow | null | undefined;
  return row !== null && typeof row === "object" && typeof row.expiresAt === "number" ? row : undefined;
}

function head(value: unknown): ConversationHead | undefined {
  const stored = value as ConversationHead | null | undefined;
  return stored !== null && typeof stored === "object" && typeof stored.seq === "number" ? stored : undefined;
}

function tooBusy(conflicts: number): void {
  if (conflicts >= MAX_CONFLICTS) {
    throw new Error("Cannot change the conversation: it kept changing under this operation, try again");
  }
}
