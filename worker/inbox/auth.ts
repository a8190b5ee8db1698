/**
 * Private to the inbox: who may use it. Either Cloudflare Access is in front of it
 * (`ACCESS_TEAM_DOMAIN` and `ACCESS_AUD`: every request carries Access's token, whose `email` is
 * the agent), or agents sign in with the passwords `INBOX_AGENTS` holds the hashes of (a signed
 * session cookie). Nothing configured, nobody is let in. Writes need the agent's CSRF token and
 * no other site's `Origin`; login attempts are counted in the app's inbox object.
 *
 * @module
 */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import { timingSafeEqual } from "../auth.ts";
import { type Env, optionalVar, requireVar } from "../env.ts";
import { HttpError, toHttpError } from "../errors.ts";
import type { AppEnv, AppLogger } from "../types.ts";
import { type AccessConfig, accessIssuer, AccessVerifier } from "./access.ts";
import { serveAsset } from "./assets.ts";
import { agentNameProblem, checkLogin, parseInboxAgents } from "./passwords.ts";
import {
  csrfForAccess,
  newSession,
  readSession,
  SESSION_COOKIE,
  sessionCookie,
  sessionKey,
  signSession,
} from "./session.ts";
import type { AttemptResult } from "./tables.ts";

/** An agent let in: by Cloudflare Access or by a password. */
export interface InboxAgent {
  /** The agent's name: the Access token's `email`, or the name in `INBOX_AGENTS`. */
  name: string;
  /** How the agent was let in. */
  via: "access" | "password";
  /** The token writes must carry in `X-CSRF-Token`. */
  csrfToken: string;
  /** When the session (password) or the Access token ends, ms since the epoch. */
  expiresAt: number | null;
}

/** What the inbox's authentication is given. */
export interface InboxAuthSettings {
  /** Fetches Cloudflare Access's signing keys. */
  fetch: typeof fetch;
  /** The time, ms (sessions' and tokens' expiry). */
  now(): number;
  /** Where refusals are logged, one JSON line each (no name, password, token or cookie). */
  logger: AppLogger;
}

/** The inbox's authentication: one per app (it keeps Access's keys and the session key). */
export interface InboxAuth {
  /** Throws HttpError 503 unless Access (both vars) or INBOX_AGENTS is configured, and KEFU_STORE bound. */
  check(env: Env): "access" | "password";
  /** The request's agent, or undefined when it has no valid credential (the refusal is logged: reason only). */
  agent(c: Context<AppEnv>): Promise<InboxAgent | undefined>;
  /** Throws HttpError 403 `csrf_failed` / `cross_site` for a write without the agent's token or from another origin. */
  checkWrite(c: Context<AppEnv>, agent: InboxAgent): Promise<void>;
  /** Throws HttpError 403 `cross_site` for a WebSocket upgrade whose Origin is not the request's own. */
  checkUpgrade(c: Context<AppEnv>): void;
  /** `GET /login` (serveAsset(c, "/inbox/login")), `POST /login`, `POST /logout`; mount at `/inbox`. */
  routes(): Hono<AppEnv>;
}

/** The app's inbox object (a `KefuStore`), as far as authentication calls it. */
interface InboxObject {
  inboxKey(): Promise<string>;
  inboxAttempt(keys: string[]): Promise<AttemptResult>;
  inboxReset(key: string): Promise<void>;
}

type Mode =
  | { via: "access"; access: AccessConfig }
  | { via: "password"; agents: ReadonlyMap<string, string> };

/** The largest login form read. */
const MAX_LOGIN_BYTES = 16 * 1024;
/** The longest password checked (PBKDF2 hashes it once; nobody types more). */
const MAX_PASSWORD = 1024;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const NO_STORE = { "cache-control": "no-store" };

