import assert from "node:assert/strict";
import {
  isPushMessage,
  type KeyValueStore,
  MemoryStore,
  MiniProgram,
  type PushMessage,
  Reply,
  ValidationError,
} from "../../mod.ts";
import { parseEnvelope, parseFields } from "../../src/push/parse.ts";
import {
  AES_KEY,
  APP_ID,
  captureLogger,
  decryptOracle,
  deferred,
  encryptOracle,
  GH_ID,
  loadVectors,
  NOW_SECONDS,
  OPENID,
  OTHER_AES_KEY,
  plainApp,
  pushApp,
  pushRequest,
  readError,
  recordingHandler,
  SAMPLES,
  sign,
  TOKEN,
  xmlField,
} from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const TEXT = { ...SAMPLES[0]!.expected };
const TEXT_JSON = SAMPLES[0]!.json;
const SECRET_CONTENT = "你好 <world>";

function textJson(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...TEXT, MsgId: "1", ...overrides }).replace(/"MsgId":"(\d+)"/, '"MsgId":$1');
}

// --- Official vectors through mp.push.handle ----------------------------------

test("push: official URL verification echoes echostr as plain text", async () => {
  const { url_verification: u } = await loadVectors();
  const mp = pushApp({ token: u.token, encodingAESKey: "A".repeat(43) });
  const { handler, calls } = recordingHandler();
  const query = `signature=${u.signature}&timestamp=${u.timestamp}&nonce=${u.nonce}&echostr=${u.echostr}`;
  const ok = await mp.push.handle(new Request(`https://example.com/cb?${query}`), handler);
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get("content-type") ?? "", /^text\/plain/);
  // The echo reflects the query: a browser opening the URL must not sniff it as HTML.
  assert.equal(ok.headers.get("x-content-type-options"), "nosniff");
  assert.equal(await ok.text(), u.echostr);
  const forged = query.replace(u.signature, sign("other", u.timestamp, u.nonce));
  const bad = await mp.push.handle(new Request(`https://example.com/cb?${forged}`), handler);
  const error = await readError(bad);
  assert.equal(error.status, 401);
  assert.equal(error.code, "bad_signature");
  assert.ok(!error.text.includes(u.echostr));
  assert.equal(calls.length, 0);
});

test("push: official plain POST reaches the handler", async () => {
  const { plain_post: p } = await loadVectors();
  const mp = plainApp({ token: p.token }, { now: () => Number(p.timestamp) * 1000 });
  const { handler, calls } = recordingHandler();
  const url = `https://example.com/cb?signature=${p.signature}&timestamp=${p.timestamp}&nonce=${p.nonce}`;
  const response = await mp.push.handle(new Request(url, { method: "POST", body: p.body }), handler);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "success");
  assert.deepEqual(calls, [JSON.parse(p.body)]);
  assert.equal(calls[0]!.CreateTime, 1714037059);
});

