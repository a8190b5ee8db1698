/**
 * The conversation's rules, as pure functions over its state: what accepting a push, holding a
 * window message, recording a send and changing hands do. Every engine (memory, Deno KV,
 * Durable Objects) loads the state, applies one of these and writes the result in one
 * transaction, so the three behave alike by construction. Private to kefu-edge (see README.md
 * beside this file): the Durable Object class in `worker/` applies them too.
 *
 * @module
 */
import { openWindow, type SendWindow, WINDOW_GRANTS } from "../customer_service/send_window.ts";
import type {
  AcceptInput,
  AcceptResult,
  ConversationEntry,
  EntryContent,
  Handoff,
  HandoffChange,
  HandoffResult,
  HandoffState,
  MediaCopy,
  OutboundInput,
  Reservation,
} from "../conversation/types.ts";

/** A conversation's own state (its history entries are kept beside it, by `seq`). */
export interface ConversationHead {
  /** Who answers. */
  handoff: Handoff;
  /** The send window, as far as kefu-edge has seen it. */
  window: SendWindow | undefined;
  /** The last `seq` given out. */
  seq: number;
  /** The user's messages since the last reply (by the bot, an agent or your service). */
  unread: number;
  /** When anything last happened, ms. */
  activityAt: number;
  /** When an agent last wrote or took it over, ms: the idle timeout counts from there. */
  agentAt: number | undefined;
  /** The last message either way (not a send WeChat refused), for the conversation list. */
  last: ConversationEntry | undefined;
  /** The user's messages accepted and not yet handled, for their order (absent: none). */
  pending?: PendingPush[] | undefined;
}

/** A user's message accepted and not yet handled (see `AcceptInput.order`). */
export interface PendingPush {
  /** Its dedupe key. */
  key: string;
  /** Its place in the order the user sent (sorts as sent). */
  order: string;
  /** When it is due to move on (its claim runs out, its queue retry comes), ms. */
  due: number;
  /** Whether it is itself waiting for an earlier one (it moves when that one does). */
  waiting?: boolean | undefined;
}

/** A push's claim as a conversation keeps it. */
export interface ClaimRow {
  /** The claim, or `null` once released (the push was appended already). */
  value: string | null;
  /** When the claim expires, ms (a released row lives as long as a done mark would). */
  expiresAt: number;
  /** The entry the push was appended as (absent once purged). */
  seq?: number | undefined;
}

/** Settings every engine applies the same way. */
export interface ConversationSettings {
  /** A takeover with no agent reply for this long goes back to the bot (ms); default 30 minutes. */
  idleMs: number;
  /** History older than this many days is deleted; default 30. */
  historyDays: number;
}

/** {@link ConversationSettings} as options: each may be left out (or `undefined`) for its default. */
export type ConversationSettingsOptions = { [K in keyof ConversationSettings]?: ConversationSettings[K] | undefined };

/** Defaults of {@link ConversationSettings}. */
export const DEFAULT_CONVERSATION_SETTINGS: ConversationSettings = { idleMs: 30 * 60_000, historyDays: 30 };

/** How long WeChat keeps a temporary media file (a user's image, an upload): 3 days. */
export const MEDIA_LIFETIME_MS = 3 * 24 * 3600 * 1000;

/** A released push is due again when WeChat's next try comes (about 5 s later). */
const RELEASED_DUE_MS = 5000;
/** A pending push this far past its due is forgotten (passed over long before). */
const PENDING_FORGET_MS = 10 * 60_000;
/** At most this many pending pushes are kept (the latest by order). */
const PENDING_MAX = 64;

/** How long a released claim row is kept, so WeChat's retries of a push append nothing again. */
export const RELEASED_CLAIM_MS = 15 * 60_000;

/** A new conversation's state. */
export function newHead(now: number): ConversationHead {
  return {
    handoff: { state: "bot", since: now },
    window: undefined,
    seq: 0,
    unread: 0,
    activityAt: now,
    agentAt: undefined,
    last: undefined,
  };
}

