/**
 * The worker's bindings and variables, and their validation. Variables are read
 * lazily, one at a time, when a route needs them: a missing or malformed variable
 * fails only the routes that use it, with a 503 that names the variable and never
 * shows its value.
 *
 * @module
 */
// Private helpers (a documented exception, see src/internal/README.md): the package's one
// zod, the URL schema the SDK's link payloads are checked with, and the one the SDK checks its
// `baseUrl` with (so a WECHAT_API_BASE the SDK would refuse on every call is refused here, by name).
import * as z from "../src/internal/zod.ts";
import { apiBaseSchema, httpUrlSchema } from "../src/internal/field_schemas.ts";
import {
  type DurableObjectNamespaceLike,
  type KvNamespaceLike,
  type SubscribeMessagePayload,
  subscribeMessageSchema,
} from "../mod.ts";
import type { QueueLike } from "./queue_types.ts";
import type { MediaBucketLike } from "./media_keys.ts";

/**
 * Bindings and variables of the worker (`wrangler.toml` `[vars]`, secrets, `.dev.vars`,
 * or the process environment on Deno and Bun). Every variable is optional here;
 * each route checks the ones it needs.
 */
export interface Env {
  /** KV namespace for access tokens (and push dedupe marks when `KEFU_STORE` is not bound). */
  WECHAT_KV?: KvNamespaceLike;
  /**
   * Durable Object namespace of the `KefuStore` class: push claims and dedupe marks (atomic,
   * so every message is handled once across isolates), idempotency records.
   */
  KEFU_STORE?: DurableObjectNamespaceLike;
  /** Queue producer: verified pushes are enqueued and answered at once; the worker consumes them. */
  KEFU_QUEUE?: QueueLike;
  /**
   * R2 bucket for copies of media: users' images are copied there after WeChat was answered,
   * uploads kept there too, so the history can show them past WeChat's 3 days.
   */
  KEFU_MEDIA?: MediaBucketLike;
  /** The worker's static assets (`[assets]` in wrangler.toml): the agent inbox's page files. */
  ASSETS?: AssetsLike;
  /** The mini program's AppID. */
  WECHAT_APPID?: string;
  /** The AppSecret (a secret). */
  WECHAT_SECRET?: string;
  /** The message-push Token (a secret). */
  WECHAT_TOKEN?: string;
  /** The message-push EncodingAESKey: 43 letters or digits; unset for plain mode. */
  WECHAT_AES_KEY?: string;
  /** Bearer key for `/api/*` (a secret). Unset: every `/api` call is refused. */
  API_KEY?: string;
  /**
   * Upstream origin instead of `https://api.weixin.qq.com` (a path is kept); no query,
   * fragment or credentials.
   */
  WECHAT_API_BASE?: string;
  /** `on` (local development only): the in-process emulator is the upstream. */
  WECHAT_EMULATOR?: string;
  /** `on`: the default push handler hands user messages to the customer-service tool. */
  TRANSFER_TO_KF?: string;
  /** Text the default push handler sends when a user enters the session. */
  WELCOME_TEXT?: string;
  /** URL the default push handler POSTs every verified message to. */
  FORWARD_URL?: string;
  /** HMAC-SHA256 key that signs forwarded messages (required with FORWARD_URL). */
  FORWARD_SECRET?: string;
  /**
   * How long `FORWARD_URL` may take to answer in the queue's consumer, in ms: an integer from
   * 1000 to 600000; default 30000. While WeChat waits (no queue) a forward has 4 s.
   */
  FORWARD_TIMEOUT_MS?: string | number;
  /** `on`: `POST /api/messages` refuses sends the window tracker knows are out of window (409). */
  CHECK_WINDOW?: string;
  /**
   * Days a dead letter (a queued push whose handler never succeeded: it holds the user's message
   * and openid) is kept for `/api/dead-letters`; 1–90, default 7.
   */
  DEAD_LETTER_DAYS?: string;
  /** Days a conversation's history is kept (the store deletes older entries itself); 1–3650, default 30. */
  HISTORY_DAYS?: string;
  /**
   * The AI bot's model: an OpenAI-compatible Chat Completions base URL (`https://api.deepseek.com/v1`).
   * Set, the bot answers users (it needs conversations: `KEFU_STORE`, or the Deno server).
   */
  BOT_URL?: string;
  /** The model's name (`deepseek-chat`, `qwen-plus`...); required with `BOT_URL`. */
  BOT_MODEL?: string;
  /** The model's API key (a secret); unset for a local model that takes none. */
  BOT_API_KEY?: string;
  /** The bot's instructions; default a Chinese prompt: an AI assistant of this mini program that asks for a person when it cannot help. */
  BOT_SYSTEM_PROMPT?: string;
  /** Longest wait for the model, in ms: an integer from 1000 to 600000; default 25000. */
  BOT_TIMEOUT_MS?: string | number;
  /** Sent once when the model fails or times out; unset: the conversation goes to a person. */
  BOT_FALLBACK_TEXT?: string;
  /** `off`: the bot's messages are not labelled AI-generated (`aimsgcontext`); default `on`. */
  AI_LABEL?: string;
  /** `on`: each answer is checked with WeChat's msgSecCheck before it goes out; default `off`. */
  BOT_CONTENT_CHECK?: string;
  /**
   * Your Chatwoot's address (`https://chat.example.com`): when set, every conversation is
   * mirrored to Chatwoot and agents answer from there (see docs/chatwoot.md).
   */
  CHATWOOT_URL?: string;
  /** The Chatwoot account's id (the number after `/app/accounts/` in Chatwoot's addresses). */
  CHATWOOT_ACCOUNT_ID?: string | number;
  /** The id of the API inbox mini-program users appear in. */
  CHATWOOT_INBOX_ID?: string | number;
  /** A Chatwoot user's access token (Profile settings → Access Token) the bridge calls Chatwoot with (a secret). */
  CHATWOOT_API_TOKEN?: string;
  /** The API inbox's webhook secret, which signs Chatwoot's webhooks (a secret). Unset: the webhook route is closed. */
  CHATWOOT_WEBHOOK_SECRET?: string;
  /**
   * A subscribe message sent instead of an agent's reply the send window refused, as JSON
   * `{ "template_id", "page"?, "data": { "thing1": { "value": "{text}" } } }`: `{text}` is the
   * reply cut to 20 characters. Unset: such a reply is only marked failed in Chatwoot.
   */
  CHATWOOT_SUBSCRIBE_TEMPLATE?: string | Record<string, unknown>;
  /**
   * The agent inbox behind Cloudflare Access: your Zero Trust team domain
   * (`https://<team>.cloudflareaccess.com`). With `ACCESS_AUD`, every `/inbox` request must carry
   * a valid Access token.
   */
  ACCESS_TEAM_DOMAIN?: string;
  /** The Access application's audience (AUD) tag, with `ACCESS_TEAM_DOMAIN`. */
  ACCESS_AUD?: string;
  /** Where Access's signing keys are fetched from; default `<ACCESS_TEAM_DOMAIN>/cdn-cgi/access/certs`. */
  ACCESS_CERTS_URL?: string;
  /**
   * The agent inbox without Access: one `name:hash` per line (a secret), each made by
   * `npm run inbox:agent -- <name>`. Agents sign in at `/inbox/login`.
   */
  INBOX_AGENTS?: string;
  /**
   * A subscribe message the inbox offers to send when the send window is closed, as JSON
   * `{ "template_id", "page"?, "data": { "thing1": { "value": "{text}" } } }`: `{text}` is the
   * agent's text cut to 20 characters. Unset: the inbox offers none.
   */
  INBOX_SUBSCRIBE_TEMPLATE?: string | Record<string, unknown>;
}

