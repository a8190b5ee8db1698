// Regression cases of the security review that live in the core: plaintext downgrade,
// pre-marking, one body per plain-mode query, refusal logs, MsgId bounds, repeated tags,
// redaction order, token-source errors, the API base path and stalled media downloads.
import assert from "node:assert/strict";
import {
  type KeyValueStore,
  MemoryStore,
  MiniProgram,
  redact,
  TokenSourceError,
  ValidationError,
  WeChatError,
  WeChatTimeoutError,
} from "../../mod.ts";
import { fakeFetch } from "./_fake.ts";
import {
  AES_KEY,
  captureLogger,
  GH_ID,
  NOW_SECONDS,
  OPENID,
  plainApp,
  pushApp,
  pushRequest,
  readError,
  recordingHandler,
  sign,
  TOKEN,
} from "./push_fixtures.ts";
import { test } from "./_registry.ts";

function text(content: string, msgId: string): string {
  return `{"ToUserName":"${GH_ID}","FromUserName":"${OPENID}","CreateTime":${NOW_SECONDS},"MsgType":"text",` +
    `"Content":"${content}","MsgId":${msgId}}`;
}

/** A MemoryStore that records every key written. */
function recordingStore(): { store: KeyValueStore; writes: string[] } {
  const inner = new MemoryStore({ now: () => NOW_SECONDS * 1000 });
  const writes: string[] = [];
  return {
    writes,
    store: {
      get: (key) => inner.get(key),
      set: (key, value, options) => (writes.push(key), inner.set(key, value, options)),
      setIfAbsent: (key, value, options) => (writes.push(key), inner.setIfAbsent(key, value, options)),
      delete: (key) => inner.delete(key),
    },
  };
}

test("security: with an EncodingAESKey, plaintext is refused whatever encrypt_type says", async () => {
  const { store, writes } = recordingStore();
  const mp = pushApp({ dedupeStore: store });
  const { handler, calls } = recordingHandler();
  // One signed query, as captured from a log or a URL-verification GET, carrying forged bodies.
  for (const [i, encryptType] of [null, "raw", "", null, "raw", null, ""].entries()) {
    const request = pushRequest({ body: text(`forged ${i}`, String(100 + i)), params: { encrypt_type: encryptType } });
    const error = await readError(await mp.push.handle(request, handler));
    assert.equal(error.status, 401);
    assert.equal(error.code, "encryption_required");
  }
  // A msg_signature alongside a plaintext body does not help: it covers no Encrypt here.
  const withMsgSignature = pushRequest({
    body: text("forged", "200"),
    params: { msg_signature: sign(TOKEN, String(NOW_SECONDS), "415670741") },
  });
  assert.equal((await readError(await mp.push.handle(withMsgSignature, handler))).code, "encryption_required");
  assert.equal(calls.length, 0);
  assert.deepEqual(writes, []);
});

test("security: a refused forgery cannot pre-mark a real MsgId or event as handled", async () => {
  const { store } = recordingStore();
  const mp = pushApp({ dedupeStore: store });
  const { handler, calls } = recordingHandler();
  const event = JSON.stringify({
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS,
    MsgType: "event",
    Event: "user_enter_tempsession",
    SessionFrom: "real",
  });
  for (const body of [text("real", "7360000000000000999"), event]) {
    const forged = await mp.push.handle(pushRequest({ body }), handler);
    assert.equal(forged.status, 401);
    // A msg_signature over a ciphertext that is not in the body is refused too.
    const mismatched = await mp.push.handle(pushRequest({ body, mode: "aes", encrypt: "AAAA" }), handler);
    assert.ok(mismatched.status >= 400 && mismatched.status < 500);
    const real = await mp.push.handle(pushRequest({ body, mode: "aes", nonce: "real-delivery" }), handler);
    assert.equal(await real.text(), "success");
  }
  assert.equal(calls.length, 2);
  assert.equal(calls[0]!.Content, "real");
  assert.equal(calls[1]!.SessionFrom, "real");
});