test("push: official safe-mode POST is verified, decrypted and parsed", async () => {
  const { safe_post: s } = await loadVectors();
  const timestamp = Number(new URLSearchParams(s.query).get("timestamp"));
  const mp = pushApp({ token: s.token, encodingAESKey: s.encodingAESKey }, {
    appId: s.appId,
    now: () => timestamp * 1000,
  });
  const contexts: { encrypted: boolean; format: string }[] = [];
  const calls: PushMessage[] = [];
  const request = new Request(`https://example.com/cb?${s.query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: s.body,
  });
  const response = await mp.push.handle(request, (message, context) => {
    calls.push(message);
    contexts.push({ encrypted: context.encrypted, format: context.format });
  });
  assert.equal(await response.text(), "success");
  assert.deepEqual(calls, [JSON.parse(s.decrypted)]);
  assert.deepEqual(contexts, [{ encrypted: true, format: "json" }]);
});

// --- Every message type, JSON and XML, plain and safe ----------------------------

for (const sample of SAMPLES) {
  for (const format of ["json", "xml"] as const) {
    for (const mode of ["plain", "aes"] as const) {
      test(`push: ${sample.name} as ${format}, ${mode}`, async () => {
        const mp = mode === "aes" ? pushApp() : plainApp();
        const { handler, calls } = recordingHandler();
        const body = format === "json" ? sample.json : sample.xml;
        const response = await mp.push.handle(pushRequest({ body, format, mode }), handler);
        assert.equal(await response.text(), "success");
        assert.deepEqual(calls, [sample.expected]);
      });
    }
  }
}

test("push: a JSON MsgId of 7360000000000000123 stays exact as a string", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const body =
    `{"ToUserName":"${GH_ID}","FromUserName":"${OPENID}","CreateTime":${NOW_SECONDS},"MsgType":"text","Content":"hi","MsgId":7360000000000000123}`;
  await mp.push.handle(pushRequest({ body }), handler);
  assert.equal(calls[0]!.MsgId, "7360000000000000123");
  assert.equal(typeof calls[0]!.MsgId, "string");
  assert.equal(calls[0]!.CreateTime, NOW_SECONDS);
});

test("push: a MsgId-looking text inside a JSON string is left alone", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const content = String.raw`say \"MsgId\": 12 and \\`;
  const body =
    `{"ToUserName":"${GH_ID}","FromUserName":"${OPENID}","CreateTime":${NOW_SECONDS},"MsgType":"text","Content":"${content}","MsgId": 7360000000000000123 }`;
  await mp.push.handle(pushRequest({ body }), handler);
  assert.equal(calls[0]!.Content, JSON.parse(`"${content}"`));
  assert.equal(calls[0]!.MsgId, "7360000000000000123");
});

test("push: XML entities, character references, CDATA and whitespace", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const body = `<?xml version="1.0" encoding="UTF-8"?>
<xml>
  <ToUserName>${GH_ID}</ToUserName>
  <FromUserName>
     <![CDATA[${OPENID}]]>
  </FromUserName>
  <CreateTime> ${NOW_SECONDS} </CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#20013;&#x1F600;</Content>
  <MsgId>7360000000000000123</MsgId>
  <Note><![CDATA[  kept  ]]></Note>
  <Split><![CDATA[x]]]]><![CDATA[>y]]></Split>
  <Empty></Empty>
  <Info><A>1</A><B><![CDATA[b]]></B></Info>
</xml>`;
  const response = await mp.push.handle(pushRequest({ body, format: "xml" }), handler);
  assert.equal(await response.text(), "success");
  assert.deepEqual(calls, [{
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS,
    MsgType: "text",
    Content: `a <b> & "c" 'd' 中😀`,
    MsgId: "7360000000000000123",
    Note: "  kept  ",
    Split: "x]]>y",
    Empty: "",
    Info: { A: "1", B: "b" },
  }]);
});

test("push: unknown JSON fields pass through untouched", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const body = JSON.stringify({
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS,
    MsgType: "event",
    Event: "future_event",
    Nested: { a: [1, 2], b: null },
    Flag: true,
  });
  await mp.push.handle(pushRequest({ body }), handler);
  assert.deepEqual(calls[0], JSON.parse(body));
});

test("push: the format is read from the body, whatever the Content-Type says", async () => {
  const mp = plainApp();
  const formats: string[] = [];
  const handler = (_: PushMessage, context: { format: string }) => void formats.push(context.format);
  await mp.push.handle(
    pushRequest({ body: `\n ${textJson({ MsgId: "11" })}`, headers: { "content-type": "text/xml" } }),
    handler,
  );
  await mp.push.handle(
    pushRequest({ body: SAMPLES[0]!.xml, nonce: "2", headers: { "content-type": "text/plain" } }),
    handler,
  );
  assert.deepEqual(formats, ["json", "xml"]);
});

// --- Replies -------------------------------------------------------------------------

test("push: transfer_customer_service reply in plain mode", async () => {
  const mp = plainApp();
  const response = await mp.push.handle(pushRequest({ body: TEXT_JSON }), () => Reply.transferCustomerService());
  assert.match(response.headers.get("content-type") ?? "", /xml/);
  const xml = await response.text();
  assert.equal(xmlField(xml, "ToUserName"), OPENID);
  assert.equal(xmlField(xml, "FromUserName"), GH_ID);
  assert.equal(xmlField(xml, "CreateTime"), String(NOW_SECONDS));
  assert.equal(xmlField(xml, "MsgType"), "transfer_customer_service");
});

