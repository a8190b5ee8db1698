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
import { checkListOptions, directoryObjectName } from "../internal/conversation_list.ts";
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
import { type DurableObjectNamespaceLike, ObjectStubs, userObjectName } from "./durable_object_store.ts";

/** Where a user's object reports its conversation's changes: the app's directory object. */
export interface DirectoryAddress {
  /** The name the `KefuStore` namespace is bound under in the worker's env (the directory is one of its objects). */
  binding: string;
  /** The mini program's AppID. */
  appId: string;
  /** The user. */
  openId: string;
}

/** What a user's object is called with: the caller's settings, and where the app's directory is. */
export interface ObjectSettings extends ConversationSettings {
  /** The app's directory; without it the object tells no directory of its changes. */
  directory?: DirectoryAddress | undefined;
}

/** What a user's object tells the app's directory object after a change. */
export interface DirectoryNotice {
  /** The user. */
  openId: string;
  /** The change's version in the user's object: the directory keeps the newest it hears of. */
  version: number;
  /**
   * The conversation as the list keeps it: its summary with the window and handoff as last
   * written, and when an agent last wrote or took it over; `null` once purged.
   */
  listed: (ConversationSummary & { agentAt: number | null }) | null;
}

/**
 * The Workers RPC methods of a user's conversation object (the `KefuStore` Durable Object):
 * one per operation of {@link ConversationStore}, the conversation being the object's own.
 * The caller passes its settings with every call, so objects keep no configuration of their
 * own. Each method runs as one transaction inside the object; after a change, the object
 * tells the app's directory object (without its caller waiting, except for a purge).
 */
export interface ConversationObject {
  /** See {@link ConversationStore.accept}. */
  accept(input: AcceptInput, settings: ObjectSettings): AcceptResult | Promise<AcceptResult>;
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
    settings: ObjectSettings,
  ): Reservation | Promise<Reservation>;
  /** See {@link ConversationStore.recordOutbound}. */
  recordOutbound(
    input: OutboundInput & { reserved: boolean },
    settings: ObjectSettings,
  ): ConversationEntry | Promise<ConversationEntry>;
  /** See {@link ConversationStore.history}. */
  history(
    options: { before?: number | undefined; limit: number },
    settings: ConversationSettings,
  ): HistoryPage | null | Promise<HistoryPage | null>;
  /** See {@link ConversationStore.handoff}. */
  handoff(settings: ConversationSettings): Handoff | null | Promise<Handoff | null>;
  /** See {@link ConversationStore.setHandoff}. */
  setHandoff(change: HandoffChange, settings: ObjectSettings): HandoffResult | Promise<HandoffResult>;
  /** See {@link ConversationStore.window}. */
  window(): SendWindow | undefined | Promise<SendWindow | undefined>;
  /** See {@link ConversationStore.recordMediaCopy}. */
  recordMediaCopy(copy: MediaCopy, settings: ConversationSettings): boolean | Promise<boolean>;
  /** See {@link ConversationStore.purge}: resolves once the app's directory has let the user go. */
  purge(settings?: ObjectSettings): void | Promise<void>;
}

/**
 * The Workers RPC methods of an app's directory object (a `KefuStore` named `dir:<appId>`):
 * the users' objects tell it of their changes, and {@link ConversationStore.list} reads it.
 */
export interface ConversationDirectoryObject {
  /** Takes a user's change, unless it has heard of a newer one already. */
  updateDirectory(notice: DirectoryNotice): void | Promise<void>;
  /** A page of the app's list (see {@link ConversationStore.list}). */
  listDirectory(
    options: ConversationListOptions,
    settings: ConversationSettings,
  ): ConversationPage | Promise<ConversationPage>;
}

/** Options of {@link DurableObjectConversationStore}. */
export interface DurableObjectConversationOptions extends ConversationSettingsOptions {
  /**
   * The name the `KefuStore` namespace is bound under in the worker's env (default
   * `KEFU_STORE`): the users' objects find the app's directory object there.
   */
  binding?: string | undefined;
}

