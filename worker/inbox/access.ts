/**
 * Private to the inbox: the check of a Cloudflare Access token (`Cf-Access-Jwt-Assertion`), a
 * JWT Access signs with RS256 for each request it lets through to the application. The keys
 * come from the team's certs URL (a JWKS, `{ keys: [...] }`), are kept 10 minutes, and fetched
 * again sooner only for a token signed by a key not among them, at most once a minute.
 *
 * @module
 */
import { fromBase64Url } from "./base64url.ts";

/** Where the keys are and what a token must say. */
export interface AccessConfig {
  /** The team domain's origin, `https://<team>.cloudflareaccess.com`: the tokens' `iss`. */
  issuer: string;
  /** The Access application's AUD tag: the tokens' `aud` must hold it. */
  audience: string;
  /** The JWKS URL. */
  certsUrl: string;
}

/** What the check is given. */
export interface AccessVerifierSettings {
  /** Fetches the JWKS. */
  fetch: typeof fetch;
  /** The time, ms. */
  now(): number;
}

/** Why a token was refused; `access_keys_unavailable`: the keys could not be fetched. */
export type AccessRefusal =
  | "malformed_token"
  | "bad_alg"
  | "unknown_kid"
  | "bad_signature"
  | "wrong_aud"
  | "expired"
  | "not_yet_valid"
  | "wrong_iss"
  | "no_email"
  | "access_keys_unavailable";

/** How long fetched keys are used. */
export const KEYS_TTL_MS = 10 * 60 * 1000;
/** The least time between two fetches for unknown key ids. */
export const REFETCH_MS = 60 * 1000;
/** How long a failed fetch answers for the fetches after it, so a broken URL is not asked on every request. */
const FAILED_MS = 5 * 1000;
/** How far a token's `nbf` and `iat` may be ahead of the clock, s. */
const SKEW_S = 60;
/** The longest token read. */
const MAX_TOKEN = 16 * 1024;
const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The team domain as Access writes it in `iss`: `https://` and the host, lowercase, without a
 * path (the variable may be given without its scheme or with a final `/`).
 *
 * @param teamDomain `ACCESS_TEAM_DOMAIN`
 * @returns the origin
 * @example
 * ```ts
 * import { accessIssuer } from "./access.ts";
 * console.log(accessIssuer("Acme.cloudflareaccess.com/")); // "https://acme.cloudflareaccess.com"
 * ```
 */
