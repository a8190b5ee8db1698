/**
 * Dead letters: queued pushes whose handler never succeeded within the queue's retries. The
 * dead-letter consumer keeps each one (`DEAD_LETTER_DAYS`, 7 by default; it holds the user's
 * message and openid, so it is kept no longer), and `/api/dead-letters` lists, reads and
 * replays them: a replay puts the stored job back on the queue, where the consumer's done
 * check still runs the handler at most once.
 *
 * Where they are kept: in `WECHAT_KV` on Workers (listed by prefix), in Deno KV on the Deno
 * server, in memory otherwise.
 *
 * @module
 */
import { Hono } from "hono/tiny";
import { zValidator } from "@hono/zod-validator";
// Private helper (a documented exception, see src/internal/README.md): the package's one zod.
import * as z from "../../src/internal/zod.ts";
// Private helper (a documented exception, see src/internal/README.md): the letter's user tag is
// a synchronous hash, so deadLetterOf stays synchronous on every runtime.
import { sha1Hex } from "../../src/internal/sha1.ts";
import type { PushJob } from "../../mod.ts";
import type { AppEnv } from "../types.ts";
import type { Env } from "../env.ts";
import { HttpError } from "../errors.ts";
import { rejectInvalid } from "../schemas.ts";

/** One kept dead letter. */
export interface DeadLetter {
  /** The message's delivery id (see `X-Kefu-Delivery`). */
  id: string;
  /** The push's `MsgType`, when the job had one. */
  msgType?: string | undefined;
  /** The event's name, for events. */
  event?: string | undefined;
  /** How many times the handler ran and failed, when that was recorded. */
  attempts?: number | undefined;
  /** When the letter was kept, ms. */
  deadAt: number;
  /**
   * A hash of the user's OpenID (the message's `FromUserName`), so a user's letters can be
   * deleted with the user without listing their content; absent when the job had no user.
   */
  user?: string | undefined;
  /** When it will be deleted, ms. */
  expiresAt: number;
  /** The job as the queue carried it (the verified message included). */
  job: unknown;
}

/** A page of dead letters, newest first where the store can order them. */
export interface DeadLetterPage {
  /** The letters, without their jobs. */
  letters: Omit<DeadLetter, "job">[];
  /** Pass as `cursor` for the next page; `null` on the last one. */
  cursor: string | null;
}

/** Where dead letters are kept. */
export interface DeadLetterStore {
  /** Keeps a letter until its `expiresAt`. */
  put(letter: DeadLetter): Promise<void>;
  /** A letter by id, or `null`. */
  get(id: string): Promise<DeadLetter | null>;
  /** A page of letters. */
  list(options: { cursor?: string | undefined; limit: number }): Promise<DeadLetterPage>;
  /** Removes a letter (after a replay). */
  delete(id: string): Promise<void>;
  /** Removes every letter of a user (WeChat's deletion events, `DELETE /api/users/:openId`); resolves how many. */
  purgeUser(openId: string): Promise<number>;
}

/**
 * The tag dead letters keep of a user: a hash of the OpenID, not the OpenID.
 *
 * @param openId the user
 * @returns the tag
 * @example
 * ```ts
 * import { deadLetterUser } from "@kefu/edge/worker";
 * console.log(deadLetterUser("o9AgO5Kd5ggOC-bXrbNODIiE3bGY").length); // 40
 * ```
 */
export function deadLetterUser(openId: string): string {
  return sha1Hex(`kefu-edge:dead-letter-user:${openId}`);
}

/** Default for `DEAD_LETTER_DAYS`. */
export const DEFAULT_DEAD_LETTER_DAYS = 7;
/** Prefix of dead letters in a key-value namespace. */
export const DEAD_LETTER_PREFIX = "kefu-edge:dead-letter:";

/** The part of a Workers KV namespace binding dead letters use. */
export interface KvListNamespace {
  /** Reads a value. */
  get(key: string): Promise<string | null>;
  /** Writes a value. */
  put(key: string, value: string, options?: { expirationTtl?: number; metadata?: unknown }): Promise<void>;
  /** Deletes a key. */
  delete(key: string): Promise<void>;
  /** Lists keys by prefix. */
  list(options: { prefix: string; limit?: number; cursor?: string | null }): Promise<{
    keys: { name: string; metadata?: unknown }[];
    list_complete: boolean;
    cursor?: string;
  }>;
}