test("push: transfer_customer_service reply in safe mode, JSON envelope", async () => {
  const mp = pushApp();
  const encrypts: string[] = [];
  for (const msgId of ["101", "102"]) {
    const request = pushRequest({ body: textJson({ MsgId: msgId }), mode: "aes", nonce: "123456" });
    const response = await mp.push.handle(request, () => Reply.transferCustomerService());
    assert.match(response.headers.get("content-type") ?? "", /json/);
    const envelope = await response.json() as {
      Encrypt: string;
      MsgSignature: string;
      TimeStamp: number;
      Nonce: string;
    };
    assert.deepEqual(Object.keys(envelope).sort(), ["Encrypt", "MsgSignature", "Nonce", "TimeStamp"]);
    assert.equal(envelope.TimeStamp, NOW_SECONDS);
    assert.equal(envelope.Nonce, "123456");
    assert.equal(envelope.MsgSignature, sign(TOKEN, String(NOW_SECONDS), "123456", envelope.Encrypt));
    const opened = decryptOracle(envelope.Encrypt);
    assert.equal(opened.appId, APP_ID);
    assert.equal(xmlField(opened.message, "ToUserName"), OPENID);
    assert.equal(xmlField(opened.message, "FromUserName"), GH_ID);
    assert.equal(xmlField(opened.message, "CreateTime"), String(NOW_SECONDS));
    assert.equal(xmlField(opened.message, "MsgType"), "transfer_customer_service");
    encrypts.push(envelope.Encrypt);
  }
  // Same reply text, fresh random each time.
  assert.equal(decryptOracle(encrypts[0]!).message, decryptOracle(encrypts[1]!).message);
  assert.notEqual(encrypts[0], encrypts[1]);
});

test("push: transfer_customer_service reply in safe mode, XML envelope", async () => {
  const mp = pushApp();
  const request = pushRequest({ body: SAMPLES[0]!.xml, format: "xml", mode: "aes", nonce: "987" });
  const response = await mp.push.handle(request, () => Reply.transferCustomerService());
  const xml = await response.text();
  const encrypt = xmlField(xml, "Encrypt")!;
  assert.equal(xmlField(xml, "TimeStamp"), String(NOW_SECONDS));
  assert.equal(xmlField(xml, "Nonce"), "987");
  assert.equal(xmlField(xml, "MsgSignature"), sign(TOKEN, String(NOW_SECONDS), "987", encrypt));
  const opened = decryptOracle(encrypt);
  assert.equal(opened.appId, APP_ID);
  assert.equal(xmlField(opened.message, "ToUserName"), OPENID);
  assert.equal(xmlField(opened.message, "MsgType"), "transfer_customer_service");
});

test("push: a transfer reply to an event answers success instead", async () => {
  const logged = captureLogger();
  const mp = plainApp({}, { logger: logged.logger });
  const event = SAMPLES.find((s) => s.name.startsWith("event"))!;
  const response = await mp.push.handle(pushRequest({ body: event.json }), () => Reply.transferCustomerService());
  assert.equal(await response.text(), "success");
  assert.equal(logged.lines.length, 1);
});

// --- Retries and deduplication ----------------------------------------------------

test("push: the same message three times runs the handler once, answers success thrice", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  for (let i = 0; i < 3; i++) {
    const response = await mp.push.handle(pushRequest({ body: TEXT_JSON, nonce: `n${i}` }), handler);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "success");
  }
  assert.equal(calls.length, 1);
});

test("push: a retry of an answered transfer gets the transfer again", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler(() => Reply.transferCustomerService());
  for (let i = 0; i < 2; i++) {
    const xml = await (await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler)).text();
    assert.equal(xmlField(xml, "MsgType"), "transfer_customer_service");
  }
  assert.equal(calls.length, 1);
});

test("push: a failing handler answers 500 without details and runs again on the retry", async () => {
  const logged = captureLogger();
  const mp = plainApp({}, { logger: logged.logger });
  const { handler, calls } = recordingHandler((_, call) => {
    if (call === 1) throw new Error(`boom: ${SECRET_CONTENT}`);
  });
  const first = await readError(await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler));
  assert.equal(first.status, 500);
  assert.equal(first.code, "handler_failed");
  for (const secret of [SECRET_CONTENT, "boom", OPENID, TOKEN]) assert.ok(!first.text.includes(secret), secret);
  const second = await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler);
  assert.equal(await second.text(), "success");
  assert.equal(calls.length, 2);
  for (const line of logged.lines) {
    for (const secret of [SECRET_CONTENT, "boom", TOKEN, AES_KEY]) assert.ok(!line.includes(secret));
  }
});

test("push: a handler returning something else than a Reply answers 500", async () => {
  const mp = plainApp();
  const handler = (() => "success") as unknown as () => undefined;
  const error = await readError(await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler));
  assert.equal(error.status, 500);
  assert.equal(error.code, "handler_failed");
});

