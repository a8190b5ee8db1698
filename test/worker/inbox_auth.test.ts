// The agent inbox's authentication, in workerd with the real KefuStore object: the configuration
// that fails closed, password sign-in (cookie, limits counted in the object, refusals), the
// session cookie, CSRF and origin checks, and Cloudflare Access tokens (RS256 from a JWKS).
import { env as workerEnv } from "cloudflare:workers";
import { evictDurableObject, reset, runInDurableObject } from "cloudflare:test";
import { Hono } from "hono/tiny";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AppEnv } from "../../worker/mod.ts";
import type { Env } from "../../worker/env.ts";
import { answerErrors, HttpError } from "../../worker/errors.ts";
import { type InboxAgent, inboxAuth } from "../../worker/inbox/auth.ts";
import { hashPassword } from "../../worker/inbox/passwords.ts";
import { ATTEMPT_WINDOW_MS, InboxTables } from "../../worker/inbox/tables.ts";
import { type AccessSigner, createAccessSigner } from "../fixtures/access_jwt.ts";
import { APP_ID, call, type Called, errorOf, recordingLogger, testEnv } from "./_helpers.ts";

beforeEach(() => reset());

const PASSWORD = "correct horse battery";
const BOB_PASSWORD = "bob's own password";
let AGENTS = "";
let ONLY_BOB = "";

beforeAll(async () => {
  const bob = `bob:${await hashPassword(BOB_PASSWORD)}`;
  ONLY_BOB = `# only bob\n${bob}\n`;
  AGENTS = `# the team\nalice:${await hashPassword(PASSWORD)}\n\n${bob}\n`;
});

const LOGIN_PAGE = "<!doctype html><form method=post action=/inbox/login></form>";
/** The ASSETS binding, with the login page only. */
const assets = {
  fetch: (request: Request) =>
    Promise.resolve(
      new URL(request.url).pathname === "/inbox/login"
        ? new Response(LOGIN_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } })
        : new Response("not found", { status: 404 }),
    ),
};

function passwordEnv(overrides: Partial<Record<keyof Env, unknown>> = {}): Env {
  return testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, ASSETS: assets, INBOX_AGENTS: AGENTS, ...overrides });
}

const TEAM = "https://acme.cloudflareaccess.com";
const AUD = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CERTS = `${TEAM}/cdn-cgi/access/certs`;

function accessEnv(overrides: Partial<Record<keyof Env, unknown>> = {}): Env {
  return testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, ACCESS_TEAM_DOMAIN: TEAM, ACCESS_AUD: AUD, ...overrides });
}

/** A certs URL: answers with `jwks.keys` (which a test may change), or fails when `failing` is set. */
function certsFetch(signers: AccessSigner[]) {
  const state = { signers, failing: undefined as "status" | "network" | undefined, urls: [] as string[] };
  const fetch = (input: RequestInfo | URL): Promise<Response> => {
    state.urls.push(input instanceof Request ? input.url : String(input));
    if (state.failing === "network") return Promise.reject(new TypeError("fetch failed"));
    if (state.failing === "status") return Promise.resolve(new Response("oops", { status: 500 }));
    return Promise.resolve(Response.json({ keys: state.signers.flatMap((s) => s.jwks.keys) }));
  };
  return { state, fetch: fetch as typeof globalThis.fetch };
}

/**
 * A small app as the inbox mounts its authentication: the routes at /inbox, a protected read, a
 * protected write and the live socket's check.
 */
function inboxApp(options: { fetch?: typeof fetch; now?: () => number } = {}) {
  const logger = recordingLogger();
  const auth = inboxAuth({
    fetch: options.fetch ?? (() => Promise.reject(new Error("no fetch expected"))),
    now: options.now ?? Date.now,
    logger,
  });
  const signedIn = async (c: Parameters<typeof auth.agent>[0]): Promise<InboxAgent> => {
    const agent = await auth.agent(c);
    if (agent === undefined) throw new HttpError(401, "unauthorized", "Sign in first");
    return agent;
  };
  const app = new Hono<AppEnv>()
    .route("/inbox", auth.routes())
    .get("/inbox/api/session", async (c) => c.json(await signedIn(c)))
    .post("/inbox/api/write", async (c) => {
      await auth.checkWrite(c, await signedIn(c));
      return c.json({ written: true });
    })
    .get("/inbox/live", (c) => {
      auth.checkUpgrade(c);
      return c.text("upgrade allowed");
    })
    .get("/inbox/check", (c) => c.text(auth.check(c.env)));
  app.onError(answerErrors(logger));
  return { app, auth, logger };
}

