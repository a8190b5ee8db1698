/**
 * WeChat's customer-service send window (客服消息下发条件), as one set of rules that the
 * production tracker ({@link SendWindowTracker}) and the emulator both follow:
 *
 * | user action                                   | messages | for  |
 * | --------------------------------------------- | -------- | ---- |
 * | a message (text, image, mini-program card)    | 5        | 48 h |
 * | entering the session (`user_enter_tempsession`) | 2      | 1 min |
 *
 * Counts do not add up: each action sets the count to the largest limit now in force and the
 * deadline to the latest (WeChat: 可下发消息条数更新为当前可下发条数限制的最大值).
 *
 * @module
 */
import type { KeyValueStore } from "../stores/key_value_store.ts";
import { redact } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { userPart } from "../internal/store_keys.ts";
import { storedObject } from "../internal/json.ts";
import { uniqueId } from "../internal/unique_id.ts";

/** What the tracker knows about a user's window. */
export interface SendWindow {
  /** What opened it: a user message (5 in 48 h) or a session entry (2 in 1 min). */
  readonly kind: "message" | "session";
  /** Messages still allowed. */
  readonly remaining: number;
  /** When it closes, ms since the epoch. */
  readonly expiresAt: number;
}

/** A user action that opens the window. */
export type WindowAction = SendWindow["kind"];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * What each user action allows.
 * [UNCERTAIN] the newer doc gives 2 messages in 1 minute after entering the session, older
 * docs 1 per minute; the newer reading is taken.
 */
export const WINDOW_GRANTS: Readonly<Record<WindowAction, { count: number; durationMs: number }>> = {
  message: { count: 5, durationMs: 48 * HOUR },
  session: { count: 2, durationMs: 1 * MINUTE },
};

/**
 * The window after a user action at `at` (ms), given the window open before it. The count
 * becomes the larger of the action's and what was left, and the deadline the later one.
 * [UNCERTAIN] the docs do not say what entering the session does to a window a message opened
 * earlier: the more generous of the two is kept, never their sum, so entering the session
 * never shortens a 48 h window.
 *
 * @param open the window open just before the action, if any
 * @param action what the user did
 * @param at when, ms
 * @returns the window now open
 * @example
 * ```ts
 * import { openWindow } from "@kefu/edge";
 * const w = openWindow(undefined, "message", 0);
 * console.log(w.remaining, openWindow({ ...w, remaining: 1 }, "session", 1000).remaining); // 5 2
 * ```
 */
export function openWindow(open: SendWindow | undefined, action: WindowAction, at: number): SendWindow {
  const grant = WINDOW_GRANTS[action];
  const expiresAt = at + grant.durationMs;
  const remaining = Math.max(grant.count, open?.remaining ?? 0);
  if (open === undefined || expiresAt >= open.expiresAt) return { kind: action, remaining, expiresAt };
  return { kind: open.kind, remaining, expiresAt: open.expiresAt };
}

/**
 * The user action a pushed message counts as, or `undefined` when it opens nothing.
 *
 * @param message a pushed message
 * @returns `message` for a text, image or mini-program card, `session` for entering the session
 * @example
 * ```ts
 * import { actionOf } from "@kefu/edge";
 * console.log(actionOf({ MsgType: "event", Event: "user_enter_tempsession" })); // "session"
 * ```
 */
export function actionOf(message: { MsgType: string; Event?: unknown }): WindowAction | undefined {
  if (message.MsgType === "text" || message.MsgType === "image" || message.MsgType === "miniprogrampage") {
    return "message";
  }
  if (message.MsgType === "event" && message.Event === "user_enter_tempsession") return "session";
  return undefined;
}

/** One window as stored: its id (its send slots are per id), grant and deadline. */
interface StoredWindow {
  id: string;
  kind: WindowAction;
  count: number;
  expiresAt: number;
}

/**
 * Follows each user's send window in a {@link KeyValueStore}, as far as this SDK can see it:
 * every verified user action opens it, every successful send spends one message, and a
 * 45015 or 45047 answer closes it. Advisory: messages sent by WeChat's own agent tools, or by
 * another system using the same AppID, are invisible to it, and WeChat stays the authority.
 *
 * Spending takes one of the window's numbered send slots with `setIfAbsent`, so on an
 * atomic store (memory, Deno KV, Durable Objects) two concurrent sends can never both take
 * the last message; on Workers KV alone it is best effort.
 *
 * @example
 * ```ts
 * import { MemoryStore, SendWindowTracker } from "@kefu/edge";
 * const tracker = new SendWindowTracker(new MemoryStore(), { appId: "wx1" });
 * await tracker.record("o1", "message", Date.now());
 * console.log((await tracker.window("o1"))?.remaining); // 5
 * ```
 */
export class SendWindowTracker {
  readonly #store: KeyValueStore;
  readonly #appId: string;
  readonly #now: () => number;
  readonly #logger: Logger;

  /**
   * Creates a tracker over `store`.
   *
   * @param store where windows live (per user: one Durable Object per user on Workers)
   * @param options the AppID (keys are per mini program), the clock (ms) and a logger
   */
  constructor(
    store: KeyValueStore,
    options: { appId: string; now?: (() => number) | undefined; logger?: Logger | undefined },
  ) {
    this.#store = store;
    this.#appId = options.appId;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger ?? console;
  }