test("security: plain mode accepts one body per timestamp and nonce, and WeChat's retries of it", async () => {
  for (const atomic of [true, false]) {
    const inner = new MemoryStore({ now: () => NOW_SECONDS * 1000 });
    // Without setIfAbsent the receiver falls back to read-then-write (Workers KV).
    const store: KeyValueStore = atomic ? inner : {
      get: (key) => inner.get(key),
      set: (key, value, options) => inner.set(key, value, options),
      delete: (key) => inner.delete(key),
    };
    const mp = plainApp({ dedupeStore: store });
    const { handler, calls } = recordingHandler();
    const first = text("first", "301");
    assert.equal(await (await mp.push.handle(pushRequest({ body: first }), handler)).text(), "success");
    assert.equal(await (await mp.push.handle(pushRequest({ body: first }), handler)).text(), "success");
    const second = await readError(await mp.push.handle(pushRequest({ body: text("second", "302") }), handler));
    assert.equal(second.status, 401);
    assert.equal(second.code, "nonce_reused");
    // Another nonce is another query: accepted.
    const other = pushRequest({ body: text("second", "302"), nonce: "99" });
    assert.equal(await (await mp.push.handle(other, handler)).text(), "success");
    assert.deepEqual(calls.map((c) => c.Content), ["first", "second"], `atomic: ${atomic}`);
  }
});

test("security: concurrent forgeries on one plain-mode query: exactly one gets through", async () => {
  const mp = plainApp({ dedupeStore: new MemoryStore({ now: () => NOW_SECONDS * 1000 }) });
  const { handler, calls } = recordingHandler();
  const responses = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => mp.push.handle(pushRequest({ body: text(`body ${i}`, String(400 + i)) }), handler),
    ),
  );
  assert.equal(responses.filter((r) => r.status === 200).length, 1);
  assert.equal(responses.filter((r) => r.status === 401).length, 7);
  assert.equal(calls.length, 1);
});

test("security: every refusal logs one JSON line with its reason, timestamp and nonce, and no secret", async () => {
  const logged = captureLogger();
  const mp = pushApp({}, { logger: logged.logger });
  const secretContent = "top-secret-content";
  const requests = [
    pushRequest({ body: text(secretContent, "1"), token: "wrong" }), // signature
    pushRequest({ body: text(secretContent, "2"), timestamp: String(NOW_SECONDS - 1000) }), // stale
    pushRequest({ body: text(secretContent, "3") }), // plaintext in safe mode
    pushRequest({ body: text(secretContent, "4"), mode: "aes", params: { msg_signature: "0".repeat(40) } }),
    pushRequest({ body: "x".repeat(70_000), mode: "aes", encrypt: "x".repeat(70_000) }), // too large
    pushRequest({ method: "PUT", body: "{}" }),
  ];
  const codes: string[] = [];
  for (const request of requests) codes.push((await readError(await mp.push.handle(request, () => undefined))).code);
  assert.deepEqual(codes, [
    "bad_signature",
    "stale_timestamp",
    "encryption_required",
    "bad_signature",
    "too_large",
    "unsupported_method",
  ]);
  assert.equal(logged.lines.length, requests.length);
  for (const [i, line] of logged.lines.entries()) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.event, "kefu-edge.push_refused");
    assert.equal(entry.reason, codes[i]);
    assert.equal(typeof entry.status, "number");
    assert.equal(entry.nonce, "415670741");
    assert.match(String(entry.timestamp), /^\d+$/);
    for (const secret of [TOKEN, AES_KEY, secretContent, sign(TOKEN, String(NOW_SECONDS), "415670741")]) {
      assert.ok(!line.includes(secret), `line ${i} leaks ${secret.slice(0, 8)}: ${line}`);
    }
  }
  // The message says which check failed.
  assert.match(String(JSON.parse(logged.lines[3]!).message), /msg_signature/);
});