test("push: concurrent duplicates run the handler once and answer alike", async () => {
  const mp = plainApp();
  const gate = deferred();
  const { handler, calls } = recordingHandler(async () => {
    await gate.promise;
    return Reply.transferCustomerService();
  });
  const first = mp.push.handle(pushRequest({ body: TEXT_JSON }), handler);
  const second = mp.push.handle(pushRequest({ body: TEXT_JSON, nonce: "other" }), handler);
  await new Promise((resolve) => setTimeout(resolve, 20));
  gate.resolve();
  const texts = await Promise.all([first, second].map(async (p) => await (await p).text()));
  assert.equal(calls.length, 1);
  for (const xml of texts) assert.equal(xmlField(xml, "MsgType"), "transfer_customer_service");
});

test("push: concurrent duplicates of a failing handler both fail, a later retry runs it again", async () => {
  const mp = plainApp();
  const gate = deferred();
  const { handler, calls } = recordingHandler(async (_, call) => {
    await gate.promise;
    if (call === 1) throw new Error("fail once");
  });
  const both = Promise.all([
    mp.push.handle(pushRequest({ body: TEXT_JSON }), handler),
    mp.push.handle(pushRequest({ body: TEXT_JSON }), handler),
  ]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  gate.resolve();
  assert.deepEqual((await both).map((r) => r.status), [500, 500]);
  assert.equal(calls.length, 1);
  assert.equal(await (await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler)).text(), "success");
  assert.equal(calls.length, 2);
});

test("push: events deduplicate by sender, time and event; messages by MsgId", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const event = {
    ToUserName: GH_ID,
    FromUserName: OPENID,
    MsgType: "event",
    Event: "user_enter_tempsession",
    SessionFrom: "",
  };
  const bodies = [
    JSON.stringify({ ...event, CreateTime: NOW_SECONDS }),
    JSON.stringify({ ...event, CreateTime: NOW_SECONDS }), // retry
    JSON.stringify({ ...event, CreateTime: NOW_SECONDS + 1 }), // a new event
    JSON.stringify({ ...event, CreateTime: NOW_SECONDS, FromUserName: "o-another-user" }), // another user
    textJson({ MsgId: "500" }),
    textJson({ MsgId: "501" }),
    textJson({ MsgId: "500" }), // retry
  ];
  for (const [i, body] of bodies.entries()) {
    assert.equal(await (await mp.push.handle(pushRequest({ body, nonce: `n${i}` }), handler)).text(), "success");
  }
  assert.equal(calls.length, 5);
});

test("push: a claim is written before the handler, released when it fails, marked done when it succeeds", async () => {
  const ops: { op: string; key: string; value?: string; ttl?: number | undefined }[] = [];
  const inner = new MemoryStore();
  const store: KeyValueStore = {
    get: (key) => inner.get(key),
    set: (key, value, options) => {
      ops.push({ op: "set", key, value, ttl: options?.ttlSeconds });
      return inner.set(key, value, options);
    },
    delete: (key) => {
      ops.push({ op: "delete", key });
      return inner.delete(key);
    },
  };
  const mp = plainApp({ dedupeStore: store });
  const failing = () => {
    throw new Error("no");
  };
  const onMessage = () => ops.filter((o) => o.key.includes(":msg:")).map((o) => `${o.op} ${o.value ?? ""}`.trim());
  await mp.push.handle(pushRequest({ body: TEXT_JSON }), failing);
  assert.deepEqual(onMessage().map((o) => o.replace(/lease:\S+/, "lease")), ["set lease", "delete"]);
  await mp.push.handle(pushRequest({ body: TEXT_JSON }), () => undefined);
  assert.deepEqual(onMessage().slice(2).map((o) => o.replace(/lease:\S+/, "lease")), [
    "set lease",
    "set done:success",
  ]);
  const mark = ops.filter((o) => o.key.includes(":msg:")).at(-1)!;
  assert.ok(mark.key.startsWith(`kefu-edge:push:${APP_ID}:u.${OPENID}:msg:`), mark.key);
  assert.ok(mark.key.endsWith(`:${TEXT.MsgId}`));
  assert.ok((mark.ttl ?? 0) >= 300);
  // Plain mode also remembers the query for the skew window (one body per timestamp and nonce).
  assert.deepEqual(ops.filter((o) => o.key.includes(":query:")).map((o) => (o.ttl ?? 0) >= 600), [true]);
  // Another instance sharing the store sees the mark.
  const other = plainApp({ dedupeStore: store });
  const { handler, calls } = recordingHandler();
  await other.push.handle(pushRequest({ body: TEXT_JSON }), handler);
  assert.equal(calls.length, 0);
});