/** The static-assets binding, as far as the worker uses it. */
export interface AssetsLike {
  /** Answers a request for an asset (by its URL's path). */
  fetch(request: Request): Promise<Response>;
}

/** Names of the string variables of {@link Env}. */
export type EnvVar = Exclude<keyof Env, "WECHAT_KV" | "KEFU_STORE" | "KEFU_QUEUE" | "KEFU_MEDIA" | "ASSETS">;

const flag = z.pipe(
  z.transform((value: unknown) => (typeof value === "string" ? value.trim().toLowerCase() : value)),
  z.enum(["on", "off"], { error: 'must be "on" or "off"' }),
);
// The emulator switch takes the upstream away from WeChat: only the exact word opens it.
const exactFlag = z.enum(["on", "off"], { error: 'must be exactly "on" or "off"' });
// A key with blanks around it is almost always a paste accident; refusing it says so at
// once, where trimming would silently accept a key other than the one configured.
const apiKey = z.string({ error: "must be a string" }).check(
  z.regex(/^\S(?:.*\S)?$/s, "must not start or end with whitespace"),
);
const text = z.string({ error: "must be a string" });
// A number of milliseconds: a string of digits (secrets, .dev.vars, the process environment)
// or a number ([vars] in wrangler.toml).
const milliseconds = (min: number, max: number) => {
  const error = `must be an integer number of milliseconds from ${min} to ${max}`;
  return z.pipe(
    z.transform((value: unknown) => (typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value)),
    z.int({ error }).check(z.minimum(min, error), z.maximum(max, error)),
  );
};

