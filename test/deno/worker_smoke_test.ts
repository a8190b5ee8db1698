// Smoke test of the Deno server (worker/deno.ts): Deno.serve on a free loopback port, Deno KV
// in memory, and a stub WeChat upstream on another loopback port (WECHAT_API_BASE).
import { serveDeno } from "../../worker/deno.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** A user's text message, as WeChat pushes it. */
function userText(content: string, msgId: string): Record<string, string | number> {
  return {
    ToUserName: "gh_1",
    FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    CreateTime: Math.floor(Date.now() / 1000),
    MsgType: "text",
    Content: content,
    MsgId: msgId,
  };
}

Deno.test("worker on Deno: /health, /openapi.json and an authenticated /api call against a stub upstream", async () => {
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

    // The OpenAPI document (a static asset on Workers): the package's file.
    const openApi = await fetch(`${server.url}/openapi.json`);
    const published = JSON.parse(await Deno.readTextFile(new URL("../../public/openapi.json", import.meta.url)));
    assertEquals([openApi.status, await openApi.json()], [200, published], "openapi.json");

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
  const logged: string[] = [];
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    env: { WECHAT_APPID: "wx1234567890abcdef", WECHAT_SECRET: "s", API_KEY: "smoke-key", WECHAT_EMULATOR: "on" },
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
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
    assertEquals(logged.length, 1, "one line for the 503");
    if (!logged[0]!.includes("WECHAT_EMULATOR is on, but this app has no emulator (wrap it with withEmulator")) {
      throw new Error(logged[0]);
    }
  } finally {
    await server.close();
  }
});

Deno.test("worker on Deno: pushes go through Deno KV's queue, answered at once, forwarded exactly once after failures", async () => {
  const { buildPush } = await import("../../src/testing/mod.ts");
  const appId = "wx1234567890abcdef";
  const token = "PushToken0123456789";
  const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
  const received: string[] = [];
  let failures = 2;
  const target = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const body = await request.text();
    if (failures-- > 0) return new Response("down", { status: 503 });
    received.push(`${request.headers.get("x-kefu-delivery")} ${JSON.parse(body).Content}`);
    return new Response("ok");
  });
  const logged: string[] = [];
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    backoffSchedule: [20, 20, 20],
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
    env: {
      WECHAT_APPID: appId,
      WECHAT_SECRET: "s",
      WECHAT_TOKEN: token,
      WECHAT_AES_KEY: aesKey,
      FORWARD_URL: `http://127.0.0.1:${target.addr.port}/hook`,
      FORWARD_SECRET: "forward-secret-0123456789",
    },
  });
  try {
    const push = await buildPush(
      { appId, token, encodingAESKey: aesKey, format: "xml", url: `${server.url}/wechat/callback` },
      userText("via the queue", "7360000000000000123"),
    );
    const answered = await fetch(push.request());
    assertEquals([answered.status, await answered.text()], [200, "success"], "answered before forwarding");
    const again = await fetch(push.request()); // WeChat's retry: not enqueued twice
    assertEquals(await again.text(), "success", "retry answered");
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100)); // no second delivery arrives
    assertEquals(received.length, 1, "forwarded once");
    if (!/^[0-9a-f]{40} via the queue$/.test(received[0]!)) throw new Error(`forwarded ${received[0]}`);
    assertEquals(logged.filter((l) => l.includes("push_retry")).length, 2, "two failed attempts, logged");
  } finally {
    await server.close();
    await target.shutdown();
  }
});

Deno.test("worker on Deno: a push whose handler never succeeds is dead-lettered, logged and kept", async () => {
  const { buildPush } = await import("../../src/testing/mod.ts");
  const { denoKvDeadLetters } = await import("../../worker/dead_letters/mod.ts");
  const appId = "wx1234567890abcdef";
  const token = "PushToken0123456789";
  const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
  const logged: string[] = [];
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  let runs = 0;
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: path,
    backoffSchedule: [10, 10],
    app: {
      onMessage: () => {
        runs++;
        throw new Error("backend down");
      },
      logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) },
    },
    env: { WECHAT_APPID: appId, WECHAT_SECRET: "s", WECHAT_TOKEN: token, WECHAT_AES_KEY: aesKey },
  });
  try {
    const push = await buildPush(
      { appId, token, encodingAESKey: aesKey, format: "json", url: `${server.url}/wechat/callback` },
      userText("doomed", "7360000000000000999"),
    );
    assertEquals(await (await fetch(push.request())).text(), "success", "answered");
    for (let i = 0; i < 100 && !logged.some((l) => l.includes("dead_letter")); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(runs, 3, "the first attempt and two retries");
    const line = JSON.parse(logged.find((l) => l.includes("dead_letter"))!);
    assertEquals([line.event, line.msgType], ["kefu-edge.dead_letter", "text"], "logged");
    // The line is written as the letter is being kept: wait for it in the store (a second
    // connection to the same file) before the server, and its connection, close.
    const reader = await Deno.openKv(path);
    try {
      for (let i = 0; i < 100 && await denoKvDeadLetters(reader).get(line.deliveryId) === null; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      reader.close();
    }
  } finally {
    await server.close();
  }
  const kv = await Deno.openKv(path);
  try {
    const id = JSON.parse(logged.find((l) => l.includes("dead_letter"))!).deliveryId;
    const dead = await denoKvDeadLetters(kv).get(id);
    const job = dead?.job as { message?: { Content?: string } } | undefined;
    assertEquals(job?.message?.Content, "doomed", "kept in the store");
    assertEquals(dead?.attempts, 3, "the attempts made");
  } finally {
    kv.close();
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("worker on Deno: one line per request through the app logger's info, never the query", async () => {
  const lines: string[] = [];
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    env: { WECHAT_APPID: "wx1234567890abcdef" },
    app: { logger: { info: (m) => void lines.push(m), warn() {}, error() {} } },
  });
  try {
    await (await fetch(`${server.url}/health`)).body?.cancel();
    await (await fetch(`${server.url}/wechat/callback?signature=0123abcd&timestamp=1&nonce=2&echostr=x`)).body
      ?.cancel();
    const shape = lines.map((line) => line.replace(/ \d+ms$/, " <ms>"));
    assertEquals(shape, ["kefu-edge: GET /health 200 <ms>", "kefu-edge: GET /wechat/callback 503 <ms>"], "lines");
  } finally {
    await server.close();
  }
});

Deno.test("worker on Deno: a port in use is refused with one sentence that says so", async () => {
  const taken = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("taken"));
  try {
    let message = "";
    try {
      const server = await serveDeno({ port: taken.addr.port, hostname: "127.0.0.1", kvPath: ":memory:", env: {} });
      await server.close();
    } catch (err) {
      message = (err as Error).message;
    }
    assertEquals(
      message,
      `Cannot listen on 127.0.0.1:${taken.addr.port}: the port is in use (stop the other server or set PORT)`,
      "error",
    );
  } finally {
    await taken.shutdown();
  }
});
