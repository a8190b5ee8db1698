/**
 * JSON with object keys sorted at every level: the same value always gives the same text,
 * whatever order its fields were written in. Used for push dedupe keys and idempotency
 * records. Private to kefu-edge (see README.md beside this file).
 *
 * @param value a JSON value
 * @returns its canonical JSON text
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * console.log(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })); // {"a":[{"c":3,"d":2}],"b":1}
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
