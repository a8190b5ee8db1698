/**
 * The conversation with one user of one mini program: its history (both directions, who sent
 * what, and how it went), its send window, who answers it (the bot, or a person who took
 * over), and the claims that keep each of the user's pushes handled once. A
 * {@link ConversationStore} keeps conversations and changes them only through domain
 * operations, each one atomic and one round trip on every engine.
 *
 * @module
 */
import type { SendWindow } from "../customer_service/send_window.ts";

/**
 * Who answers the conversation:
 * - `bot`: the push handler (your `onMessage`, `FORWARD_URL`, the AI bot) answers; the default;
 * - `waiting`: the bot or the user asked for a person, and none has taken it yet;
 * - `human`: a person took it over; the bot's handler is not called for the user's messages;
 * - `closed`: resolved; the user's next message reopens it as `bot`.
 */
export type HandoffState = "bot" | "waiting" | "human" | "closed";

/** The handoff states, in the order they are usually met. */
export const HANDOFF_STATES: readonly HandoffState[] = ["bot", "waiting", "human", "closed"];

/** Who wrote an entry: the user, the bot, your service through the API, a named agent, or kefu-edge itself. */
export type Sender = "user" | "bot" | "api" | "system" | `agent:${string}`;

/** One entry of a conversation's history. */
export interface ConversationEntry {
  /** Its place in the conversation: 1 for the first entry, then 2, 3, ... Pass it as `before` to page. */
  seq: number;
  /** When, ms since the epoch. */
  at: number;
  /** Who wrote it. */
  sender: Sender;
  /**
   * What it is: a `message` (either direction), an `event` from the user (entering the session,
   * a subscribe popup), `typing`, a `subscribe` message sent, or a `handoff` (a state change).
   */
  type: "message" | "event" | "typing" | "subscribe" | "handoff";
  /** The message type (`text`, `image`, `miniprogrampage`, `link`) or the event's name. */
  msgType?: string | undefined;
  /** A text's content; a link's or card's description. */
  text?: string | undefined;
  /** An image's (or card thumbnail's) media_id, valid 3 days from `at`. */
  mediaId?: string | undefined;
  /**
   * A user's media: when WeChat forgets `mediaId` (3 days after the push arrived), ms. After that
   * only a copy (`mediaKey`) can show it.
   */
  mediaExpiresAt?: number | undefined;
  /**
   * Where a copy of the media is kept (the key of an R2 object, with the worker's `KEFU_MEDIA`
   * bucket bound), once it was copied: it lives as long as the entry, past WeChat's 3 days.
   */
  mediaKey?: string | undefined;
  /** A mini-program card's or link's title. */
  title?: string | undefined;
  /** A mini-program card's page path. */
  pagePath?: string | undefined;
  /** A link's URL. */
  url?: string | undefined;
  /**
   * An outbound entry's outcome: `ok`, WeChat's errcode, or `unknown` (no answer: a timeout or
   * a network error after the request left, so it may have gone out).
   */
  outcome?: "ok" | "unknown" | number | undefined;
  /** An inbound message's delivery id (the same on WeChat's retries). */
  deliveryId?: string | undefined;
  /** A handoff entry: the state before. */
  from?: HandoffState | undefined;
  /** A handoff entry: the state after. */
  to?: HandoffState | undefined;
  /** A handoff entry: the agent who made the change, when one did. */
  agent?: string | undefined;
  /** A handoff entry: why. */
  reason?: string | undefined;
}

/** What an entry says, before the store numbers and dates it. */
export type EntryContent = Omit<ConversationEntry, "seq" | "at">;

/** Who answers the conversation now, and since when. */
export interface Handoff {
  /** The state. */
  state: HandoffState;
  /** Since when, ms. */
  since: number;
  /** The agent who has it (`human`), or who made the last change. */
  agent?: string | undefined;
  /** Why it changed last. */
  reason?: string | undefined;
}

/** The last message of a conversation, as the app's list shows it. */
export interface MessagePreview {
  /** The entry's `seq` in the conversation's history. */
  seq: number;
  /** When, ms since the epoch. */
  at: number;
  /** Who wrote it. */
  sender: Sender;
  /** The message type (`text`, `image`, `miniprogrampage`, `link`). */
  msgType?: string | undefined;
  /**
   * The first 80 characters of a text (ending in `…` when cut); an image, card or link
   * described in words. Never more of the message than that.
   */
  text: string;
}

/** A conversation in the app's list (see {@link ConversationStore.list}). */
export interface ConversationSummary {
  /** The user. */
  openId: string;
  /** The last message either way (sends WeChat refused left out); `null` before any. */
  lastMessage: MessagePreview | null;
  /** The user's messages since the last reply that went out (by the bot, an agent or your service). */
  unread: number;
  /** The send window as far as kefu-edge has seen it; `null` when none is open. */
  window: SendWindow | null;
  /** Who answers it, since when, and the agent who has it. */
  handoff: Pick<Handoff, "state" | "since" | "agent">;
  /** When anything last happened in it (a message either way, typing, a handoff), ms. */
  lastActivityAt: number;
}