/** The handoff in force at `now`: a takeover left idle past `idleMs` is the bot's again. */
export function effectiveHandoff(
  head: Pick<ConversationHead, "handoff" | "agentAt">,
  now: number,
  settings: Pick<ConversationSettings, "idleMs">,
): Handoff {
  const { handoff } = head;
  if (handoff.state !== "human") return handoff;
  const idleSince = Math.max(handoff.since, head.agentAt ?? 0);
  return now - idleSince > settings.idleMs
    ? { state: "bot", since: idleSince + settings.idleMs, reason: "idle" }
    : handoff;
}

/** The window in force at `now` (`undefined` once it has closed by time). */
export function liveWindow(window: SendWindow | undefined, now: number): SendWindow | undefined {
  return window !== undefined && window.expiresAt > now ? window : undefined;
}

/** What a change of state to the conversation produced. */
export interface Applied<R> {
  /** The conversation's new state. */
  head: ConversationHead;
  /** Entries to append, numbered and dated. */
  append: ConversationEntry[];
  /** The result for the caller. */
  result: R;
  /** Whether the head changed (engines write nothing when it did not). */
  changed: boolean;
}

function entry(head: ConversationHead, content: EntryContent, at: number): ConversationEntry {
  head.seq += 1;
  const numbered: ConversationEntry = { seq: head.seq, at, ...withoutUndefined(content) };
  // A send WeChat refused never reached the user: the list shows the message before it.
  if (content.type === "message" && typeof content.outcome !== "number") head.last = numbered;
  head.activityAt = Math.max(head.activityAt, at);
  return numbered;
}

function handoffEntry(
  head: ConversationHead,
  from: HandoffState,
  to: HandoffState,
  by: ConversationEntry["sender"],
  reason: string | undefined,
  at: number,
): ConversationEntry {
  const agent = by.startsWith("agent:") ? by.slice("agent:".length) : undefined;
  return entry(head, { sender: by, type: "handoff", from, to, agent, reason }, at);
}

/** Settles a lapsed takeover into the state before anything else happens (recorded once, when it is noticed). */
function settleIdle(head: ConversationHead, now: number, settings: ConversationSettings, append: ConversationEntry[]) {
  const effective = effectiveHandoff(head, now, settings);
  if (effective.state === head.handoff.state) return;
  append.push(handoffEntry(head, head.handoff.state, effective.state, "system", "idle", now));
  head.handoff = { state: effective.state, since: now, reason: "idle" };
}

/**
 * Accepting a push: a claim this delivery takes (in the place of a free one, or of a live one
 * `takeOver` names), or the one it finds; the first time, the entry appended, the window
 * opened, a closed conversation reopened as `bot`.
 *
 * @param head the conversation (`undefined`: a new one)
 * @param row the push's claim row, if any
 * @param input what to claim and append
 * @param now the store's clock, ms
 * @param settings idle timeout
 * @returns the new state, the claim row to write (`undefined`: unchanged) and the result
 */