function loginInit(name: string, password: string, headers: Record<string, string> = {}): RequestInit {
  return { method: "POST", body: new URLSearchParams({ name, password }), headers };
}

/** The `kefu_inbox=<value>` pair of a login's Set-Cookie. */
function cookieOf(called: Called): string {
  const header = called.res.headers.get("set-cookie") ?? "";
  const match = /^(kefu_inbox=[^;]+);/.exec(header);
  expect(match, header).not.toBeNull();
  return match![1]!;
}

/** The reasons of the refusals logged. */
function reasons(lines: string[]): string[] {
  return lines.filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line) as { event: string; reason: string }
  )
    .filter((line) => line.event === "kefu-edge.inbox_refused").map((line) => line.reason);
}

describe("inbox configuration (fails closed)", () => {
  it("neither Access nor INBOX_AGENTS: every route answers 503 naming the variables", async () => {
    const { app } = inboxApp();
    const env = testEnv({ KEFU_STORE: workerEnv.KEFU_STORE, ASSETS: assets });
    for (
      const [path, init] of [
        ["/inbox/login", {}],
        ["/inbox/login", loginInit("alice", PASSWORD)],
        ["/inbox/api/session", {}],
        ["/inbox/check", {}],
      ] as const
    ) {
      const called = await call(app, path, init, env);
      expect(called.res.status, path).toBe(503);
      const error = errorOf(called);
      expect(error.code).toBe("inbox_not_configured");
      expect(error.message).toContain("ACCESS_TEAM_DOMAIN and ACCESS_AUD, or INBOX_AGENTS");
      expect(error.variables).toEqual(["ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "INBOX_AGENTS"]);
    }
  });

  it("half-configured Access answers 503 naming the missing variable, even with INBOX_AGENTS set", async () => {
    const { app } = inboxApp();
    const cases = [
      [{ ACCESS_AUD: undefined }, "ACCESS_AUD"],
      [{ ACCESS_TEAM_DOMAIN: undefined }, "ACCESS_TEAM_DOMAIN"],
    ] as const;
    for (const [overrides, missing] of cases) {
      const called = await call(app, "/inbox/api/session", {}, accessEnv({ ...overrides, INBOX_AGENTS: AGENTS }));
      expect(called.res.status).toBe(503);
      expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: missing });
      expect(errorOf(called).message).toContain(missing);
    }
  });

  it("a malformed INBOX_AGENTS answers 503 naming the line, never showing it", async () => {
    const { app } = inboxApp();
    const env = passwordEnv({ INBOX_AGENTS: `# team\nalice:hunter2-in-clear\n` });
    const called = await call(app, "/inbox/login", loginInit("alice", "hunter2-in-clear"), env);
    expect(called.res.status).toBe(503);
    const error = errorOf(called);
    expect(error).toMatchObject({ code: "config_invalid", variable: "INBOX_AGENTS" });
    expect(error.message).toContain("line 2 must be name:pbkdf2-sha256$");
    expect(called.text).not.toContain("hunter2");
  });

  it("without KEFU_STORE the inbox answers 503 conversations_not_configured", async () => {
    const { app } = inboxApp();
    const called = await call(
      app,
      "/inbox/login",
      loginInit("alice", PASSWORD),
      passwordEnv({ KEFU_STORE: undefined }),
    );
    expect(called.res.status).toBe(503);
    expect(errorOf(called)).toMatchObject({ code: "conversations_not_configured", variable: "KEFU_STORE" });
  });

  it("check() names the mode", async () => {
    const { app } = inboxApp();
    expect((await call(app, "/inbox/check", {}, passwordEnv())).text).toBe("password");
    expect((await call(app, "/inbox/check", {}, accessEnv({ INBOX_AGENTS: AGENTS }))).text).toBe("access");
  });
});

