/**
 * Reading JSON text that should hold an object (a push body, a stored record, an API body).
 * Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */
import type { KeyValueStore } from "../stores/key_value_store.ts";

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

/**
 * The object stored as JSON under `key`: `undefined` when there is none or it cannot be read
 * (a value another version wrote is absent, and overwritten later). A failing store is
 * reported to `failed` and reads as absent: a cache or a tracker must never fail the call.
 *
 * @param store the store
 * @param key the key
 * @param failed told the store's error
 * @returns the object, or `undefined`
 * @example
 * ```ts
 * import { MemoryStore } from "@kefu/edge";
 * import { storedObject } from "./json.ts";
 * const store = new MemoryStore();
 * await store.set("k", '{"a":1}');
 * console.log(await storedObject(store, "k", () => {}), await storedObject(store, "none", () => {})); // { a: 1 } undefined
 * ```
 */
export async function storedObject(
  store: KeyValueStore,
  key: string,
  failed: (err: unknown) => void,
): Promise<Record<string, unknown> | undefined> {
  let raw: string | null;
  try {
    raw = await store.get(key);
  } catch (err) {
    failed(err);
    return undefined;
  }
  return raw === null ? undefined : jsonObject(raw);
}
