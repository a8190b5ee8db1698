/**
 * Access-token management: stable_token by default, cached in a {@link KeyValueStore},
 * one refresh at a time per isolate, compare-and-expire on invalid-token errors.
 *
 * @module
 */
import { redact, TokenSourceError, WeChatError } from "../errors.ts";
import type { HttpClient } from "../http/client.ts";
import { storedObject } from "../internal/json.ts";
import type { KeyValueStore } from "../stores/key_value_store.ts";
import type { Logger } from "../logger.ts";

/** What a token source returns, in WeChat's field names. */
export interface TokenResponse {
  /** The access token. */
  access_token: string;
  /** Seconds the token stays valid. */
  expires_in: number;
}

/**
 * Where tokens come from: `"stable"` (POST /cgi-bin/stable_token, normal mode — the
 * default), `"classic"` (GET /cgi-bin/token, which invalidates the previous token
 * after 5 minutes), or a function, for teams with a central token service.
 */
export type TokenSource = "stable" | "classic" | ((signal: AbortSignal) => Promise<TokenResponse>);

/** Settings of {@link AccessToken}. */
export interface AccessTokenOptions {
  appId: string;
  appSecret: string;
  source: TokenSource;
  store: KeyValueStore;
  http: HttpClient;
  now: () => number;
  timeoutMs: number;
  logger: Logger;
}

interface CachedToken {
  token: string;
  /** ms epoch after which the token is no longer used (expiry minus the margin). */
  refreshAt: number;
}

/**
 * Refresh margin. stable_token in normal mode renews a token in its last 5 minutes
 * and keeps the old one valid until it expires; any refresh made earlier than that
 * window returns the *same* token with a shorter `expires_in`. A margin below 300 s
 * therefore always lands inside the window and gets the new token, while the old
 * one stays valid for isolates that still hold it. 240 s leaves a minute for
 * latency and clock skew. Short-lived tokens (a custom source) use half their life.
 */
const REFRESH_MARGIN_SECONDS = 240;

// One flight per store and key for the whole isolate, so that several MiniProgram
// instances sharing a store still make a single upstream call.
const flights = new WeakMap<KeyValueStore, Map<string, { fresh: boolean; promise: Promise<CachedToken> }>>();

/**
 * Supplies access tokens to every API call. You rarely call it yourself; it is
 * exposed for teams that share tokens with other services.
 *
 * @example Read the current token
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" }); // offline WeChat
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 *
 * const token = await mp.accessToken.getToken();
 * console.log(token === await mp.accessToken.getToken(), wechat.calls.length); // true 1
 * ```
 */
export class AccessToken {
  /** The store key, which includes the source kind and the appId. */
  readonly cacheKey: string;
  readonly #options: AccessTokenOptions;
  #cached: CachedToken | undefined;

  /**
   * Creates the token manager; `MiniProgram` does this for you.
   *
   * @param options appId, secret, source, store, HTTP client, clock, timeout, logger
   */
  constructor(options: AccessTokenOptions) {
    this.#options = options;
    const kind = typeof options.source === "function" ? "custom" : options.source;
    this.cacheKey = `kefu-edge:access_token:${kind}:${options.appId}`;
  }

