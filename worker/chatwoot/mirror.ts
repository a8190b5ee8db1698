/**
 * WeChat → Chatwoot: a user's conversation, mirrored from its history in the order it happened.
 * One run at a time per user (a lock in the user's Durable Object), from where the last run
 * stopped (a cursor: the `seq` of the last entry mirrored), so each entry reaches Chatwoot once
 * and in order, whatever triggered the run and however often: the user's messages as incoming
 * messages, their images as attachments, cards as text, their session and subscribe events as
 * private notes; what the bot and your service sent as outgoing messages (the bot's marked 🤖);
 * handoff changes made in kefu-edge as the conversation's status in Chatwoot.
 *
 * @module
 */
import {
  chatTurns,
  type ConversationEntry,
  type ConversationRef,
  type ConversationStore,
  type HandoffState,
  WeChatApiError,
} from "../../mod.ts";
import type { AppLogger } from "../types.ts";
import { type ChatwootClient, ChatwootError, type NewMessage } from "./client.ts";
import type { BridgeState, UserLink } from "./state.ts";

/** The reason every handoff change the bridge makes from Chatwoot starts with: such changes are not sent back. */
export const FROM_CHATWOOT = "Chatwoot: ";
/** What the bot's mirrored messages start with, so agents tell them from their own. */
export const BOT_MARK = "🤖 ";
/** How many entries a user's first run mirrors (the conversation so far, for context). */
const BACKFILL = 20;
const PAGE = 200;
const MAX_PAGES = 50;

/** What {@link ChatwootMirror} needs. */
export interface MirrorSettings {
  /** The mini program. */
  appId: string;
  /** The API inbox (`CHATWOOT_INBOX_ID`). */
  inboxId: number;
  /** Chatwoot's API. */
  client: ChatwootClient;
  /** The conversations (history, handoff). */
  conversations: ConversationStore;
  /** The bridge's memory. */
  state: BridgeState;
  /** An image's bytes from WeChat (`getTempMedia`). */
  media(mediaId: string): Promise<Response>;
  /** The largest image mirrored, in bytes. */
  maxMediaBytes: number;
  /** Receives one line per entry skipped for good; never message content. */
  logger: AppLogger;
}

/** What one run did. */
export type SyncOutcome = { busy: true } | { busy: false; mirrored: number };

interface Run {
  openId: string;
  ref: ConversationRef;
  token: string;
  saved: UserLink | null;
  handoff?: HandoffState | undefined;
}

/**
 * Mirrors users' conversations into Chatwoot.
 *
 * @example
 * ```ts ignore
 * const mirror = new ChatwootMirror({ appId, inboxId: 7, client, conversations, state, media, maxMediaBytes, logger });
 * await mirror.sync("o9AgO5Kd5ggOC-bXrbNODIiE3bGY"); // { busy: false, mirrored: 1 }
 * ```
 */
export class ChatwootMirror {
  readonly #s: MirrorSettings;

  /** @param settings the mini program, inbox, Chatwoot client, stores and media source */
  constructor(settings: MirrorSettings) {
    this.#s = settings;
  }

  /**
   * Mirrors what the user's history holds beyond the last run. Rejects when Chatwoot fails (the
   * entries from the failed one on wait for the next run, in order); `busy` when another run
   * holds the user (it mirrors what this one would have, unless it ends first: run again).
   */
  async sync(openId: string): Promise<SyncOutcome> {
    const token = await this.#s.state.lock(openId);
    if (token === undefined) return { busy: true };
    try {
      return {
        busy: false,
        mirrored: await this.#run({ openId, ref: { appId: this.#s.appId, openId }, token, saved: null }),
      };
    } finally {
      await this.#s.state.unlock(openId, token).catch(() => {});
    }
  }