export function accessIssuer(teamDomain: string): string {
  const host = teamDomain.trim().replace(/^https:\/\//i, "").replace(/\/$/, "");
  return new URL(`https://${host}`).origin;
}

interface KeySet {
  keys: ReadonlyMap<string, CryptoKey>;
  fetchedAt: number;
}

interface CachedKeys {
  current?: KeySet;
  /** When a fetch was last started (for the once-a-minute refetch). */
  attemptedAt?: number;
  /** When a fetch last failed. */
  failedAt?: number | undefined;
  /** The fetch on its way, which every request that needs it waits on. */
  pending?: Promise<KeySet | undefined> | undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodePart(part: string): Record<string, unknown> | undefined {
  const bytes = fromBase64Url(part);
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks Cloudflare Access tokens, keeping each certs URL's keys. One instance serves the
 * isolate (the keys are shared by every request it checks).
 *
 * @example
 * ```ts
 * import { AccessVerifier } from "./access.ts";
 * const verifier = new AccessVerifier({ fetch, now: Date.now });
 * const config = {
 *   issuer: "https://acme.cloudflareaccess.com",
 *   audience: "0123456789abcdef0123456789abcdef",
 *   certsUrl: "https://acme.cloudflareaccess.com/cdn-cgi/access/certs",
 * };
 * console.log(await verifier.verify("not-a-token", config)); // { ok: false, reason: "malformed_token" }
 * ```
 */
export class AccessVerifier {
  readonly #settings: AccessVerifierSettings;
  readonly #cache = new Map<string, CachedKeys>();

  /**
   * Keeps what the check needs.
   *
   * @param settings the `fetch` the keys are fetched with, the clock
   */
  constructor(settings: AccessVerifierSettings) {
    this.#settings = settings;
  }

  /**
   * Checks a token: RS256 (no other algorithm), signed by the key its `kid` names, `aud` holding
   * the application's tag, `exp` in the future, `nbf` and `iat` not more than 60 s ahead, `iss`
   * the team domain, and an `email` (a service token has none, and is refused).
   *
   * @param token the header's value
   * @param config the keys' URL and what the token must say
   * @returns the agent's email and the token's expiry (ms), or why it was refused
   */
  async verify(
    token: string,
    config: AccessConfig,
  ): Promise<{ ok: true; email: string; expiresAt: number } | { ok: false; reason: AccessRefusal }> {
    const refuse = (reason: AccessRefusal) => ({ ok: false, reason }) as const;
    const parts = token.length > MAX_TOKEN ? [] : token.split(".");
    if (parts.length !== 3) return refuse("malformed_token");
    const [head, body, signaturePart] = parts as [string, string, string];
    const header = decodePart(head);
    const claims = decodePart(body);
    const signature = fromBase64Url(signaturePart);
    if (header === undefined || claims === undefined || signature === undefined) return refuse("malformed_token");
    if (header.alg !== "RS256") return refuse("bad_alg");
    if (typeof header.kid !== "string" || header.kid === "") return refuse("unknown_kid");
    const key = await this.#key(config.certsUrl, header.kid);
    if (key === "unavailable") return refuse("access_keys_unavailable");
    if (key === undefined) return refuse("unknown_kid");
    if (!(await crypto.subtle.verify(RS256, key, signature, encoder.encode(`${head}.${body}`)))) {
      return refuse("bad_signature");
    }
    const now = this.#settings.now() / 1000;
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(config.audience)) return refuse("wrong_aud");
    if (typeof claims.exp !== "number" || !(claims.exp > now)) return refuse("expired");
    for (const name of ["nbf", "iat"] as const) {
      const value = claims[name];
      if (value !== undefined && (typeof value !== "number" || value > now + SKEW_S)) return refuse("not_yet_valid");
    }
    if (claims.iss !== config.issuer) return refuse("wrong_iss");
    if (typeof claims.email !== "string" || claims.email === "" || claims.email.length > 320) return refuse("no_email");
    return { ok: true, email: claims.email, expiresAt: Math.floor(claims.exp * 1000) };
  }

  /**
   * The key `kid` names: from the keys fetched in the last 10 minutes, or fetched now (when
   * there are none that fresh, or when `kid` is not among them and the last fetch was more than
   * a minute ago). `undefined`: no such key; `"unavailable"`: the keys could not be fetched.
   */
  async #key(url: string, kid: string): Promise<CryptoKey | undefined | "unavailable"> {
    let cached = this.#cache.get(url);
    if (cached === undefined) this.#cache.set(url, cached = {});
    const now = this.#settings.now();
    const current = cached.current;
    const fresh = current !== undefined && now - current.fetchedAt < KEYS_TTL_MS;
    const known = fresh ? current.keys.get(kid) : undefined;
    if (known !== undefined) return known;
    if (fresh && cached.pending === undefined && now - (cached.attemptedAt ?? -Infinity) < REFETCH_MS) {
      return undefined;
    }
    if (cached.pending === undefined && now - (cached.failedAt ?? -Infinity) < FAILED_MS) {
      return fresh ? undefined : "unavailable";
    }
    const entry = cached;
    const keys = await (entry.pending ??= this.#fetchKeys(url, entry).finally(() => {
      entry.pending = undefined;
    }));
    if (keys === undefined) return fresh ? undefined : "unavailable";
    return keys.keys.get(kid);
  }

  async #fetchKeys(url: string, cached: CachedKeys): Promise<KeySet | undefined> {
    cached.attemptedAt = this.#settings.now();
    try {
      const res = await this.#settings.fetch(url, { headers: { accept: "application/json" } });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const jwks: unknown = await res.json();
      const entries = isObject(jwks) && Array.isArray(jwks.keys) ? jwks.keys as unknown[] : [];
      const keys = new Map<string, CryptoKey>();
      for (const jwk of entries) {
        if (!isObject(jwk) || jwk.kty !== "RSA" || typeof jwk.kid !== "string") continue;
        if ((jwk.alg !== undefined && jwk.alg !== "RS256") || (jwk.use !== undefined && jwk.use !== "sig")) continue;
        if (typeof jwk.n !== "string" || typeof jwk.e !== "string") continue;
        try {
          const publicKey = { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true };
          keys.set(jwk.kid, await crypto.subtle.importKey("jwk", publicKey, RS256, false, ["verify"]));
        } catch {
          // A key that cannot be imported verifies nothing; the others still do.
        }
      }
      if (keys.size === 0) throw new Error("no RS256 key");
      const set = { keys, fetchedAt: this.#settings.now() };
      cached.current = set;
      cached.failedAt = undefined;
      return set;
    } catch {
      cached.failedAt = this.#settings.now();
      return undefined;
    }
  }
}