test("security: a MsgId that is not 1 to 20 digits is never used as a store key", async () => {
  const keys: string[] = [];
  const inner = new MemoryStore({ now: () => NOW_SECONDS * 1000 });
  const store: KeyValueStore = {
    get: (key) => inner.get(key),
    set: (key, value, options) => (keys.push(key), inner.set(key, value, options)),
    delete: (key) => inner.delete(key),
  };
  const mp = plainApp({ dedupeStore: store });
  const ids = ["18446744073709551615", "1", "184467440737095516150", '"12ab"', `"${"9".repeat(400)}"`];
  for (const [i, msgId] of ids.entries()) {
    const response = await mp.push.handle(pushRequest({ body: text("hi", msgId), nonce: `n${i}` }), () => undefined);
    assert.equal(response.status, 200, msgId.slice(0, 24));
    await response.body?.cancel();
  }
  const marks = keys.filter((k) => !k.includes(":query:"));
  assert.ok(marks.some((k) => k.endsWith(":msg:18446744073709551615")));
  assert.ok(marks.some((k) => k.endsWith(":msg:1")));
  // The others are keyed by a hash of the message, whatever their length.
  assert.equal(marks.filter((k) => /:event:[0-9a-f]{40}$/.test(k)).length, 3 * 2);
  assert.ok(marks.every((k) => k.length < 200), marks.join("\n"));
});

test("security: repeated XML tags stay arrays; a repeated Encrypt or typed field is never read as one value", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const list = `<xml><ToUserName>${GH_ID}</ToUserName><FromUserName>${OPENID}</FromUserName>` +
    `<CreateTime>${NOW_SECONDS}</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event>` +
    `<SubscribeMsgPopupEvent><List><TemplateId>T1</TemplateId></List><List><TemplateId>T2</TemplateId></List>` +
    `</SubscribeMsgPopupEvent></xml>`;
  assert.equal(await (await mp.push.handle(pushRequest({ body: list, format: "xml" }), handler)).text(), "success");
  assert.deepEqual(calls[0]!.SubscribeMsgPopupEvent, { List: [{ TemplateId: "T1" }, { TemplateId: "T2" }] });
  // Two Encrypt elements: the signature covers one of them; neither is taken.
  const safe = pushApp();
  const encrypt = "QUFBQQ==";
  const envelope = `<xml><ToUserName>${GH_ID}</ToUserName><Encrypt>${encrypt}</Encrypt><Encrypt>other</Encrypt></xml>`;
  const twice = pushRequest({ body: envelope, format: "xml", mode: "aes", encrypt });
  const doubled = new Request(twice.url, { method: "POST", body: envelope });
  assert.equal((await readError(await safe.push.handle(doubled, handler))).status, 400);
  const typed = `<xml><ToUserName>${GH_ID}</ToUserName><FromUserName>${OPENID}</FromUserName>` +
    `<FromUserName>o-other</FromUserName><CreateTime>${NOW_SECONDS}</CreateTime><MsgType>text</MsgType>` +
    `<Content>hi</Content><MsgId>5</MsgId></xml>`;
  // Verified, so delivered, but untyped: its FromUserName is neither of the two values.
  const untyped = await mp.push.handle(pushRequest({ body: typed, format: "xml", nonce: "t" }), handler);
  assert.equal(await untyped.text(), "success");
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.FromUserName, "");
});

test("security: echostr is echoed as text/plain that no browser sniffs", async () => {
  const mp = pushApp();
  const echostr = "<script>alert(1)</script>";
  const query = `signature=${sign(TOKEN, String(NOW_SECONDS), "1")}&timestamp=${NOW_SECONDS}&nonce=1&echostr=` +
    encodeURIComponent(echostr);
  const response = await mp.push.handle(new Request(`https://example.com/cb?${query}`), () => undefined);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(await response.text(), echostr);
});