  /**
   * Deletes the user's contact in Chatwoot (with their conversations) and forgets them: what
   * WeChat's deletion events and `DELETE /api/users/:openId` ask for.
   */
  async forget(openId: string): Promise<void> {
    const link = await this.#s.state.link(openId);
    const contactId = link?.contactId ?? (await this.#findContact(openId))?.id;
    if (contactId !== undefined) {
      try {
        await this.#s.client.deleteContact(contactId);
      } catch (err) {
        if (!(err instanceof ChatwootError && err.status === 404)) throw err;
      }
    }
    await this.#s.state.forget(openId, link);
  }

  async #run(run: Run): Promise<number> {
    run.saved = await this.#s.state.link(run.openId);
    const entries = await this.#pending(run.ref, run.saved?.cursor);
    if (entries === null || entries.length === 0) return 0;
    let link: UserLink = run.saved ?? { cursor: entries[0]!.seq - 1 };
    let mirrored = 0;
    for (const entry of entries) {
      if (entry.seq <= link.cursor) continue;
      link = { ...await this.#mirrorEntry(run, link, entry), cursor: entry.seq, inflight: undefined };
      await this.#save(run, link);
      mirrored++;
      // Lost the lock (a run longer than its minute): the run that took it goes on from here.
      if (!await this.#s.state.renew(run.openId, run.token)) break;
    }
    return mirrored;
  }

  /** The entries after `cursor`, oldest first; `null` when the user has no conversation (never, or deleted). */
  async #pending(ref: ConversationRef, cursor: number | undefined): Promise<ConversationEntry[] | null> {
    const found: ConversationEntry[] = [];
    let before: number | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const got = await this.#s.conversations.history(ref, { before, limit: cursor === undefined ? BACKFILL : PAGE });
      if (got === null) return page === 0 ? null : found.reverse();
      // A history that starts again below the cursor was deleted and begun anew: all of it is new.
      if (page === 0 && cursor !== undefined && (got.entries[0]?.seq ?? 0) < cursor) cursor = 0;
      let reached = cursor === undefined;
      for (const entry of got.entries) {
        if (cursor !== undefined && entry.seq <= cursor) {
          reached = true;
          break;
        }
        found.push(entry);
      }
      if (reached || got.before === null) break;
      before = got.before;
    }
    return found.reverse();
  }

