/**
 * Deadlines for calls that may never settle (a hung store, a queue call cut off). Private to
 * kefu-edge (see README.md beside this file).
 *
 * @module
 */

/** A call that did not settle in time; its `name` is `TimeoutError`, like `AbortSignal.timeout`'s. */
export class DeadlineError extends Error {
  /**
   * @param what the call that took too long (no content, no key)
   * @param ms the deadline it missed
   */
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * Settles as `promise` does, or rejects with a {@link DeadlineError} after `ms`. The call
 * itself is not cancelled (a store call cannot be): its late result is dropped, and a late
 * rejection is swallowed so it never surfaces as unhandled.
 *
 * @param promise the call
 * @param ms the deadline; `Infinity` waits forever
 * @param what names the call in the error
 * @returns what the call resolved to
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms)) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
