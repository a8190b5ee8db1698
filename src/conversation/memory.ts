/**
 * {@link MemoryConversationStore}: conversations in this process's memory.
 *
 * @module
 */
import type { SendWindow } from "../customer_service/send_window.ts";
import {
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
  retentionCutoff,
  settingsOf,
  settlePending,
} from "../internal/conversation_rules.ts";
import {
  after,
  byPlace,
  checkListOptions,
  encodeListCursor,
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
} from "./types.ts";

interface Kept {
  ref: ConversationRef;
  head: ConversationHead | undefined;
  claims: Map<string, ClaimRow>;
  entries: ConversationEntry[];
}

/** Options of {@link MemoryConversationStore}. */
export interface MemoryConversationOptions extends ConversationSettingsOptions {
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
}

/**
 * Conversations in memory: per process or isolate, lost on restart. The default for tests and
 * a single Node, Deno or Bun process; each operation runs in one synchronous step, so it is
 * atomic within the process.
 *
 * @example
 * ```ts
 * import { MemoryConversationStore } from "@kefu/edge";
 * const store = new MemoryConversationStore();
 * const ref = { appId: "wx1", openId: "o1" };
 * await store.accept(ref, {
 *   key: "m1",
 *   claim: "lease:1",
 *   ttlSeconds: 5,
 *   entry: { sender: "user", type: "message", msgType: "text", text: "你好" },
 *   action: { kind: "message", at: Date.now() },
 * });
 * const page = await store.history(ref, { limit: 10 });
 * console.log(page?.entries[0]?.text, (await store.window(ref))?.remaining); // "你好" 5
 * ```
 */
export class MemoryConversationStore implements ConversationStore {
  readonly #kept = new Map<string, Kept>();
  readonly #lists = new Map<string, AppList>();
  readonly #now: () => number;
  readonly #settings: ConversationSettings;

  /**
   * Creates an empty store.
   *
   * @param options the clock, the idle timeout and the history retention
   */
  constructor(options: MemoryConversationOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#settings = settingsOf(options);
  }