test("push: a failing dedupe store never loses a message", async () => {
  const logged = captureLogger();
  const broken: KeyValueStore = {
    get: () => Promise.reject(new Error("store down")),
    set: () => Promise.reject(new Error("store down")),
    delete: () => Promise.reject(new Error("store down")),
  };
  const mp = plainApp({ dedupeStore: broken }, { logger: logged.logger });
  const { handler, calls } = recordingHandler();
  const response = await mp.push.handle(pushRequest({ body: TEXT_JSON }), handler);
  assert.equal(await response.text(), "success");
  assert.equal(calls.length, 1);
  // The query check, the claim (which then counts as won), the send window and the mark write
  // each failed: one line says so, naming the delivery and not the user.
  assert.equal(logged.lines.length, 1, logged.lines.join("\n"));
  const line = JSON.parse(logged.lines[0]!);
  assert.equal(line.event, "kefu-edge.store_failed");
  assert.match(line.deliveryId, /^[0-9a-f]{40}$/);
  assert.deepEqual(line.operations, ["query", "claim", "window", "mark"]);
  assert.equal(line.error, "Error");
  assert.equal(line.effect, "handled_without_claim");
  assert.ok(!logged.lines[0]!.includes(OPENID));
});

// --- Rejections: 4xx, handler never called, nothing leaked -------------------------

async function expectRefusal(
  name: string,
  request: Request,
  status: number | number[],
  code?: string | string[],
  mp: MiniProgram = pushApp(),
): Promise<void> {
  const { handler, calls } = recordingHandler();
  const error = await readError(await mp.push.handle(request, handler));
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(error.status), `${name}: status ${error.status}`);
  if (code !== undefined) {
    assert.ok((Array.isArray(code) ? code : [code]).includes(error.code), `${name}: ${error.code}`);
  }
  assert.equal(calls.length, 0, `${name}: handler called`);
  for (const secret of [TOKEN, AES_KEY, SECRET_CONTENT, OPENID]) {
    assert.ok(!error.text.includes(secret), `${name}: leaked ${secret}`);
  }
}

test("push: wrong signature and wrong msg_signature are 401", async () => {
  await expectRefusal("signature", pushRequest({ body: TEXT_JSON, token: "wrong" }), 401, "bad_signature");
  await expectRefusal(
    "signature param",
    pushRequest({ body: TEXT_JSON, params: { signature: "0".repeat(40) } }),
    401,
    "bad_signature",
  );
  await expectRefusal(
    "msg_signature",
    pushRequest({ body: TEXT_JSON, mode: "aes", params: { msg_signature: sign("x", "y") } }),
    401,
    "bad_signature",
  );
  // msg_signature over another ciphertext: the plain signature alone is not enough.
  const other = encryptOracle(textJson({ MsgId: "999" }));
  await expectRefusal(
    "msg_signature of another body",
    pushRequest({
      body: TEXT_JSON,
      mode: "aes",
      params: { msg_signature: sign(TOKEN, String(NOW_SECONDS), "415670741", other) },
    }),
    401,
    "bad_signature",
  );
});

function tamper(encrypt: string, index: number): string {
  const bytes = Uint8Array.from(atob(encrypt), (c) => c.charCodeAt(0));
  bytes[index < 0 ? bytes.length + index : index]! ^= 0x5a;
  return btoa(String.fromCharCode(...bytes));
}

test("push: tampered ciphertext is refused, signed or not", async () => {
  const encrypt = encryptOracle(TEXT_JSON);
  for (const index of [-1, -8, -16]) {
    const tampered = tamper(encrypt, index);
    // Re-signed (as if the token had leaked): decryption itself must refuse it.
    await expectRefusal(`re-signed ${index}`, pushRequest({ mode: "aes", encrypt: tampered }), [400, 403], [
      "undecryptable",
      "bad_appid",
    ]);
    // Not re-signed: msg_signature catches it first.
    const stale = pushRequest({
      mode: "aes",
      encrypt: tampered,
      params: { msg_signature: sign(TOKEN, String(NOW_SECONDS), "415670741", encrypt) },
    });
    await expectRefusal(`unsigned ${index}`, stale, 401, "bad_signature");
  }
  await expectRefusal("truncated", pushRequest({ mode: "aes", encrypt: encrypt.slice(0, 20) }), 400, "undecryptable");
  await expectRefusal("not base64", pushRequest({ mode: "aes", encrypt: "%%%%" }), 400, "undecryptable");
});

