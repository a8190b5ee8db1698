import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { timingSafeEqual } from "../../worker/auth.ts";
import { fakeFetch } from "../cases/_fake.ts";
import { API_KEY, call, errorOf, json, OPENID, testApp, testEnv } from "./_helpers.ts";

beforeEach(() => reset());

const BODY = { touser: OPENID, command: "Typing" };
const ROUTES: Array<[string, RequestInit]> = [
  ["/api/messages", json({ touser: OPENID, msgtype: "text", text: { content: "hi" } })],
  ["/api/typing", json(BODY)],
  ["/api/media", { method: "POST", body: new FormData() }],
  ["/api/media/MEDIA_ID", { method: "GET" }],
];

function withAuth(init: RequestInit, authorization: string | undefined): RequestInit {
  const headers = new Headers(init.headers);
  if (authorization !== undefined) headers.set("authorization", authorization);
  return { ...init, headers };
}

describe("/api authentication", () => {
  for (const [path, init] of ROUTES) {
    it(`${init.method} ${path}: missing, malformed and wrong keys answer 401 with no upstream call`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      for (
        const authorization of [
          undefined,
          `Basic ${API_KEY}`,
          "Bearer",
          `Bearer ${API_KEY}x`,
          `Bearer ${API_KEY.slice(0, -1)}`,
          `Bearer ${"x".repeat(API_KEY.length)}`,
          `Bearer ${API_KEY} extra`,
        ]
      ) {
        const called = await call(app, path, withAuth(init, authorization), testEnv());
        expect(called.res.status, String(authorization)).toBe(401);
        expect(errorOf(called).code).toBe("unauthorized");
        expect(called.res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
      expect(fake.calls).toHaveLength(0);
    });

    it(`${init.method} ${path}: refused when API_KEY is unset (fail closed)`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      for (const env of [testEnv({ API_KEY: undefined }), testEnv({ API_KEY: "" })]) {
        const called = await call(app, path, withAuth(init, "Bearer "), env);
        expect(called.res.status).toBe(503);
        expect(errorOf(called)).toMatchObject({ code: "config_missing", variable: "API_KEY" });
        const guessed = await call(app, path, withAuth(init, "Bearer undefined"), env);
        expect(guessed.res.status).toBe(503);
      }
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("the right key passes, and the scheme is case-insensitive", async () => {
    const fake = fakeFetch();
    const app = testApp({ fetch: fake.fetch });
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const called = await call(app, "/api/typing", json(BODY, { authorization: `${scheme} ${API_KEY}` }), testEnv());
      expect(called.res.status).toBe(200);
    }
    expect(fake.to("/cgi-bin/message/custom/typing")).toHaveLength(3);
  });

  it("timingSafeEqual compares whole values of any length", async () => {
    expect(await timingSafeEqual("abc", "abc")).toBe(true);
    expect(await timingSafeEqual("abc", "abd")).toBe(false);
    expect(await timingSafeEqual("abc", "abcd")).toBe(false);
    expect(await timingSafeEqual("", "a")).toBe(false);
    expect(await timingSafeEqual("", "")).toBe(true);
  });
});
