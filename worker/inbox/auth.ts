// TEMPORARY (lead's local stand-in until i19-auth lands; not committed)
import { Hono } from "hono/tiny";
import type { Context } from "hono";
import type { Env } from "../env.ts";
import type { AppEnv, AppLogger } from "../types.ts";
import { HttpError } from "../errors.ts";
export interface InboxAgent {
  name: string;
  via: "access" | "password";
  csrfToken: string;
  expiresAt: number | null;
}
export interface InboxAuthSettings {
  fetch: typeof fetch;
  now(): number;
  logger: AppLogger;
}
export interface InboxAuth {
  check(env: Env): "access" | "password";
  agent(c: Context<AppEnv>): Promise<InboxAgent | undefined>;
  checkWrite(c: Context<AppEnv>, agent: InboxAgent): Promise<void>;
  checkUpgrade(c: Context<AppEnv>): void;
  routes(): Hono<AppEnv>;
}
export function inboxAuth(_s: InboxAuthSettings): InboxAuth {
  return {
    check(env) {
      if (!env.INBOX_AGENTS) throw new HttpError(503, "inbox_not_configured", "set INBOX_AGENTS");
      return "password";
    },
    async agent(c) {
      const n = c.req.header("x-temp-agent");
      return n ? { name: n, via: "password", csrfToken: "t", expiresAt: null } : undefined;
    },
    async checkWrite(c) {
      if (c.req.header("x-csrf-token") !== "t") throw new HttpError(403, "csrf_failed", "csrf");
    },
    checkUpgrade(c) {
      const o = c.req.header("origin");
      if (o !== new URL(c.req.url).origin) throw new HttpError(403, "cross_site", "x");
    },
    routes() {
      return new Hono<AppEnv>();
    },
  };
}
