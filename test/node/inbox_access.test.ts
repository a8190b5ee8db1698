// The agent inbox behind Cloudflare Access, end to end: `npm start` with ACCESS_TEAM_DOMAIN,
// ACCESS_AUD and ACCESS_CERTS_URL pointing at a key set served here on loopback (a key made by
// the test stands in for the team's). Requests without a token, with a forged, expired or
// foreign token, and the password sign-in are refused; in real Chromium, a page carrying a
// valid token (as Access adds it to every request) opens the inbox as the token's email, goes
// live over the socket, and sees a user's message arrive. Skipped, with a message, only when
// Debian's chromium is missing (the HTTP refusals still run).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { type AccessSigner, createAccessSigner } from "../fixtures/access_jwt.ts";
import { chromiumAvailable, launchChromium, watchPage } from "./_browser.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";

const TEAM = "https://kefu-test.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const EMAIL = "alice@example.com";
const OPENID = "o_access_test_user_00000000";

if (!chromiumAvailable) {
  console.warn("SKIPPED the browser part of the Access inbox test: /usr/bin/chromium is not installed");
}

describe("the agent inbox behind Cloudflare Access", () => {
  let keys: Server;
  let server: DevServer;
  let signer: AccessSigner;
  let browser: Browser | undefined;

  const token = (claims: Record<string, unknown> = {}, by: AccessSigner = signer) => {
    const now = Math.floor(Date.now() / 1000);
    return by.sign({ aud: [AUD], email: EMAIL, iss: TEAM, iat: now, nbf: now, exp: now + 3600, sub: "u1", ...claims });
  };
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(server.url + path, { headers, redirect: "manual" });

  beforeAll(async () => {
    signer = await createAccessSigner();
    keys = createServer((req, res) => {
      if (req.url !== "/cdn-cgi/access/certs") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(signer.jwks));
    });
    await new Promise<void>((resolve) => keys.listen(0, "127.0.0.1", resolve));
    const certs = `http://127.0.0.1:${(keys.address() as AddressInfo).port}/cdn-cgi/access/certs`;
    const vars = { ACCESS_TEAM_DOMAIN: TEAM, ACCESS_AUD: AUD, ACCESS_CERTS_URL: certs };
    server = await startDevServer({
      flags: Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      timeoutMs: 90_000,
    });
    if (chromiumAvailable) browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((resolve) => keys?.close(resolve));
  });

  it("refuses requests without a valid Access token, and the password sign-in", async () => {
    const other = await createAccessSigner(signer.kid); // same key id, another key: a forgery
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, Record<string, string>]> = [
      ["no token", {}],
      ["forged", { "cf-access-jwt-assertion": await token({}, other) }],
      ["expired", { "cf-access-jwt-assertion": await token({ iat: now - 7200, nbf: now - 7200, exp: now - 60 }) }],
      ["another application", { "cf-access-jwt-assertion": await token({ aud: ["f".repeat(64)] }) }],
      ["another team", { "cf-access-jwt-assertion": await token({ iss: "https://evil.cloudflareaccess.com" }) }],
    ];
    for (const [what, headers] of cases) {
      for (const path of ["/inbox/", "/inbox/api/conversations"]) {
        const res = await get(path, headers);
        expect([401, 403], `${what} ${path}`).toContain(res.status);
        expect(res.headers.get("content-type"), what).toMatch(/^application\/json/);
        expect(await res.text(), what).not.toMatch(/BEGIN|"n":|\n\s+at /);
      }
    }
    // The dev agent's password (npm start configures one) does not open an inbox that Access guards.
    const login = await fetch(`${server.url}/inbox/login`, {
      method: "POST",
      body: new URLSearchParams({ name: "dev", password: "dev-only-inbox-password" }),
      headers: { origin: server.url },
      redirect: "manual",
    });
    expect(login.status).toBe(404);
    expect(login.headers.get("set-cookie")).toBeNull();
    // A valid token opens it.
    const ok = await get("/inbox/api/session", { "cf-access-jwt-assertion": await token() });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ agent: EMAIL, via: "access" });
  });

  it.skipIf(!chromiumAvailable)(
    "opens as the token's email, live: a user's message appears without reloading",
    async () => {
      const context = await browser!.newContext({
        viewport: { width: 1400, height: 900 },
        extraHTTPHeaders: { "cf-access-jwt-assertion": await token() },
      });
      const page = await context.newPage();
      const problems: string[] = [];
      watchPage(page, problems);
      await page.goto(`${server.url}/inbox/`);
      await page.locator("#agent").getByText(EMAIL).waitFor({ timeout: 10_000 });
      await page.locator("#live").getByText(/^live$/i).waitFor({ timeout: 10_000 });
      // A user writes in the emulator; the page hears of it over the socket.
      const says = await fetch(`${server.url}/_emulator/users/${OPENID}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "Access 你好" }),
      });
      expect(says.status).toBeLessThan(300);
      // The user's conversation turns up in the list; opened, it shows what they wrote.
      const item = page.locator(`#conversations button[data-open-id="${OPENID}"]`);
      await item.waitFor({ timeout: 10_000 });
      await item.click();
      await page.locator("#entries li", { hasText: "Access 你好" }).waitFor({ timeout: 10_000 });
      expect(problems).toEqual([]);
      await context.close();
    },
  );
});