  /**
   * Accepts a verified push (see {@link ConversationStore.accept}).
   *
   * @param ref the conversation
   * @param input the claim and the entry
   * @returns claimed or taken, who answers and the window
   */
  accept(ref: ConversationRef, input: AcceptInput): Promise<AcceptResult> {
    const kept = this.#open(ref);
    const now = this.#now();
    const row = kept.claims.get(input.key);
    const applied = applyAccept(kept.head, row, input, now, this.#settings);
    if (applied.row !== undefined) kept.claims.set(input.key, applied.row);
    if (applied.changed) this.#write(kept, applied.head, applied.append);
    return Promise.resolve(applied.result);
  }

  /**
   * The claim on a push.
   *
   * @param ref the conversation
   * @param key the push's dedupe key
   * @returns the claim, or `null`
   */
  claim(ref: ConversationRef, key: string): Promise<string | null> {
    return Promise.resolve(liveClaim(this.#kept.get(id(ref))?.claims.get(key), this.#now()));
  }

  /**
   * Replaces a claim that still holds `expected`.
   *
   * @param ref the conversation
   * @param key the push's dedupe key
   * @param expected the claim it must hold
   * @param value the new claim, or `null` to free it
   * @param ttlSeconds how long the new claim lives
   * @returns whether it held `expected`
   */
  replaceClaim(
    ref: ConversationRef,
    key: string,
    expected: string,
    value: string | null,
    ttlSeconds: number,
  ): Promise<boolean> {
    const kept = this.#kept.get(id(ref));
    const now = this.#now();
    const row = applyReplaceClaim(kept?.claims.get(key), expected, value, ttlSeconds, now);
    if (row === undefined) return Promise.resolve(false);
    kept!.claims.set(key, row);
    const head = settlePending(kept!.head, key, value, row.expiresAt, now);
    if (head !== undefined) kept!.head = head;
    return Promise.resolve(true);
  }

  /**
   * Holds a window message for a send.
   *
   * @param ref the conversation
   * @param options `onlyIn`: the states that allow the send
   * @returns the decision
   */
  reserve(ref: ConversationRef, options: { onlyIn?: readonly HandoffState[] | undefined }): Promise<Reservation> {
    const kept = this.#open(ref);
    const applied = applyReserve(kept.head, options.onlyIn, this.#now(), this.#settings);
    if (applied.changed) this.#write(kept, applied.head, applied.append);
    return Promise.resolve(applied.result);
  }

  /**
   * Records what was sent.
   *
   * @param ref the conversation
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @returns the entry as recorded
   */
  recordOutbound(ref: ConversationRef, input: OutboundInput & { reserved: boolean }): Promise<ConversationEntry> {
    const kept = this.#open(ref);
    const applied = applyOutbound(kept.head, input, this.#now(), this.#settings);
    if (applied.changed) this.#write(kept, applied.head, applied.append);
    return Promise.resolve(applied.result);
  }

  /**
   * A page of history, newest first.
   *
   * @param ref the conversation
   * @param options `before` (a `seq`) and `limit`
   * @returns the page, or `null` for an unknown conversation
   */
  history(ref: ConversationRef, options: { before?: number | undefined; limit: number }): Promise<HistoryPage | null> {
    const kept = this.#kept.get(id(ref));
    if (kept?.head === undefined) return Promise.resolve(null);
    this.#prune(kept);
    const before = options.before ?? Number.POSITIVE_INFINITY;
    const older = kept.entries.filter((e) => e.seq < before);
    const entries = older.slice(-options.limit).reverse();
    const last = entries.at(-1);
    const more = last !== undefined && older[0] !== last;
    return Promise.resolve({ entries: structuredClone(entries), before: more ? last.seq : null });
  }

  /**
   * Who answers.
   *
   * @param ref the conversation
   * @returns the handoff, or `null` for an unknown conversation
   */
  handoff(ref: ConversationRef): Promise<Handoff | null> {
    const head = this.#kept.get(id(ref))?.head;
    return Promise.resolve(head === undefined ? null : effectiveHandoff(head, this.#now(), this.#settings));
  }

  /**
   * Changes who answers.
   *
   * @param ref the conversation
   * @param change the new state, who makes the change and why
   * @returns whether it changed, and the handoff now
   */
  setHandoff(ref: ConversationRef, change: HandoffChange): Promise<HandoffResult> {
    const kept = this.#open(ref);
    const applied = applyHandoff(kept.head, change, this.#now(), this.#settings);
    if (applied.changed) this.#write(kept, applied.head, applied.append);
    return Promise.resolve(applied.result);
  }

  /**
   * The send window.
   *
   * @param ref the conversation
   * @returns the window, or `undefined`
   */
  window(ref: ConversationRef): Promise<SendWindow | undefined> {
    return Promise.resolve(liveWindow(this.#kept.get(id(ref))?.head?.window, this.#now()));
  }

  /**
   * Records where a copy of an entry's media is kept.
   *
   * @param ref the conversation
   * @param copy the entry, its media_id and the copy's key
   * @returns whether the entry was there to record it on
   */
  recordMediaCopy(ref: ConversationRef, copy: MediaCopy): Promise<boolean> {
    const kept = this.#kept.get(id(ref));
    if (kept?.head === undefined) return Promise.resolve(false);
    this.#prune(kept);
    // Entries are appended in seq order: a binary search finds one among 100,000 at once.
    const entries = kept.entries;
    let low = 0;
    let high = entries.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (entries[mid]!.seq < copy.seq) low = mid + 1;
      else high = mid;
    }
    const updated = applyMediaCopy(entries[low], copy);
    if (updated !== undefined) entries[low] = updated;
    return Promise.resolve(updated !== undefined);
  }

  /**
   * A page of the app's conversations, most recent activity first (see {@link ConversationStore.list}).
   *
   * @param appId the mini program
   * @param options the filter, the page size and the cursor
   * @returns the page, and the cursor of the next
   * @throws {ValidationError} naming `state`, `limit` or `cursor`
   */
  list(appId: string, options: ConversationListOptions = {}): Promise<ConversationPage> {
    const now = this.#now();
    const { state, limit, cursor } = checkListOptions(options, now);
    const list = this.#list(appId);
    const walk = cursor === undefined ? { walk: list.begin(now), startedAt: now } : cursor;
    const places = list.at(Number.parseInt(walk.walk, 16)).filter((place) => after(place, cursor)).sort(byPlace);
    const found: { place: ListPlace; summary: ConversationSummary }[] = [];
    for (const place of places) {
      const head = this.#kept.get(id({ appId, openId: place.openId }))?.head;
      if (head === undefined) continue;
      const listed = listedOf(place.openId, head);
      if (passes(listed, state, now, this.#settings)) {
        found.push({ place, summary: summaryOf(listed, now, this.#settings) });
      }
      if (found.length > limit) break;
    }
    const more = found.length > limit;
    if (more) found.length = limit;
    return Promise.resolve({
      conversations: structuredClone(found.map((f) => f.summary)),
      nextCursor: more ? encodeListCursor(walk, found.at(-1)!.place) : null,
    });
  }

  /**
   * Deletes the user's conversation; the push claims stay, without their entries.
   *
   * @param ref the conversation
   */
  purge(ref: ConversationRef): Promise<void> {
    const kept = this.#kept.get(id(ref));
    if (kept !== undefined) {
      this.#list(ref.appId).move(ref.openId, undefined, this.#now());
      kept.head = undefined;
      kept.entries = [];
      for (const [key, row] of kept.claims) kept.claims.set(key, { value: row.value, expiresAt: row.expiresAt });
    }
    return Promise.resolve();
  }

  #open(ref: ConversationRef): Kept {
    const key = id(ref);
    let kept = this.#kept.get(key);
    if (kept === undefined) this.#kept.set(key, kept = { ref, head: undefined, claims: new Map(), entries: [] });
    return kept;
  }

  #list(appId: string): AppList {
    let list = this.#lists.get(appId);
    if (list === undefined) this.#lists.set(appId, list = new AppList());
    return list;
  }

  #write(kept: Kept, head: ConversationHead, append: ConversationEntry[]): void {
    kept.head = head;
    this.#list(kept.ref.appId).move(kept.ref.openId, head.activityAt, this.#now());
    kept.entries.push(...append);
    this.#prune(kept);
  }

  #prune(kept: Kept): void {
    const now = this.#now();
    const cutoff = retentionCutoff(now, this.#settings);
    if (kept.entries.length > 0 && kept.entries[0]!.at < cutoff) {
      kept.entries = kept.entries.filter((e) => e.at >= cutoff);
    }
    if (kept.claims.size > 64) {
      for (const [key, row] of kept.claims) {
        if (row.expiresAt <= now) kept.claims.delete(key);
      }
    }
  }
}

function id(ref: ConversationRef): string {
  return `${ref.appId}\u0000${ref.openId}`;
}

/** A ghost of a place a conversation left while a walk may have been going on. */
interface Ghost extends ListPlace {
  /** The tick it was taken at. */
  listedTick: number;
  /** The tick it was left at. */
  unlistedTick: number;
  /** When it was left, ms. */
  unlistedAt: number;
}

/**
 * The places of one app's conversations in its list, stamped with a counter (see
 * src/internal/conversation_list.ts): each conversation's place now, and while a walk may be
 * going on, ghosts of the places left.
 */
class AppList {
  #tick = 0;
  #walkUntil = 0;
  readonly #places = new Map<string, { activityAt: number; listedTick: number }>();
  #ghosts: Ghost[] = [];

  /** A conversation's new place (`undefined`: purged, off the list). */
  move(openId: string, activityAt: number | undefined, now: number): void {
    const current = this.#places.get(openId);
    if (activityAt !== undefined && current?.activityAt === activityAt) return;
    this.#tick += 1;
    this.#ghosts = this.#ghosts.filter((g) => g.unlistedAt >= now - WALK_MS);
    if (activityAt === undefined) {
      this.#places.delete(openId);
      this.#ghosts = this.#ghosts.filter((g) => g.openId !== openId);
      return;
    }
    if (current !== undefined && this.#walkUntil > now) {
      this.#ghosts.push({ ...current, openId, unlistedTick: this.#tick, unlistedAt: now });
    }
    this.#places.set(openId, { activityAt, listedTick: this.#tick });
  }

  /** Begins a walk: its stamp (hex), and ghosts kept while it may go on. */
  begin(now: number): string {
    this.#walkUntil = now + WALK_MS;
    return this.#tick.toString(16);
  }

  /** The places taken at `tick` and not left by then. */
  at(tick: number): ListPlace[] {
    const places: ListPlace[] = [];
    for (const [openId, { activityAt, listedTick }] of this.#places) {
      if (listedTick <= tick) places.push({ activityAt, openId });
    }
    for (const g of this.#ghosts) {
      if (g.listedTick <= tick && tick < g.unlistedTick) places.push({ activityAt: g.activityAt, openId: g.openId });
    }
    return places;
  }
}
