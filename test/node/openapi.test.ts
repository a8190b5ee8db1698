// GET /openapi.json: a valid OpenAPI 3.1 document, current with the routes' zod schemas,
// naming every route of the app and nothing else, whose schemas describe what the routes
// really accept and answer.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { serverSettings } from "../../worker/servers.ts";
import { buildOpenApiDocument } from "../../scripts/_openapi.ts";
import { sendMessageSchema, subscribeMessageBodySchema, typingSchema } from "../../worker/schemas.ts";
import { createEmulator } from "../../src/testing/mod.ts";
import { MemoryConversationStore } from "../../mod.ts";

const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const APP_ID = "wx1234567890abcdef";
const SECRET = "openapi-test-secret";
const API_KEY = "openapi-test-api-key-0123456789";
const OPEN_ID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
const env = { WECHAT_APPID: APP_ID, WECHAT_SECRET: SECRET, WECHAT_TOKEN: "PushToken0123", API_KEY };

// deno-lint-ignore no-explicit-any
type Json = any;
const METHODS = ["get", "post", "put", "patch", "delete", "head", "options"];

let served: Json;
let ajv: Ajv2020;
beforeAll(async () => {
  // As the Deno, Bun and Node servers serve it (on Workers, the same file is a static asset).
  const quiet = { warn() {}, error() {} };
  const { handler } = serverSettings(createApp({ logger: quiet }), {}, {}, { app: { logger: quiet } });
  const res = await handler(new Request("http://127.0.0.1/openapi.json"));
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  served = await res.json();
  ajv = new Ajv2020({ strict: false, allErrors: true });
  // Every component, so `$ref`s between them resolve.
  for (const [id, schema] of Object.entries(served.components.schemas)) {
    ajv.addSchema(schema as object, `#/components/schemas/${id}`);
  }
});

/** Validates `value` against a component schema of the served document. */
function conforms(component: string, value: unknown): boolean {
  const validate = ajv.getSchema(`#/components/schemas/${component}`);
  if (validate === undefined) throw new Error(`no component ${component}`);
  return validate(value) as boolean;
}

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await new Validator().validate(structuredClone(served));
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(served.openapi).toBe("3.1.0");
    expect(served.info.version).toBe(version);
  });

  it("is what the routes' zod schemas give today (npm run openapi writes it)", () => {
    expect(served).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument(version))));
  });

  it("answers HEAD without a body, and the app alone through its ASSETS binding, else a JSON 404", async () => {
    const quiet = { warn() {}, error() {} };
    const { handler } = serverSettings(createApp({ logger: quiet }), {}, {}, { app: { logger: quiet } });
    const head = await handler(new Request("http://127.0.0.1/openapi.json", { method: "HEAD" }));
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    // A worker reaching the route (the assets layer did not answer first) asks ASSETS for the file.
    const asked: string[] = [];
    const ASSETS = {
      fetch: (request: Request) => {
        asked.push(new URL(request.url).pathname);
        return Promise.resolve(Response.json(served));
      },
    };
    const viaAssets = await createApp({ logger: quiet }).request("/openapi.json", {}, { ASSETS });
    expect(asked).toEqual(["/openapi.json"]);
    expect(await viaAssets.json()).toEqual(served);
    const missing = await createApp({ logger: quiet }).request("/openapi.json", {}, {});
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toEqual({
      code: "not_found",
      message: "The OpenAPI document is public/openapi.json: serve it as a static asset",
    });
  });

  it("names every route of the app, and only those", () => {
    const app = createApp();
    const routes = new Set<string>();
    const inbox = new Set<string>();
    for (const { method, path } of app.routes) {
      if (path.includes("*")) continue; // middleware
      // The agent inbox's routes are its page's (a browser's session cookie and CSRF token), not
      // an API for tools: docs/inbox.md lists them (checked below), the OpenAPI document does not.
      if (path === "/inbox" || path.startsWith("/inbox/")) {
        if (path.startsWith("/inbox/api/")) inbox.add(`${method} ${path}`);
        continue;
      }
      const openApiPath = path.replace(/:([A-Za-z]+)/g, "{$1}");
      // The push endpoint takes every method and answers GET and POST (405 for the rest).
      for (const m of method === "ALL" ? ["get", "post"] : [method.toLowerCase()]) routes.add(`${m} ${openApiPath}`);
    }
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(served.paths as Record<string, Json>)) {
      for (const m of Object.keys(item).filter((key) => METHODS.includes(key))) documented.add(`${m} ${path}`);
    }
    expect([...documented].sort()).toEqual([...routes].sort());
    expect(routes.size).toBeGreaterThanOrEqual(10);
    // Each of the inbox's API routes is a row of docs/inbox.md's table: | `METHOD`… | `path` | what |.
    const rows = readFileSync(new URL("../../docs/inbox.md", import.meta.url), "utf8").split("\n");
    expect(inbox.size).toBeGreaterThanOrEqual(10);
    for (const route of inbox) {
      const [method, path] = route.split(" ") as [string, string];
      const row = rows.find((line) => line.includes(`| \`${path}\``));
      expect(row, route).toBeDefined();
      expect(row!.split("|")[1], route).toContain(`\`${method}\``);
    }
  });

  it("puts every /api operation behind the bearer key, and no other", () => {
    for (const [path, item] of Object.entries(served.paths as Record<string, Json>)) {
      for (const m of Object.keys(item).filter((key) => METHODS.includes(key))) {
        const security = item[m].security;
        if (path.startsWith("/api/")) {
          expect(security, `${m} ${path}`).toEqual([{ bearer: [] }]);
          expect(item[m].responses["401"], `${m} ${path}`).toBeDefined();
        } else expect(security, `${m} ${path}`).toBeUndefined();
      }
    }
    expect(served.components.securitySchemes.bearer).toEqual(
      expect.objectContaining({ type: "http", scheme: "bearer" }),
    );
  });

  it("every error answer of an operation is the Error body", () => {
    const responses = served.components.responses as Record<string, Json>;
    for (const [path, item] of Object.entries(served.paths as Record<string, Json>)) {
      for (const m of Object.keys(item).filter((key) => METHODS.includes(key))) {
        for (const [status, response] of Object.entries(item[m].responses as Record<string, Json>)) {
          if (Number(status) < 400) continue;
          const resolved = response.$ref ? responses[response.$ref.split("/").pop()] : response;
          expect(resolved?.content?.["application/json"]?.schema, `${m} ${path} ${status}`).toEqual({
            $ref: "#/components/schemas/Error",
          });
        }
      }
    }
  });
});