test("push: wrong appId is 403, wrong key is refused", async () => {
  const foreign = encryptOracle(TEXT_JSON, { appId: "wx0000000000000000" });
  await expectRefusal("appId", pushRequest({ mode: "aes", encrypt: foreign }), 403, "bad_appid");
  const wrongKey = encryptOracle(TEXT_JSON, { key: OTHER_AES_KEY });
  await expectRefusal("key", pushRequest({ mode: "aes", encrypt: wrongKey }), [400, 403]);
  // The receiver's own key is wrong (misconfigured): same refusal.
  const misconfigured = pushApp({ encodingAESKey: OTHER_AES_KEY });
  await expectRefusal(
    "receiver key",
    pushRequest({ body: TEXT_JSON, mode: "aes" }),
    [400, 403],
    undefined,
    misconfigured,
  );
});

test("push: stale and future timestamps are 401, the edge of the window is accepted", async () => {
  for (const delta of [-301, 301, -86_400, 10_000_000]) {
    await expectRefusal(
      `delta ${delta}`,
      pushRequest({ body: TEXT_JSON, timestamp: String(NOW_SECONDS + delta) }),
      401,
      "stale_timestamp",
    );
  }
  const mp = plainApp();
  for (const [delta, msgId] of [[-300, "1"], [300, "2"]] as const) {
    const request = pushRequest({ body: textJson({ MsgId: msgId }), timestamp: String(NOW_SECONDS + delta) });
    assert.equal(await (await mp.push.handle(request, () => undefined)).text(), "success");
  }
  const strict = plainApp({ maxSkewSeconds: 10 });
  await expectRefusal(
    "custom skew",
    pushRequest({ body: TEXT_JSON, timestamp: String(NOW_SECONDS - 11) }),
    401,
    undefined,
    strict,
  );
});

test("push: missing or malformed parameters are 400", async () => {
  for (const name of ["signature", "timestamp", "nonce"]) {
    await expectRefusal(`no ${name}`, pushRequest({ body: TEXT_JSON, params: { [name]: null } }), 400, "bad_request");
  }
  await expectRefusal(
    "no msg_signature",
    pushRequest({ body: TEXT_JSON, mode: "aes", params: { msg_signature: null } }),
    400,
  );
  await expectRefusal("encrypt_type", pushRequest({ body: TEXT_JSON, params: { encrypt_type: "rsa" } }), 400);
  const timestamp = "17141124x5";
  await expectRefusal(
    "timestamp",
    pushRequest({ body: TEXT_JSON, timestamp, params: { signature: sign(TOKEN, timestamp, "415670741") } }),
    400,
  );
  await expectRefusal("no query", pushRequest({ body: TEXT_JSON, query: "" }), 400);
  await expectRefusal("no echostr", pushRequest({ method: "GET" }), 400);
  // Safe mode but the body has no Encrypt.
  const noEncrypt = pushRequest({
    body: TEXT_JSON,
    params: { encrypt_type: "aes", msg_signature: sign(TOKEN, String(NOW_SECONDS), "415670741") },
  });
  await expectRefusal("no Encrypt", noEncrypt, 400, "bad_request");
});

test("push: oversized bodies are 413, counted as they stream", async () => {
  const limit = 64 * 1024;
  const big = "x".repeat(limit + 1);
  const plain = plainApp();
  await expectRefusal("string", pushRequest({ body: big }), 413, "too_large", plain);
  await expectRefusal(
    "declared",
    pushRequest({ body: "{}", headers: { "content-length": String(limit + 1) } }),
    413,
    undefined,
    plain,
  );
  const chunk = new Uint8Array(1024).fill(0x20);
  let sent = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      sent++;
      controller.enqueue(chunk);
    },
  });
  await expectRefusal(
    "stream",
    pushRequest({ body: endless, headers: { "content-length": "10" } }),
    413,
    "too_large",
    plain,
  );
  assert.ok(sent < 200, "stopped reading soon after the limit");
  // Exactly at the limit is accepted.
  const base = textJson({ Content: "" });
  const padded = textJson({ Content: "y".repeat(limit - base.length) });
  assert.equal(new TextEncoder().encode(padded).length, limit);
  assert.equal(await (await plainApp().push.handle(pushRequest({ body: padded }), () => undefined)).text(), "success");
  const small = plainApp({ maxBodyBytes: 100 });
  await expectRefusal("custom limit", pushRequest({ body: TEXT_JSON }), 413, "too_large", small);
});

