/**
 * The push receiver's exactly-once handling of WeChat's pushes over a {@link KeyValueStore}.
 * Private to kefu-edge (see README.md beside this file). Each message has one entry, keyed by
 * its dedupe key, that moves through these states:
 *
 * - absent → `lease:<token>`: a delivery claimed it (atomically, with `setIfAbsent`) and runs
 *   the handler; the lease expires after `leaseSeconds`, so a crashed holder is taken over;
 * - absent → `queued:<reply>`: queue mode: claimed and enqueued, already answered;
 * - → `done:<reply>`: the handler succeeded; retries are answered with the same reply;
 * - a lease whose handler failed is released (deleted), so WeChat's retry runs it again.
 *
 * A queue consumer takes a second entry, `<key>:run`, while it runs the handler, so that
 * two deliveries of one queued job never run it at once.
 *
 * On a store without `setIfAbsent` (Workers KV) a claim is a read then a write: best effort.
 * A failing store never loses a message: it is logged, and the handler runs.
 *
 * @module
 */
import type { KeyValueStore, SetOptions } from "../stores/key_value_store.ts";
import type { Logger } from "../logger.ts";
import { uniqueId } from "./unique_id.ts";
import { Reply } from "../push/reply.ts";

/** What the store says about a message. */
export type ClaimState =
  | { state: "absent" }
  | { state: "lease"; token: string }
  | { state: "queued"; reply: Reply | undefined }
  | { state: "done"; reply: Reply | undefined };

/** The claims of one receiver: its store, its TTLs and its logger. */
export class Claims {
  readonly #store: KeyValueStore;
  readonly #logger: Logger;

  /**
   * @param store where claims and marks live
   * @param logger receives store failures (never message content)
   */
  constructor(store: KeyValueStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** The store, for the per-isolate flight map. */
  get store(): KeyValueStore {
    return this.#store;
  }

  /** Reads the state of `key`; an unreadable store reads as absent (the handler then runs: at least once). */
  async read(key: string): Promise<ClaimState> {
    let value: string | null;
    try {
      value = await this.#store.get(key);
    } catch (err) {
      this.#warn("read", err);
      return { state: "absent" };
    }
    return parseState(value);
  }

  /**
   * Writes `value` under `key` if nothing is there: atomically where the store can.
   * A failing store counts as won (the handler runs rather than the message being lost).
   */
  async claim(key: string, value: string, options: SetOptions): Promise<boolean> {
    try {
      if (this.#store.setIfAbsent !== undefined) return await this.#store.setIfAbsent(key, value, options);
      if (await this.#store.get(key) !== null) return false;
      await this.#store.set(key, value, options);
      return true;
    } catch (err) {
      this.#warn("claim", err);
      return true;
    }
  }

  /** Overwrites `key` (a done mark); a failure is logged. */
  async write(key: string, value: string, options: SetOptions): Promise<void> {
    try {
      await this.#store.set(key, value, options);
    } catch (err) {
      this.#warn("write", err);
    }
  }

  /** Deletes `key` if it still holds `value` (our lease), so a retry can claim it. */
  async release(key: string, value: string): Promise<void> {
    try {
      if (await this.#store.get(key) === value) await this.#store.delete(key);
    } catch (err) {
      this.#warn("release", err);
    }
  }

  #warn(operation: string, err: unknown): void {
    const name = err instanceof Error ? err.name : typeof err;
    this.#logger.warn(`Push dedupe store ${operation} failed: ${name}`);
  }
}

/** The value of a lease held by this delivery: unique across deliveries and isolates. */
export function leaseValue(): string {
  return `lease:${uniqueId()}`;
}

/** The value of a done mark or queued marker, with the reply WeChat was (or will be) given. */
export function markValue(state: "done" | "queued", reply: Reply | undefined): string {
  return `${state}:${reply?.type ?? "success"}`;
}

function parseState(value: string | null): ClaimState {
  if (value === null) return { state: "absent" };
  const colon = value.indexOf(":");
  const head = colon === -1 ? value : value.slice(0, colon);
  const rest = colon === -1 ? "" : value.slice(colon + 1);
  if (head === "lease") return { state: "lease", token: rest };
  if (head === "queued") return { state: "queued", reply: Reply.fromType(rest) };
  if (head === "done") return { state: "done", reply: Reply.fromType(rest) };
  // Marks written before claims existed hold the reply type alone.
  return { state: "done", reply: Reply.fromType(value) };
}
