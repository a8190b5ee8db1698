import assert from "node:assert/strict";
import fc from "fast-check";
import { PushVerificationError, Reply } from "../../mod.ts";
import { parsePushMessage } from "../../src/push/parse.ts";
import { encryptOracle, NOW_SECONDS, plainApp, pushApp, SAMPLES, sign, TOKEN } from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const NONCE = "415670741";
const TIMESTAMP = String(NOW_SECONDS);
const QUERY_KEYS = ["signature", "timestamp", "nonce", "echostr", "encrypt_type", "msg_signature", "openid"];
const CONTENT_TYPES = ["application/json", "text/xml", "text/plain", "application/octet-stream", "", "json; xml"];

/** Small random edits of a valid body, so the fuzz also walks near the happy path. */
const mutated = fc.tuple(
  fc.constantFrom(...SAMPLES.flatMap((s) => [s.json, s.xml])),
  fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5 }), fc.string({ maxLength: 4 })), { maxLength: 4 }),
).map(([body, edits]) => {
  let out = body;
  for (const [at, remove, insert] of edits) {
    const i = at % (out.length + 1);
    out = out.slice(0, i) + insert + out.slice(i + remove);
  }
  return out;
});

const xmlish = fc.array(
  fc.tuple(
    fc.constantFrom(
      "ToUserName",
      "FromUserName",
      "CreateTime",
      "MsgType",
      "Content",
      "MsgId",
      "Event",
      "x",
      "__proto__",
    ),
    fc.oneof(
      fc.string(),
      fc.constant("<![CDATA["),
      fc.constant("&#0;"),
      fc.constant("&#x110000;"),
      fc.integer().map(String),
    ),
  ),
  { maxLength: 8 },
).map((fields) => `<xml>${fields.map(([k, v]) => `<${k}>${v}</${k}>`).join("")}</xml>`);

const textBody = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v) ?? ""),
  mutated,
  xmlish,
  fc.dictionary(
    fc.constantFrom("ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Event"),
    fc.jsonValue(),
  )
    .map((d) => JSON.stringify(d)),
);

const body = fc.oneof(textBody, fc.uint8Array({ maxLength: 512 }));

/** Anything at all in the query. */
const randomQuery = fc.oneof(
  fc.string(),
  fc.dictionary(fc.constantFrom(...QUERY_KEYS), fc.string()).map((d) => new URLSearchParams(d).toString()),
);

interface FuzzCase {
  method: string;
  query: string;
  body: string | Uint8Array;
  contentType: string;
}

/**
 * A correctly signed query with a random body: in plain mode it gets past the signature to
 * the parser. Each case has its own nonce, as WeChat's deliveries do (plain mode accepts a
 * query for one body only).
 */
const signedPlain = fc.record({
  body,
  contentType: fc.constantFrom(...CONTENT_TYPES),
  nonce: fc.integer({ min: 1, max: 2 ** 31 }).map(String),
}).map(({ nonce, ...r }): FuzzCase => ({
  method: "POST",
  query: `signature=${sign(TOKEN, TIMESTAMP, nonce)}&timestamp=${TIMESTAMP}&nonce=${nonce}`,
  ...r,
}));

/**
 * Downgrade attempts on a safe-mode receiver: a correctly signed query (from a log, a
 * proxy, a URL-verification GET) with any body and any encrypt_type but "aes", with or
 * without a msg_signature.
 */
const downgrade = fc.record({
  body: fc.oneof(body, fc.constantFrom(...SAMPLES.flatMap((s) => [s.json, s.xml]))),
  encryptType: fc.option(fc.constantFrom("", "raw", "RAW", "Raw", "aes ", " aes", "AES", "Aes", "aes\t", "none")),
  msgSignature: fc.option(fc.constantFrom(sign(TOKEN, TIMESTAMP, NONCE), sign(TOKEN, TIMESTAMP, NONCE, "x"))),
  contentType: fc.constantFrom(...CONTENT_TYPES),
}).map(({ body, encryptType, msgSignature, contentType }): FuzzCase => {
  const query = new URLSearchParams({ signature: sign(TOKEN, TIMESTAMP, NONCE), timestamp: TIMESTAMP, nonce: NONCE });
  if (encryptType !== null) query.set("encrypt_type", encryptType);
  if (msgSignature !== null) query.set("msg_signature", msgSignature);
  return { method: "POST", query: query.toString(), body, contentType };
});