test("security: literal secrets are redacted before the patterns, so no part of one survives", () => {
  for (const secret of ["ab)cd'ef\"gh", "pa ss&word", "x'y\"z)w#1"]) {
    const text = `GET /cgi-bin/token?grant_type=client_credential&secret=${secret}&appid=wx1 failed; ` +
      `body {"secret":"${secret}"}`;
    const out = redact(text, [secret]);
    for (const part of secret.split(/['")&# ]/).filter((p) => p.length >= 2)) {
      assert.ok(!out.includes(part), `"${part}" of the secret survived: ${out}`);
    }
  }
});

test("security: an error thrown by a custom tokenSource is wrapped, redacted, without its stack", async () => {
  const leaked = "vault-token-0123";
  const mp = new MiniProgram({
    appId: "wx1234567890abcdef",
    tokenSource: () => {
      const err = new Error(`vault refused https://vault.example/v1?access_token=${leaked}&x=1`);
      err.stack = `Error: ${leaked}\n    at secretFrame (file:///${leaked}.js:1:1)`;
      throw err;
    },
    fetch: fakeFetch().fetch,
  });
  const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "hi" }).catch((e: unknown) => e);
  assert.ok(err instanceof TokenSourceError);
  assert.ok(err instanceof WeChatError);
  assert.match(err.message, /^Cannot get an access token: the token source failed: /);
  assert.ok(!err.message.includes(leaked), err.message);
  assert.match(err.message, /access_token=\[redacted\]/);
  const cause = err.cause as Error;
  assert.ok(cause instanceof Error);
  assert.ok(!String(cause.stack).includes("secretFrame"));
  assert.ok(!String(cause.stack).includes(leaked));
  // A rejected promise is wrapped alike, and so is a thrown non-Error.
  for (const failure of [() => Promise.reject(new Error("down")), () => Promise.reject("plain string")]) {
    const other = new MiniProgram({ appId: "wx1", tokenSource: failure, fetch: fakeFetch().fetch });
    assert.ok(await other.accessToken.getToken().catch((e: unknown) => e) instanceof TokenSourceError);
  }
});

test("security: a baseUrl with a path keeps it; one with a query or credentials is refused", async () => {
  const fake = fakeFetch((_request, url) =>
    url.pathname.endsWith("/cgi-bin/stable_token")
      ? Response.json({ access_token: "ACCESS_TOKEN_P", expires_in: 7200 })
      : Response.json({ errcode: 0, errmsg: "ok" })
  );
  const mp = new MiniProgram({
    appId: "wx1",
    appSecret: "secret-value",
    fetch: fake.fetch,
    baseUrl: "https://proxy.example/wechat/",
  });
  await mp.customerServiceMessage.setTyping(OPENID, "Typing");
  assert.deepEqual(fake.calls.map((c) => c.url.pathname), [
    "/wechat/cgi-bin/stable_token",
    "/wechat/cgi-bin/message/custom/typing",
  ]);
  for (const baseUrl of ["https://proxy.example/?x=1", "https://u:p@proxy.example", "ftp://x", "not a url"]) {
    assert.throws(
      () => new MiniProgram({ appId: "wx1", appSecret: "s", baseUrl }),
      (e: unknown) => e instanceof ValidationError && e.field === "baseUrl",
      baseUrl,
    );
  }
});

test("security: getTempMedia fails a body that stops arriving, and cancels it", async () => {
  let cancelled = false;
  const fake = fakeFetch(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start: (controller) => controller.enqueue(new Uint8Array([1, 2, 3])),
        cancel: () => void (cancelled = true),
      }),
      { headers: { "content-type": "image/png" } },
    )
  );
  const mp = new MiniProgram({ appId: "wx1", appSecret: "secret-value", fetch: fake.fetch });
  const response = await mp.customerServiceMessage.getTempMedia("MEDIA", { idleTimeoutMs: 50 });
  const reader = response.body!.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2, 3]));
  const err = await reader.read().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof WeChatTimeoutError, String(err));
  assert.equal(err.phase, "body");
  assert.equal(err.endpoint, "/cgi-bin/media/get");
  assert.equal(cancelled, true);
  // A body that keeps coming, however slowly overall, is not cut.
  let sent = 0;
  const slow = fakeFetch(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((r) => setTimeout(r, 20));
          if (sent++ === 5) controller.close();
          else controller.enqueue(new Uint8Array([sent]));
        },
      }),
      { headers: { "content-type": "image/png" } },
    )
  );
  const steady = new MiniProgram({
    appId: "wx1",
    appSecret: "secret-value",
    fetch: slow.fetch,
    mediaIdleTimeoutMs: 80,
  });
  const bytes = new Uint8Array(await (await steady.customerServiceMessage.getTempMedia("MEDIA")).arrayBuffer());
  assert.deepEqual(bytes, new Uint8Array([1, 2, 3, 4, 5]));
  assert.throws(() => new MiniProgram({ appId: "wx1", appSecret: "s", mediaIdleTimeoutMs: 0 }), ValidationError);
});