// An id Chatwoot shows in its addresses: a string of digits (secrets, the process environment)
// or a number ([vars] in wrangler.toml).
const positiveId = z.pipe(
  z.transform((value: unknown) => (typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value)),
  z.int({ error: "must be a whole number from 1 (Chatwoot's id)" }).check(
    z.minimum(1, "must be a whole number from 1 (Chatwoot's id)"),
    z.maximum(Number.MAX_SAFE_INTEGER, "must be a whole number from 1 (Chatwoot's id)"),
  ),
);

// A subscribe message as JSON (a string: secrets, the process environment) or an inline table
// ([vars] in wrangler.toml), checked as `mp.subscribeMessage.send` checks it. The messages name
// the field and say what is wrong, never what the value was.
const SUBSCRIBE_SHAPE = 'must be JSON like {"template_id": "…", "data": {"thing1": {"value": "{text}"}}}';
const subscribeTemplate = z.pipe(
  z.transform((value: unknown, ctx) => {
    let parsed = value;
    if (typeof value === "string") {
      try {
        parsed = JSON.parse(value);
      } catch {
        ctx.issues.push({ code: "custom", message: SUBSCRIBE_SHAPE, input: undefined });
        return z.NEVER;
      }
    }
    const result = subscribeMessageSchema.safeParse(parsed);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    const detail = path === "" ? issue?.message ?? SUBSCRIBE_SHAPE : `${path} ${issue?.message ?? "is invalid"}`;
    ctx.issues.push({ code: "custom", message: `is not a valid subscribe message: ${detail}`, input: undefined });
    return z.NEVER;
  }),
  z.custom<SubscribeMessagePayload>(),
);

/**
 * The zod schema of every variable. Messages describe the expected shape only:
 * they are shown in responses, so they never echo the value.
 *
 * @example
 * ```ts
 * import { envSchema } from "./env.ts";
 * console.log(envSchema.shape.WECHAT_AES_KEY.safeParse("short").success); // false
 * ```
 */