  async #mirrorEntry(run: Run, link: UserLink, entry: ConversationEntry): Promise<UserLink> {
    try {
      if (entry.type === "handoff") return await this.#reflect(run, link, entry);
      const post = planOf(entry);
      return post === undefined ? link : await this.#post(run, link, entry, post);
    } catch (err) {
      // A refusal of this one entry (422, 404...) would stop the user's mirroring for good:
      // it is skipped, logged. No answer, 429, 5xx and a refused token stop the run instead, and
      // the next run starts again from this entry.
      if (!(err instanceof ChatwootError) || err.retryable || err.status === 401 || err.status === 403) throw err;
      this.#s.logger.warn(JSON.stringify({
        event: "kefu-edge.chatwoot_entry_skipped",
        seq: entry.seq,
        type: entry.type,
        operation: err.operation,
        status: err.status,
      }));
      return link;
    }
  }

  /** A handoff change made in kefu-edge, as the conversation's status in Chatwoot. */
  async #reflect(run: Run, link: UserLink, entry: ConversationEntry): Promise<UserLink> {
    if (entry.reason?.startsWith(FROM_CHATWOOT) === true) return link; // it came from Chatwoot
    const to = entry.to;
    if (to === "bot" || to === "closed") {
      if (link.conversationId === undefined || link.resolved === true) return link;
      const done = await this.#toggle(link.conversationId, to === "bot" ? "pending" : "resolved");
      if (!done) return { ...link, conversationId: undefined };
      return to === "closed" ? { ...link, resolved: true } : link;
    }
    if (to !== "waiting" && to !== "human") return link;
    let next = await this.#conversation(run, link);
    if (!await this.#toggle(next.conversationId!, "open")) {
      next = await this.#conversation(run, { ...next, conversationId: undefined });
    }
    const note = to === "waiting"
      ? `Waiting for a person (asked by ${entry.sender}${entry.reason === undefined ? "" : `: ${entry.reason}`})`
      : `Taken over outside Chatwoot by ${entry.agent ?? entry.sender}`;
    return await this.#post(run, next, entry, { message: privateNote(note) });
  }

  /** Sets a conversation's status; `false` when Chatwoot no longer has the conversation. */
  async #toggle(conversationId: number, status: "open" | "pending" | "resolved"): Promise<boolean> {
    try {
      await this.#s.client.toggleStatus(conversationId, status);
      return true;
    } catch (err) {
      if (err instanceof ChatwootError && err.status === 404) return false;
      throw err;
    }
  }

  /** Creates the entry's message, once: a run that stopped after creating it finds it instead. */
  async #post(run: Run, link: UserLink, entry: ConversationEntry, post: Post): Promise<UserLink> {
    let next = await this.#conversation(run, link);
    const marked: NewMessage = {
      ...post.message,
      content_attributes: { kefu_edge_seq: entry.seq, kefu_edge_sender: entry.sender },
    };
    if (run.saved?.inflight === entry.seq) {
      const made = (await this.#s.client.messages(next.conversationId!)).find((m) =>
        m.content_attributes?.kefu_edge_seq === entry.seq
      );
      if (made !== undefined) {
        await this.#s.state.rememberCreated(made.id);
        return next;
      }
    }
    next = { ...next, inflight: entry.seq };
    await this.#save(run, next);
    let created;
    try {
      created = await this.#create(next.conversationId!, marked, post.mediaId);
    } catch (err) {
      if (!(err instanceof ChatwootError && err.status === 404)) throw err;
      // The conversation was deleted in Chatwoot: the message goes to a new one.
      next = await this.#conversation(run, { ...next, conversationId: undefined });
      created = await this.#create(next.conversationId!, marked, post.mediaId);
    }
    await this.#s.state.rememberCreated(created.id);
    return next;
  }

  async #create(conversationId: number, message: NewMessage, mediaId: string | undefined) {
    const file = mediaId === undefined ? undefined : await this.#image(mediaId);
    if (file === undefined) {
      const content = mediaId === undefined ? message.content : `${message.content}[Image no longer available]`;
      return await this.#s.client.createMessage(conversationId, { ...message, content });
    }
    return await this.#s.client.createMessageWithFile(conversationId, message, file);
  }

  /** An image's bytes from WeChat; `undefined` when WeChat no longer has it (it keeps media 3 days). */
  async #image(mediaId: string): Promise<File | undefined> {
    let response: Response;
    try {
      response = await this.#s.media(mediaId);
    } catch (err) {
      if (err instanceof WeChatApiError) return undefined; // expired or unknown: nothing to retry
      throw err;
    }
    const blob = await response.blob();
    if (blob.size > this.#s.maxMediaBytes) return undefined;
    const type = blob.type.split(";")[0]!.trim() || "image/jpeg";
    return new File([blob], `image.${EXTENSIONS[type] ?? "jpg"}`, { type });
  }

  /** The user's open conversation in Chatwoot, found or started (and the contact, the first time). */
  async #conversation(run: Run, link: UserLink): Promise<UserLink> {
    if (link.conversationId !== undefined && link.resolved !== true) return link;
    const { client, inboxId } = this.#s;
    let contactId = link.contactId ?? await this.#contact(run.openId);
    let conversations;
    try {
      conversations = await client.contactConversations(contactId);
    } catch (err) {
      if (!(err instanceof ChatwootError && err.status === 404) || link.contactId === undefined) throw err;
      // The contact was deleted in Chatwoot: the user gets a new one.
      contactId = await this.#contact(run.openId);
      conversations = await client.contactConversations(contactId);
    }
    const open = conversations.find((c) =>
      c.inbox_id === inboxId && c.status !== "resolved" && (c.contact_inbox?.source_id ?? run.openId) === run.openId
    );
    let conversationId = open?.id;
    if (conversationId === undefined) {
      run.handoff ??= (await this.#s.conversations.handoff(run.ref))?.state ?? "bot";
      // While the bot answers, the conversation waits in Chatwoot's "pending" (the bot's), out of agents' way.
      const status = run.handoff === "human" || run.handoff === "waiting" ? "open" : "pending";
      conversationId = await client.createConversation({
        source_id: run.openId,
        inbox_id: inboxId,
        contact_id: contactId,
        status,
      });
    }
    const next: UserLink = { ...link, contactId, conversationId, resolved: undefined };
    await this.#save(run, next);
    return next;
  }

  /** The user's Chatwoot contact, found by its identifier or created, with the openid as the inbox's source id. */
  async #contact(openId: string): Promise<number> {
    const { client, inboxId } = this.#s;
    const contact = await this.#findContact(openId) ?? await client.createContact({
      inbox_id: inboxId,
      name: `WeChat user ${openId.slice(-6)}`,
      identifier: this.#identifier(openId),
    });
    const known = (contact.contact_inboxes ?? []).some((ci) => ci.source_id === openId && ci.inbox?.id === inboxId);
    if (!known) await client.addContactInbox(contact.id, { inbox_id: inboxId, source_id: openId });
    return contact.id;
  }

  async #findContact(openId: string) {
    const identifier = this.#identifier(openId);
    return (await this.#s.client.searchContacts(identifier)).find((c) => c.identifier === identifier);
  }

  // Per mini program: the same person has another openid in each, and a contact per openid.
  #identifier(openId: string): string {
    return `wechat:${this.#s.appId}:${openId}`;
  }

  async #save(run: Run, link: UserLink): Promise<void> {
    await this.#s.state.saveLink(run.openId, link, run.saved);
    run.saved = link;
  }
}

