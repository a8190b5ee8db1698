// Smoke test of the Deno server (worker/deno.ts): Deno.serve on a free loopback port, Deno KV
// in memory, and a stub WeChat upstream on another loopback port (WECHAT_API_BASE).
import { serveDeno } from "../../worker/deno.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

Deno.test("worker on Deno: /health and an authenticated /api call against a stub upstream", async () => {
  const seen: string[] = [];
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    seen.push(`${request.method} ${url.pathname} ${url.searchParams.get("access_token") ?? ""}`);
    await request.body?.cancel();
    if (url.pathname === "/cgi-bin/stable_token") {
      return Response.json({ access_token: "SMOKE_TOKEN", expires_in: 7200 });
    }
    return Response.json({ errcode: 0, errmsg: "ok" });
  });
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    env: {
      WECHAT_APPID: "wx1234567890abcdef",
      WECHAT_SECRET: "smoke-secret",
      API_KEY: "smoke-key",
      WECHAT_API_BASE: `http://127.0.0.1:${upstream.addr.port}`,
    },
  });
  try {
    const health = await fetch(`${server.url}/health`);
    assertEquals([health.status, await health.json()], [200, { status: "ok" }], "health");

    const denied = await fetch(`${server.url}/api/typing`, { method: "POST" });
    assertEquals(denied.status, 401, "unauthenticated");
    await denied.body?.cancel();

    const typing = await fetch(`${server.url}/api/typing`, {
      method: "POST",
      headers: { authorization: "Bearer smoke-key", "content-type": "application/json" },
      body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
    });
    assertEquals([typing.status, await typing.json()], [200, { errcode: 0, errmsg: "ok" }], "typing");
    assertEquals(seen, ["POST /cgi-bin/stable_token ", "POST /cgi-bin/message/custom/typing SMOKE_TOKEN"], "upstream");
  } finally {
    await server.close();
    await upstream.shutdown();
  }
});

Deno.test("worker on Deno never loads the emulator: WECHAT_EMULATOR=on is refused by name", async () => {
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    env: { WECHAT_APPID: "wx1234567890abcdef", WECHAT_SECRET: "s", API_KEY: "smoke-key", WECHAT_EMULATOR: "on" },
  });
  try {
    const typing = await fetch(`${server.url}/api/typing`, {
      method: "POST",
      headers: { authorization: "Bearer smoke-key", "content-type": "application/json" },
      body: JSON.stringify({ touser: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", command: "Typing" }),
    });
    const body = await typing.json();
    assertEquals([typing.status, body.error.variable], [503, "WECHAT_EMULATOR"], "emulator refused");
    const page = await fetch(`${server.url}/_emulator/`);
    assertEquals(page.status, 404, "no dev routes");
    await page.body?.cancel();
  } finally {
    await server.close();
  }
});
