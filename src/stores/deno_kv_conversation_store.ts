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
import type {
  AcceptInput,
  AcceptResult,
  ConversationEntry,
  ConversationRef,
  ConversationStore,
  Handoff,
  HandoffChange,
  HandoffResult,
  HandoffState,
  HistoryPage,
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
 * however long the conversation is. History entries expire after `historyDays` (Deno KV
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
   * Deletes the user's conversation: its history, a batch a commit, then its head (last, with
   * the history left, in one commit checked on the head, so a push accepted meanwhile is
   * either deleted with it or comes after it); the push claims stay, without their entries.
   *
   * @param ref the conversation
   */
  async purge(ref: ConversationRef): Promise<void> {
    const headKey = [...prefix(ref), "head"];
    for (let conflicts = 0;;) {
      const [found, entries, claims] = await Promise.all([
        whenUnlocked(() => this.#kv.get(headKey)),
        this.#list({ prefix: [...prefix(ref), "h"] }, { limit: PURGE_ENTRIES }),
        // All of them: a claim lives minutes after its push, so a user has few at once.
        this.#list({ prefix: [...prefix(ref), "claim"] }, {}),
      ]);
      const numbered = claims.filter((claim) => claimRow(claim.value)?.seq !== undefined);
      if (found.versionstamp === null && entries.length === 0 && numbered.length === 0) return;
      const now = this.#now();
      let write = this.#kv.atomic().check({ key: headKey, versionstamp: found.versionstamp });
      for (const claim of numbered.slice(0, PURGE_CLAIMS)) {
        const { value, expiresAt } = claimRow(claim.value)!;
        const key = claim.key as DenoKvKey;
        write = setClaim(write.check({ key, versionstamp: claim.versionstamp }), key, { value, expiresAt }, now);
      }
      for (const entry of entries) write = write.delete(entry.key as DenoKvKey);
      const last = entries.length < PURGE_ENTRIES && numbered.length <= PURGE_CLAIMS;
      if (last) write = write.delete(headKey);
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
    for (let conflicts = 0;; conflicts++) {
      const [found, ...rest] = await whenUnlocked(() => this.#kv.getMany([headKey, ...extra]));
      const now = this.#now();
      const applied = rule(rest, head(found?.value), now);
      const claims = applied.claims ?? [];
      if (!applied.changed && claims.length === 0) return applied.result;
      let write = this.#kv.atomic().check(
        { key: headKey, versionstamp: found?.versionstamp ?? null },
        ...extra.map((key, i) => ({ key, versionstamp: rest[i]?.versionstamp ?? null })),
      );
      if (applied.changed) {
        write = write.set(headKey, applied.head);
        const expireIn = Math.max(1, Math.round(this.#settings.historyDays * 86_400_000));
        for (const entry of applied.append) write = write.set([...prefix(ref), "h", entry.seq], entry, { expireIn });
      }
      for (const claim of claims) write = setClaim(write, claim.key, claim.row, now);
      if ((await whenUnlocked(() => write.commit())).ok) return applied.result;
      tooBusy(conflicts);
    }
  }
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