export const envSchema: z.ZodMiniObject<{ [K in EnvVar]: z.ZodMiniType }> = z.object({
  WECHAT_APPID: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be an AppID (letters, digits, - and _)")),
  WECHAT_SECRET: text,
  WECHAT_TOKEN: z.string().check(z.regex(/^\S+$/, "must not contain spaces")),
  WECHAT_AES_KEY: z.string().check(z.regex(/^[A-Za-z0-9]{43}$/, "must be the 43-character EncodingAESKey")),
  API_KEY: apiKey,
  WECHAT_API_BASE: apiBaseSchema,
  WECHAT_EMULATOR: exactFlag,
  TRANSFER_TO_KF: flag,
  WELCOME_TEXT: text,
  FORWARD_URL: httpUrlSchema,
  FORWARD_SECRET: text,
  FORWARD_TIMEOUT_MS: milliseconds(1000, 600_000),
  CHECK_WINDOW: flag,
  HISTORY_DAYS: z.pipe(
    z.string().check(
      z.regex(/^(?:[1-9]\d{0,2}|[12]\d{3}|3[0-5]\d\d|3650)$/, "must be a whole number of days from 1 to 3650"),
    ),
    z.transform(Number),
  ),
  DEAD_LETTER_DAYS: z.pipe(
    z.string().check(z.regex(/^(?:[1-9]|[1-8]\d|90)$/, "must be a whole number of days from 1 to 90")),
    z.transform(Number),
  ),
  // The SDK's baseUrl check: a key belongs in BOT_API_KEY, never in a URL that logs may show.
  BOT_URL: apiBaseSchema,
  BOT_MODEL: z.string().check(z.regex(/^\S{1,200}$/, "must be a model name without spaces")),
  // A header carries it: printable ASCII only.
  BOT_API_KEY: z.string().check(z.regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces")),
  BOT_SYSTEM_PROMPT: text,
  BOT_TIMEOUT_MS: milliseconds(1000, 600_000),
  BOT_FALLBACK_TEXT: text,
  AI_LABEL: flag,
  BOT_CONTENT_CHECK: flag,
  CHATWOOT_URL: apiBaseSchema,
  CHATWOOT_ACCOUNT_ID: positiveId,
  CHATWOOT_INBOX_ID: positiveId,
  CHATWOOT_API_TOKEN: z.string().check(z.regex(/^\S+$/, "must be the access token alone, without spaces")),
  CHATWOOT_WEBHOOK_SECRET: z.string().check(z.regex(/^\S+$/, "must be the webhook secret alone, without spaces")),
  CHATWOOT_SUBSCRIBE_TEMPLATE: subscribeTemplate,
  ACCESS_TEAM_DOMAIN: z.string().check(
    z.regex(
      /^(?:https:\/\/)?[a-z0-9-]+(?:\.[a-z0-9-]+)+\/?$/i,
      "must be your team domain, like https://<team>.cloudflareaccess.com",
    ),
  ),
  ACCESS_AUD: z.string().check(z.regex(/^[A-Za-z0-9]{16,128}$/, "must be the Access application's AUD tag")),
  ACCESS_CERTS_URL: httpUrlSchema,
  INBOX_AGENTS: z.string().check(z.regex(/\S/, "must hold one name:hash line per agent")),
  INBOX_SUBSCRIBE_TEMPLATE: subscribeTemplate,
});

/** Why a configuration value cannot be used. */
export type ConfigProblem = "missing" | "invalid";

/**
 * A variable or binding a route needs is missing or malformed. Answered with 503;
 * the message names the variable, never its value.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@kefu/edge/worker";
 * const err = new ConfigError("API_KEY", "missing");
 * console.log(err.message); // "Missing configuration: API_KEY is not set"
 * ```
 */
export class ConfigError extends Error {
  /** The variable or binding name. */
  readonly variable: string;
  /** `missing` or `invalid`. */
  readonly problem: ConfigProblem;

  /**
   * Names the variable; the message never includes its value.
   *
   * @param variable the variable or binding name
   * @param problem `missing` or `invalid`
   * @param detail for `invalid`: what the value should look like
   */
  constructor(variable: string, problem: ConfigProblem, detail = "") {
    super(
      problem === "missing"
        ? `Missing configuration: ${variable} is not set`
        : `Invalid configuration: ${variable} ${detail}`.trimEnd(),
    );
    this.name = "ConfigError";
    this.variable = variable;
    this.problem = problem;
  }
}

type Parsed = { ok: true; value: unknown } | { ok: false; error: ConfigError };

// Per env object (stable within an isolate), each variable is validated once.
const parsedByEnv = new WeakMap<object, Map<EnvVar, Parsed>>();

function parse(env: Env, name: EnvVar): Parsed {
  let parsed = parsedByEnv.get(env);
  if (parsed === undefined) parsedByEnv.set(env, parsed = new Map());
  let entry = parsed.get(name);
  if (entry === undefined) {
    const raw = env[name];
    if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) {
      entry = { ok: false, error: new ConfigError(name, "missing") };
    } else {
      const result = envSchema.shape[name].safeParse(raw);
      entry = result.success
        ? { ok: true, value: result.data }
        : { ok: false, error: new ConfigError(name, "invalid", result.error.issues[0]?.message ?? "") };
    }
    parsed.set(name, entry);
  }
  return entry;
}

