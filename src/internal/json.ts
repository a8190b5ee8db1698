/**
 * Reading JSON text that should hold an object (a push body, a stored record, an API body).
 * Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */

/**
 * The object JSON text holds, or `undefined` when the text is not JSON or holds anything else
 * (an array, a string, a number, `null`).
 *
 * @param text JSON text
 * @returns the object, or `undefined`
 * @example Objects only
 * ```ts
 * import { jsonObject } from "./json.ts";
 * console.log(jsonObject('{"a":1}'), jsonObject("[1]"), jsonObject("{oops")); // { a: 1 } undefined undefined
 * ```
 */
export function jsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}