export function applyAccept(
  head: ConversationHead | undefined,
  row: ClaimRow | undefined,
  input: AcceptInput,
  now: number,
  settings: ConversationSettings,
): Applied<AcceptResult> & { row: ClaimRow | undefined } {
  const next = head === undefined ? newHead(now) : structuredClone(head);
  const append: ConversationEntry[] = [];
  const live = row !== undefined && row.value !== null && row.expiresAt > now;
  const replaced = live && input.takeOver?.some((start) => row.value!.startsWith(start)) === true
    ? row.value!
    : undefined;
  if (live && replaced === undefined) {
    settleIdle(next, now, settings, append);
    const result = {
      outcome: "taken" as const,
      current: row.value!,
      handoff: next.handoff,
      window: liveWindow(next.window, now),
    };
    return { head: next, append, row: undefined, result, changed: head !== undefined && append.length > 0 };
  }
  const claimed: ClaimRow = { value: input.claim, expiresAt: now + input.ttlSeconds * 1000, seq: row?.seq };
  // Appended and counted once per push: a push whose earlier claim was released or expired
  // (a failed or dead handler) was appended then.
  const first = row === undefined;
  settleIdle(next, now, settings, append);
  const order = input.order === undefined ? undefined : inOrder(next, input.key, input.order, now);
  if (order?.retryAt !== undefined) {
    // Waiting for an earlier push: nothing claimed. The first time, the push is kept (its row
    // released, so its next try claims it without a second entry) and counted as pending.
    setPending(next, { key: input.key, order: input.order!.key, due: order.retryAt, waiting: true });
    claimed.value = null;
    claimed.expiresAt = now + RELEASED_CLAIM_MS;
  } else if (input.order !== undefined) {
    setPending(next, { key: input.key, order: input.order.key, due: claimed.expiresAt });
  }
  if (first) {
    if (next.handoff.state === "closed" && input.entry.sender === "user" && input.entry.type === "message") {
      append.push(handoffEntry(next, "closed", "bot", "user", "the user wrote again", now));
      next.handoff = { state: "bot", since: now, reason: "the user wrote again" };
    }
    // A user's media dies with WeChat's copy, 3 days after it arrived, unless it is copied.
    const media = input.entry.sender === "user" && input.entry.mediaId !== undefined
      ? { mediaExpiresAt: now + MEDIA_LIFETIME_MS }
      : {};
    const added = entry(next, { ...input.entry, ...media }, now);
    append.push(added);
    claimed.seq = added.seq;
    if (input.entry.type === "message" && input.entry.sender === "user") next.unread += 1;
    if (input.action !== undefined) {
      // The user's own time, never later than now (a CreateTime ahead would keep a window
      // open past WeChat's).
      const at = Math.min(input.action.at, now);
      const opened = openWindow(liveWindow(next.window, at), input.action.kind, at);
      if (opened.expiresAt > now) next.window = opened;
    }
  }
  const window = liveWindow(next.window, now);
  // The entry this push appended, for a copy of its media to be recorded on later.
  const seq = first ? { seq: claimed.seq } : {};
  if (order?.retryAt !== undefined) {
    const result: AcceptResult = { outcome: "waiting", retryAt: order.retryAt, handoff: next.handoff, window, ...seq };
    return { head: next, append, row: first ? claimed : undefined, result, changed: true };
  }
  const result: AcceptResult = { outcome: "claimed", handoff: next.handoff, window, ...seq };
  if (replaced !== undefined) result.current = replaced;
  if (order !== undefined && order.passed > 0) result.passed = order.passed;
  // A push taken over from a holder that died changes only its claim (and a lapsed takeover).
  const changed = first || append.length > 0 || head === undefined || input.order !== undefined;
  return { head: next, append, row: claimed, result, changed };
}

/**
 * Where a push stands among the user's pending pushes: `retryAt` when it is to wait (`wait`,
 * and an earlier one is pending and not more than `graceMs` past due: the earliest due time
 * among those), and how many earlier ones it goes ahead of otherwise.
 */
function inOrder(
  head: ConversationHead,
  key: string,
  order: NonNullable<AcceptInput["order"]>,
  now: number,
): { retryAt?: number; passed: number } {
  head.pending = (head.pending ?? []).filter((p) => now <= p.due + PENDING_FORGET_MS);
  const earlier = head.pending.filter((p) => p.key !== key && p.order < order.key);
  const blocking = earlier.filter((p) => now <= p.due + order.graceMs);
  if (!order.wait || blocking.length === 0) return { passed: earlier.length };
  // Back when the earliest of those that move on their own is due (the waiting ones follow it).
  const moving = blocking.filter((p) => p.waiting !== true);
  const due = Math.min(...(moving.length > 0 ? moving : blocking).map((p) => p.due));
  return { retryAt: Math.max(now, due), passed: 0 };
}

/** Adds or updates a pending push, keeping the list bounded (the latest by order). */
function setPending(head: ConversationHead, push: PendingPush): void {
  const others = (head.pending ?? []).filter((p) => p.key !== push.key);
  others.push(push);
  others.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  head.pending = others.slice(-PENDING_MAX);
}

