// verifyPush: the verification of WeChat's push for plain HTTP frameworks. Requests are built
// and encrypted by the independent oracle of push_fixtures.ts, never by the code under test.
import assert from "node:assert/strict";
import { ValidationError, verifyPush, type VerifyPushResult } from "../../mod.ts";
import {
  AES_KEY,
  APP_ID,
  encryptOracle,
  NOW_SECONDS,
  OPENID,
  OTHER_AES_KEY,
  pushRequest,
  SAMPLES,
  sign,
  TOKEN,
} from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const SAFE = { token: TOKEN, encodingAESKey: AES_KEY, appId: APP_ID, now: () => NOW_SECONDS * 1000 };
const PLAIN = { token: TOKEN, appId: APP_ID, now: () => NOW_SECONDS * 1000 };
const SAMPLE = SAMPLES[0]!;

function refusal(result: VerifyPushResult) {
  assert.equal(result.ok, false, "refused");
  if (result.ok) throw new Error("unreachable");
  return result;
}

/** Nothing of the request's secrets, signatures, ciphertext or content in a refusal. */
function assertNothingLeaks(result: VerifyPushResult, request: { url: string; body: string }): void {
  const text = JSON.stringify(result);
  const query = new URL(request.url).searchParams;
  for (const secret of [TOKEN, AES_KEY, OTHER_AES_KEY, query.get("signature"), query.get("msg_signature")]) {
    if (secret) assert.ok(!text.includes(secret), `refusal leaks ${secret.slice(0, 4)}…`);
  }
  for (const signature of [sign(TOKEN, String(NOW_SECONDS), "415670741")]) assert.ok(!text.includes(signature));
  assert.ok(!text.includes(SAMPLE.expected.Content as string), "refusal leaks the content");
  if (request.body !== "") assert.ok(!text.includes(request.body.slice(0, 40)), "refusal leaks the body");
}

test("verifyPush: a safe-mode message (JSON and XML) comes back verified and decrypted, ids exact", async () => {
  for (const format of ["json", "xml"] as const) {
    const body = format === "json" ? SAMPLE.json : SAMPLE.xml;
    const result = await verifyPush(pushRequest({ mode: "aes", format, body }), SAFE);
    assert.equal(result.ok, true, format);
    if (!result.ok || result.kind !== "message") throw new Error("not a message");
    assert.equal(result.encrypted, true);
    assert.equal(result.format, format);
    assert.equal(result.timestamp, String(NOW_SECONDS));
    assert.equal(result.nonce, "415670741");
    assert.deepEqual(result.message, SAMPLE.expected);
    assert.equal(typeof result.message.MsgId, "string"); // 64-bit, exact
  }
});

test("verifyPush: URL verification answers the echo, checked against the signature", async () => {
  const timestamp = String(NOW_SECONDS);
  const query = `signature=${sign(TOKEN, timestamp, "n1")}&timestamp=${timestamp}&nonce=n1&echostr=ECHO123`;
  const ok = await verifyPush(new Request(`https://example.com/cb?${query}`), SAFE);
  assert.deepEqual(ok, { ok: true, kind: "echo", echostr: "ECHO123" });
  const forged = query.replace(/signature=[0-9a-f]+/, `signature=${sign("other-token", timestamp, "n1")}`);
  const bad = refusal(await verifyPush(new Request(`https://example.com/cb?${forged}`), SAFE));
  assert.equal(bad.reason, "bad_signature");
});