/** What an entry becomes in Chatwoot: a message (an image by its media id), or nothing. */
interface Post {
  message: NewMessage;
  mediaId?: string | undefined;
}

const EXTENSIONS: Record<string, string> = { "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif" };

function privateNote(content: string): NewMessage {
  return { content, message_type: "outgoing", private: true };
}

const EVENTS: Record<string, string> = {
  user_enter_tempsession: "The user opened the customer-service chat",
  subscribe_msg_popup_event: "The user answered a subscribe-message prompt",
  subscribe_msg_change_event: "The user changed their subscriptions",
  subscribe_msg_sent_event: "A subscribe message reached the user",
};

/** An entry's message in Chatwoot; `undefined` for what is not mirrored. */
function planOf(entry: ConversationEntry): Post | undefined {
  // Agents' messages are Chatwoot's own (or another desk's); typing shows nothing worth keeping.
  if (entry.type === "typing" || entry.sender.startsWith("agent:")) return undefined;
  if (entry.sender === "user") {
    if (entry.type === "event") {
      const name = entry.msgType ?? "event";
      return { message: privateNote(`${EVENTS[name] ?? "WeChat event"} (${name})`) };
    }
    if (entry.type !== "message") return undefined;
    const incoming = (content: string): NewMessage => ({ content, message_type: "incoming", private: false });
    if (entry.msgType === "image" && entry.mediaId !== undefined) {
      return { message: incoming(""), mediaId: entry.mediaId };
    }
    return { message: incoming(describe(entry)) };
  }
  if (entry.type === "subscribe") {
    return {
      message: privateNote(`Subscribe message ${entry.msgType ?? ""} sent by ${entry.sender}: ${outcomeText(entry)}`),
    };
  }
  if (entry.type !== "message") return undefined;
  if (typeof entry.outcome === "number") {
    return {
      message: privateNote(`Not delivered (WeChat ${entry.outcome}), from ${entry.sender}: ${describe(entry)}`),
    };
  }
  const mark = entry.sender === "bot" ? BOT_MARK : "";
  const outgoing = (content: string): NewMessage => ({ content, message_type: "outgoing", private: false });
  if (entry.msgType === "image" && entry.mediaId !== undefined) {
    return { message: outgoing(mark), mediaId: entry.mediaId };
  }
  return { message: outgoing(`${mark}${describe(entry)}`) };
}

/** An entry in words, as the chat model's turns say it (`[图片]`, `[小程序卡片：…]`). */
function describe(entry: ConversationEntry): string {
  return chatTurns([{ ...entry, type: "message", outcome: "ok" }])[0]?.content ?? `[${entry.msgType ?? "消息"}]`;
}

function outcomeText(entry: ConversationEntry): string {
  return entry.outcome === "ok"
    ? "delivered"
    : entry.outcome === "unknown"
    ? "no answer from WeChat"
    : `WeChat ${entry.outcome}`;
}