/**
 * A pending push after its claim was replaced: due when its new claim says it moves on, or gone
 * once handled. The claim values are the push receiver's: a `lease` or `enqueuing` claim is due
 * when it runs out; a `queued` marker when its queue retry comes (its fourth field, when known)
 * or now (waiting for its first delivery); a released claim when WeChat's next try comes; a
 * `done` or `dead` one is settled.
 *
 * @param head the conversation
 * @param key the push's dedupe key
 * @param value its new claim (`null`: released)
 * @param expiresAt when the new claim expires, ms
 * @param now the store's clock, ms
 * @returns the new head, or `undefined` when the push is not pending (nothing to write)
 */
export function settlePending(
  head: ConversationHead | undefined,
  key: string,
  value: string | null,
  expiresAt: number,
  now: number,
): ConversationHead | undefined {
  const found = head?.pending?.find((p) => p.key === key);
  if (head === undefined || found === undefined) return undefined;
  const next = structuredClone(head);
  const kind = value === null ? "released" : value.slice(0, value.indexOf(":"));
  const { order } = found;
  if (kind === "lease" || kind === "enqueuing") setPending(next, { key, order, due: expiresAt });
  else if (kind === "released") setPending(next, { key, order, due: now + RELEASED_DUE_MS });
  else if (kind === "queued") {
    const retryAt = Number(value!.split(":")[3]);
    setPending(next, { key, order, due: Number.isFinite(retryAt) && retryAt > now ? retryAt : now });
  } else next.pending = next.pending!.filter((p) => p.key !== key);
  if (next.pending!.length === 0) delete next.pending;
  return next;
}

/**
 * Holding a window message for a send: refused when the conversation is not in `onlyIn`, or
 * the window is known closed or spent.
 */
export function applyReserve(
  head: ConversationHead | undefined,
  onlyIn: readonly HandoffState[] | undefined,
  now: number,
  settings: ConversationSettings,
): Applied<Reservation> {
  const next = head === undefined ? newHead(now) : structuredClone(head);
  const append: ConversationEntry[] = [];
  settleIdle(next, now, settings, append);
  const window = liveWindow(next.window, now);
  const decide = (decision: Reservation["decision"], shown: SendWindow | undefined, changed: boolean) => ({
    head: next,
    append,
    result: { decision, window: shown, handoff: next.handoff },
    changed,
  });
  const settled = head !== undefined && append.length > 0;
  // A bot answers a conversation; none means it was deleted (the user revoked) since.
  if (onlyIn !== undefined && head === undefined) return decide("deleted", undefined, settled);
  if (onlyIn !== undefined && !onlyIn.includes(next.handoff.state)) return decide("state", window, settled);
  // Nothing known (never seen, or forgotten): the send goes ahead and WeChat decides.
  if (window === undefined && next.window === undefined) return decide("ok", undefined, settled);
  if (window === undefined || window.remaining <= 0) return decide("closed", window, settled);
  next.window = { ...window, remaining: window.remaining - 1 };
  return decide("ok", next.window, true);
}

/** WeChat's answers that say the window is closed (45015) or its messages are used up (45047). */
const CLOSES_WINDOW = new Set([45015, 45047]);

/** Recording what was sent (or tried): the entry, and what it did to the window. */
export function applyOutbound(
  head: ConversationHead | undefined,
  input: OutboundInput & { reserved: boolean },
  now: number,
  settings: ConversationSettings,
): Applied<ConversationEntry> {
  const next = head === undefined ? newHead(now) : structuredClone(head);
  const append: ConversationEntry[] = [];
  settleIdle(next, now, settings, append);
  const added = entry(next, input.entry, now);
  // The bot never starts a conversation: one deleted while its handler ran stays deleted.
  if (head === undefined && input.entry.sender === "bot") return { head: next, append, result: added, changed: false };
  append.push(added);
  const window = liveWindow(next.window, now);
  const outcome = input.entry.outcome;
  if (typeof outcome === "number" && CLOSES_WINDOW.has(outcome)) {
    next.window = { kind: window?.kind ?? "message", remaining: 0, expiresAt: window?.expiresAt ?? now + 60_000 };
  } else if (window !== undefined && input.spend) {
    const limit = WINDOW_GRANTS[window.kind].count;
    // Spent when it went out (or may have: `unknown`); given back only when WeChat said no.
    const sent = outcome === "ok" || outcome === "unknown";
    if (sent && !input.reserved) next.window = { ...window, remaining: Math.max(0, window.remaining - 1) };
    if (typeof outcome === "number" && input.reserved) {
      next.window = { ...window, remaining: Math.min(limit, window.remaining + 1) };
    }
  }
  const sender = input.entry.sender;
  if (outcome === "ok" && input.entry.type === "message" && sender !== "user" && sender !== "system") {
    next.unread = 0;
  }
  if (sender.startsWith("agent:")) next.agentAt = now;
  return { head: next, append, result: added, changed: true };
}

