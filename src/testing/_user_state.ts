// Private: one user's send window, typing state and inbox (spec §2 and §3).
import { openWindow, type SendWindow, type WindowAction } from "../customer_service/send_window.ts";
import { SECOND } from "./_clock.ts";
import { ApiFailure } from "./_responses.ts";
import type { MsgType } from "./_messages.ts";
import type { InboxEntry } from "./types.ts";

/** Typing needs a message interaction this recent (spec §3 rule 3). */
const INTERACTION_WINDOW = 30 * SECOND;
/** The typing state lasts this long (spec §3 rule 4). */
const TYPING_DURATION = 15 * SECOND;

export type UserAction = WindowAction;

/** The emulator's record of one user. */
export class UserState {
  readonly openId: string;
  readonly entries: InboxEntry[] = [];
  readonly #now: () => number;
  #grant: { kind: UserAction; remaining: number; expiresAt: number } | undefined;
  #lastInteractionAt = Number.NEGATIVE_INFINITY;
  #lastVisitAt = Number.NEGATIVE_INFINITY;
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

  /** When the user last used the mini program (wrote, entered the session, answered a popup), ms. */
  get lastVisitAt(): number {
    return this.#lastVisitAt;
  }

  /** The user uses the mini program now (what msgSecCheck's 2-hour rule counts). */
  visit(): void {
    this.#lastVisitAt = this.#now();
  }

  /**
   * A user action opens or renews the window, by the rules the SDK's tracker follows too
   * (`openWindow` in src/customer_service/send_window.ts): quotas do not accumulate.
   */
  act(kind: UserAction): void {
    const now = this.#now();
    this.#lastVisitAt = now;
    this.#grant = { ...openWindow(this.window, kind, now) };
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
  deliver(
    msgtype: MsgType,
    message: Record<string, unknown>,
    extras: { businessId?: string; aiMsgContext?: Record<string, unknown> } = {},
  ): void {
    this.checkSendable();
    if (this.#grant !== undefined) this.#grant.remaining--;
    this.#typingUntil = Number.NEGATIVE_INFINITY;
    this.#record({ kind: "message", msgtype, message, at: this.#now(), ...extras });
  }

  // --- Subscribe messages (spec §6.9) ---------------------------------------------------

  readonly #subscriptions = new Map<string, { longTerm: boolean; left: number }>();
  readonly #sent: Array<{ templateId: string; msgid: string }> = [];

  /** The user's answer to the popup for a template: accepted ones allow sends, rejected ones none. */
  subscribe(templateId: string, status: "accept" | "reject", longTerm: boolean): void {
    this.visit(); // the popup and the settings page are in the mini program
    if (status === "reject") {
      this.#subscriptions.delete(templateId);
      return;
    }
    const current = this.#subscriptions.get(templateId);
    // [UNCERTAIN] whether one-time acceptances of a template add up; here each allows one send.
    this.#subscriptions.set(templateId, {
      longTerm: longTerm || current?.longTerm === true,
      left: (current?.left ?? 0) + 1,
    });
  }

  /** Delivers a subscribe message, using up a one-time acceptance; 43101 without one. */
  deliverSubscribe(entry: Omit<Extract<InboxEntry, { kind: "subscribe" }>, "kind" | "at">): void {
    const subscription = this.#subscriptions.get(entry.templateId);
    if (subscription === undefined || (!subscription.longTerm && subscription.left <= 0)) throw new ApiFailure(43101);
    if (!subscription.longTerm) subscription.left--;
    this.#record({ kind: "subscribe", ...entry, at: this.#now() });
    this.#sent.push({ templateId: entry.templateId, msgid: entry.msgid });
  }

  /** The subscribe messages sent since the last call, for their `subscribe_msg_sent_event` pushes. */
  takeSent(): Array<{ templateId: string; msgid: string }> {
    return this.#sent.splice(0);
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