test("push: bodies that do not parse are 400", async () => {
  const bodies: (string | Uint8Array)[] = [
    "",
    "   ",
    "hello",
    "{",
    "[1,2,3]",
    "null",
    "{}",
    "<xml>",
    "<xml><ToUserName>a</FromUserName></xml>",
    "<root><ToUserName>a</ToUserName></root>",
    "<xml></xml>",
    `<!DOCTYPE x [<!ENTITY a "${"b".repeat(100)}">]>${SAMPLES[0]!.xml}`,
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
  ];
  for (const [i, body] of bodies.entries()) {
    await expectRefusal(
      JSON.stringify(typeof body === "string" ? body.slice(0, 60) : [...body]),
      pushRequest({ body, nonce: `g${i}` }),
      400,
      undefined,
      plainApp(),
    );
  }
  // The same garbage encrypted and properly signed.
  for (const body of ["hello", "[]", "<xml>", "{}"]) {
    await expectRefusal(`encrypted ${body}`, pushRequest({ body, mode: "aes" }), 400, "bad_request");
  }
});

test("push: a verified message that does not fit its kind reaches the handler untyped, with one warning", async () => {
  const shapes: Array<[string, string, string]> = [
    // [body, kind, field] as the warning names them
    [textJson({ Content: undefined, MsgId: "901" }), "text", "Content"],
    [textJson({ CreateTime: "soon", MsgId: "902" }), "common", "CreateTime"],
    [textJson({ CreateTime: -1, MsgId: "903" }), "common", "CreateTime"],
    [textJson({ MsgType: 3, MsgId: "904" }), "common", "MsgType"],
    [textJson({ MsgId: { id: 1 } }), "common", "MsgId"],
    ['{"ToUserName":"a"}', "common", "FromUserName"],
    [JSON.stringify({ ...TEXT, MsgId: "905", MsgType: "image" }), "image", "PicUrl"],
    [
      JSON.stringify({ ...TEXT, MsgId: undefined, MsgType: "event", Event: "user_enter_tempsession" }),
      "event:user_enter_tempsession",
      "SessionFrom",
    ],
    [SAMPLES[0]!.xml.replace(/<MsgId>.*<\/MsgId>/, ""), "text", "MsgId"],
    [SAMPLES[0]!.xml.replace("</xml>", "<MsgType>text</MsgType></xml>"), "common", "MsgType"],
  ];
  for (const mode of ["plain", "aes"] as const) {
    for (const [i, [body, kind, field]] of shapes.entries()) {
      const logged = captureLogger();
      const mp = mode === "aes" ? pushApp({}, { logger: logged.logger }) : plainApp({}, { logger: logged.logger });
      const { handler, calls } = recordingHandler();
      const format = body.startsWith("<") ? "xml" : "json";
      const response = await mp.push.handle(pushRequest({ body, format, mode, nonce: `s${i}` }), handler);
      assert.equal(await response.text(), "success", `${mode} ${kind} ${field}`);
      assert.equal(calls.length, 1);
      // A kind's own fields missing: not narrowed to the kind. (A bad common field is filled
      // in — "" or 0 — and the kind's fields still decide.)
      if (kind !== "common") {
        for (const known of ["text", "image", "miniprogrampage", "user_enter_tempsession"] as const) {
          assert.equal(isPushMessage(calls[0]!, known), false, `${body} is not a typed ${known}`);
        }
      }
      assert.deepEqual(logged.lines.map((l) => JSON.parse(l)), [{ event: "kefu-edge.push_untyped", kind, field }]);
      assert.ok(!logged.lines[0]!.includes(SECRET_CONTENT) && !logged.lines[0]!.includes("hi"));
    }
  }
});

test("push: MsgID as some pushes spell it is read as MsgId", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  const body = textJson({ MsgId: undefined, MsgID: "7360000000000000777" });
  assert.equal(await (await mp.push.handle(pushRequest({ body }), handler)).text(), "success");
  assert.equal(calls[0]!.MsgId, "7360000000000000777");
  assert.equal(calls[0]!.MsgID, undefined);
  assert.ok(isPushMessage(calls[0]!, "text"));
});

test("push: other methods are 405 with Allow", async () => {
  for (const method of ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
    const { handler, calls } = recordingHandler();
    const response = await plainApp().push.handle(pushRequest({ method, body: TEXT_JSON }), handler);
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get("allow"), "GET, POST");
    assert.equal(calls.length, 0);
  }
});