/** The inbox's configuration, or the 503 that says what is missing. */
function modeOf(env: Env | undefined): Mode {
  const vars = env ?? {};
  try {
    const team = optionalVar(vars, "ACCESS_TEAM_DOMAIN");
    const audience = optionalVar(vars, "ACCESS_AUD");
    let mode: Mode | undefined;
    if (team !== undefined || audience !== undefined) {
      if (team === undefined || audience === undefined) {
        const missing = team === undefined ? "ACCESS_TEAM_DOMAIN" : "ACCESS_AUD";
        throw new HttpError(
          503,
          "config_missing",
          `Missing configuration: ${missing} is not set (Cloudflare Access needs ACCESS_TEAM_DOMAIN and ACCESS_AUD)`,
          { variable: missing },
        );
      }
      const issuer = accessIssuer(team);
      const certsUrl = optionalVar(vars, "ACCESS_CERTS_URL") ?? `${issuer}/cdn-cgi/access/certs`;
      mode = { via: "access", access: { issuer, audience, certsUrl } };
    } else {
      const agents = optionalVar(vars, "INBOX_AGENTS");
      if (agents !== undefined) mode = { via: "password", agents: parseInboxAgents(agents) };
    }
    if (mode === undefined) {
      throw new HttpError(
        503,
        "inbox_not_configured",
        "The inbox is not configured: set ACCESS_TEAM_DOMAIN and ACCESS_AUD, or INBOX_AGENTS",
        { variables: ["ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "INBOX_AGENTS"] },
      );
    }
    if (vars.KEFU_STORE === undefined) {
      throw new HttpError(503, "conversations_not_configured", "No conversation store: bind KEFU_STORE", {
        variable: "KEFU_STORE",
      });
    }
    requireVar(vars, "WECHAT_APPID");
    return mode;
  } catch (err) {
    throw toHttpError(err);
  }
}

/** The app's inbox object. */
function inboxObject(env: Env): InboxObject {
  const namespace = env.KEFU_STORE!;
  const stub = namespace.get(namespace.idFromName(`inbox:${requireVar(env, "WECHAT_APPID")}`));
  return stub as unknown as InboxObject;
}

/** The request's own origin (`https://host[:port]`). */
function ownOrigin(c: Context<AppEnv>): string {
  return new URL(c.req.url).origin;
}

/**
 * The inbox's authentication: the check of its configuration, the agent of a request, the
 * checks of writes and of the live socket, and the login and logout routes.
 *
 * @param settings the `fetch` Access's keys are fetched with, the clock, the logger
 * @returns the authentication
 * @example Nothing configured: nobody is let in
 * ```ts
 * import { inboxAuth } from "./auth.ts";
 * const auth = inboxAuth({ fetch, now: Date.now, logger: console });
 * try {
 *   auth.check({});
 * } catch (err) {
 *   console.log((err as { status: number; code: string }).code); // "inbox_not_configured"
 * }
 * ```
 */
export function inboxAuth(settings: InboxAuthSettings): InboxAuth {
  const verifier = new AccessVerifier({ fetch: settings.fetch, now: () => settings.now() });
  // The session key never changes: read from the object once per app and isolate.
  const keys = new Map<string, Promise<CryptoKey>>();

  const refused = (reason: string): void => {
    settings.logger.warn(JSON.stringify({ event: "kefu-edge.inbox_refused", reason }));
  };
  const forbidden = (code: "cross_site" | "csrf_failed"): HttpError => {
    refused(code);
    return code === "cross_site"
      ? new HttpError(403, code, "The request comes from another site")
      : new HttpError(403, code, "Missing or wrong X-CSRF-Token");
  };
  const loginDisabled = (): HttpError =>
    new HttpError(404, "login_disabled", "The inbox signs agents in with Cloudflare Access");

  const keyOf = (env: Env): Promise<CryptoKey> => {
    const appId = requireVar(env, "WECHAT_APPID");
    let key = keys.get(appId);
    if (key === undefined) {
      key = inboxObject(env).inboxKey().then(sessionKey);
      keys.set(appId, key);
      // A failed read is not kept: the next request asks again.
      key.catch(() => keys.delete(appId));
    }
    return key;
  };

  const agent = async (c: Context<AppEnv>): Promise<InboxAgent | undefined> => {
    const mode = modeOf(c.env);
    if (mode.via === "access") {
      const token = c.req.header("cf-access-jwt-assertion");
      if (token === undefined || token === "") return void refused("no_access_token");
      const result = await verifier.verify(token, mode.access);
      if (!result.ok) {
        refused(result.reason);
        if (result.reason !== "access_keys_unavailable") return undefined;
        throw new HttpError(
          503,
          "access_keys_unavailable",
          "Cloudflare Access's signing keys cannot be fetched from ACCESS_CERTS_URL (or the team domain): try again shortly",
        );
      }
      const csrfToken = await csrfForAccess(await keyOf(c.env), result.email);
      return { name: result.email, via: "access", csrfToken, expiresAt: result.expiresAt };
    }
    const cookie = getCookie(c, SESSION_COOKIE);
    if (cookie === undefined || cookie === "") return void refused("no_session");
    const read = await readSession(await keyOf(c.env), cookie, settings.now());
    if (!read.ok) return void refused(read.reason);
    // Removed from INBOX_AGENTS since signing in: the session ends with the agent.
    if (!mode.agents.has(read.session.name)) return void refused("agent_removed");
    const { name, csrfToken, expiresAt } = read.session;
    return { name, via: "password", csrfToken, expiresAt };
  };

  const checkOrigin = (c: Context<AppEnv>): void => {
    const origin = c.req.header("origin");
    if (origin !== undefined && origin !== ownOrigin(c)) throw forbidden("cross_site");
  };

  const checkWrite = async (c: Context<AppEnv>, who: InboxAgent): Promise<void> => {
    checkOrigin(c);
    const token = c.req.header("x-csrf-token");
    if (token === undefined || !(await timingSafeEqual(token, who.csrfToken))) throw forbidden("csrf_failed");
  };

  const checkUpgrade = (c: Context<AppEnv>): void => {
    // Browsers always send Origin with a WebSocket handshake: one without it is no page's.
    if (c.req.header("origin") !== ownOrigin(c)) throw forbidden("cross_site");
  };

  const login = async (c: Context<AppEnv>): Promise<Response> => {
    const mode = modeOf(c.env);
    if (mode.via === "access") throw loginDisabled();
    checkOrigin(c);
    const { name, password } = await readLoginForm(c.req.raw);
    const browser = (c.req.header("accept") ?? "").includes("text/html");
    const inbox = inboxObject(c.env);
    // Counted before the password is checked: a guess over the limit costs no PBKDF2.
    const address = (c.req.header("cf-connecting-ip") ?? "").trim().slice(0, 64) || "unknown";
    const attempt = await inbox.inboxAttempt([`name:${name}`, `ip:${address}`]);
    if (!attempt.allowed) {
      refused("too_many_attempts");
      const retryAfter = { "retry-after": String(attempt.retryAfterSeconds) };
      if (browser) return c.redirect("/inbox/login?error=limited", 303);
      throw new HttpError(429, "too_many_attempts", "Too many sign-in attempts: try again later", {}, retryAfter);
    }
    if (!(await checkLogin(mode.agents, name, password))) {
      refused("invalid_login");
      if (browser) return c.redirect("/inbox/login?error=invalid", 303);
      throw new HttpError(401, "invalid_login", "Wrong name or password");
    }
    await inbox.inboxReset(`name:${name}`);
    const value = await signSession(await keyOf(c.env), newSession(name, settings.now()));
    const secure = !LOCAL_HOSTS.has(new URL(c.req.url).hostname);
    return new Response(null, {
      status: 303,
      headers: { location: "/inbox/", "set-cookie": sessionCookie(value, secure), ...NO_STORE },
    });
  };

  const logout = async (c: Context<AppEnv>): Promise<Response> => {
    if (modeOf(c.env).via === "access") throw loginDisabled();
    const who = await agent(c);
    // Without a session there is nothing to end; with one, only its own page may end it.
    if (who !== undefined) await checkWrite(c, who);
    const secure = !LOCAL_HOSTS.has(new URL(c.req.url).hostname);
    return new Response(null, {
      status: 303,
      headers: { location: "/inbox/login", "set-cookie": sessionCookie(undefined, secure), ...NO_STORE },
    });
  };

  const tooLarge = (): never => {
    throw new HttpError(413, "payload_too_large", `The sign-in form is larger than ${MAX_LOGIN_BYTES} bytes`);
  };

  return {
    check: (env) => modeOf(env).via,
    agent,
    checkWrite,
    checkUpgrade,
    routes: () =>
      new Hono<AppEnv>()
        .get("/login", (c) => {
          if (modeOf(c.env).via === "access") throw loginDisabled();
          return serveAsset(c, "/inbox/login");
        })
        .post("/login", bodyLimit({ maxSize: MAX_LOGIN_BYTES, onError: tooLarge }), login)
        .post("/logout", logout),
  };
}

/** The `name` and `password` of a sign-in form (URL-encoded or multipart), or a 4xx naming the field. */
async function readLoginForm(request: Request): Promise<{ name: string; password: string }> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/x-www-form-urlencoded") && !type.startsWith("multipart/form-data")) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      "Send the sign-in form as application/x-www-form-urlencoded or multipart/form-data",
    );
  }
  let form: FormData;
  try {
    form = await request.formData();
  } catch {
    throw new HttpError(400, "bad_request", "The sign-in form cannot be read");
  }
  const field = (name: "name" | "password"): string => {
    const value = form.get(name);
    if (typeof value !== "string" || value === "") {
      throw new HttpError(400, "validation_error", `${name} is required`, { field: name });
    }
    return value;
  };
  const name = field("name");
  const password = field("password");
  const problem = agentNameProblem(name);
  if (problem !== undefined) throw new HttpError(400, "validation_error", `name ${problem}`, { field: "name" });
  if (password.length > MAX_PASSWORD) {
    throw new HttpError(400, "validation_error", `password must be at most ${MAX_PASSWORD} characters`, {
      field: "password",
    });
  }
  return { name, password };
}
