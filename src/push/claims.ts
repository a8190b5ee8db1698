/**
 * Claims: the delivery's exactly-once handling of WeChat's pushes over a {@link KeyValueStore}
 * (or a conversation shaped as one). Not part of the public API. Each message has one entry,
 * keyed by its dedupe key, that moves through these states:
 *
 * - absent → `lease:<id>:<expiresAt>`: a delivery claimed it (atomically, with `setIfAbsent`)
 *   and runs the handler. The lease is short (5 s by default) and renewed while the handler
 *   runs, so the message of a holder that died is free again before WeChat's next try;
 * - absent → `enqueuing:<id>:<expiresAt>:<reply>`: queue mode, while the job is being put on
 *   the queue; short, so a delivery cut off before the queue took the job leaves nothing that
 *   would answer WeChat's retries without enqueueing;
 * - `enqueuing` → `queued:<reply>`: the queue took the job; WeChat's retries get `<reply>`
 *   (after a failed run of the consumer, `queued:<reply>:<failed runs>:<when the job comes back>`);
 * - `queued` → `dead:<reply>:<failed runs>`: the job reached the dead-letter queue;
 * - → `done:<reply>`: the handler succeeded; retries are answered with the same reply;
 * - a lease whose handler failed is released (deleted), so WeChat's retry runs it again.
 *
 * A queue consumer takes a second entry, `<key>:run`, a lease like the first, while it runs
 * the handler, so that two deliveries of one queued job never run it at once.
 *
 * Every store call has a deadline: a store that hangs counts as failed. A failed claim counts
 * as won (the handler runs: at least once rather than never); each failure is noted in the
 * delivery's {@link StoreFaults}, which the receiver logs once per message.
 *
 * @module
 */
import type { KeyValueStore, SetOptions } from "../stores/key_value_store.ts";
import { uniqueId } from "../internal/unique_id.ts";
import { withDeadline } from "../internal/deadline.ts";
import { Reply } from "./reply.ts";

/** What the store says about a message. */
export type ClaimState =
  | { state: "absent" }
  | { state: "lease"; value: string; expiresAt: number | undefined }
  | { state: "enqueuing"; value: string; expiresAt: number; reply: Reply | undefined }
  | { state: "queued"; reply: Reply | undefined; failedAttempts: number | undefined; dead?: boolean }
  | { state: "done"; reply: Reply | undefined };

/** The store operations of one delivery that failed, logged once for the message. */
export interface StoreFaults {
  /** The failed operations, in order (`claim`, `read`, `mark`, `renew`, `release`, `window`...). */
  operations: string[];
  /** The first failure's error name (`TimeoutError` for a store that did not answer). */
  error?: string | undefined;
}

/** A fresh record of a delivery's store failures. */
export function noFaults(): StoreFaults {
  return { operations: [] };
}

/** Notes a failed store operation. */
export function noteFault(faults: StoreFaults, operation: string, err: unknown): void {
  faults.operations.push(operation);
  faults.error ??= err instanceof Error ? err.name : typeof err;
}

/** A lease this delivery holds: its current value changes with every renewal. */
export interface Lease {
  /** The value in the store now. */
  value: string;
  /** Whether a renewal found the lease gone (expired and taken, or the entry replaced). */
  lost: boolean;
}

/** The claims of one receiver: its store and the deadline of each store call. */
export class Claims {
  readonly #store: KeyValueStore;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  /**
   * @param store where claims and marks live
   * @param options `timeoutMs`: the deadline of each store call; `now`: the clock (ms)
   */
  constructor(store: KeyValueStore, options: { timeoutMs: number; now: () => number }) {
    this.#store = store;
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now;
  }

  /** Reads the raw value of `key`; an unreadable store reads as `null` (noted). */
  async readRaw(key: string, faults: StoreFaults, operation = "read"): Promise<string | null> {
    try {
      return await this.#call(this.#store.get(key), operation, faults);
    } catch (err) {
      noteFault(faults, operation, err);
      return null;
    }
  }