test("push: without a push token every request is 503 and the handler never runs", async () => {
  const unconfigured = new MiniProgram({ appId: APP_ID, appSecret: "APP_SECRET_VALUE_0123456789" });
  const emptyToken = pushApp({ token: "" });
  for (const mp of [unconfigured, emptyToken]) {
    assert.equal(mp.push.configured, false);
    for (
      const request of [pushRequest({ body: TEXT_JSON }), pushRequest({ method: "GET", params: { echostr: "1" } })]
    ) {
      await expectRefusal("unconfigured", request, 503, "push_not_configured", mp);
    }
  }
  // A token but no EncodingAESKey: plain works, encrypted is refused (never a plaintext fallback).
  const plainOnly = pushApp({ encodingAESKey: "" });
  assert.equal(
    await (await plainOnly.push.handle(pushRequest({ body: TEXT_JSON }), () => undefined)).text(),
    "success",
  );
  await expectRefusal("no key", pushRequest({ body: TEXT_JSON, mode: "aes" }), 503, "push_not_configured", plainOnly);
});

test("push: invalid push options are refused at construction", () => {
  assert.throws(
    () => pushApp({ encodingAESKey: "short" }),
    (err: unknown) => err instanceof ValidationError && err.field === "encodingAESKey",
  );
  assert.throws(() => pushApp({ maxSkewSeconds: -1 }), ValidationError);
  assert.throws(() => pushApp({ maxBodyBytes: Number.NaN }), ValidationError);
});

test("push: the safe-mode XML envelope shortcut reads what the full parser reads", () => {
  const encrypt = encryptOracle(TEXT_JSON);
  const envelopes = [
    `<xml><ToUserName><![CDATA[${GH_ID}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
    `\n<xml>\n  <ToUserName><![CDATA[${GH_ID}]]></ToUserName>\n  <Encrypt><![CDATA[${encrypt}]]></Encrypt>\n</xml>\n`,
    // Shapes the shortcut leaves to the full parser.
    `<?xml version="1.0"?><xml><ToUserName><![CDATA[${GH_ID}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
    `<xml><!-- c --><ToUserName>${GH_ID}</ToUserName><Encrypt>${encrypt}</Encrypt></xml>`,
    `<xml><Encrypt><![CDATA[${encrypt}]]></Encrypt><ToUserName><![CDATA[${GH_ID}]]></ToUserName></xml>`,
  ];
  for (const xml of envelopes) {
    assert.deepEqual(parseEnvelope(xml, "xml"), { ToUserName: GH_ID, Encrypt: encrypt }, xml.slice(0, 40));
    assert.deepEqual(parseEnvelope(xml, "xml"), parseFields(xml, "xml"));
  }
  // Compatible mode: the plaintext fields ride along and are kept.
  const compatible = SAMPLES[0]!.xml.replace("</xml>", `<Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`);
  assert.equal(parseEnvelope(compatible, "xml").Encrypt, encrypt);
  assert.equal(parseEnvelope(compatible, "xml").MsgType, "text");
});

test("push: compatible mode (plaintext and Encrypt together) uses the decrypted message", async () => {
  const mp = pushApp();
  const { handler, calls } = recordingHandler();
  const inner = textJson({ MsgId: "777", Content: "the real one" });
  const encrypt = encryptOracle(inner);
  const body = JSON.stringify({ ...TEXT, MsgId: "777", Content: "unsigned copy", Encrypt: encrypt });
  const request = pushRequest({
    body,
    params: {
      encrypt_type: "aes",
      msg_signature: sign(TOKEN, String(NOW_SECONDS), "415670741", encrypt),
    },
  });
  assert.equal(await (await mp.push.handle(request, handler)).text(), "success");
  assert.equal(calls[0]!.Content, "the real one");
  assert.equal(calls[0]!.Encrypt, undefined);
});

test("push: a MsgType named like an Object property is just another kind", async () => {
  const mp = plainApp();
  const { handler, calls } = recordingHandler();
  for (const [i, type] of ["valueOf", "__proto__", "constructor", "toString", "hasOwnProperty"].entries()) {
    const body = `<xml><ToUserName>${GH_ID}</ToUserName><FromUserName>${OPENID}</FromUserName>` +
      `<CreateTime>${NOW_SECONDS}</CreateTime><MsgType>${type}</MsgType><MsgId>${600 + i}</MsgId></xml>`;
    const response = await mp.push.handle(pushRequest({ body, format: "xml", nonce: `p${i}` }), handler);
    assert.equal(await response.text(), "success", type);
  }
  assert.equal(calls.length, 5);
});
