/**
 * The app's list of conversations, as every engine keeps it: what the list holds of a
 * conversation (its last message cut to a preview), the order (most recent activity first),
 * the `state` filter, the checks of `list`'s options and the cursor of a walk. Private to
 * kefu-edge (see README.md beside this file): the Durable Object's directory applies it too.
 *
 * A walk is read as of its first page: each engine stamps every place a conversation takes
 * in the list (a counter, or Deno KV's versionstamps), and while a walk may still be going on
 * a conversation that moves leaves a ghost of its old place, stamped when it left. A walk
 * stamped `w` lists the places that were taken at `w` and not yet left, so each conversation
 * of the walk is met exactly once however often it moves.
 *
 * @module
 */
import { ValidationError } from "../errors.ts";
import { decodeBase64, encodeBase64 } from "../runtime/crypto.ts";
import {
  CONVERSATION_FILTERS,
  type ConversationEntry,
  type ConversationFilter,
  type ConversationListOptions,
  type ConversationSummary,
  type MessagePreview,
} from "../conversation/types.ts";
import {
  type ConversationHead,
  type ConversationSettings,
  effectiveHandoff,
  liveWindow,
} from "./conversation_rules.ts";

/** How long a walk's cursors are good for, and so how long ghosts of old places are kept, ms. */
export const WALK_MS = 15 * 60_000;

/** The most characters of a text a preview shows. */
const PREVIEW_CHARS = 80;

/**
 * What the app's list keeps of one conversation (JSON; no more of its messages than a
 * preview): a summary with the window and handoff as last written (whether the window is
 * still open, and whether a takeover has lapsed, are decided when read), and when an agent
 * last wrote or took it over.
 */
export type ListedConversation = ConversationSummary & {
  /** When an agent last wrote or took it over, ms. */
  agentAt: number | null;
};

/** A place in the list: most recent activity first, then OpenIDs in reverse order. */
export interface ListPlace {
  /** The conversation's last activity, ms. */
  activityAt: number;
  /** The user. */
  openId: string;
}

/** Where a walk stands: its stamp, when it began, and the last place it passed. */
export interface ListCursor extends ListPlace {
  /** The walk's stamp (the engine's counter, or a Deno KV versionstamp). */
  walk: string;
  /** When the walk's first page was read, ms. */
  startedAt: number;
}

/** `list`'s options, checked. */
export interface CheckedListOptions {
  /** The filter. */
  state: ConversationFilter;
  /** Conversations per page. */
  limit: number;
  /** Where the walk stands; `undefined` for a first page. */
  cursor: ListCursor | undefined;
}

/**
 * An entry in words: a text's content; images, cards and links described.
 *
 * @param entry a history entry
 * @returns the words
 */
export function describeEntry(entry: ConversationEntry): string {
  switch (entry.msgType) {
    case "text":
      return entry.text ?? "";
    case "image":
      return "[图片]";
    case "miniprogrampage":
      return `[小程序卡片：${entry.title ?? ""}${entry.pagePath === undefined ? "" : `（${entry.pagePath}）`}]`;
    case "link":
      return `[链接：${entry.title ?? ""}${entry.url === undefined ? "" : ` ${entry.url}`}]`;
    default:
      return entry.text ?? `[${entry.msgType ?? "消息"}]`;
  }
}

/** The preview of a message: its words, cut to {@link PREVIEW_CHARS} characters (`…` ends a cut one). */
export function previewOf(entry: ConversationEntry): MessagePreview {
  const chars = Array.from(describeEntry(entry));
  const text = chars.length <= PREVIEW_CHARS ? chars.join("") : `${chars.slice(0, PREVIEW_CHARS - 1).join("")}…`;
  const preview: MessagePreview = { seq: entry.seq, at: entry.at, sender: entry.sender, text };
  if (entry.msgType !== undefined) preview.msgType = entry.msgType;
  return preview;
}

/** What the list keeps of a conversation, from its head. */
export function listedOf(openId: string, head: ConversationHead): ListedConversation {
  const { state, since, agent } = head.handoff;
  return {
    openId,
    lastActivityAt: head.activityAt,
    lastMessage: head.last === undefined ? null : previewOf(head.last),
    unread: head.unread,
    window: head.window ?? null,
    handoff: agent === undefined ? { state, since } : { state, since, agent },
    agentAt: head.agentAt ?? null,
  };
}