describe("the document's schemas describe the routes", () => {
  const text = { touser: OPEN_ID, msgtype: "text", text: { content: "您好" } };
  const bodies: Array<[string, unknown]> = [
    ["text", text],
    ["image", { touser: OPEN_ID, msgtype: "image", image: { media_id: "MEDIA_ID_1" } }],
    ["link", {
      touser: OPEN_ID,
      msgtype: "link",
      link: { title: "t", description: "d", url: "https://example.com/", thumb_url: "https://example.com/t.png" },
    }],
    ["miniprogrampage", {
      touser: OPEN_ID,
      msgtype: "miniprogrampage",
      miniprogrampage: { title: "t", pagepath: "pages/index/index", thumb_media_id: "MEDIA_ID_1" },
    }],
    ["with extras", { ...text, businessid: "shop_1", aimsgcontext: { is_ai_msg: 1 }, checkWindow: true }],
    ["unknown msgtype", { touser: OPEN_ID, msgtype: "voice", voice: { media_id: "M" } }],
    ["payload of another type", { touser: OPEN_ID, msgtype: "text", image: { media_id: "M" } }],
    ["extra key", { ...text, extra: 1 }],
    ["typo in a payload key", { touser: OPEN_ID, msgtype: "text", text: { contnet: "hi" } }],
    ["bad OpenID", { ...text, touser: "../etc/passwd" }],
    ["bad businessid", { ...text, businessid: "a b" }],
    ["bad aimsgcontext", { ...text, aimsgcontext: { is_ai_msg: 2 } }],
    ["no touser", { msgtype: "text", text: { content: "hi" } }],
  ];
  for (const [name, body] of bodies) {
    it(`SendMessageBody and the route agree: ${name}`, () => {
      expect(conforms("SendMessageBody", body)).toBe(sendMessageSchema.safeParse(body).success);
    });
  }

  it("TypingBody and SubscribeMessageBody agree with their routes", () => {
    const typing = [
      { touser: OPEN_ID, command: "Typing" },
      { touser: OPEN_ID, command: "CancelTyping", businessid: "shop_1" },
      { touser: OPEN_ID, command: "typing" },
      { touser: OPEN_ID, command: "Typing", extra: true },
    ];
    for (const body of typing) {
      expect(conforms("TypingBody", body), JSON.stringify(body)).toBe(typingSchema.safeParse(body).success);
    }
    const subscribe = [
      { touser: OPEN_ID, template_id: "T1", data: { thing1: { value: "Order 42" } } },
      { touser: OPEN_ID, template_id: "T1", page: "pages/order?id=42", data: { thing1: { value: "x" } } },
      { touser: OPEN_ID, data: { thing1: { value: "x" } } },
      { touser: OPEN_ID, template_id: "T1", data: { thing1: "x" } },
    ];
    for (const body of subscribe) {
      expect(conforms("SubscribeMessageBody", body), JSON.stringify(body)).toBe(
        subscribeMessageBodySchema.safeParse(body).success,
      );
    }
  });

  it("a real page of GET /api/conversations fits ConversationPage; a bad cursor, Error", async () => {
    const conversations = new MemoryConversationStore();
    const ref = (openId: string) => ({ appId: APP_ID, openId });
    const image = { sender: "user" as const, type: "message" as const, msgType: "image", mediaId: "MEDIA_ID_1" };
    await conversations.accept(ref(OPEN_ID), {
      key: "m1",
      claim: "lease:1",
      ttlSeconds: 5,
      entry: image,
      action: { kind: "message", at: Date.now() },
    });
    await conversations.setHandoff(ref(OPEN_ID), { state: "human", by: "agent:alice", reason: "VIP" });
    await conversations.accept(ref(`${OPEN_ID}2`), {
      key: "m2",
      claim: "lease:2",
      ttlSeconds: 5,
      entry: { sender: "user", type: "event", msgType: "user_enter_tempsession" },
    });
    const app = createApp({ conversations: () => conversations });
    const get = async (query: string) => {
      const res = await app.request(`/api/conversations${query}`, {
        headers: { authorization: `Bearer ${API_KEY}` },
      }, env);
      return { status: res.status, body: await res.json() as { conversations: unknown[]; nextCursor: string } };
    };
    const page = await get("?limit=1");
    expect(page.status).toBe(200);
    expect(page.body.conversations.length).toBe(1);
    expect(conforms("ConversationPage", page.body)).toBe(true);
    const rest = await get(`?limit=1&cursor=${page.body.nextCursor}`);
    expect(conforms("ConversationPage", rest.body)).toBe(true);
    expect(rest.body.nextCursor).toBeNull();
    const both = [...page.body.conversations, ...rest.body.conversations] as { openId: string }[];
    expect(both.sort((a, b) => a.openId.localeCompare(b.openId))).toMatchObject([
      { lastMessage: { msgType: "image", text: "[图片]" }, handoff: { state: "human", agent: "alice" } },
      { lastMessage: null, window: null, handoff: { state: "bot" } },
    ]);
    const bad = await get("?cursor=e30");
    expect(bad.status).toBe(400);
    expect(conforms("Error", bad.body)).toBe(true);
  });

  it("real answers of the app fit the documented responses", async () => {
    const emulator = createEmulator({ appId: APP_ID, appSecret: SECRET });
    const logged: string[] = [];
    const logger = {
      info: () => {},
      warn: (line: string) => logged.push(line),
      error: (line: string) => logged.push(line),
    };
    const app = createApp({ fetch: emulator.fetch, logger });
    const post = (path: string, body: unknown, auth = true) =>
      app.request(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${API_KEY}` } : {}) },
        body: JSON.stringify(body),
      }, env);
    const answer = async (res: Response) => ({ status: res.status, body: await res.json() });

    const unauthorized = await answer(await post("/api/messages", text, false));
    expect(unauthorized.status).toBe(401);
    expect(conforms("Error", unauthorized.body)).toBe(true);

    const invalid = await answer(await post("/api/messages", { ...text, touser: "../x" }));
    expect(invalid.status).toBe(400);
    expect(conforms("Error", invalid.body)).toBe(true);

    const outside = await answer(await post("/api/messages", text));
    expect(outside.status).toBe(502); // 45015: the user has not written yet
    expect(conforms("Error", outside.body)).toBe(true);

    await emulator.user(OPEN_ID).says("你好");
    const sent = await answer(await post("/api/messages", text));
    expect(sent.status).toBe(200);
    expect(conforms("WeChatResult", sent.body)).toBe(true);

    const window = await answer(
      await app.request(`/api/users/${OPEN_ID}/window`, { headers: { authorization: `Bearer ${API_KEY}` } }, env),
    );
    expect(window.status).toBe(200);
    expect(conforms("WindowAnswer", window.body)).toBe(true);

    const form = new FormData();
    form.set("media", new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])], "a.png"));
    const upload = await answer(
      await app.request(
        "/api/media",
        { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: form },
        env,
      ),
    );
    expect(upload.status).toBe(200);
    expect(conforms("UploadTempMediaResult", upload.body)).toBe(true);

    const missing = await answer(await app.request("/api/typing", { method: "POST" }, {}));
    expect(missing.status).toBe(503);
    expect(conforms("Error", missing.body)).toBe(true);
    // The two 5xx answers were logged, one line each, without the key.
    expect(logged).toEqual([
      expect.stringContaining("answered 502: WeChatApiError"),
      expect.stringContaining("answered 503: ConfigError"),
    ]);
    expect(logged.join("\n")).not.toContain(API_KEY);
  });
});
