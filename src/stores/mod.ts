/**
 * Key-value stores for the token cache and push deduplication, and conversations in Deno KV
 * and in Durable Objects.
 *
 * @module
 */
export type { KeyValueStore, SetOptions } from "./key_value_store.ts";
export { MemoryStore } from "./memory_store.ts";
export { CloudflareKvStore, KV_MIN_TTL_SECONDS, type KvNamespaceLike } from "./cloudflare_kv_store.ts";
export { type DenoKvAtomicLike, type DenoKvKey, type DenoKvLike, DenoKvStore } from "./deno_kv_store.ts";
export {
  type DenoKvConversationLike,
  type DenoKvConversationOptions,
  DenoKvConversationStore,
  type DenoKvEntryLike,
} from "./deno_kv_conversation_store.ts";
export {
  type DurableObjectNamespaceLike,
  DurableObjectStore,
  objectNameOf,
  type StoreOperation,
} from "./durable_object_store.ts";
export {
  type ConversationDirectoryObject,
  type ConversationObject,
  type DirectoryAddress,
  type DirectoryNotice,
  type DurableObjectConversationOptions,
  DurableObjectConversationStore,
  type ObjectSettings,
} from "./durable_object_conversation_store.ts";