/** Safe mode, correctly signed, with a random ciphertext or a random message properly encrypted. */
const signedSafe = fc.record({
  encrypt: fc.oneof(
    fc.string(),
    fc.uint8Array({ maxLength: 96 }).map((b) => btoa(String.fromCharCode(...b))),
    textBody.map((t) => encryptOracle(t)),
  ),
  xml: fc.boolean(),
}).map(({ encrypt, xml }): FuzzCase => {
  const query = new URLSearchParams({
    signature: sign(TOKEN, TIMESTAMP, NONCE),
    timestamp: TIMESTAMP,
    nonce: NONCE,
    encrypt_type: "aes",
    msg_signature: sign(TOKEN, TIMESTAMP, NONCE, encrypt),
  }).toString();
  const envelope = xml
    ? `<xml><ToUserName>gh_1</ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`
    : JSON.stringify({ ToUserName: "gh_1", Encrypt: encrypt });
  return { method: "POST", query, body: envelope, contentType: xml ? "text/xml" : "application/json" };
});

const anything = fc.record({
  method: fc.constantFrom("GET", "POST", "POST", "PUT", "DELETE"),
  query: randomQuery,
  body,
  contentType: fc.constantFrom(...CONTENT_TYPES),
});

function toRequest(c: FuzzCase): Request {
  const url = new URL("https://example.com/wechat/callback");
  url.search = c.query; // the setter percent-encodes whatever it is given
  const init: RequestInit = {
    method: c.method,
    headers: c.contentType === "" ? {} : { "content-type": c.contentType },
  };
  if (c.method !== "GET") init.body = c.body as BodyInit;
  return new Request(url, init);
}

test("push fuzz: 10,000 random requests never get a 5xx and never throw", async () => {
  const safe = pushApp();
  const plain = plainApp();
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(anything, signedPlain, signedSafe, downgrade),
      fc.boolean(),
      fc.boolean(),
      async (c, toPlain, transfer) => {
        // A plain-mode receiver answers encrypted pushes 503 (no key configured: a setup
        // problem, not bad input), so those go to the safe-mode one.
        const encrypted = new URLSearchParams(c.query).get("encrypt_type") === "aes";
        const mp = toPlain && !encrypted ? plain : safe;
        const response = await mp.push.handle(
          toRequest(c),
          () => transfer ? Reply.transferCustomerService() : undefined,
        );
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const text = await response.text();
        assert.ok(response.status < 500, `status ${response.status}: ${text}`);
      },
    ),
    { numRuns: 10_000 },
  );
  // The fuzz reached the parser and the handler, not only the signature check.
  for (const status of [200, 400, 401]) assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} seen`);
});

test("push fuzz: with an EncodingAESKey, no body on a signed query without msg_signature reaches the handler", async () => {
  const mp = pushApp();
  let ran = 0;
  await fc.assert(
    fc.asyncProperty(downgrade, async (c) => {
      const response = await mp.push.handle(toRequest(c), () => void ran++);
      assert.ok(response.status === 401 || response.status === 400, `status ${response.status}`);
      await response.body?.cancel();
    }),
    { numRuns: 2_000 },
  );
  assert.equal(ran, 0);
});

test("push fuzz: the parser refuses garbage only with PushVerificationError", () => {
  fc.assert(
    fc.property(textBody, (text) => {
      try {
        const message = parsePushMessage(text);
        assert.equal(typeof message.CreateTime, "number");
        assert.equal(typeof message.MsgType, "string");
      } catch (err) {
        assert.ok(err instanceof PushVerificationError && err.reason === "bad_request", String(err));
      }
    }),
    { numRuns: 3_000 },
  );
});
