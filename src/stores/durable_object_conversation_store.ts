/**
 * {@link DurableObjectConversationStore}: conversations in Durable Objects, one object per
 * user (the `KefuStore` class, SQLite-backed), each operation one Workers RPC call.
 *
 * @module
 */
import type { SendWindow } from "../customer_service/send_window.ts";
import {
  type ConversationSettings,
  type ConversationSettingsOptions,
  settingsOf,
} from "../internal/conversation_rules.ts";
import { userPart } from "../internal/store_keys.ts";
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
import { type DurableObjectNamespaceLike, ObjectStubs, userObjectName } from "./durable_object_store.ts";

/**
 * The Workers RPC methods of a user's conversation object (the `KefuStore` Durable Object):
 * one per operation of {@link ConversationStore}, the conversation being the object's own.
 * The caller passes its settings with every call, so objects keep no configuration of their
 * own. Each method runs as one transaction inside the object.
 */
export interface ConversationObject {
  /** See {@link ConversationStore.accept}. */
  accept(input: AcceptInput, settings: ConversationSettings): AcceptResult | Promise<AcceptResult>;
  /** See {@link ConversationStore.claim}. */
  claim(key: string): string | null | Promise<string | null>;
  /** See {@link ConversationStore.replaceClaim}. */
  replaceClaim(
    key: string,
    expected: string,
    value: string | null,
    ttlSeconds: number,
  ): boolean | Promise<boolean>;
  /** See {@link ConversationStore.reserve}. */
  reserve(
    onlyIn: readonly HandoffState[] | undefined,
    settings: ConversationSettings,
  ): Reservation | Promise<Reservation>;
  /** See {@link ConversationStore.recordOutbound}. */
  recordOutbound(
    input: OutboundInput & { reserved: boolean },
    settings: ConversationSettings,
  ): ConversationEntry | Promise<ConversationEntry>;
  /** See {@link ConversationStore.history}. */
  history(
    options: { before?: number | undefined; limit: number },
    settings: ConversationSettings,
  ): HistoryPage | null | Promise<HistoryPage | null>;
  /** See {@link ConversationStore.handoff}. */
  handoff(settings: ConversationSettings): Handoff | null | Promise<Handoff | null>;
  /** See {@link ConversationStore.setHandoff}. */
  setHandoff(change: HandoffChange, settings: ConversationSettings): HandoffResult | Promise<HandoffResult>;
  /** See {@link ConversationStore.window}. */
  window(): SendWindow | undefined | Promise<SendWindow | undefined>;
  /** See {@link ConversationStore.purge}. */
  purge(): void | Promise<void>;
}

/**
 * Conversations in Durable Objects: each user's conversation lives in the user's own
 * `KefuStore` object (the one that already holds the user's push claims and send window
 * under `DurableObjectStore`), in its SQLite database. Every operation is one Workers RPC
 * call, run by the object as one transaction: strongly consistent and atomic across
 * isolates and locations. The object deletes history older than `historyDays` itself, with
 * its alarm.
 *
 * Pass the namespace binding of the `KefuStore` class (`env.KEFU_STORE`); export the class
 * from your worker's entry (`@kefu/edge/worker/durable-object`).
 *
 * @example In a worker, with `KEFU_STORE` bound
 * ```ts ignore
 * import { DurableObjectConversationStore } from "@kefu/edge";
 * // A Durable Object namespace exists only inside a Workers runtime (`env` is the worker's bindings).
 * const conversations = new DurableObjectConversationStore(env.KEFU_STORE, { historyDays: 7 });
 * const ref = { appId: "wx1", openId: "o1" };
 * await conversations.setHandoff(ref, { state: "human", by: "agent:alice", reason: "refund" });
 * const page = await conversations.history(ref, { limit: 20 });
 * ```
 */
export class DurableObjectConversationStore implements ConversationStore {
  readonly #stubs: ObjectStubs;
  readonly #settings: ConversationSettings;