/** Which conversations {@link ConversationStore.list} lists: those in one handoff state, or `all`. */
export type ConversationFilter = HandoffState | "all";

/** The filters of {@link ConversationStore.list}. */
export const CONVERSATION_FILTERS: readonly ConversationFilter[] = [...HANDOFF_STATES, "all"];

/** Options of {@link ConversationStore.list}. */
export interface ConversationListOptions {
  /** Only conversations in this state (as it is when the page is read); default `all`. */
  state?: ConversationFilter | undefined;
  /** Conversations per page, 1–200; default 50. */
  limit?: number | undefined;
  /** The `nextCursor` of the page before; leave it out for the first page. */
  cursor?: string | undefined;
}

/** A page of the app's conversations. */
export interface ConversationPage {
  /** Most recent activity first. */
  conversations: ConversationSummary[];
  /** Pass as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** A conversation's coordinates. */
export interface ConversationRef {
  /** The mini program's AppID. */
  appId: string;
  /** The user's OpenID. */
  openId: string;
}

/** A claim on one push, as the push receiver keeps it (see the receiver's delivery guarantees). */
export interface ClaimValue {
  /** The claim's value: a lease, an `enqueuing` or `queued` marker, or a done mark. */
  value: string;
  /** When it expires, ms. */
  expiresAt: number;
}

/** A verified inbound push to accept into its conversation. */
export interface AcceptInput {
  /** The push's dedupe key. */
  key: string;
  /** The claim to take: a lease, or an `enqueuing` marker. */
  claim: string;
  /** How long the claim lives, in seconds. */
  ttlSeconds: number;
  /** The entry to append, once per push (WeChat's retries append nothing). */
  entry: EntryContent;
  /** The user action it counts as for the send window, and when it happened (ms). */
  action?: { kind: SendWindow["kind"]; at: number } | undefined;
  /**
   * Live claims this one may take the place of, by how their value starts (a queue's consumer
   * takes a push from its `queued` or `enqueuing` marker): accepting over one is `claimed`,
   * with the claim replaced in `current`.
   */
  takeOver?: readonly string[] | undefined;
  /**
   * The push's place among the user's messages, to hand them over in the order the user sent
   * them: `key` sorts as they were sent (`CreateTime`, then `MsgId`). The push is kept among
   * the conversation's pending pushes until its claim is done; with `wait`, accepting it while
   * an earlier one is still pending (and not more than `graceMs` past when it was due to move
   * on) claims nothing and is `waiting`.
   */
  order?: { key: string; wait: boolean; graceMs: number } | undefined;
}

/** What {@link ConversationStore.accept} found and did. */
export interface AcceptResult {
  /**
   * `claimed`: this delivery holds the push now; `taken`: another delivery holds it, or it was
   * handled or queued already (`current` says which); `waiting`: an earlier push of the user
   * is still pending (see `AcceptInput.order`): nothing was claimed, try again at `retryAt`.
   */
  outcome: "claimed" | "taken" | "waiting";
  /** `waiting`: when the earliest push it waits for is due to move on, ms. */
  retryAt?: number | undefined;
  /** `claimed` with `order`: how many earlier pushes of the user, still pending, it went ahead of. */
  passed?: number | undefined;
  /**
   * The claim found: when `taken`, the one that holds the push; when `claimed` over a claim
   * `takeOver` allowed, the one replaced.
   */
  current?: string | undefined;
  /** Who answers the conversation now (after the push reopened a closed one). */
  handoff: Handoff;
  /** The send window now. */
  window: SendWindow | undefined;
  /** The entry this call appended the push as; absent when it appended nothing (a retry, a taken claim). */
  seq?: number | undefined;
}

/** A copy of an entry's media, kept outside WeChat (see {@link ConversationStore.recordMediaCopy}). */
export interface MediaCopy {
  /** The entry. */
  seq: number;
  /** The entry's `mediaId`: the copy is recorded only on the entry that still carries it. */
  mediaId: string;
  /** Where the copy is (an R2 object key). */
  key: string;
}

/** An outbound message, typing or subscribe message to record. */
export interface OutboundInput {
  /** What was sent, and by whom. */
  entry: EntryContent;
  /** Whether it uses a message of the send window (a customer-service message that went out). */
  spend: boolean;
  /**
   * Refuse it unless the conversation is in one of these states (a bot reply:
   * `["bot"]`, so that nothing the bot sends reaches the user after a person took over).
   */
  onlyIn?: readonly HandoffState[] | undefined;
}

/** What {@link ConversationStore.reserve} decided before a send. */
export interface Reservation {
  /**
   * `ok`: go ahead (a window message is held for it when the window is known); `closed`: the
   * window is known closed or spent; `state`: the conversation is not in a state that allows it;
   * `deleted`: a send allowed only in some states (a bot's) found no conversation (deleted since).
   */
  decision: "ok" | "closed" | "state" | "deleted";
  /** The send window (after the reservation). */
  window: SendWindow | undefined;
  /** Who answers the conversation. */
  handoff: Handoff;
}

/** A handoff change. */
export interface HandoffChange {
  /** The new state. */
  state: HandoffState;
  /** Who makes it: an agent's name, `bot`, `user`, `api` or `system`. */
  by: Sender;
  /** Why, in a few words. */
  reason?: string | undefined;
  /** Only if the state is one of these now (an agent taking over only what no one has). */
  from?: readonly HandoffState[] | undefined;
}

/** What {@link ConversationStore.setHandoff} did. */
export interface HandoffResult {
  /** Whether the state changed (`false`: it was not in `from`, or already the state asked for). */
  changed: boolean;
  /** The handoff now. */
  handoff: Handoff;
}

/** A page of history. */
export interface HistoryPage {
  /** Newest first. */
  entries: ConversationEntry[];
  /** Pass as `before` for the next (older) page; `null` on the last page. */
  before: number | null;
}

/**
 * Keeps conversations. Every operation is atomic: engines run each one as one transaction, in
 * one round trip (a Durable Object call, one Deno KV commit).
 */
export interface ConversationStore {
  /**
   * Accepts a verified push into its conversation: claims it, opens or refreshes the send
   * window, appends it to the history (once, however often WeChat retries it), reopens a closed
   * conversation and lets a stale takeover go back to the bot; returns the outcome, the window
   * and who answers.
   */
  accept(ref: ConversationRef, input: AcceptInput): Promise<AcceptResult>;
  /** The claim on a push, or `null` (none, or expired). */
  claim(ref: ConversationRef, key: string): Promise<string | null>;
  /**
   * Replaces a push's claim that still holds `expected` with `value` (`null` frees it): renews
   * a lease, marks the push done or queued, releases it after a failure.
   */
  replaceClaim(
    ref: ConversationRef,
    key: string,
    expected: string,
    value: string | null,
    ttlSeconds: number,
  ): Promise<boolean>;
  /** Holds a window message for a send about to be made (and checks the handoff state). */
  reserve(ref: ConversationRef, options: { onlyIn?: readonly HandoffState[] | undefined }): Promise<Reservation>;
  /**
   * Records what was sent, with its outcome; a successful send spends the window, a 45015 or
   * 45047 closes it, a failed one gives its held message back.
   */
  recordOutbound(ref: ConversationRef, input: OutboundInput & { reserved: boolean }): Promise<ConversationEntry>;
  /** History, newest first; `null` for a conversation that does not exist (never seen, or purged). */
  history(ref: ConversationRef, options: { before?: number | undefined; limit: number }): Promise<HistoryPage | null>;
  /** Who answers; `null` for a conversation that does not exist. */
  handoff(ref: ConversationRef): Promise<Handoff | null>;
  /** Changes who answers, recording the change in the history. */
  setHandoff(ref: ConversationRef, change: HandoffChange): Promise<HandoffResult>;
  /** The send window; `undefined` when none is known. */
  window(ref: ConversationRef): Promise<SendWindow | undefined>;
  /**
   * Records where a copy of an entry's media is kept (its `mediaKey`): `false` when there is no
   * such entry any more (purged, past retention) or it carries another media_id.
   */
  recordMediaCopy(ref: ConversationRef, copy: MediaCopy): Promise<boolean>;
  /**
   * Deletes everything of the user: history, window, handoff, and the content of claims (what
   * exactly-once needs stays: the push keys, with no content), and takes the user off the
   * app's list. Idempotent.
   */
  purge(ref: ConversationRef): Promise<void>;
  /**
   * The app's conversations, most recent activity first, a page at a time.
   *
   * A walk (a first page, and the pages its cursors lead to) lists the conversations as they
   * stood when its first page was read: each one that existed then and still exists is listed
   * exactly once, at the place its last activity gave it then, with what it holds when its
   * page is read (last message, unread count, window, handoff). New activity during the walk
   * neither moves a conversation within it nor lists it twice; conversations that begin during
   * the walk are not in it (read the first page again for them), purged ones leave it. A
   * cursor is good for 15 minutes after its walk began. `state` is applied when each page is
   * read. A page may hold fewer than `limit` conversations while `nextCursor` is not `null`.
   *
   * @throws {ValidationError} naming `state`, `limit` or `cursor` (malformed, or expired)
   */
  list(appId: string, options?: ConversationListOptions): Promise<ConversationPage>;
}