describe("password sign-in", () => {
  it("GET /inbox/login serves the login page with the inbox's headers", async () => {
    const { app } = inboxApp();
    const called = await call(app, "/inbox/login", {}, passwordEnv());
    expect(called.res.status).toBe(200);
    expect(called.text).toBe(LOGIN_PAGE);
    expect(called.res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(called.res.headers.get("cache-control")).toBe("no-store");
  });

  it("success: 303 to /inbox/ with an HttpOnly, SameSite=Strict cookie on /inbox, Secure except on localhost", async () => {
    const now = Date.now();
    const { app } = inboxApp({ now: () => now });
    const secure = await call(app, "https://example.com/inbox/login", loginInit("alice", PASSWORD), passwordEnv());
    expect(secure.res.status).toBe(303);
    expect(secure.res.headers.get("location")).toBe("/inbox/");
    const header = secure.res.headers.get("set-cookie")!;
    expect(header.split("; ").slice(1).sort()).toEqual(
      ["HttpOnly", "Max-Age=43200", "Path=/inbox", "SameSite=Strict", "Secure"],
    );
    expect(header).not.toContain(PASSWORD);

    const local = await call(app, "http://127.0.0.1:8787/inbox/login", loginInit("alice", PASSWORD), passwordEnv());
    expect(local.res.status).toBe(303);
    expect(local.res.headers.get("set-cookie")!.split("; ").slice(1).sort()).toEqual(
      ["HttpOnly", "Max-Age=43200", "Path=/inbox", "SameSite=Strict"],
    );

    const session = await call(app, "/inbox/api/session", { headers: { cookie: cookieOf(local) } }, passwordEnv());
    expect(session.res.status).toBe(200);
    const agent = JSON.parse(session.text) as InboxAgent;
    expect(agent).toMatchObject({ name: "alice", via: "password", expiresAt: now + 12 * 3600 * 1000 });
    expect(agent.csrfToken).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("the form may come as multipart", async () => {
    const { app } = inboxApp();
    const form = new FormData();
    form.set("name", "bob");
    form.set("password", BOB_PASSWORD);
    const called = await call(app, "/inbox/login", { method: "POST", body: form }, passwordEnv());
    expect(called.res.status).toBe(303);
  });

  it("a wrong password and an unknown name get the same 401 invalid_login, logged without the password", async () => {
    const { app, logger } = inboxApp();
    const wrong = await call(app, "/inbox/login", loginInit("alice", "not the password"), passwordEnv());
    const unknown = await call(app, "/inbox/login", loginInit("mallory", PASSWORD), passwordEnv());
    for (const called of [wrong, unknown]) {
      expect(called.res.status).toBe(401);
      expect(called.res.headers.get("set-cookie")).toBeNull();
      expect(errorOf(called)).toMatchObject({ code: "invalid_login", message: "Wrong name or password" });
    }
    expect(reasons(logger.lines)).toEqual(["invalid_login", "invalid_login"]);
    for (const line of logger.lines) {
      expect(line).not.toContain("not the password");
      expect(line).not.toContain(PASSWORD);
    }
  });

  it("a browser's refusal is a 303 back to the login page", async () => {
    const { app } = inboxApp();
    const html = { accept: "text/html,application/xhtml+xml" };
    const called = await call(app, "/inbox/login", loginInit("alice", "nope-nope", html), passwordEnv());
    expect(called.res.status).toBe(303);
    expect(called.res.headers.get("location")).toBe("/inbox/login?error=invalid");
  });

  it("a missing field or an impossible name is a 400 naming the field", async () => {
    const { app } = inboxApp();
    const missing = await call(
      app,
      "/inbox/login",
      { method: "POST", body: new URLSearchParams({ name: "alice" }) },
      passwordEnv(),
    );
    expect(missing.res.status).toBe(400);
    expect(errorOf(missing)).toMatchObject({ code: "validation_error", field: "password" });
    const colon = await call(app, "/inbox/login", loginInit("al:ice", PASSWORD), passwordEnv());
    expect(errorOf(colon)).toMatchObject({ code: "validation_error", field: "name" });
    const json = await call(
      app,
      "/inbox/login",
      {
        method: "POST",
        body: JSON.stringify({ name: "alice", password: PASSWORD }),
        headers: { "content-type": "application/json" },
      },
      passwordEnv(),
    );
    expect(json.res.status).toBe(415);
  });

  it("a login from another origin is refused 403 cross_site before anything is counted", async () => {
    const { app } = inboxApp();
    for (let i = 0; i < 6; i++) {
      const called = await call(
        app,
        "/inbox/login",
        loginInit("alice", "guess", { origin: "https://evil.example" }),
        passwordEnv(),
      );
      expect(called.res.status).toBe(403);
      expect(errorOf(called).code).toBe("cross_site");
    }
    const own = await call(
      app,
      "/inbox/login",
      loginInit("alice", PASSWORD, { origin: "http://127.0.0.1:8787" }),
      passwordEnv(),
    );
    expect(own.res.status).toBe(303);
  });
});

describe("sign-in limits (counted in the app's inbox object)", () => {
  it("the 6th attempt for a name in the window is 429 with Retry-After, the right password too, and also from a new isolate's app", async () => {
    const { app, logger } = inboxApp();
    for (let i = 0; i < 5; i++) {
      const called = await call(app, "/inbox/login", loginInit("alice", `guess ${i}`), passwordEnv());
      expect(called.res.status, `attempt ${i + 1}`).toBe(401);
    }
    const sixth = await call(app, "/inbox/login", loginInit("alice", PASSWORD), passwordEnv());
    expect(sixth.res.status).toBe(429);
    expect(errorOf(sixth).code).toBe("too_many_attempts");
    const retryAfter = Number(sixth.res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(reasons(logger.lines).at(-1)).toBe("too_many_attempts");

    // Another isolate: a new app (nothing cached), and the object evicted from memory.
    const ns = workerEnv.KEFU_STORE;
    await evictDurableObject(ns.get(ns.idFromName(`inbox:${APP_ID}`)));
    const { app: fresh } = inboxApp();
    const again = await call(fresh, "/inbox/login", loginInit("alice", PASSWORD), passwordEnv());
    expect(again.res.status).toBe(429);
    const browser = await call(
      fresh,
      "/inbox/login",
      loginInit("alice", PASSWORD, { accept: "text/html" }),
      passwordEnv(),
    );
    expect(browser.res.status).toBe(303);
    expect(browser.res.headers.get("location")).toBe("/inbox/login?error=limited");

    // Another name is not limited by alice's attempts.
    const bob = await call(fresh, "/inbox/login", loginInit("bob", BOB_PASSWORD), passwordEnv());
    expect(bob.res.status).toBe(303);
  });

  it("a successful sign-in resets the name's count", async () => {
    const { app } = inboxApp();
    for (let i = 0; i < 4; i++) {
      expect((await call(app, "/inbox/login", loginInit("alice", `guess ${i}`), passwordEnv())).res.status).toBe(401);
    }
    expect((await call(app, "/inbox/login", loginInit("alice", PASSWORD), passwordEnv())).res.status).toBe(303);
    for (let i = 0; i < 5; i++) {
      const called = await call(app, "/inbox/login", loginInit("alice", `again ${i}`), passwordEnv());
      expect(called.res.status, `attempt ${i + 1} after the reset`).toBe(401);
    }
    expect((await call(app, "/inbox/login", loginInit("alice", PASSWORD), passwordEnv())).res.status).toBe(429);
  });

  it("a client address has 20 attempts in the window, whatever the names", async () => {
    const { app } = inboxApp();
    const from = (ip: string) => ({ "cf-connecting-ip": ip });
    for (let i = 0; i < 20; i++) {
      const called = await call(
        app,
        "/inbox/login",
        loginInit(`user${i}`, "guess", from("203.0.113.9")),
        passwordEnv(),
      );
      expect(called.res.status, `attempt ${i + 1}`).toBe(401);
    }
    const limited = await call(app, "/inbox/login", loginInit("alice", PASSWORD, from("203.0.113.9")), passwordEnv());
    expect(limited.res.status).toBe(429);
    const other = await call(app, "/inbox/login", loginInit("alice", PASSWORD, from("198.51.100.7")), passwordEnv());
    expect(other.res.status).toBe(303);
  });

  it("a window ends 15 minutes after its first attempt, and ended windows are deleted", async () => {
    const ns = workerEnv.KEFU_STORE;
    await runInDurableObject(ns.get(ns.idFromName("inbox:tables-test")), (_instance, state) => {
      const tables = new InboxTables(state.storage.sql);
      const t0 = 1_000_000_000;
      for (let i = 0; i < 5; i++) expect(tables.attempt(["name:alice", "ip:a"], t0 + i * 1000).allowed).toBe(true);
      expect(tables.attempt(["name:alice", "ip:a"], t0 + 60_000)).toEqual({
        allowed: false,
        retryAfterSeconds: (ATTEMPT_WINDOW_MS - 60_000) / 1000,
      });
      // Refused attempts were not counted: the address has 5, not 6.
      const count = () => state.storage.sql.exec("SELECT key, count FROM inbox_attempts ORDER BY key").toArray();
      expect(count()).toEqual([{ key: "ip:a", count: 5 }, { key: "name:alice", count: 5 }]);
      expect(tables.attempt(["name:alice"], t0 + ATTEMPT_WINDOW_MS).allowed).toBe(true);
      expect(count()).toEqual([{ key: "name:alice", count: 1 }]);
      tables.reset("name:alice");
      expect(count()).toEqual([]);
      expect(() => tables.attempt(["user:alice"], t0)).toThrow(/name:|ip:/);
    });
  });

  it("the session key is made once and kept by the object", async () => {
    const ns = workerEnv.KEFU_STORE;
    const stub = ns.get(ns.idFromName("inbox:key-test")) as unknown as { inboxKey(): Promise<string> };
    const key = await stub.inboxKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await evictDurableObject(ns.get(ns.idFromName("inbox:key-test")));
    expect(await stub.inboxKey()).toBe(key);
    expect(await (ns.get(ns.idFromName("inbox:other")) as unknown as { inboxKey(): Promise<string> }).inboxKey())
      .not.toBe(key);
  });
});

describe("the session cookie", () => {
  async function signIn(app: Hono<AppEnv>, name = "alice", password = PASSWORD): Promise<string> {
    const called = await call(app, "/inbox/login", loginInit(name, password), passwordEnv());
    expect(called.res.status).toBe(303);
    return cookieOf(called);
  }

  it("a tampered cookie is refused", async () => {
    const { app, logger } = inboxApp();
    const cookie = await signIn(app);
    const value = cookie.slice("kefu_inbox=".length);
    const [payload, signature] = value.split(".") as [string, string];
    const forged = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/"))) as Record<string, unknown>;
    forged.n = "bob";
    const forgedPayload = btoa(JSON.stringify(forged)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    const flipped = signature.slice(0, -2) + (signature.at(-2) === "A" ? "B" : "A") + signature.at(-1);
    for (const bad of [`${forgedPayload}.${signature}`, `${payload}.${flipped}`, payload, `${value}x`, "garbage"]) {
      const called = await call(app, "/inbox/api/session", { headers: { cookie: `kefu_inbox=${bad}` } }, passwordEnv());
      expect(called.res.status, bad).toBe(401);
    }
    expect(reasons(logger.lines).filter((r) => r === "bad_session")).toHaveLength(5);
    for (const line of logger.lines) expect(line).not.toContain(signature);
  });

  it("an expired cookie is refused", async () => {
    let now = Date.now();
    const { app, logger } = inboxApp({ now: () => now });
    const cookie = await signIn(app);
    now += 12 * 3600 * 1000 - 1000;
    expect((await call(app, "/inbox/api/session", { headers: { cookie } }, passwordEnv())).res.status).toBe(200);
    now += 1000;
    expect((await call(app, "/inbox/api/session", { headers: { cookie } }, passwordEnv())).res.status).toBe(401);
    expect(reasons(logger.lines)).toContain("session_expired");
  });

  it("the cookie of an agent removed from INBOX_AGENTS is refused", async () => {
    const { app, logger } = inboxApp();
    const cookie = await signIn(app);
    const removed = await call(
      app,
      "/inbox/api/session",
      { headers: { cookie } },
      passwordEnv({ INBOX_AGENTS: ONLY_BOB }),
    );
    expect(removed.res.status).toBe(401);
    expect(reasons(logger.lines)).toEqual(["agent_removed"]);
    const bob = await signIn(app, "bob", BOB_PASSWORD);
    const kept = await call(
      app,
      "/inbox/api/session",
      { headers: { cookie: bob } },
      passwordEnv({ INBOX_AGENTS: ONLY_BOB }),
    );
    expect(kept.res.status).toBe(200);
  });

  it("no cookie: refused and logged as such", async () => {
    const { app, logger } = inboxApp();
    expect((await call(app, "/inbox/api/session", {}, passwordEnv())).res.status).toBe(401);
    expect(reasons(logger.lines)).toEqual(["no_session"]);
  });

  it("writes need the session's X-CSRF-Token and no foreign Origin", async () => {
    const { app, logger } = inboxApp();
    const cookie = await signIn(app);
    const session = await call(app, "/inbox/api/session", { headers: { cookie } }, passwordEnv());
    const { csrfToken } = JSON.parse(session.text) as InboxAgent;
    const write = (headers: Record<string, string>) =>
      call(app, "/inbox/api/write", { method: "POST", headers: { cookie, ...headers } }, passwordEnv());

    const missing = await write({});
    expect(missing.res.status).toBe(403);
    expect(errorOf(missing).code).toBe("csrf_failed");
    const wrong = await write({ "x-csrf-token": `${csrfToken.slice(0, -1)}x` });
    expect(errorOf(wrong).code).toBe("csrf_failed");
    const otherSession = await signIn(app, "bob", BOB_PASSWORD);
    const bobs = JSON.parse(
      (await call(app, "/inbox/api/session", { headers: { cookie: otherSession } }, passwordEnv())).text,
    );
    expect(errorOf(await write({ "x-csrf-token": (bobs as InboxAgent).csrfToken })).code).toBe("csrf_failed");
    const foreign = await write({ "x-csrf-token": csrfToken, origin: "https://evil.example" });
    expect(foreign.res.status).toBe(403);
    expect(errorOf(foreign).code).toBe("cross_site");

    expect((await write({ "x-csrf-token": csrfToken })).res.status).toBe(200);
    expect((await write({ "x-csrf-token": csrfToken, origin: "http://127.0.0.1:8787" })).res.status).toBe(200);
    expect(reasons(logger.lines)).toEqual(["csrf_failed", "csrf_failed", "csrf_failed", "cross_site"]);
    for (const line of logger.lines) expect(line).not.toContain(csrfToken);
  });

  it("the live socket's upgrade needs the request's own Origin", async () => {
    const { app } = inboxApp();
    expect((await call(app, "/inbox/live", {}, passwordEnv())).res.status).toBe(403);
    const foreign = await call(app, "/inbox/live", { headers: { origin: "https://evil.example" } }, passwordEnv());
    expect(errorOf(foreign).code).toBe("cross_site");
    const own = await call(app, "/inbox/live", { headers: { origin: "http://127.0.0.1:8787" } }, passwordEnv());
    expect(own.text).toBe("upgrade allowed");
  });

  it("logout needs the CSRF token, then clears the cookie and goes to the login page", async () => {
    const { app } = inboxApp();
    const cookie = await signIn(app);
    const { csrfToken } = JSON.parse(
      (await call(app, "/inbox/api/session", { headers: { cookie } }, passwordEnv())).text,
    );
    const refused = await call(app, "/inbox/logout", { method: "POST", headers: { cookie } }, passwordEnv());
    expect(refused.res.status).toBe(403);
    expect(refused.res.headers.get("set-cookie")).toBeNull();
    const out = await call(
      app,
      "/inbox/logout",
      { method: "POST", headers: { cookie, "x-csrf-token": csrfToken as string } },
      passwordEnv(),
    );
    expect(out.res.status).toBe(303);
    expect(out.res.headers.get("location")).toBe("/inbox/login");
    expect(out.res.headers.get("set-cookie")).toMatch(
      /^kefu_inbox=; Path=\/inbox; HttpOnly; SameSite=Strict; Max-Age=0/,
    );
  });
});

describe("Cloudflare Access", () => {
  let signer: AccessSigner;
  let other: AccessSigner;
  beforeAll(async () => {
    [signer, other] = await Promise.all([createAccessSigner(), createAccessSigner()]);
  });

  const claims = (now: number, overrides: Record<string, unknown> = {}) => ({
    aud: [AUD],
    email: "agent@example.com",
    exp: Math.floor(now / 1000) + 600,
    iat: Math.floor(now / 1000),
    nbf: Math.floor(now / 1000),
    iss: TEAM,
    sub: "7335d417-61da-459d-899c-0a01c76a2f94",
    type: "app",
    ...overrides,
  });
  const asAccess = (token: string) => ({ headers: { "cf-access-jwt-assertion": token } });

  it("a valid token lets its email in, with a CSRF token stable across tokens; the keys are fetched once", async () => {
    const now = Date.now();
    const certs = certsFetch([signer]);
    const { app } = inboxApp({ fetch: certs.fetch, now: () => now });
    const agents: InboxAgent[] = [];
    for (let i = 0; i < 8; i++) {
      const token = await signer.sign(claims(now, { iat: Math.floor(now / 1000) - i }));
      const called = await call(app, "/inbox/api/session", asAccess(token), accessEnv());
      expect(called.res.status).toBe(200);
      agents.push(JSON.parse(called.text) as InboxAgent);
    }
    expect(agents[0]).toMatchObject({
      name: "agent@example.com",
      via: "access",
      expiresAt: (Math.floor(now / 1000) + 600) * 1000,
    });
    expect(new Set(agents.map((a) => a.csrfToken)).size).toBe(1);
    expect(certs.state.urls).toEqual([CERTS]);

    // A single audience as a string is accepted too; the CSRF token guards writes.
    const token = await signer.sign(claims(now, { aud: AUD }));
    const write = await call(
      app,
      "/inbox/api/write",
      { method: "POST", headers: { ...asAccess(token).headers, "x-csrf-token": agents[0]!.csrfToken } },
      accessEnv(),
    );
    expect(write.res.status).toBe(200);
    const noCsrf = await call(app, "/inbox/api/write", { method: "POST", ...asAccess(token) }, accessEnv());
    expect(errorOf(noCsrf).code).toBe("csrf_failed");
  });

  it("requests arriving together wait on one fetch of the keys", async () => {
    const now = Date.now();
    const certs = certsFetch([signer]);
    const { app } = inboxApp({ fetch: certs.fetch, now: () => now });
    const token = await signer.sign(claims(now));
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => call(app, "/inbox/api/session", asAccess(token), accessEnv())),
    );
    expect(answers.map((a) => a.res.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(certs.state.urls).toEqual([CERTS]);
  });

  it("refuses a wrong aud, an expired token, a future nbf or iat, a wrong iss, no email, an unknown kid, HS256, none and a bad signature", async () => {
    const now = Date.now();
    const s = Math.floor(now / 1000);
    const certs = certsFetch([signer]);
    const { app, logger } = inboxApp({ fetch: certs.fetch, now: () => now });
    const cases: Array<[string, Promise<string>]> = [
      ["wrong_aud", signer.sign(claims(now, { aud: ["another-application-aud-0123456789"] }))],
      ["wrong_aud", signer.sign(claims(now, { aud: undefined }))],
      ["expired", signer.sign(claims(now, { exp: s }))],
      ["expired", signer.sign(claims(now, { exp: undefined }))],
      ["not_yet_valid", signer.sign(claims(now, { nbf: s + 120 }))],
      ["not_yet_valid", signer.sign(claims(now, { iat: s + 120 }))],
      ["wrong_iss", signer.sign(claims(now, { iss: "https://evil.cloudflareaccess.com" }))],
      ["no_email", signer.sign(claims(now, { email: undefined, common_name: "service-token" }))],
      ["unknown_kid", signer.sign(claims(now), { kid: "no-such-key" })],
      ["bad_alg", signer.sign(claims(now), { alg: "HS256", signature: "hmac" })],
      ["bad_alg", signer.sign(claims(now), { alg: "none", signature: "none" })],
      ["bad_signature", other.sign(claims(now), { kid: signer.kid })],
      ["bad_signature", signer.sign(claims(now), { signature: "none" })],
      ["malformed_token", Promise.resolve("abc.def")],
    ];
    for (const [reason, token] of cases) {
      const called = await call(app, "/inbox/api/session", asAccess(await token), accessEnv());
      expect(called.res.status, reason).toBe(401);
    }
    expect(reasons(logger.lines)).toEqual(cases.map(([reason]) => reason));
    // Within 60 s of skew, nbf and iat are accepted.
    const skewed = await signer.sign(claims(now, { nbf: s + 50, iat: s + 50 }));
    expect((await call(app, "/inbox/api/session", asAccess(skewed), accessEnv())).res.status).toBe(200);
    expect((await call(app, "/inbox/api/session", {}, accessEnv())).res.status).toBe(401);
    expect(reasons(logger.lines).at(-1)).toBe("no_access_token");
  });

  it("an unknown kid fetches the keys again at most once a minute; a rotated key is found; keys last 10 minutes", async () => {
    let now = Date.now();
    const certs = certsFetch([signer]);
    const { app } = inboxApp({ fetch: certs.fetch, now: () => now });
    const session = async (token: Promise<string>) =>
      (await call(app, "/inbox/api/session", asAccess(await token), accessEnv())).res.status;

    expect(await session(signer.sign(claims(now)))).toBe(200);
    expect(certs.state.urls).toHaveLength(1);
    // Fetched less than a minute ago: an unknown kid is refused without asking again.
    expect(await session(signer.sign(claims(now), { kid: "made-up-0" }))).toBe(401);
    expect(certs.state.urls).toHaveLength(1);
    now += 61_000;
    expect(await session(signer.sign(claims(now), { kid: "made-up-1" }))).toBe(401);
    expect(certs.state.urls).toHaveLength(2);
    for (let i = 0; i < 5; i++) expect(await session(signer.sign(claims(now), { kid: `made-up-${i + 2}` }))).toBe(401);
    expect(certs.state.urls).toHaveLength(2);

    // Access rotates its key: a token of the new key within the minute waits for the next refetch...
    certs.state.signers = [other, signer];
    now += 30_000;
    expect(await session(other.sign(claims(now)))).toBe(401);
    expect(certs.state.urls).toHaveLength(2);
    // ...which may happen a minute after the last.
    now += 31_000;
    expect(await session(other.sign(claims(now)))).toBe(200);
    expect(certs.state.urls).toHaveLength(3);
    expect(await session(signer.sign(claims(now)))).toBe(200);
    expect(certs.state.urls).toHaveLength(3);

    now += 10 * 60 * 1000;
    expect(await session(signer.sign(claims(now)))).toBe(200);
    expect(certs.state.urls).toHaveLength(4);
  });

  it("a certs URL that fails refuses with 503 access_keys_unavailable, logged, and never lets in", async () => {
    let now = Date.now();
    const certs = certsFetch([signer]);
    const { app, logger } = inboxApp({ fetch: certs.fetch, now: () => now });
    for (const failing of ["status", "network"] as const) {
      certs.state.failing = failing;
      now += 60_000;
      const called = await call(app, "/inbox/api/session", asAccess(await signer.sign(claims(now))), accessEnv());
      expect(called.res.status, failing).toBe(503);
      expect(errorOf(called).code).toBe("access_keys_unavailable");
    }
    expect(reasons(logger.lines)).toEqual(["access_keys_unavailable", "access_keys_unavailable"]);
    // A bad JWKS (no RSA key) is no better.
    certs.state.failing = undefined;
    certs.state.signers = [];
    now += 60_000;
    const empty = await call(app, "/inbox/api/session", asAccess(await signer.sign(claims(now))), accessEnv());
    expect(empty.res.status).toBe(503);
    // Back up: the keys are fetched again.
    certs.state.signers = [signer];
    now += 60_000;
    expect((await call(app, "/inbox/api/session", asAccess(await signer.sign(claims(now))), accessEnv())).res.status)
      .toBe(200);
  });

  it("the team domain may be given without its scheme; ACCESS_CERTS_URL overrides where the keys are", async () => {
    const now = Date.now();
    const certs = certsFetch([signer]);
    const { app } = inboxApp({ fetch: certs.fetch, now: () => now });
    const token = await signer.sign(claims(now));
    const bare = accessEnv({ ACCESS_TEAM_DOMAIN: "acme.cloudflareaccess.com" });
    expect((await call(app, "/inbox/api/session", asAccess(token), bare)).res.status).toBe(200);
    const custom = accessEnv({ ACCESS_CERTS_URL: "https://keys.example.com/certs" });
    expect((await call(app, "/inbox/api/session", asAccess(token), custom)).res.status).toBe(200);
    expect(certs.state.urls).toEqual([CERTS, "https://keys.example.com/certs"]);
  });

  it("the login form is disabled: 404 login_disabled", async () => {
    const { app } = inboxApp();
    const requests: Array<[string, RequestInit]> = [
      ["/inbox/login", {}],
      ["/inbox/login", loginInit("alice", PASSWORD)],
      ["/inbox/logout", { method: "POST" }],
    ];
    for (const [path, init] of requests) {
      const called = await call(app, path, init, accessEnv({ INBOX_AGENTS: AGENTS, ASSETS: assets }));
      expect(called.res.status, path).toBe(404);
      expect(errorOf(called).code).toBe("login_disabled");
    }
  });
});