/**
 * Dead letters in a Workers KV namespace: each under `kefu-edge:dead-letter:<id>`, its summary
 * in the key's metadata so a page of the list is one KV call.
 *
 * @param kv the namespace (`WECHAT_KV`)
 * @returns the store
 * @example
 * ```ts ignore
 * import { kvDeadLetters } from "@kefu/edge/worker";
 * const letters = kvDeadLetters(env.WECHAT_KV);
 * console.log((await letters.list({ limit: 20 })).letters.length);
 * ```
 */
export function kvDeadLetters(kv: KvListNamespace): DeadLetterStore {
  return {
    async put(letter) {
      const ttl = Math.max(60, Math.ceil((letter.expiresAt - Date.now()) / 1000));
      await kv.put(DEAD_LETTER_PREFIX + letter.id, JSON.stringify(letter), {
        expirationTtl: ttl,
        metadata: summary(letter),
      });
    },
    async get(id) {
      return parseLetter(await kv.get(DEAD_LETTER_PREFIX + id));
    },
    async list({ cursor, limit }) {
      const page = await kv.list({ prefix: DEAD_LETTER_PREFIX, limit, cursor: cursor ?? null });
      const letters = page.keys.map((key) => {
        const meta = (key.metadata ?? {}) as Partial<DeadLetter>;
        return { ...meta, id: key.name.slice(DEAD_LETTER_PREFIX.length) } as Omit<DeadLetter, "job">;
      });
      return { letters, cursor: page.list_complete ? null : page.cursor ?? null };
    },
    async delete(id) {
      await kv.delete(DEAD_LETTER_PREFIX + id);
    },
    async purgeUser(openId) {
      // The user tag is in each key's metadata: one list call per 1,000 letters, a delete per match.
      const user = deadLetterUser(openId);
      let deleted = 0;
      let cursor: string | null = null;
      do {
        const page: Awaited<ReturnType<KvListNamespace["list"]>> = await kv.list({
          prefix: DEAD_LETTER_PREFIX,
          cursor,
        });
        for (const key of page.keys) {
          if ((key.metadata as Partial<DeadLetter> | undefined)?.user !== user) continue;
          await kv.delete(key.name);
          deleted++;
        }
        cursor = page.list_complete ? null : page.cursor ?? null;
      } while (cursor !== null);
      return deleted;
    },
  };
}