  /** A new lease value, expiring `ttlSeconds` from now. */
  lease(ttlSeconds: number): Lease {
    return { value: leaseValue("lease", uniqueId(), this.#now() + ttlSeconds * 1000), lost: false };
  }

  /** A new `enqueuing` value, expiring `ttlSeconds` from now, with the reply WeChat will be given. */
  enqueuing(ttlSeconds: number, reply: Reply | undefined): string {
    return `${leaseValue("enqueuing", uniqueId(), this.#now() + ttlSeconds * 1000)}:${reply?.type ?? "success"}`;
  }

  /** Reads the state of `key`; an unreadable store reads as absent (the handler then runs: at least once). */
  async read(key: string, faults: StoreFaults): Promise<ClaimState> {
    return parseState(await this.readRaw(key, faults));
  }

  /**
   * Writes `value` under `key` if nothing is there: atomically where the store can.
   * A failing store counts as won (the handler runs rather than the message being lost).
   */
  async claim(
    key: string,
    value: string,
    options: SetOptions,
    faults: StoreFaults,
    operation = "claim",
  ): Promise<boolean> {
    try {
      if (this.#store.setIfAbsent !== undefined) {
        return await this.#call(this.#store.setIfAbsent(key, value, options), operation, faults);
      }
      if (await this.#call(this.#store.get(key), operation, faults) !== null) return false;
      await this.#call(this.#store.set(key, value, options), operation, faults);
      return true;
    } catch (err) {
      noteFault(faults, operation, err);
      return true;
    }
  }

  /** Overwrites `key` (a mark); a failure is noted. */
  async write(key: string, value: string, options: SetOptions, faults: StoreFaults, operation = "mark"): Promise<void> {
    try {
      await this.#call(this.#store.set(key, value, options), operation, faults);
    } catch (err) {
      noteFault(faults, operation, err);
    }
  }

  /**
   * Replaces `key`'s value `expected` with `value` (`null`: deletes it), atomically where the
   * store can (`compareAndSet`), else a read then a write. Resolves whether it did; a failing
   * store resolves `false` and is noted.
   */
  async replace(
    key: string,
    expected: string,
    value: string | null,
    options: SetOptions,
    faults: StoreFaults,
    operation: string,
  ): Promise<boolean> {
    try {
      if (this.#store.compareAndSet !== undefined) {
        return await this.#call(this.#store.compareAndSet(key, expected, value, options), operation, faults);
      }
      if (await this.#call(this.#store.get(key), operation, faults) !== expected) return false;
      if (value === null) await this.#call(this.#store.delete(key), operation, faults);
      else await this.#call(this.#store.set(key, value, options), operation, faults);
      return true;
    } catch (err) {
      noteFault(faults, operation, err);
      return false;
    }
  }

  /** Deletes `key` if it still holds our value, so a retry can claim it. */
  async release(key: string, value: string, faults: StoreFaults): Promise<void> {
    await this.replace(key, value, null, {}, faults, "release");
  }

  /**
   * Keeps `lease` on `key` alive while `work` runs: renewed every 40% of `ttlSeconds`, each
   * renewal a compare-and-set from the value it last wrote, so a lease that expired and was
   * taken by another delivery is never taken back. Renewal stops when `work` settles or
   * `until` resolves (the delivery was answered), whichever comes first; a holder that dies
   * stops renewing with it, and its lease expires `ttlSeconds` later.
   */
  hold<T>(
    key: string,
    lease: Lease,
    ttlSeconds: number,
    faults: StoreFaults,
    work: Promise<T>,
    until?: Promise<unknown>,
  ): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let renewing: Promise<void> = Promise.resolve();
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
    };
    const renew = async () => {
      if (stopped || lease.lost) return;
      const next = leaseValue("lease", leaseId(lease.value), this.#now() + ttlSeconds * 1000);
      const failures = faults.operations.length;
      const renewed = await this.replace(key, lease.value, next, { ttlSeconds }, faults, "renew");
      if (renewed) lease.value = next;
      // Gone (not merely unreachable): another delivery may hold it now; stop renewing.
      else if (faults.operations.length === failures) lease.lost = true;
      if (!stopped && !lease.lost) timer = setTimeout(() => void (renewing = renew()), ttlSeconds * 400);
    };
    timer = setTimeout(() => void (renewing = renew()), ttlSeconds * 400);
    until?.then(stop, stop);
    // A renewal under way when the work ends settles first, so `lease.value` is what the
    // store holds when the caller marks or releases the push.
    return work.finally(async () => {
      stop();
      await renewing;
    });
  }

  /**
   * The call within its deadline. Once a call of this delivery has failed, the store is taken
   * as down for the rest of it: later calls are still made (they land if the store is back)
   * but not waited for, so a store that hangs costs one deadline per delivery, not one per call.
   */
  #call<T>(promise: Promise<T>, operation: string, faults: StoreFaults): Promise<T> {
    return withDeadline(promise, this.deadlineFor(faults), `The push store's ${operation}`);
  }

  /** How long the next store call of a delivery may take: 0 once one of its calls has failed. */
  deadlineFor(faults: StoreFaults): number {
    return faults.operations.length > 0 ? 0 : this.#timeoutMs;
  }
}

/**
 * The value of a done mark or queued marker, with the reply WeChat was (or will be) given and,
 * on a queued marker, how many runs of the consumer's handler have failed so far and when the
 * queue brings the job back. `dead`: the job reached the dead-letter queue (a replay runs it).
 */
export function markValue(
  state: "done" | "queued" | "dead",
  reply: Reply | undefined,
  failedAttempts?: number,
  retryAt?: number,
): string {
  const base = `${state}:${reply?.type ?? "success"}`;
  if (failedAttempts === undefined) return base;
  return retryAt === undefined ? `${base}:${failedAttempts}` : `${base}:${failedAttempts}:${Math.ceil(retryAt)}`;
}

/** How long a lease value says it has left at `now`, in ms (0 when expired; the full `fallbackMs` when it does not say). */
export function remainingMs(state: ClaimState, now: number, fallbackMs: number): number {
  if (state.state !== "lease" && state.state !== "enqueuing") return 0;
  if (state.expiresAt === undefined) return fallbackMs;
  return Math.max(0, state.expiresAt - now);
}

function leaseValue(kind: "lease" | "enqueuing", id: string, expiresAt: number): string {
  return `${kind}:${id}:${Math.ceil(expiresAt)}`;
}

function leaseId(value: string): string {
  const parts = value.split(":");
  return parts[1] ?? uniqueId();
}

/** The state a claim's value says. */
export function parseState(value: string | null): ClaimState {
  if (value === null) return { state: "absent" };
  const parts = value.split(":");
  const head = parts[0];
  if (head === "lease") {
    // Leases written before they carried their expiry: `lease:<id>`.
    const expiresAt = parts.length >= 3 ? Number(parts[2]) : Number.NaN;
    return { state: "lease", value, expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined };
  }
  if (head === "enqueuing") {
    return { state: "enqueuing", value, expiresAt: Number(parts[2]) || 0, reply: Reply.fromType(parts[3] ?? "") };
  }
  if (head === "queued" || head === "dead") {
    const failed = Number(parts[2]);
    return {
      state: "queued",
      reply: Reply.fromType(parts[1] ?? ""),
      failedAttempts: Number.isSafeInteger(failed) && failed > 0 ? failed : undefined,
      dead: head === "dead",
    };
  }
  if (head === "done") return { state: "done", reply: Reply.fromType(parts[1] ?? "") };
  // Marks written before claims existed hold the reply type alone.
  return { state: "done", reply: Reply.fromType(value) };
}