  /**
   * What the tracker knows about `openId`'s window.
   *
   * @param openId the user
   * @returns the window, `{ remaining: 0 }` when spent or closed by WeChat, or `undefined`
   *   when nothing is known or it has expired
   */
  async window(openId: string): Promise<SendWindow | undefined> {
    const stored = await this.#read(openId);
    if (stored === undefined) return undefined;
    let used: (string | null)[];
    try {
      used = await Promise.all(
        Array.from({ length: stored.count }, (_, i) => this.#store.get(this.#slotKey(openId, stored.id, i))),
      );
    } catch (err) {
      this.#warn("read", err);
      return undefined;
    }
    return {
      kind: stored.kind,
      remaining: used.filter((slot) => slot === null).length,
      expiresAt: stored.expiresAt,
    };
  }

  /**
   * A user action at `at` (ms) opens the window (never by more than WeChat's rules allow). A
   * time later than now counts as now, so no window opened here outlasts the one WeChat opened;
   * an earlier time is taken as it is (WeChat's window started then).
   *
   * @param openId the user
   * @param action `message` or `session`
   * @param at when the user acted (the push's CreateTime), ms
   * @param onStoreError receives a failing store operation instead of the logger (the push
   *   receiver logs a delivery's store failures once, together)
   */
  async record(
    openId: string,
    action: WindowAction,
    at: number,
    onStoreError?: (operation: string, err: unknown) => void,
  ): Promise<void> {
    const warn = onStoreError ?? ((operation: string, err: unknown) => this.#warn(operation, err));
    if (!Number.isFinite(at)) return; // no time, no window that could be trusted
    // CreateTime is the sender's word, and in plain mode the signature does not cover it: a
    // time in the future would keep a window open past WeChat's. Moving an old time forward
    // (to now - maxSkewSeconds, say) would lengthen the window too, so only the future is cut.
    const actedAt = Math.min(at, this.#now());
    // A message grants the most there is (5 for 48 h): what was left before cannot matter,
    // so only a session entry needs the open window's count.
    const open = action === "message" ? await this.#read(openId, warn) : await this.window(openId);
    const before = open === undefined
      ? undefined
      : "remaining" in open
      ? open
      : { kind: open.kind, remaining: open.count, expiresAt: open.expiresAt };
    const next = openWindow(before, action, actedAt);
    if (next.expiresAt <= this.#now()) return; // an old action: nothing it opened is still open
    const stored: StoredWindow = { id: uniqueId(), kind: next.kind, count: next.remaining, expiresAt: next.expiresAt };
    await this.#write(openId, stored, warn);
  }

  /**
   * Takes one message of the window for a send about to be made.
   *
   * @param openId the user
   * @returns a ticket to {@link SendWindowTracker.release} if the send fails; `undefined` when
   *   nothing is known (the send goes ahead); `"closed"` when the window is closed or spent
   */
  async reserve(openId: string): Promise<{ release(): Promise<void> } | undefined | "closed"> {
    const stored = await this.#read(openId);
    if (stored === undefined) return undefined;
    try {
      for (let i = 0; i < stored.count; i++) {
        const key = this.#slotKey(openId, stored.id, i);
        if (await this.#take(key, stored.expiresAt)) {
          return { release: () => this.#store.delete(key).catch((err) => this.#warn("release", err)) };
        }
      }
    } catch (err) {
      // The tracker only advises: a failing store must not stop a send WeChat would take.
      this.#warn("reserve", err);
      return undefined;
    }
    return "closed";
  }

  /**
   * WeChat answered 45015 or 45047: the window is closed (until the user acts again).
   *
   * @param openId the user
   */
  async close(openId: string): Promise<void> {
    const stored = await this.#read(openId);
    const expiresAt = stored?.expiresAt ?? this.#now() + WINDOW_GRANTS.message.durationMs;
    await this.#write(openId, { id: uniqueId(), kind: stored?.kind ?? "message", count: 0, expiresAt });
  }

  async #write(
    openId: string,
    stored: StoredWindow,
    warn = (operation: string, err: unknown) => this.#warn(operation, err),
  ): Promise<void> {
    try {
      await this.#store.set(this.#key(openId), JSON.stringify(stored), { ttlSeconds: this.#ttl(stored.expiresAt) });
    } catch (err) {
      warn("write", err);
    }
  }

  async #take(key: string, expiresAt: number): Promise<boolean> {
    const options = { ttlSeconds: this.#ttl(expiresAt) };
    if (this.#store.setIfAbsent !== undefined) return await this.#store.setIfAbsent(key, "1", options);
    if (await this.#store.get(key) !== null) return false; // Workers KV: best effort
    await this.#store.set(key, "1", options);
    return true;
  }

  async #read(
    openId: string,
    warn = (operation: string, err: unknown) => this.#warn(operation, err),
  ): Promise<StoredWindow | undefined> {
    const stored = await storedObject(this.#store, this.#key(openId), (err) => warn("read", err)) as
      | Partial<StoredWindow>
      | undefined;
    return stored?.expiresAt !== undefined && stored.expiresAt > this.#now() ? stored as StoredWindow : undefined;
  }

  #key(openId: string): string {
    return `kefu-edge:window:${this.#appId}:${userPart(openId)}`;
  }

  #slotKey(openId: string, id: string, slot: number): string {
    return `${this.#key(openId)}:sent:${id}:${slot}`;
  }

  #ttl(expiresAt: number): number {
    return Math.max(60, Math.ceil((expiresAt - this.#now()) / 1000));
  }

  #warn(operation: string, err: unknown): void {
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.#logger.warn(`kefu-edge: send window store ${operation} failed, the window is not tracked: ${redact(detail)}`);
  }
}