/** The validated type of each variable. */
export interface EnvValues {
  WECHAT_APPID: string;
  WECHAT_SECRET: string;
  WECHAT_TOKEN: string;
  WECHAT_AES_KEY: string;
  API_KEY: string;
  WECHAT_API_BASE: string;
  WECHAT_EMULATOR: "on" | "off";
  TRANSFER_TO_KF: "on" | "off";
  WELCOME_TEXT: string;
  FORWARD_URL: string;
  FORWARD_SECRET: string;
  FORWARD_TIMEOUT_MS: number;
  CHECK_WINDOW: "on" | "off";
  DEAD_LETTER_DAYS: number;
  HISTORY_DAYS: number;
  BOT_URL: string;
  BOT_MODEL: string;
  BOT_API_KEY: string;
  BOT_SYSTEM_PROMPT: string;
  BOT_TIMEOUT_MS: number;
  BOT_FALLBACK_TEXT: string;
  AI_LABEL: "on" | "off";
  BOT_CONTENT_CHECK: "on" | "off";
  CHATWOOT_URL: string;
  CHATWOOT_ACCOUNT_ID: number;
  CHATWOOT_INBOX_ID: number;
  CHATWOOT_API_TOKEN: string;
  CHATWOOT_WEBHOOK_SECRET: string;
  CHATWOOT_SUBSCRIBE_TEMPLATE: SubscribeMessagePayload;
  ACCESS_TEAM_DOMAIN: string;
  ACCESS_AUD: string;
  ACCESS_CERTS_URL: string;
  INBOX_AGENTS: string;
  INBOX_SUBSCRIBE_TEMPLATE: SubscribeMessagePayload;
}

/**
 * The validated value of a variable the caller cannot do without.
 *
 * @param env the bindings
 * @param name the variable
 * @returns its validated value
 * @throws {ConfigError} when it is missing or malformed
 * @example
 * ```ts
 * import { requireVar } from "./env.ts";
 * console.log(requireVar({ WECHAT_APPID: "wx123" }, "WECHAT_APPID")); // "wx123"
 * ```
 */
export function requireVar<K extends EnvVar>(env: Env, name: K): EnvValues[K] {
  const entry = parse(env, name);
  if (!entry.ok) throw entry.error;
  return entry.value as EnvValues[K];
}

/**
 * The validated value of an optional variable: `undefined` when unset, an error when malformed.
 *
 * @param env the bindings
 * @param name the variable
 * @returns its validated value, or `undefined` when unset or empty
 * @throws {ConfigError} when it is set but malformed
 * @example
 * ```ts
 * import { optionalVar } from "./env.ts";
 * console.log(optionalVar({}, "WELCOME_TEXT")); // undefined
 * ```
 */
export function optionalVar<K extends EnvVar>(env: Env, name: K): EnvValues[K] | undefined {
  const entry = parse(env, name);
  if (entry.ok) return entry.value as EnvValues[K];
  if (entry.error.problem === "missing") return undefined;
  throw entry.error;
}

/**
 * The validated value of a variable a route can do without, even malformed: `undefined` when
 * it is unset or invalid. For settings one route needs and another only passes along (a bad
 * push token must not take `/api` down) or only shows (the dev routes' page configuration).
 *
 * @param env the bindings
 * @param name the variable
 * @returns its validated value, or `undefined`
 * @example
 * ```ts
 * import { lenientVar } from "./env.ts";
 * console.log(lenientVar({ WECHAT_AES_KEY: "short" }, "WECHAT_AES_KEY")); // undefined
 * ```
 */
export function lenientVar<K extends EnvVar>(env: Env, name: K): EnvValues[K] | undefined {
  const entry = parse(env, name);
  return entry.ok ? entry.value as EnvValues[K] : undefined;
}

/**
 * Every secret value set in `env`, for redaction of log lines.
 *
 * @param env the bindings
 * @returns the values of the secret variables that are set
 * @example
 * ```ts
 * import { secretValues } from "./env.ts";
 * console.log(secretValues({ API_KEY: "k".repeat(20) }).length); // 1
 * ```
 */
export function secretValues(env: Env): string[] {
  const names = [
    "WECHAT_SECRET",
    "WECHAT_TOKEN",
    "WECHAT_AES_KEY",
    "API_KEY",
    "FORWARD_SECRET",
    "BOT_API_KEY",
    "CHATWOOT_API_TOKEN",
    "CHATWOOT_WEBHOOK_SECRET",
    "INBOX_AGENTS",
  ] as const;
  return names.map((name) => env[name]).filter((v): v is string => typeof v === "string" && v !== "");
}