/** Changing who answers: recorded in the history; refused (unchanged) when not `from` one of the given states. */
export function applyHandoff(
  head: ConversationHead | undefined,
  change: HandoffChange,
  now: number,
  settings: ConversationSettings,
): Applied<HandoffResult> {
  const next = head === undefined ? newHead(now) : structuredClone(head);
  const append: ConversationEntry[] = [];
  settleIdle(next, now, settings, append);
  const current = next.handoff.state;
  const agent = change.by.startsWith("agent:") ? change.by.slice("agent:".length) : undefined;
  const allowed = change.from === undefined || change.from.includes(current);
  // Taking over what the same agent holds already changes nothing.
  if (!allowed || (current === change.state && (change.state !== "human" || next.handoff.agent === agent))) {
    const changed = head !== undefined && append.length > 0;
    return { head: next, append, result: { changed: false, handoff: next.handoff }, changed };
  }
  append.push(handoffEntry(next, current, change.state, change.by, change.reason, now));
  next.handoff = withoutUndefined({ state: change.state, since: now, agent, reason: change.reason });
  if (change.state === "human") next.agentAt = now;
  return { head: next, append, result: { changed: true, handoff: next.handoff }, changed: true };
}

/**
 * Recording a copy of an entry's media: the entry with its `mediaKey`, or `undefined` when the
 * entry is gone or carries another media_id (nothing to write).
 *
 * @param found the entry at `copy.seq`, if any
 * @param copy the entry, its media_id and the copy's key
 * @returns the entry to write back, or `undefined`
 */
export function applyMediaCopy(found: ConversationEntry | undefined, copy: MediaCopy): ConversationEntry | undefined {
  if (found === undefined || found.seq !== copy.seq || found.mediaId !== copy.mediaId) return undefined;
  return { ...found, mediaKey: copy.key };
}

/** The oldest time a history entry may have at `now` and still be kept. */
export function retentionCutoff(now: number, settings: ConversationSettings): number {
  return now - settings.historyDays * 24 * 3600 * 1000;
}

/** A copy of `value` without its `undefined` fields (stored JSON stays small and equal across engines). */
export function withoutUndefined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) if (field !== undefined) out[key] = field;
  return out as T;
}

/** The settings given, with the defaults for those left out. */
export function settingsOf(options: ConversationSettingsOptions): ConversationSettings {
  return {
    idleMs: options.idleMs ?? DEFAULT_CONVERSATION_SETTINGS.idleMs,
    historyDays: options.historyDays ?? DEFAULT_CONVERSATION_SETTINGS.historyDays,
  };
}

/** A claim row's claim while it lives, else `null` (none, released or expired). */
export function liveClaim(row: ClaimRow | undefined, now: number): string | null {
  return row !== undefined && row.value !== null && row.expiresAt > now ? row.value : null;
}

/**
 * Replacing a push's claim that still holds `expected` with `value` (`null` releases it): the
 * row to write, or `undefined` when the claim is not `expected` (any more).
 */
export function applyReplaceClaim(
  row: ClaimRow | undefined,
  expected: string,
  value: string | null,
  ttlSeconds: number,
  now: number,
): ClaimRow | undefined {
  if (row === undefined || liveClaim(row, now) !== expected) return undefined;
  const expiresAt = value === null ? now + RELEASED_CLAIM_MS : now + ttlSeconds * 1000;
  return { value, expiresAt, seq: row.seq };
}