  /**
   * A valid token: from memory, else from the store, else from the source (one
   * upstream call at a time per isolate).
   *
   * @returns the access token
   */
  getToken(): Promise<string> {
    const cached = this.#cached;
    if (cached !== undefined && cached.refreshAt > this.#options.now()) return Promise.resolve(cached.token);
    return this.#fly(false, () => this.#load()).then((c) => c.token);
  }

  /**
   * Fetches a token from the source now (stable_token normal mode: never forced),
   * bypassing the cache, and stores it.
   *
   * @returns the new token
   */
  refresh(): Promise<string> {
    return this.#fly(true, () => this.#fetch()).then((c) => c.token);
  }

  /**
   * Compare-and-expire: forgets `failedToken` in memory and in the store, but only
   * where it is still the cached token, so a token another isolate has already
   * refreshed is left alone.
   *
   * @param failedToken the token WeChat rejected
   */
  async invalidate(failedToken: string): Promise<void> {
    if (this.#cached?.token === failedToken) this.#cached = undefined;
    const stored = await this.#readStore();
    if (stored?.token === failedToken) {
      try {
        await this.#options.store.delete(this.cacheKey);
      } catch (err) {
        this.#warn("delete", err);
      }
    }
  }

  #fly(fresh: boolean, run: () => Promise<CachedToken>): Promise<CachedToken> {
    let byKey = flights.get(this.#options.store);
    if (byKey === undefined) flights.set(this.#options.store, byKey = new Map());
    const current = byKey.get(this.cacheKey);
    // A running fetch serves everyone; a running store read does not satisfy refresh().
    if (current !== undefined && (current.fresh || !fresh)) {
      return current.promise.then((c) => (this.#cached = c));
    }
    const promise = run().finally(() => {
      if (byKey.get(this.cacheKey)?.promise === promise) byKey.delete(this.cacheKey);
    });
    byKey.set(this.cacheKey, { fresh, promise });
    return promise.then((c) => (this.#cached = c));
  }

  async #load(): Promise<CachedToken> {
    const stored = await this.#readStore();
    if (stored !== undefined && stored.refreshAt > this.#options.now()) return stored;
    return this.#fetch();
  }

  async #fetch(): Promise<CachedToken> {
    const response = await this.#fromSource();
    const lifetime = response.expires_in;
    const margin = Math.min(REFRESH_MARGIN_SECONDS, lifetime / 2);
    const fetched: CachedToken = {
      token: response.access_token,
      refreshAt: this.#options.now() + (lifetime - margin) * 1000,
    };
    try {
      await this.#options.store.set(
        this.cacheKey,
        JSON.stringify({ access_token: fetched.token, refresh_at: fetched.refreshAt }),
        { ttlSeconds: Math.max(1, Math.floor(lifetime - margin)) },
      );
    } catch (err) {
      this.#warn("write", err, fetched.token);
    }
    return fetched;
  }

  async #fromSource(): Promise<TokenResponse> {
    const { source, appId, appSecret, http } = this.#options;
    let response: unknown;
    if (source === "stable") {
      response = await http.json<TokenResponse>({
        method: "POST",
        path: "/cgi-bin/stable_token",
        json: { grant_type: "client_credential", appid: appId, secret: appSecret, force_refresh: false },
        idempotent: true,
        withToken: false,
      });
    } else if (source === "classic") {
      response = await http.json<TokenResponse>({
        method: "GET",
        path: "/cgi-bin/token",
        query: { grant_type: "client_credential", appid: appId, secret: appSecret },
        idempotent: true,
        withToken: false,
      });
    } else {
      try {
        response = await source(AbortSignal.timeout(this.#options.timeoutMs));
      } catch (err) {
        // A user's function may throw anything, with anything in it: it never escapes raw.
        throw new TokenSourceError(err, [appSecret]);
      }
    }
    const { access_token, expires_in } = (response ?? {}) as Partial<TokenResponse>;
    if (
      typeof access_token !== "string" || access_token === "" || typeof expires_in !== "number" || !(expires_in > 0)
    ) {
      throw new WeChatError("Invalid token response: expected access_token and a positive expires_in");
    }
    return { access_token, expires_in };
  }

  async #readStore(): Promise<CachedToken | undefined> {
    const parsed = await storedObject(this.#options.store, this.cacheKey, (err) => this.#warn("read", err));
    if (typeof parsed?.access_token === "string" && typeof parsed.refresh_at === "number") {
      return { token: parsed.access_token, refreshAt: parsed.refresh_at };
    }
    return undefined;
  }

  #warn(operation: string, err: unknown, token?: string): void {
    const secrets = [this.#options.appSecret, ...(token === undefined ? [] : [token])];
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.#options.logger.warn(
      `kefu-edge: token store ${operation} failed, continuing with the in-memory cache: ${redact(detail, secrets)}`,
    );
  }
}