/** The part of a `Deno.Kv` dead letters use. */
export interface DenoKvListLike {
  /** Reads an entry. */
  get(key: readonly string[]): Promise<{ value: unknown }>;
  /** Writes an entry. */
  set(key: readonly string[], value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  /** Removes an entry. */
  delete(key: readonly string[]): Promise<void>;
  /** Lists entries by key prefix. */
  list(selector: { prefix: readonly string[] }, options?: { limit?: number; cursor?: string; reverse?: boolean }):
    & AsyncIterable<{ key: readonly unknown[]; value: unknown }>
    & { readonly cursor: string };
}

/**
 * Dead letters in Deno KV, under `["kefu-edge-dead-letters", id]`.
 *
 * @param kv the database
 * @param now the clock, ms
 * @returns the store
 * @example
 * ```ts
 * import { denoKvDeadLetters } from "@kefu/edge/worker";
 * const kv = await Deno.openKv(":memory:");
 * const letters = denoKvDeadLetters(kv);
 * await letters.put({ id: "d1", deadAt: Date.now(), expiresAt: Date.now() + 60_000, job: {} });
 * console.log((await letters.list({ limit: 10 })).letters.map((l) => l.id)); // ["d1"]
 * kv.close();
 * ```
 */
export function denoKvDeadLetters(kv: DenoKvListLike, now: () => number = Date.now): DeadLetterStore {
  const PREFIX = ["kefu-edge-dead-letters"] as const;
  const live = (value: unknown): DeadLetter | null => {
    const letter = value as DeadLetter | null;
    return letter !== null && typeof letter === "object" && letter.expiresAt > now() ? letter : null;
  };
  return {
    async put(letter) {
      await kv.set([...PREFIX, letter.id], letter, { expireIn: Math.max(1000, letter.expiresAt - now()) });
    },
    async get(id) {
      return live((await kv.get([...PREFIX, id])).value);
    },
    async list({ cursor, limit }) {
      const entries = kv.list({ prefix: PREFIX }, { limit, ...(cursor === undefined ? {} : { cursor }) });
      const letters: Omit<DeadLetter, "job">[] = [];
      let seen = 0;
      for await (const entry of entries) {
        seen++;
        const letter = live(entry.value);
        if (letter !== null) letters.push(summary(letter));
      }
      return { letters, cursor: seen < limit ? null : entries.cursor || null };
    },
    async delete(id) {
      await kv.delete([...PREFIX, id]);
    },
    async purgeUser(openId) {
      const user = deadLetterUser(openId);
      let deleted = 0;
      for await (const entry of kv.list({ prefix: PREFIX })) {
        if ((entry.value as Partial<DeadLetter> | null)?.user !== user) continue;
        await kv.delete(entry.key as readonly string[]);
        deleted++;
      }
      return deleted;
    },
  };
}

/**
 * Dead letters in this isolate's memory: for tests and for a worker without `WECHAT_KV`
 * (they are lost with the isolate; the log line is then the record).
 *
 * @param now the clock, ms
 * @returns the store
 * @example
 * ```ts
 * import { memoryDeadLetters } from "@kefu/edge/worker";
 * const letters = memoryDeadLetters();
 * await letters.put({ id: "d1", deadAt: Date.now(), expiresAt: Date.now() + 60_000, job: {} });
 * console.log((await letters.get("d1"))?.id); // "d1"
 * ```
 */
export function memoryDeadLetters(now: () => number = Date.now): DeadLetterStore {
  const kept = new Map<string, DeadLetter>();
  const live = (letter: DeadLetter | undefined) => (letter !== undefined && letter.expiresAt > now() ? letter : null);
  return {
    put: (letter) => Promise.resolve(void kept.set(letter.id, letter)),
    get: (id) => Promise.resolve(live(kept.get(id))),
    list({ cursor, limit }) {
      const all = [...kept.values()].filter((l) => live(l) !== null).sort((a, b) => a.id.localeCompare(b.id));
      const start = cursor === undefined ? 0 : all.findIndex((l) => l.id > cursor);
      const page = start === -1 ? [] : all.slice(start, start + limit);
      const last = page.at(-1);
      const more = last !== undefined && all.at(-1) !== last;
      return Promise.resolve({ letters: page.map(summary), cursor: more ? last.id : null });
    },
    delete: (id) => Promise.resolve(void kept.delete(id)),
    purgeUser(openId) {
      const user = deadLetterUser(openId);
      const theirs = [...kept.values()].filter((letter) => letter.user === user);
      for (const letter of theirs) kept.delete(letter.id);
      return Promise.resolve(theirs.length);
    },
  };
}

/**
 * The letter for a job that reached the dead-letter queue.
 *
 * @param job the queue message's body
 * @param fallbackId the queue message's id, for a body without a delivery id
 * @param options `attempts` recorded, `days` to keep it, the clock
 * @returns the letter
 * @example
 * ```ts
 * import { deadLetterOf } from "@kefu/edge/worker";
 * const letter = deadLetterOf({ deliveryId: "ab12", message: { MsgType: "text" } }, "m1", { days: 7, now: () => 0 });
 * console.log(letter.id, letter.msgType, letter.expiresAt); // "ab12" "text" 604800000
 * ```
 */
export function deadLetterOf(
  job: unknown,
  fallbackId: string,
  options: { attempts?: number | undefined; days: number; now: () => number },
): DeadLetter {
  const body = (typeof job === "object" && job !== null ? job : {}) as Partial<PushJob>;
  const message = (typeof body.message === "object" && body.message !== null ? body.message : {}) as Record<
    string,
    unknown
  >;
  const id = typeof body.deliveryId === "string" && /^[0-9a-f]{1,64}$/.test(body.deliveryId)
    ? body.deliveryId
    : fallbackId;
  const deadAt = options.now();
  const openId = typeof message.FromUserName === "string" && message.FromUserName !== ""
    ? message.FromUserName
    : undefined;
  return {
    id,
    msgType: typeof message.MsgType === "string" ? message.MsgType : undefined,
    event: typeof message.Event === "string" ? message.Event : undefined,
    attempts: options.attempts,
    deadAt,
    user: openId === undefined ? undefined : deadLetterUser(openId),
    expiresAt: deadAt + options.days * 24 * 3600 * 1000,
    job,
  };
}

/** What the dead-letter routes need from the app. */
export interface DeadLetterRouteSettings {
  /** Where the env's dead letters are kept. */
  store(env: Env): DeadLetterStore;
  /** The env's push queue; `undefined` when none is bound (nothing to replay onto). */
  queue(env: Env): { send(body: unknown, options?: { contentType?: "json" }): Promise<unknown> } | undefined;
}

/** The query of `GET /api/dead-letters`: `limit` (1–100, default 20) and `cursor`. */
export const deadLetterListQuerySchema: z.ZodMiniType<{ limit?: string | undefined; cursor?: string | undefined }> = z
  .object({
    limit: z.optional(z.string().check(z.regex(/^(?:[1-9]\d?|100)$/, "must be a whole number from 1 to 100"))),
    cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(1024, "must be at most 1024 characters"))),
  });
