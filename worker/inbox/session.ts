/**
 * Private to the inbox: the session cookie of an agent who signed in with a password, and the
 * CSRF token of an agent let in by Cloudflare Access. Both are HMAC-SHA256 with the key the
 * app's inbox object keeps (32 random bytes, made once).
 *
 * The cookie's value is `<payload>.<signature>`, both base64url: the payload is the JSON
 * `{ "n": name, "e": expiry (ms), "c": CSRF token }`, the signature its HMAC.
 *
 * @module
 */
import { timingSafeEqual } from "../auth.ts";
import { fromBase64Url, randomToken, toBase64Url } from "./base64url.ts";

/** The cookie's name. */
export const SESSION_COOKIE = "kefu_inbox";
/** How long a session lasts: 12 hours. */
export const SESSION_MS = 12 * 3600 * 1000;
/** The longest cookie value read (a name of 64 characters makes about 300). */
const MAX_COOKIE = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A signed-in agent's session. */
export interface Session {
  /** The agent's name (from `INBOX_AGENTS`). */
  name: string;
  /** When it ends, ms since the epoch. */
  expiresAt: number;
  /** The token every write must carry in `X-CSRF-Token`. */
  csrfToken: string;
}

/** Why a cookie was not accepted. */
export type SessionRefusal = "bad_session" | "session_expired";

/**
 * The HMAC key of sessions and CSRF tokens, from the inbox object's key (base64url of 32 bytes).
 *
 * @param raw the key, as the object keeps it
 * @returns a key that signs
 * @throws {TypeError} when `raw` is not base64url of 32 bytes
 * @example
 * ```ts
 * import { sessionKey } from "./session.ts";
 * const key = await sessionKey("A".repeat(43));
 * console.log(key.algorithm.name); // "HMAC"
 * ```
 */
export async function sessionKey(raw: string): Promise<CryptoKey> {
  const bytes = fromBase64Url(raw);
  if (bytes?.length !== 32) throw new TypeError("the inbox key must be base64url of 32 bytes");
  return await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function mac(key: CryptoKey, text: string): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text))));
}

/**
 * A new session for `name`: 12 hours from `now`, with a fresh CSRF token (16 random bytes).
 *
 * @param name the agent
 * @param now the time, ms
 * @returns the session
 * @example
 * ```ts
 * import { newSession } from "./session.ts";
 * const session = newSession("alice", 0);
 * console.log(session.expiresAt, session.csrfToken.length); // 43200000 22
 * ```
 */
export function newSession(name: string, now: number): Session {
  return { name, expiresAt: now + SESSION_MS, csrfToken: randomToken(16) };
}

/**
 * The cookie value of a session: its payload and the payload's HMAC.
 *
 * @param key from {@link sessionKey}
 * @param session the session
 * @returns `<payload>.<signature>`
 * @example
 * ```ts
 * import { newSession, readSession, sessionKey, signSession } from "./session.ts";
 * const key = await sessionKey("A".repeat(43));
 * const value = await signSession(key, newSession("alice", Date.now()));
 * console.log((await readSession(key, value, Date.now())).ok); // true
 * ```
 */
export async function signSession(key: CryptoKey, session: Session): Promise<string> {
  const payload = toBase64Url(
    encoder.encode(JSON.stringify({ n: session.name, e: session.expiresAt, c: session.csrfToken })),
  );
  return `${payload}.${await mac(key, payload)}`;
}

/**
 * The session of a cookie value, when its signature is right (compared in constant time) and it
 * has not expired.
 *
 * @param key from {@link sessionKey}
 * @param value the cookie's value
 * @param now the time, ms
 * @returns the session, or why it was refused
 * @example
 * ```ts
 * import { newSession, readSession, sessionKey, signSession } from "./session.ts";
 * const key = await sessionKey("A".repeat(43));
 * const value = await signSession(key, newSession("alice", 0));
 * console.log(await readSession(key, value, 43_200_000)); // { ok: false, reason: "session_expired" }
 * console.log(await readSession(key, "x" + value, 0)); // { ok: false, reason: "bad_session" }
 * ```
 */
export async function readSession(
  key: CryptoKey,
  value: string,
  now: number,
): Promise<{ ok: true; session: Session } | { ok: false; reason: SessionRefusal }> {
  const bad = { ok: false, reason: "bad_session" } as const;
  const dot = value.indexOf(".");
  if (value.length > MAX_COOKIE || dot < 0) return bad;
  const payload = value.slice(0, dot);
  if (!(await timingSafeEqual(value.slice(dot + 1), await mac(key, payload)))) return bad;
  // Signed by this app: the payload is one it wrote, read defensively all the same.
  let fields: unknown;
  try {
    fields = JSON.parse(decoder.decode(fromBase64Url(payload) ?? new Uint8Array([0xff])));
  } catch {
    return bad;
  }
  const { n, e, c } = (fields ?? {}) as Record<string, unknown>;
  if (typeof n !== "string" || !Number.isSafeInteger(e) || typeof c !== "string") return bad;
  if ((e as number) <= now) return { ok: false, reason: "session_expired" };
  return { ok: true, session: { name: n, expiresAt: e as number, csrfToken: c } };
}

/**
 * The CSRF token of an agent let in by Cloudflare Access: HMAC(key, `csrf:` + email), the same
 * on every request, so the page keeps one token however often Access renews its own.
 *
 * @param key from {@link sessionKey}
 * @param email the agent's email, from the Access token
 * @returns the token, base64url
 * @example
 * ```ts
 * import { csrfForAccess, sessionKey } from "./session.ts";
 * const key = await sessionKey("A".repeat(43));
 * console.log((await csrfForAccess(key, "a@example.com")) === (await csrfForAccess(key, "a@example.com"))); // true
 * ```
 */
export async function csrfForAccess(key: CryptoKey, email: string): Promise<string> {
  return await mac(key, `csrf:${email}`);
}

/**
 * The `Set-Cookie` header of a session (or, with `undefined`, the one that clears it): the path
 * `/inbox` only, no script access, never sent from another site, HTTPS-only unless the inbox is
 * on the local machine.
 *
 * @param value the cookie's value, or `undefined` to clear it
 * @param secure whether to add `Secure`
 * @returns the header's value
 * @example
 * ```ts
 * import { sessionCookie } from "./session.ts";
 * console.log(sessionCookie(undefined, true)); // "kefu_inbox=; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
 * ```
 */
export function sessionCookie(value: string | undefined, secure: boolean): string {
  const age = value === undefined ? 0 : SESSION_MS / 1000;
  return `${SESSION_COOKIE}=${value ?? ""}; Path=/inbox; HttpOnly; SameSite=Strict; Max-Age=${age}` +
    (secure ? "; Secure" : "");
}
