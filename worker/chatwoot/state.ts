/**
 * What the Chatwoot bridge remembers, in the worker's store (the `KEFU_STORE` Durable Objects
 * when bound: a user's keys in that user's object), each with a time to live: per user, the
 * Chatwoot contact and conversation and how far the history is mirrored; the conversation →
 * user links webhooks are routed by; the messages the bridge made (so their echoes are never
 * sent to the user) and the webhook deliveries it handled (so a second delivery is not).
 *
 * @module
 */
import type { KeyValueStore } from "../../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the user part of the
// store's keys (it puts a user's keys in that user's Durable Object) and the core's unique ids.
import { userPart } from "../../src/internal/store_keys.ts";
import { uniqueId } from "../../src/internal/unique_id.ts";

/** What the bridge knows of one user's conversation in Chatwoot. */
export interface UserLink {
  /** The `seq` of the last history entry mirrored to Chatwoot (0: none yet). */
  cursor: number;
  /** The entry being mirrored when a run stopped: it may be in Chatwoot already. */
  inflight?: number | undefined;
  /** The Chatwoot contact. */
  contactId?: number | undefined;
  /** The open Chatwoot conversation. */
  conversationId?: number | undefined;
  /** The conversation was resolved: the user's next message opens a new one. */
  resolved?: boolean | undefined;
}

const LOCK_SECONDS = 60;
const WORKING_SECONDS = 120;
const DONE_SECONDS = 7 * 24 * 3600;

/**
 * The bridge's memory for one mini program, over a {@link KeyValueStore}. Atomic where the store
 * is (`setIfAbsent`, `compareAndSet`: the Durable Objects, Deno KV, memory); best effort on a store
 * without them.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@kefu/edge";
 * import { BridgeState } from "./state.ts";
 * const state = new BridgeState(new MemoryStore(), "wx1", { keepSeconds: 86_400 });
 * await state.rememberCreated(51);
 * console.log(await state.created(51), await state.claim("message", 52), await state.claim("message", 52)); // true true false
 * ```
 */
export class BridgeState {
  readonly #store: KeyValueStore;
  readonly #prefix: string;
  readonly #keepSeconds: number;

  /**
   * @param store where it is kept
   * @param appId the mini program
   * @param options `keepSeconds`: how long a user's link outlives its last change
   */
  constructor(store: KeyValueStore, appId: string, options: { keepSeconds: number }) {
    this.#store = store;
    this.#prefix = `kefu-edge:chatwoot:${appId}`;
    this.#keepSeconds = options.keepSeconds;
  }

  /** The user's link, or `null` when the bridge has not met the user (or forgot them). */
  async link(openId: string): Promise<UserLink | null> {
    const raw = await this.#store.get(this.#userKey(openId, "link"));
    if (raw === null) return null;
    try {
      const parsed = JSON.parse(raw) as UserLink;
      return typeof parsed.cursor === "number" ? parsed : null;
    } catch {
      return null;
    }
  }

  /** Saves the user's link (and, when it names a conversation, the conversation → user link). */
  async saveLink(openId: string, link: UserLink, previous?: UserLink | null): Promise<void> {
    await this.#store.set(this.#userKey(openId, "link"), JSON.stringify(link), { ttlSeconds: this.#keepSeconds });
    if (link.conversationId !== undefined && link.conversationId !== previous?.conversationId) {
      await this.#store.set(this.#conversationKey(link.conversationId), openId, { ttlSeconds: this.#keepSeconds });
    }
  }

  /** Forgets the user: their link and their conversation's. */
  async forget(openId: string, link: UserLink | null): Promise<void> {
    if (link?.conversationId !== undefined) await this.#store.delete(this.#conversationKey(link.conversationId));
    await this.#store.delete(this.#userKey(openId, "link"));
  }

  /** The user a Chatwoot conversation belongs to, or `null`. */
  conversationUser(conversationId: number): Promise<string | null> {
    return this.#store.get(this.#conversationKey(conversationId));
  }

  /** Takes the user's mirroring lock (one run at a time per user): its token, or `undefined` when taken. */
  async lock(openId: string): Promise<string | undefined> {
    const token = uniqueId();
    return await this.#add(this.#userKey(openId, "lock"), token, LOCK_SECONDS) ? token : undefined;
  }

  /** Keeps the lock another minute; `false` when it was lost (it ran out and another run took it). */
  renew(openId: string, token: string): Promise<boolean> {
    return this.#swap(this.#userKey(openId, "lock"), token, token, LOCK_SECONDS);
  }

  /** Gives the lock back, if this run still holds it. */
  async unlock(openId: string, token: string): Promise<void> {
    await this.#swap(this.#userKey(openId, "lock"), token, null);
  }

  /** Remembers a message the bridge made in Chatwoot (its webhook echo is not for the user). */
  async rememberCreated(messageId: number): Promise<void> {
    await this.#store.set(`${this.#prefix}:created:${messageId}`, "1", { ttlSeconds: DONE_SECONDS });
  }

  /** Whether the bridge made this Chatwoot message. */
  async created(messageId: number): Promise<boolean> {
    return await this.#store.get(`${this.#prefix}:created:${messageId}`) !== null;
  }

  /**
   * Claims a webhook's work (an agent's message by its id, a delivery by its id): `true` for the
   * first claim; `false` while another holds it or after it was done.
   */
  claim(kind: "message" | "delivery", id: string | number): Promise<boolean> {
    return this.#add(`${this.#prefix}:${kind}:${id}`, "working", WORKING_SECONDS);
  }

  /** Marks a claimed piece of work done: its repeats are refused for a week. */
  async finish(kind: "message" | "delivery", id: string | number): Promise<void> {
    await this.#store.set(`${this.#prefix}:${kind}:${id}`, "done", { ttlSeconds: DONE_SECONDS });
  }

  /** Frees a claim whose work failed, so Chatwoot's retry does it. */
  async release(kind: "message" | "delivery", id: string | number): Promise<void> {
    await this.#swap(`${this.#prefix}:${kind}:${id}`, "working", null);
  }

  /** Writes `key` unless it holds something: atomic with `setIfAbsent`, else a read then a write. */
  async #add(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.#store.setIfAbsent !== undefined) return await this.#store.setIfAbsent(key, value, { ttlSeconds });
    if (await this.#store.get(key) !== null) return false;
    await this.#store.set(key, value, { ttlSeconds });
    return true;
  }

  /** Replaces (or, with `null`, deletes) `key` if it still holds `expected`: atomic with `compareAndSet`. */
  async #swap(key: string, expected: string, value: string | null, ttlSeconds?: number): Promise<boolean> {
    const options = ttlSeconds === undefined ? {} : { ttlSeconds };
    if (this.#store.compareAndSet !== undefined) return await this.#store.compareAndSet(key, expected, value, options);
    if (await this.#store.get(key) !== expected) return false;
    if (value === null) await this.#store.delete(key);
    else await this.#store.set(key, value, options);
    return true;
  }

  #userKey(openId: string, what: string): string {
    return `${this.#prefix}:${userPart(openId)}:${what}`;
  }

  #conversationKey(conversationId: number): string {
    return `${this.#prefix}:conversation:${conversationId}`;
  }
}
