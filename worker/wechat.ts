/**
 * One `MiniProgram` per isolate per configuration: the SDK keeps tokens in memory
 * (and in the store), so building one per request would throw that cache away.
 *
 * @module
 */
import {
  type ConversationStore,
  type KeyValueStore,
  type Logger,
  MiniProgram,
  type PushOptions,
  type RetryOptions,
  type UploadedMedia,
} from "../mod.ts";
import { ConfigError, type Env, lenientVar, optionalVar, requireVar } from "./env.ts";
import {
  type EmulatorUpstream,
  injectedEmulator,
  pushSettings,
  selectUpstream,
  type UpstreamSettings,
} from "./upstream.ts";

/** What a route needs from the configuration. */
export interface Needs {
  /** The AppSecret (every API call; not the push receiver alone). */
  secret: boolean;
  /** The push Token (and the EncodingAESKey, when set). */
  push: boolean;
}

/** Settings shared by every MiniProgram an app builds. */
export interface MiniProgramFactoryOptions {
  /** Token store for an env. */
  store: (env: Env) => KeyValueStore;
  /** Push dedupe store for an env. */
  dedupeStore: (env: Env) => KeyValueStore;
  /** Upstream transport override (tests). */
  fetch?: typeof fetch | undefined;
  /** Supplies the emulator upstream for `WECHAT_EMULATOR=on`; default the one `withEmulator` put in the env. */
  emulator?: EmulatorUpstream | undefined;
  now?: (() => number) | undefined;
  timeoutMs?: number | undefined;
  retry?: RetryOptions | undefined;
  maxUploadBytes?: number | undefined;
  mediaIdleTimeoutMs?: number | undefined;
  push?: Pick<PushOptions, "leaseSeconds" | "claimWaitMs" | "dedupeKey"> | undefined;
  /** The conversations of an env, if kept. */
  conversations?: ((env: Env) => ConversationStore | undefined) | undefined;
  /** What `uploadTempMedia` tells of each upload, for an env (the same function for the same bucket). */
  uploads?: ((env: Env) => ((upload: UploadedMedia) => void) | undefined) | undefined;
  /** Whether the push handler runs for messages a person holds too (the Chatwoot bridge mirrors them). */
  handleWhileHeld?: ((env: Env) => boolean) | undefined;
  logger: Logger;
}

/**
 * Reads the WeChat settings a route needs from env.
 *
 * @param env the bindings
 * @param needs whether the route needs the secret and the push settings
 * @returns the settings
 * @throws {ConfigError} when a needed variable is missing or any set one is malformed
 * @example
 * ```ts
 * import { wechatSettings } from "./wechat.ts";
 * const s = wechatSettings({ WECHAT_APPID: "wx1", WECHAT_SECRET: "s" }, { secret: true, push: false });
 * console.log(s.appId); // "wx1"
 * ```
 */
export function wechatSettings(env: Env, needs: Needs): UpstreamSettings {
  const appId = requireVar(env, "WECHAT_APPID");
  const appSecret = needs.secret ? requireVar(env, "WECHAT_SECRET") : optionalVar(env, "WECHAT_SECRET");
  // Push settings matter only to the push route; a bad one must not take /api down.
  // They are still read when valid, so both routes share one MiniProgram.
  const pushToken = needs.push ? requireVar(env, "WECHAT_TOKEN") : lenientVar(env, "WECHAT_TOKEN");
  const aesKey = needs.push ? optionalVar(env, "WECHAT_AES_KEY") : lenientVar(env, "WECHAT_AES_KEY");
  return {
    appId,
    appSecret,
    pushToken,
    aesKey,
    apiBase: optionalVar(env, "WECHAT_API_BASE"),
    emulator: optionalVar(env, "WECHAT_EMULATOR") === "on",
  };
}