test("verifyPush: a wrong signature or msg_signature is refused 401, naming which, leaking nothing", async () => {
  const wrongQuery = pushRequest({ mode: "aes", body: SAMPLE.json, params: { signature: "0".repeat(40) } });
  const body = await wrongQuery.clone().text();
  const first = refusal(await verifyPush(wrongQuery, SAFE));
  assert.deepEqual(
    { status: first.status, reason: first.reason, message: first.message },
    { status: 401, reason: "bad_signature", message: "Signature mismatch: signature" },
  );
  assertNothingLeaks(first, { url: wrongQuery.url, body });

  // The query's signature is right; msg_signature does not cover this ciphertext.
  const swapped = pushRequest({ mode: "aes", body: SAMPLE.json, params: { msg_signature: sign(TOKEN, "1", "2") } });
  const swappedBody = await swapped.clone().text();
  const second = refusal(await verifyPush(swapped, SAFE));
  assert.equal(second.status, 401);
  assert.equal(second.reason, "bad_signature");
  assert.equal(second.message, "Signature mismatch: msg_signature");
  assertNothingLeaks(second, { url: swapped.url, body: swappedBody });
});

test("verifyPush: with an EncodingAESKey, a plaintext push is refused (encryption_required)", async () => {
  const plain = pushRequest({ body: SAMPLE.json });
  const result = refusal(await verifyPush(plain, SAFE));
  assert.equal(result.status, 401);
  assert.equal(result.reason, "encryption_required");
  assert.match(result.message, /encrypt_type=aes/);
  assertNothingLeaks(result, { url: plain.url, body: SAMPLE.json });
  // Without a key the same request is plain mode, and accepted.
  const accepted = await verifyPush(pushRequest({ body: SAMPLE.json }), PLAIN);
  assert.equal(accepted.ok && accepted.kind === "message" && accepted.message.FromUserName, OPENID);
  assert.equal(accepted.ok && accepted.kind === "message" && accepted.encrypted, false);
});

test("verifyPush: each refusal names its check and the status to answer", async () => {
  const cases: Array<[string, Request, object, number, string]> = [
    [
      "stale",
      pushRequest({ mode: "aes", body: SAMPLE.json, timestamp: String(NOW_SECONDS - 301) }),
      SAFE,
      401,
      "stale_timestamp",
    ],
    ["no nonce", pushRequest({ mode: "aes", body: SAMPLE.json, params: { nonce: null } }), SAFE, 400, "bad_request"],
    ["method", pushRequest({ method: "PUT" }), SAFE, 405, "unsupported_method"],
    ["too large", pushRequest({ mode: "aes", body: SAMPLE.json }), { ...SAFE, maxBodyBytes: 100 }, 413, "too_large"],
    [
      "other appid",
      pushRequest({
        mode: "aes",
        body: SAMPLE.json,
        encrypt: encryptOracle(SAMPLE.json, { appId: "wx0000000000000000" }),
      }),
      SAFE,
      403,
      "bad_appid",
    ],
    [
      "another key",
      pushRequest({ mode: "aes", body: SAMPLE.json, encrypt: encryptOracle(SAMPLE.json, { key: OTHER_AES_KEY }) }),
      SAFE,
      400,
      "undecryptable",
    ],
    ["aes without a key", pushRequest({ mode: "aes", body: SAMPLE.json }), PLAIN, 503, "push_not_configured"],
  ];
  for (const [name, request, options, status, reason] of cases) {
    const body = request.method === "POST" ? await request.clone().text() : "";
    const result = refusal(await verifyPush(request, options as typeof SAFE));
    assert.deepEqual([result.status, result.reason], [status, reason], name);
    assert.ok(result.message.length > 0 && !/\n\s+at /.test(result.message), name);
    assertNothingLeaks(result, { url: request.url, body });
  }
});

test("verifyPush: settings that can never verify throw a ValidationError naming the field", async () => {
  const request = pushRequest({ body: SAMPLE.json });
  const field = async (options: object) => {
    try {
      await verifyPush(request.clone(), options as typeof SAFE);
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      return err.field;
    }
    return "accepted";
  };
  assert.equal(await field({ ...SAFE, token: "" }), "token");
  assert.equal(await field({ ...SAFE, appId: undefined }), "appId");
  assert.equal(await field({ ...SAFE, encodingAESKey: "short" }), "encodingAESKey");
  assert.equal(await field({ ...SAFE, maxSkewSeconds: -1 }), "maxSkewSeconds");
});
