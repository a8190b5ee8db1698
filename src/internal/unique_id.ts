import { toHex } from "./hex.ts";

/**
 * An id no other call returns, in this isolate or any other: a random part drawn once per
 * isolate (random bytes cost more than the rest of a push claim) and a counter. Private to
 * kefu-edge (see README.md beside this file).
 *
 * @returns 24 hex digits, a dot, and a base-36 counter
 * @example
 * ```ts
 * import { uniqueId } from "./unique_id.ts";
 * console.log(uniqueId() !== uniqueId()); // true
 * ```
 */
export function uniqueId(): string {
  isolate ??= toHex(crypto.getRandomValues(new Uint8Array(12)));
  return `${isolate}.${(counter++).toString(36)}`;
}

let isolate: string | undefined;
let counter = 0;