/**
 * A cache of MiniPrograms keyed by their settings, for one app.
 *
 * @param options stores, upstream, clock and limits
 * @returns `get(env, needs)`: the MiniProgram for the route's settings
 * @example One MiniProgram per configuration
 * ```ts
 * import { MemoryStore } from "@kefu/edge";
 * import { miniProgramCache } from "./wechat.ts";
 * const store = new MemoryStore();
 * const programs = miniProgramCache({ store: () => store, dedupeStore: () => store, logger: console });
 * const env = { WECHAT_APPID: "wx123", WECHAT_SECRET: "secret" };
 * const mp = programs.get(env, { secret: true, push: false });
 * console.log(mp === programs.get({ ...env }, { secret: true, push: false }), mp.appId); // true "wx123"
 * ```
 */
export function miniProgramCache(options: MiniProgramFactoryOptions): {
  get(env: Env, needs: Needs): MiniProgram;
} {
  const cache = new Map<string, MiniProgram>();
  // An emulator handed over in the env is part of the configuration: the same settings with
  // another emulator (or none) must not share a MiniProgram.
  // So are the conversation store an env supplies and the bucket its uploads are kept in.
  const objectIds = new WeakMap<object, number>();
  let objects = 0;
  const objectId = (value: object | undefined): number => {
    if (value === undefined) return 0;
    let id = objectIds.get(value);
    if (id === undefined) objectIds.set(value, id = ++objects);
    return id;
  };
  return {
    get(env, needs) {
      const settings = wechatSettings(env, needs);
      const emulator = settings.emulator ? options.emulator ?? injectedEmulator(env) : undefined;
      const conversations = options.conversations?.(env);
      const uploaded = options.uploads?.(env);
      const handleWhileHeld = options.handleWhileHeld?.(env) === true;
      const key = JSON.stringify([
        settings.appId,
        settings.appSecret,
        settings.pushToken,
        settings.aesKey,
        settings.apiBase,
        settings.emulator,
        objectId(emulator),
        objectId(conversations),
        objectId(uploaded),
        handleWhileHeld,
      ]);
      let mp = cache.get(key);
      if (mp === undefined) {
        mp = build(settings, env, options, emulator, conversations, uploaded, handleWhileHeld);
        // Configurations change only on redeploy; keep a few for isolates that see several.
        if (cache.size >= 8) cache.delete(cache.keys().next().value!);
        cache.set(key, mp);
      }
      return mp;
    },
  };
}

function build(
  settings: UpstreamSettings,
  env: Env,
  options: MiniProgramFactoryOptions,
  emulator: EmulatorUpstream | undefined,
  conversations: ConversationStore | undefined,
  uploaded: ((upload: UploadedMedia) => void) | undefined,
  handleWhileHeld: boolean,
): MiniProgram {
  const upstream = selectUpstream(settings, { fetch: options.fetch, emulator });
  const push = pushSettings(settings);
  // Send windows live with the push claims: one Durable Object per user when bound.
  const dedupeStore = options.dedupeStore(env);
  return new MiniProgram({
    appId: settings.appId,
    appSecret: settings.appSecret,
    tokenSource: settings.appSecret === undefined ? missingSecret : undefined,
    store: options.store(env),
    windowStore: dedupeStore,
    logger: options.logger,
    fetch: upstream.fetch,
    baseUrl: upstream.baseUrl,
    now: options.now,
    timeoutMs: options.timeoutMs,
    retry: options.retry,
    maxUploadBytes: options.maxUploadBytes,
    mediaIdleTimeoutMs: options.mediaIdleTimeoutMs,
    push: push === undefined ? undefined : { ...push, ...options.push, dedupeStore, handleWhileHeld },
    conversations,
    onMediaUploaded: uploaded,
  });
}

// The push route works without the AppSecret; an API call made from a push handler
// (a welcome message) then fails with an error naming the variable.
function missingSecret(): Promise<never> {
  return Promise.reject(new ConfigError("WECHAT_SECRET", "missing"));
}