/** Who answers a listed conversation at `now`. */
export function listedHandoff(listed: ListedConversation, now: number, settings: Pick<ConversationSettings, "idleMs">) {
  const { state, since, agent } = effectiveHandoff(
    { handoff: listed.handoff, agentAt: listed.agentAt ?? undefined },
    now,
    settings,
  );
  return agent === undefined ? { state, since } : { state, since, agent };
}

/**
 * Since when a takeover counts as idle (`null` unless the state is `human`): the Durable
 * Object's directory filters by it in SQL.
 */
export function idleSince(listed: ListedConversation): number | null {
  return listed.handoff.state === "human" ? Math.max(listed.handoff.since, listed.agentAt ?? 0) : null;
}

/** A listed conversation as `list` answers it at `now`. */
export function summaryOf(
  listed: ListedConversation,
  now: number,
  settings: Pick<ConversationSettings, "idleMs">,
): ConversationSummary {
  return {
    openId: listed.openId,
    lastMessage: listed.lastMessage,
    unread: listed.unread,
    window: liveWindow(listed.window ?? undefined, now) ?? null,
    handoff: listedHandoff(listed, now, settings),
    lastActivityAt: listed.lastActivityAt,
  };
}

/** Whether a listed conversation passes the filter at `now`. */
export function passes(
  listed: ListedConversation,
  state: ConversationFilter,
  now: number,
  settings: Pick<ConversationSettings, "idleMs">,
): boolean {
  return state === "all" || listedHandoff(listed, now, settings).state === state;
}

/**
 * Orders places as the list does: most recent activity first, then OpenIDs in reverse order
 * (as a reversed scan of `[activityAt, openId]` meets them).
 */
export function byPlace(a: ListPlace, b: ListPlace): number {
  return b.activityAt - a.activityAt || (a.openId < b.openId ? 1 : a.openId > b.openId ? -1 : 0);
}

/** Whether `place` comes after the place a cursor passed (every place does, without one). */
export function after(place: ListPlace, cursor: ListPlace | undefined): boolean {
  return cursor === undefined || byPlace(cursor, place) < 0;
}

/**
 * The next page's cursor: the walk, and the place of the last conversation listed.
 *
 * @param walk the walk's stamp and start
 * @param place the last place passed
 * @returns the cursor, base64url
 */
export function encodeListCursor(walk: Pick<ListCursor, "walk" | "startedAt">, place: ListPlace): string {
  const json = JSON.stringify([1, walk.walk, walk.startedAt, place.activityAt, place.openId]);
  return encodeBase64(new TextEncoder().encode(json)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Checks `list`'s options.
 *
 * @param options as given
 * @param now the store's clock, ms (a cursor older than {@link WALK_MS} has expired)
 * @returns the options, with defaults
 * @throws {ValidationError} naming `state`, `limit` or `cursor`
 */
export function checkListOptions(options: ConversationListOptions, now: number): CheckedListOptions {
  const state = options.state ?? "all";
  if (!CONVERSATION_FILTERS.includes(state)) {
    throw new ValidationError("state", `must be one of ${CONVERSATION_FILTERS.map((s) => `"${s}"`).join(", ")}`);
  }
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new ValidationError("limit", "must be a whole number from 1 to 200");
  }
  return { state, limit, cursor: options.cursor === undefined ? undefined : decodeListCursor(options.cursor, now) };
}

function decodeListCursor(text: string, now: number): ListCursor {
  const bad = () => new ValidationError("cursor", "must be the nextCursor of a page, unchanged");
  if (text.length === 0 || text.length > 400 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  let fields: unknown;
  try {
    const base64 = text.replaceAll("-", "+").replaceAll("_", "/");
    fields = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64(base64)));
  } catch {
    throw bad();
  }
  if (!Array.isArray(fields) || fields.length !== 5 || fields[0] !== 1) throw bad();
  const [, walk, startedAt, activityAt, openId] = fields as unknown[];
  const time = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
  if (typeof walk !== "string" || !/^[0-9a-f]{1,40}$/.test(walk) || !time(startedAt) || !time(activityAt)) throw bad();
  if (typeof openId !== "string" || openId.length === 0 || openId.length > 128) throw bad();
  if (now - startedAt > WALK_MS) {
    throw new ValidationError("cursor", "has expired (a walk lasts 15 minutes): read the first page again");
  }
  return { walk, startedAt, activityAt, openId };
}

/**
 * The name of the Durable Object that keeps an app's list (a `KefuStore` object, like the
 * users' own `user:<appId>:…` ones).
 */
export function directoryObjectName(appId: string): string {
  return `dir:${appId}`;
}
