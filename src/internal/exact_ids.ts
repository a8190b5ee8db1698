/**
 * WeChat's message ids are unsigned 64-bit integers, sent in JSON as bare numbers, which
 * `JSON.parse` would round to a double. This rewrites `"<name>": <integer>` as
 * `"<name>": "<integer>"` for the given field names before parsing (Node 20 has no
 * `JSON.parse` source access), leaving the same text inside string values alone. Private to
 * kefu-edge (see README.md beside this file).
 *
 * @param text JSON text
 * @param pattern from {@link idFields}: which field names to quote
 * @returns the text with those fields' integers quoted
 * @example
 * ```ts
 * import { idFields, quoteIds } from "./exact_ids.ts";
 * console.log(JSON.parse(quoteIds('{"msgid":1700827132819554304}', idFields(["msgid"]))).msgid); // "1700827132819554304"
 * ```
 */
export function quoteIds(text: string, pattern: IdFields): string {
  if (!pattern.names.some((name) => text.includes(`"${name}"`))) return text;
  return text.replace(pattern.regex, (match, name: string, colon: string, digits: string, offset: number) => {
    // A `"` after an odd run of backslashes is escaped: the match is inside a string value.
    let backslashes = 0;
    while (offset - backslashes > 0 && text.charCodeAt(offset - backslashes - 1) === 0x5c) backslashes++;
    return backslashes % 2 === 1 ? match : `"${name}"${colon}"${digits}"`;
  });
}

/** A compiled set of id field names for {@link quoteIds}. */
export interface IdFields {
  /** The names. */
  readonly names: readonly string[];
  /** `"name": <integer>`, the lookahead leaving floats and anything odd to JSON.parse. */
  readonly regex: RegExp;
}

/**
 * Compiles the field names whose integers {@link quoteIds} keeps exact.
 *
 * @param names field names, as they appear in the JSON (case matters)
 * @returns the pattern
 */
export function idFields(names: readonly string[]): IdFields {
  const alternatives = names.map((n) => n.replace(/[^A-Za-z0-9_]/g, "")).join("|");
  return { names, regex: new RegExp(`"(${alternatives})"(\\s*:\\s*)(-?(?:0|[1-9]\\d*))(?=\\s*[,}])`, "g") };
}
