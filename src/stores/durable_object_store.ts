import type { KeyValueStore, SetOptions } from "./key_value_store.ts";

/**
 * The part of a Durable Object namespace binding that {@link DurableObjectStore} uses.
 * Declared structurally so the core type-checks without Workers' types; pass the binding
 * (`env.KEFU_STORE`) of the `KefuStore` class that `kefu-edge/worker` exports.
 */
export interface DurableObjectNamespaceLike {
  /** The id of the object with this name. */
  idFromName(name: string): unknown;
  /** A stub of the object with this id. */
  // deno-lint-ignore no-explicit-any
  get(id: any): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/** One operation on a `KefuStore` object, as the store sends it. */
export interface StoreOperation {
  /** What to do. */
  op: "get" | "set" | "delete" | "setIfAbsent" | "compareAndSet";
  /** The key. */
  key: string;
  /** For `set`, `setIfAbsent` and `compareAndSet` (`null` there removes the entry). */
  value?: string | null;
  /** For `compareAndSet`: the value the entry must hold. */
  expected?: string;
  /** For `set` and `setIfAbsent`: seconds until the entry expires. */
  ttlSeconds?: number;
}

/** Objects other keys are spread over. */
const SHARDS = 16;
// kefu-edge's own keys name the AppID and the user: `kefu-edge:<area>:<appId>:<u.openid|h.hash>:…`.
const USER_KEY = /^kefu-edge:[a-z-]+:([^:]+):([uh]\.[^:]+)(?::|$)/;

/**
 * The name of the object that holds `key`: one object per mini-program user for
 * kefu-edge's per-user keys (claims and marks of the user's messages, the user's send
 * window), so each user's deliveries are serialised in one place; other keys are spread
 * over 16 objects by a hash of the key.
 *
 * @param key a store key
 * @returns the object's name
 * @example
 * ```ts
 * import { objectNameOf } from "@kefu/edge";
 * console.log(objectNameOf("kefu-edge:push:wx1:u.o9AgO5Kd:msg:1")); // "user:wx1:u.o9AgO5Kd"
 * ```
 */
export function objectNameOf(key: string): string {
  const user = USER_KEY.exec(key);
  if (user !== null) return userObjectName(user[1]!, user[2]!);
  let hash = 0x811c9dc5; // FNV-1a: cheap, stable, well spread
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return `shard:${(hash >>> 0) % SHARDS}`;
}

/**
 * The name of a mini-program user's own object: it holds the user's keys under
 * {@link DurableObjectStore} and the user's conversation under `DurableObjectConversationStore`.
 *
 * @param appId the mini program's AppID
 * @param user the user part of store keys (`u.<openid>` or `h.<hash>`)
 * @returns the object's name
 */
export function userObjectName(appId: string, user: string): string {
  return `user:${appId}:${user}`;
}

/**
 * Stubs of a namespace's objects by name, a new one per call: workerd binds a stub to the
 * request that made it, and one kept for the next request fails there ("Cannot perform I/O
 * on behalf of a different request"). Making a stub from an id is cheap and does no I/O;
 * the ids, plain values, are kept (the last 1024 names).
 */
export class ObjectStubs {
  readonly #namespace: DurableObjectNamespaceLike;
  readonly #ids = new Map<string, unknown>();

  /**
   * Wraps a namespace binding.
   *
   * @param namespace the Durable Object namespace binding
   */
  constructor(namespace: DurableObjectNamespaceLike) {
    this.#namespace = namespace;
  }

  /**
   * A new stub of the object named `name`.
   *
   * @param name the object's name
   * @returns the stub
   */
  get(name: string): ReturnType<DurableObjectNamespaceLike["get"]> {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#namespace.idFromName(name);
      if (this.#ids.size >= 1024) this.#ids.delete(this.#ids.keys().next().value!);
      this.#ids.set(name, id);
    }
    return this.#namespace.get(id);
  }
}

/**
 * A {@link KeyValueStore} over Durable Objects (`KefuStore`, SQLite-backed): strongly
 * consistent everywhere, and atomic — {@link DurableObjectStore.setIfAbsent} is a single
 * SQL statement inside the object that owns the key. The worker uses it for push claims
 * and dedupe marks, send windows and idempotency records when the binding is present.
 *
 * @example
 * ```ts ignore
 * import { DurableObjectStore } from "./durable_object_store.ts";
 * const store = new DurableObjectStore(env.KEFU_STORE);
 * await store.setIfAbsent("kefu-edge:push:wx1:u.o1:msg:1", "lease:1", { ttlSeconds: 60 });
 * ```
 */
export class DurableObjectStore implements KeyValueStore {
  readonly #stubs: ObjectStubs;

  /**
   * Wraps the namespace binding of the `KefuStore` class.
   *
   * @param namespace the Durable Object namespace binding
   */
  constructor(namespace: DurableObjectNamespaceLike) {
    this.#stubs = new ObjectStubs(namespace);
  }

  /**
   * Reads `key`.
   *
   * @param key the key to read
   * @returns the value, or `null` when absent or expired
   */
  async get(key: string): Promise<string | null> {
    const { value } = await this.#send({ op: "get", key }) as { value: string | null };
    return value;
  }

  /**
   * Writes `key`, optionally expiring.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry
   */
  async set(key: string, value: string, options: SetOptions = {}): Promise<void> {
    await this.#send({ op: "set", key, value, ...ttl(options) });
  }

  /**
   * Removes `key`.
   *
   * @param key the key to remove
   */
  async delete(key: string): Promise<void> {
    await this.#send({ op: "delete", key });
  }

  /**
   * Writes `key` unless a live entry is there, atomically: the object that owns the key
   * checks and writes in one statement, so of any number of concurrent callers, in any
   * isolate or location, exactly one resolves `true`.
   *
   * @param key the key to write
   * @param value the value
   * @param options `ttlSeconds`: expiry
   * @returns whether this call wrote the entry
   */
  async setIfAbsent(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    const { written } = await this.#send({ op: "setIfAbsent", key, value, ...ttl(options) }) as { written: boolean };
    return written;
  }

  /**
   * Replaces (or, with `null`, removes) the live entry under `key` if it still holds
   * `expected`: the object that owns the key checks and writes in one statement.
   *
   * @param key the key
   * @param expected the value the entry must hold
   * @param value the new value, or `null` to remove the entry
   * @param options `ttlSeconds` of the new value
   * @returns whether the entry held `expected` (and was replaced)
   */
  async compareAndSet(key: string, expected: string, value: string | null, options: SetOptions = {}): Promise<boolean> {
    const operation: StoreOperation = { op: "compareAndSet", key, expected, value, ...ttl(options) };
    const { written } = await this.#send(operation) as { written: boolean };
    return written;
  }

  async #send(operation: StoreOperation): Promise<unknown> {
    const stub = this.#stubs.get(objectNameOf(operation.key));
    const response = await stub.fetch("https://kefu-store/", { method: "POST", body: JSON.stringify(operation) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`Durable Object store ${operation.op} failed: HTTP ${response.status}`);
    }
    return await response.json();
  }
}

function ttl(options: SetOptions): { ttlSeconds?: number } {
  return options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds };
}