  /**
   * Wraps the namespace binding of the `KefuStore` class.
   *
   * @param namespace the Durable Object namespace binding
   * @param options the idle timeout of a takeover (ms) and the history retention (days)
   */
  constructor(namespace: DurableObjectNamespaceLike, options: ConversationSettingsOptions = {}) {
    this.#stubs = new ObjectStubs(namespace);
    this.#settings = settingsOf(options);
  }

  /**
   * Accepts a verified push (see {@link ConversationStore.accept}).
   *
   * @param ref the conversation
   * @param input the claim and the entry
   * @returns claimed or taken, who answers and the window
   */
  async accept(ref: ConversationRef, input: AcceptInput): Promise<AcceptResult> {
    return await this.#object(ref).accept(input, this.#settings);
  }

  /**
   * The claim on a push.
   *
   * @param ref the conversation
   * @param key the push's dedupe key
   * @returns the claim, or `null`
   */
  async claim(ref: ConversationRef, key: string): Promise<string | null> {
    return await this.#object(ref).claim(key);
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
  async replaceClaim(
    ref: ConversationRef,
    key: string,
    expected: string,
    value: string | null,
    ttlSeconds: number,
  ): Promise<boolean> {
    return await this.#object(ref).replaceClaim(key, expected, value, ttlSeconds);
  }

  /**
   * Holds a window message for a send.
   *
   * @param ref the conversation
   * @param options `onlyIn`: the states that allow the send
   * @returns the decision
   */
  async reserve(ref: ConversationRef, options: { onlyIn?: readonly HandoffState[] | undefined }): Promise<Reservation> {
    return await this.#object(ref).reserve(options.onlyIn, this.#settings);
  }

  /**
   * Records what was sent.
   *
   * @param ref the conversation
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @returns the entry as recorded
   */
  async recordOutbound(ref: ConversationRef, input: OutboundInput & { reserved: boolean }): Promise<ConversationEntry> {
    return await this.#object(ref).recordOutbound(input, this.#settings);
  }

  /**
   * A page of history, newest first.
   *
   * @param ref the conversation
   * @param options `before` (a `seq`) and `limit`
   * @returns the page, or `null` for an unknown conversation
   */
  async history(
    ref: ConversationRef,
    options: { before?: number | undefined; limit: number },
  ): Promise<HistoryPage | null> {
    return await this.#object(ref).history(options, this.#settings);
  }

  /**
   * Who answers.
   *
   * @param ref the conversation
   * @returns the handoff, or `null` for an unknown conversation
   */
  async handoff(ref: ConversationRef): Promise<Handoff | null> {
    return await this.#object(ref).handoff(this.#settings);
  }

  /**
   * Changes who answers.
   *
   * @param ref the conversation
   * @param change the new state, who makes the change and why
   * @returns whether it changed, and the handoff now
   */
  async setHandoff(ref: ConversationRef, change: HandoffChange): Promise<HandoffResult> {
    return await this.#object(ref).setHandoff(change, this.#settings);
  }

  /**
   * The send window.
   *
   * @param ref the conversation
   * @returns the window, or `undefined`
   */
  async window(ref: ConversationRef): Promise<SendWindow | undefined> {
    return await this.#object(ref).window();
  }

  /**
   * Deletes the user's conversation; the push claims stay, without their entries.
   *
   * @param ref the conversation
   */
  async purge(ref: ConversationRef): Promise<void> {
    await this.#object(ref).purge();
  }

  /** A new stub of the user's object (see `ObjectStubs`), typed as the object's RPC methods. */
  #object(ref: ConversationRef): ConversationObject {
    // The binding's own type says nothing of the class's methods (Workers' types would need
    // the class itself, which the core does not import): the stub is the class's RPC surface.
    return this.#stubs.get(userObjectName(ref.appId, userPart(ref.openId))) as unknown as ConversationObject;
  }
}
