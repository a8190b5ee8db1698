// Private: time spans and counters the emulator's limits are expressed in.

export const SECOND = 1000;
export const MINUTE: number = 60 * SECOND;
export const HOUR: number = 60 * MINUTE;
export const DAY: number = 24 * HOUR;

// WeChat's daily quotas roll over at midnight Beijing time (UTC+8, no DST).
// [UNCERTAIN] the docs say "per day" without a zone; Beijing midnight is the usual reading.
const BEIJING_OFFSET = 8 * HOUR;

/** The Beijing calendar day `ms` falls on, as a day number. */
export function beijingDay(ms: number): number {
  return Math.floor((ms + BEIJING_OFFSET) / DAY);
}

/** The minute `ms` falls on, as a minute number. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE);
}

/** A call counter that allows `limit` calls per bucket (a day, a minute) and starts over in the next bucket. */
export class BucketQuota {
  readonly #limit: number;
  readonly #bucketOf: (ms: number) => number;
  #bucket = Number.NaN;
  #used = 0;

  constructor(limit: number, bucketOf: (ms: number) => number) {
    this.#limit = limit;
    this.#bucketOf = bucketOf;
  }

  /** Whether one more call fits at `ms` (nothing is counted). */
  allows(ms: number): boolean {
    return this.#bucketOf(ms) !== this.#bucket || this.#used < this.#limit;
  }

  /** Counts one call at `ms`; returns false (and counts nothing) when the bucket is full. */
  take(ms: number): boolean {
    const bucket = this.#bucketOf(ms);
    if (bucket !== this.#bucket) {
      this.#bucket = bucket;
      this.#used = 0;
    }
    if (this.#used >= this.#limit) return false;
    this.#used++;
    return true;
  }
}