/**
 * Conversations in Durable Objects: each user's conversation lives in the user's own
 * `KefuStore` object (the one that already holds the user's push claims and send window
 * under `DurableObjectStore`), in its SQLite database. Every operation is one Workers RPC
 * call, run by the object as one transaction: strongly consistent and atomic across
 * isolates and locations. The object deletes history older than `historyDays` itself, with
 * its alarm.
 *
 * The app's list ({@link DurableObjectConversationStore.list}) lives in one more object of
 * the namespace, the app's directory (`dir:<appId>`). After each change, the user's object
 * tells the directory without its caller waiting (WeChat waits for no more than before);
 * the directory keeps the newest change of each user, so one that arrives late changes
 * nothing, and a failed one is repaired by the user's next change. A purge waits for the
 * directory, so the user is off the list when it resolves.
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
  readonly #binding: string;

  /**
   * Wraps the namespace binding of the `KefuStore` class.
   *
   * @param namespace the Durable Object namespace binding
   * @param options the idle timeout of a takeover (ms), the history retention (days) and the binding's name
   */
  constructor(namespace: DurableObjectNamespaceLike, options: DurableObjectConversationOptions = {}) {
    this.#stubs = new ObjectStubs(namespace);
    this.#settings = settingsOf(options);
    this.#binding = options.binding ?? "KEFU_STORE";
  }

  /**
   * Accepts a verified push (see {@link ConversationStore.accept}).
   *
   * @param ref the conversation
   * @param input the claim and the entry
   * @returns claimed or taken, who answers and the window
   */
  async accept(ref: ConversationRef, input: AcceptInput): Promise<AcceptResult> {
    return await this.#object(ref).accept(input, this.#told(ref));
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
    return await this.#object(ref).reserve(options.onlyIn, this.#told(ref));
  }

  /**
   * Records what was sent.
   *
   * @param ref the conversation
   * @param input the entry, whether it spends the window and whether a message was held for it
   * @returns the entry as recorded
   */
  async recordOutbound(ref: ConversationRef, input: OutboundInput & { reserved: boolean }): Promise<ConversationEntry> {
    return await this.#object(ref).recordOutbound(input, this.#told(ref));
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
    return await this.#object(ref).setHandoff(change, this.#told(ref));
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
   * Records where a copy of an entry's media is kept.
   *
   * @param ref the conversation
   * @param copy the entry, its media_id and the copy's key
   * @returns whether the entry was there to record it on
   */
  async recordMediaCopy(ref: ConversationRef, copy: MediaCopy): Promise<boolean> {
    return await this.#object(ref).recordMediaCopy(copy, this.#settings);
  }

  /**
   * Deletes the user's conversation; the push claims stay, without their entries.
   *
   * @param ref the conversation
   */
  async purge(ref: ConversationRef): Promise<void> {
    await this.#object(ref).purge(this.#told(ref));
  }

  /**
   * A page of the app's conversations, most recent activity first (see
   * {@link ConversationStore.list}): one call to the app's directory object.
   *
   * @param appId the mini program
   * @param options the filter, the page size and the cursor
   * @returns the page, and the cursor of the next
   * @throws {ValidationError} naming `state`, `limit` or `cursor`
   */
  async list(appId: string, options: ConversationListOptions = {}): Promise<ConversationPage> {
    // Checked here, where a ValidationError keeps its field (an RPC error would not).
    checkListOptions(options, Date.now());
    const directory = this.#stubs.get(directoryObjectName(appId)) as unknown as ConversationDirectoryObject;
    return await directory.listDirectory(
      { state: options.state, limit: options.limit, cursor: options.cursor },
      this.#settings,
    );
  }

  /** The settings a changing call carries: the caller's, and where the app's directory is. */
  #told(ref: ConversationRef): ObjectSettings {
    return { ...this.#settings, directory: { binding: this.#binding, appId: ref.appId, openId: ref.openId } };
  }

  /** A new stub of the user's object (see `ObjectStubs`), typed as the object's RPC methods. */
  #object(ref: ConversationRef): ConversationObject {
    // The binding's own type says nothing of the class's methods (Workers' types would need
    // the class itself, which the core does not import): the stub is the class's RPC surface.
    return this.#stubs.get(userObjectName(ref.appId, userPart(ref.openId))) as unknown as ConversationObject;
  }
}
