// Private: one user's send window, typing state and inbox (spec §2 and §3).
import { HOUR, MINUTE, SECOND } from "./_clock.ts";
import { ApiFailure } from "./_responses.ts";
import type { MsgType } from "./_messages.ts";
import type { InboxEntry, SendWindow } from "./types.ts";

/** What each user action allows (spec §2's table). */
export const GRANTS = {
  message: { count: 5, duration: 48 * HOUR },
  // [UNCERTAIN] the newer doc gives 2 messages per 1 minute after entering the session,
  // older docs 1 per minute; we take the newer reading.
  session: { count: 2, duration: 1 * MINUTE },
} as const;

/** Typing needs a message interaction this recent (spec §3 rule 3). */
const INTERACTION_WINDOW = 30 * SECOND;
/** The typing state lasts this long (spec §3 rule 4). */
const TYPING_DURATION = 15 * SECOND;

export type UserAction = keyof typeof GRANTS;

/** The emulator's record of one user. */
export class UserState {
  readonly openId: string;
  readonly entries: InboxEntry[] = [];
  readonly #now: () => number;
  #grant: { kind: UserAction; remaining: number; expiresAt: number } | undefined;
  #lastInteractionAt = Number.NEGATIVE_INFINITY;
  #typingUntil = Number.NEGATIVE_INFINITY;

  readonly #maxEntries: number;

  constructor(openId: string, now: () => number, maxEntries: number = Number.POSITIVE_INFINITY) {
    this.openId = openId;
    this.#now = now;
    this.#maxEntries = maxEntries;
  }

  #record(entry: InboxEntry): void {
    this.entries.push(entry);
    if (this.entries.length > this.#maxEntries) this.entries.splice(0, this.entries.length - this.#maxEntries);
  }

  /** The open window, or undefined when there is none or it has closed. */
  get window(): SendWindow | undefined {
    const grant = this.#grant;
    if (grant === undefined || this.#now() >= grant.expiresAt) return undefined;
    return { ...grant };
  }

  get typing(): boolean {
    return this.#now() < this.#typingUntil;
  }

  /**
   * A user action opens or renews the window. Quotas do not accumulate: the count goes
   * back to the maximum and the window to the longest value.
   * [UNCERTAIN] the spec does not say what a session entry does to a window a message
   * opened earlier. We keep whichever is more generous — the larger count and the later
   * end — without adding them up, so entering the session never shortens a 48 h window.
   */
  act(kind: UserAction): void {
    const now = this.#now();
    const grant = GRANTS[kind];
    const open = this.window;
    const expiresAt = now + grant.duration;
    this.#grant = open === undefined || expiresAt >= open.expiresAt
      ? { kind, remaining: Math.max(grant.count, open?.remaining ?? 0), expiresAt }
      : { kind: open.kind, remaining: Math.max(grant.count, open.remaining), expiresAt: open.expiresAt };
    // [UNCERTAIN] "message interaction" for typing: we count the user's messages and session
    // entries, not the messages we send them; the strict reading catches typing sent too late.
    this.#lastInteractionAt = now;
  }

  /** Throws 45015 outside the window, 45047 when its quota is used up. */
  checkSendable(): void {
    const open = this.window;
    if (open === undefined) throw new ApiFailure(45015);
    if (open.remaining <= 0) throw new ApiFailure(45047);
  }

  /** Records a delivered message: uses one of the quota and ends the typing state (rule 5). */
  deliver(msgtype: MsgType, message: Record<string, unknown>): void {
    this.checkSendable();
    if (this.#grant !== undefined) this.#grant.remaining--;
    this.#typingUntil = Number.NEGATIVE_INFINITY;
    this.#record({ kind: "message", msgtype, message, at: this.#now() });
  }

  /** Applies a typing command, or throws 45015/45047 (send conditions), 45080 or 45081. */
  setTyping(command: "Typing" | "CancelTyping"): void {
    this.checkSendable();
    const now = this.#now();
    if (now - this.#lastInteractionAt >= INTERACTION_WINDOW) throw new ApiFailure(45080);
    if (command === "Typing") {
      if (this.typing) throw new ApiFailure(45081);
      this.#typingUntil = now + TYPING_DURATION;
    } else {
      this.#typingUntil = Number.NEGATIVE_INFINITY;
    }
    this.#record({ kind: "typing", command, at: now });
  }

  /** WeChat tells the user the service is unavailable after an unanswered push (spec §6.5). */
  notice(text: string): void {
    this.#record({ kind: "notice", text, at: this.#now() });
  }
}