/** The path parameter of one dead letter: its delivery id. */
export const deadLetterParamsSchema: z.ZodMiniType<{ id: string }> = z.object({
  id: z.string().check(z.regex(/^[0-9a-f]{1,64}$/, "must be a delivery id (hex)")),
});

/**
 * The `/api/dead-letters` routes (behind the API's bearer key): `GET /` a page of letters
 * (`limit` 1–100, default 20; `cursor`), `GET /:id` one letter with its job, and
 * `POST /:id/replay` puts the job back on the queue and removes the letter.
 *
 * @param settings where letters are kept and the queue to replay onto
 * @returns the sub-app
 * @example
 * ```ts
 * import { Hono } from "hono/tiny";
 * import { deadLetterRoutes, memoryDeadLetters } from "@kefu/edge/worker";
 * const letters = memoryDeadLetters();
 * const sent: unknown[] = [];
 * const routes = deadLetterRoutes({ store: () => letters, queue: () => ({ send: async (job) => void sent.push(job) }) });
 * await letters.put({ id: "ab12", deadAt: 0, expiresAt: Date.now() + 60_000, job: { deliveryId: "ab12" } });
 * const res = await new Hono().route("/dead-letters", routes).request("/dead-letters/ab12/replay", { method: "POST" });
 * console.log(res.status, sent.length, await letters.get("ab12")); // 202 1 null
 * ```
 */
export function deadLetterRoutes(settings: DeadLetterRouteSettings): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const noStore = { "cache-control": "no-store" };
  routes.get("/", zValidator("query", deadLetterListQuerySchema, rejectInvalid), async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const page = await settings.store(c.env ?? {}).list({ limit: limit === undefined ? 20 : Number(limit), cursor });
    return c.json(page, 200, noStore);
  });
  routes.get("/:id", zValidator("param", deadLetterParamsSchema, rejectInvalid), async (c) => {
    const letter = await settings.store(c.env ?? {}).get(c.req.valid("param").id);
    if (letter === null) throw new HttpError(404, "not_found", "No such dead letter (it may have expired)");
    return c.json(letter, 200, noStore);
  });
  routes.post("/:id/replay", zValidator("param", deadLetterParamsSchema, rejectInvalid), async (c) => {
    const env = c.env ?? {};
    const queue = settings.queue(env);
    if (queue === undefined) {
      throw new HttpError(503, "queue_not_configured", "No queue is bound (KEFU_QUEUE): nothing to replay onto");
    }
    const store = settings.store(env);
    const { id } = c.req.valid("param");
    const letter = await store.get(id);
    if (letter === null) throw new HttpError(404, "not_found", "No such dead letter (it may have expired)");
    await queue.send(letter.job, { contentType: "json" });
    await store.delete(id);
    return c.json({ id, replayed: true }, 202);
  });
  return routes;
}

function summary(letter: DeadLetter): Omit<DeadLetter, "job"> {
  const { job: _job, ...rest } = letter;
  return rest;
}

function parseLetter(text: string | null): DeadLetter | null {
  if (text === null) return null;
  try {
    const letter = JSON.parse(text) as DeadLetter;
    return typeof letter === "object" && letter !== null && typeof letter.id === "string" ? letter : null;
  } catch {
    return null;
  }
}
