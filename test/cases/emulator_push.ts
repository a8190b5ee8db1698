// The emulator's pushes against spec §6 and the official vectors: signing and encryption in
// all four mode × format combinations, each user action's payload, and delivery with retries.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MessageCrypto } from "../../src/push/crypto.ts";
import { buildPush, createEmulator, type PushConfig } from "../../src/testing/mod.ts";
import { deliverySettings } from "../../src/testing/push.ts";
import { test } from "./_registry.ts";
import { APP, GET, JPEG, OPENID, raw, setup, START, token, vectors } from "./emulator_support.ts";

const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PUSH_TOKEN = "push-token-1";
const URL_ = "https://bot.example.test/wechat/callback";

function sha1(parts: string[]): string {
  return createHash("sha1").update([...parts].sort().join("")).digest("hex");
}

/** Fields of a flat `<xml>` document, CDATA sections joined. */
function readXml(xml: string): Record<string, string> {
  const inner = /^<xml>([\s\S]*)<\/xml>$/.exec(xml)?.[1];
  assert.ok(inner !== undefined, `not an <xml> document: ${xml}`);
  const out: Record<string, string> = {};
  for (const match of inner.matchAll(/<(\w+)>([\s\S]*?)<\/\1>/g)) {
    out[match[1]!] = match[2]!.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1");
  }
  return out;
}

function pushSetup(push: Partial<PushConfig> = {}) {
  return setup({ push: { token: PUSH_TOKEN, url: URL_, ...push } });
}

test("emulator push: plain JSON push reproduces the official signature and body", async () => {
  const v = (await vectors()).plain_post;
  const push = await buildPush(
    { appId: APP.appId, token: v.token, format: "json" },
    JSON.parse(v.body),
    { timestamp: v.timestamp, nonce: v.nonce },
  );
  const url = new URL(push.url);
  assert.equal(url.searchParams.get("signature"), v.signature);
  assert.equal(url.searchParams.get("timestamp"), v.timestamp);
  assert.equal(url.searchParams.get("nonce"), v.nonce);
  assert.equal(push.body, v.body);
  assert.equal(push.encrypted, false);
});

test("emulator push: safe JSON push reproduces the official query and encrypted body", async () => {
  const v = (await vectors()).safe_post;
  const query = new URLSearchParams(v.query);
  const push = await buildPush(
    { appId: v.appId, token: v.token, encodingAESKey: v.encodingAESKey, format: "json" },
    JSON.parse(v.decrypted),
    { timestamp: query.get("timestamp")!, nonce: query.get("nonce")!, random: "a8eedb185eb2fecf" },
  );
  assert.equal(new URL(push.url).search, `?${v.query}`);
  assert.equal(push.body, v.body);
  assert.equal(push.plaintext, v.decrypted);
  const request = push.request();
  assert.equal(request.method, "POST");
  assert.equal(await request.text(), v.body);
});

test("emulator push: an encrypted reply (official vector) is verified and decrypted", async () => {
  const v = (await vectors()).encrypted_reply;
  const emulator = createEmulator({
    appId: v.appId,
    appSecret: "secret",
    push: { token: v.token, encodingAESKey: v.encodingAESKey, format: "json" },
  });
  const push = await emulator.user(OPENID).says("hello");
  const json = JSON.stringify({
    Encrypt: v.encrypt,
    MsgSignature: v.msg_signature,
    TimeStamp: 1713424427,
    Nonce: v.nonce,
  });
  const xml = `<xml><Encrypt><![CDATA[${v.encrypt}]]></Encrypt><MsgSignature><![CDATA[${v.msg_signature}]]>` +
    `</MsgSignature><TimeStamp>${v.timestamp}</TimeStamp><Nonce><![CDATA[${v.nonce}]]></Nonce></xml>`;
  for (const reply of [json, xml]) {
    const outcome = await push.deliver(() => new Response(reply));
    assert.deepEqual(
      [outcome.ok, outcome.attempts, outcome.encrypted, outcome.reply, outcome.responseText],
      [true, 1, true, v.plaintext, reply],
    );
  }
  const forged = json.replace(v.msg_signature, "0".repeat(40));
  const outcome = await push.deliver(() => new Response(forged), { retries: 1 });
  assert.equal(outcome.ok, false);
  assert.deepEqual(outcome.failures.map((f) => [f.attempt, f.reason]), [[1, "invalid_reply"], [2, "invalid_reply"]]);
});

for (const format of ["json", "xml"] as const) {
  for (const encodingAESKey of [undefined, KEY]) {
    const mode = encodingAESKey === undefined ? "plain" : "safe";
    test(`emulator push: ${mode} ${format} push is signed, encoded and delivered as WeChat does`, async () => {
      const { emulator } = pushSetup({ format, ...(encodingAESKey === undefined ? {} : { encodingAESKey }) });
      const content = `你好 <b>&amp; ]]> "quoted"`;
      const push = await emulator.user(OPENID).says(content);
      const request = push.request();
      const url = new URL(request.url);
      assert.equal(`${url.origin}${url.pathname}`, URL_);
      const keys = [
        "signature",
        "timestamp",
        "nonce",
        "openid",
        ...(mode === "safe" ? ["encrypt_type", "msg_signature"] : []),
      ];
      assert.deepEqual([...url.searchParams.keys()], keys);
      const q = (name: string) => url.searchParams.get(name) ?? "";
      assert.equal(q("timestamp"), String(START / 1000));
      assert.match(q("nonce"), /^\d{9,10}$/);
      assert.equal(q("openid"), OPENID);
      assert.equal(q("signature"), sha1([PUSH_TOKEN, q("timestamp"), q("nonce")]));
      assert.equal(request.headers.get("content-type"), format === "json" ? "application/json" : "text/xml");
      const body = await request.text();
      let plaintext = body;
      if (mode === "safe") {
        const envelope = format === "json" ? JSON.parse(body) : readXml(body);
        assert.deepEqual(Object.keys(envelope), ["ToUserName", "Encrypt"]);
        assert.equal(envelope.ToUserName, emulator.originalId);
        assert.equal(q("encrypt_type"), "aes");
        assert.equal(q("msg_signature"), sha1([PUSH_TOKEN, q("timestamp"), q("nonce"), envelope.Encrypt]));
        const mc = new MessageCrypto({ token: PUSH_TOKEN, encodingAESKey: KEY, appId: APP.appId });
        plaintext = await mc.decrypt(envelope.Encrypt);
      }
      // MsgId and CreateTime are bare integers; MsgId has more digits than a double holds.
      assert.match(plaintext, format === "json" ? /"MsgId":\d{19}[,}]/ : /<MsgId>\d{19}<\/MsgId>/);
      assert.match(plaintext, format === "json" ? /"CreateTime":\d{10},/ : /<CreateTime>\d{10}<\/CreateTime>/);
      const fields: Record<string, unknown> = format === "json"
        ? JSON.parse(plaintext.replace(/"MsgId":(\d+)/, '"MsgId":"$1"'))
        : readXml(plaintext);
      assert.deepEqual(fields, {
        ToUserName: emulator.originalId,
        FromUserName: OPENID,
        CreateTime: format === "json" ? START / 1000 : String(START / 1000),
        MsgType: "text",
        Content: content,
        MsgId: push.msgId,
      });
      const seen: string[] = [];
      const outcome = await push.deliver(async (req) => {
        seen.push(await req.text());
        return new Response("success");
      });
      assert.deepEqual([outcome.ok, outcome.attempts, outcome.reply, outcome.failures], [true, 1, undefined, []]);
      assert.deepEqual(seen, [body]);
    });
  }
}

test("emulator push: images are stored as media the API serves", async () => {
  const { emulator } = pushSetup({ format: "json" });
  const push = await emulator.user(OPENID).sendsImage(JPEG);
  const { MediaId, PicUrl, MsgType } = push.message;
  assert.deepEqual(Object.keys(push.message), [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "PicUrl",
    "MediaId",
    "MsgId",
  ]);
  assert.equal(MsgType, "image");
  assert.match(String(PicUrl), /^https?:\/\/.+/);
  const response = await raw(emulator, `${GET}?access_token=${await token(emulator)}&media_id=${MediaId}`);
  assert.equal(response.headers.get("content-type"), "image/jpeg");
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), JPEG);
  assert.equal(emulator.media.get(String(MediaId))?.source, "user");
  const png = await emulator.user(OPENID).sendsImage(Uint8Array.from([1, 2, 3]), "image/png");
  assert.equal(emulator.media.get(String(png.message.MediaId))?.contentType, "image/png");
});

test("emulator push: mini-program cards carry Title, AppId, PagePath and a real cover media", async () => {
  const { emulator } = pushSetup();
  const push = await emulator.user(OPENID).sendsMiniProgramPage({ title: "Shop", pagePath: "pages/a?b=1" });
  const m = push.message;
  assert.deepEqual([m.MsgType, m.Title, m.AppId, m.PagePath], ["miniprogrampage", "Shop", APP.appId, "pages/a?b=1"]);
  assert.match(String(m.ThumbUrl), /^https?:\/\//);
  const cover = emulator.media.get(String(m.ThumbMediaId));
  assert.equal(cover?.contentType, "image/png");
  assert.deepEqual([...cover!.bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  const custom = await emulator.user(OPENID).sendsMiniProgramPage({
    title: "Other",
    pagePath: "pages/b",
    appId: "wxother0000000000",
    thumb: JPEG,
    thumbContentType: "image/jpeg",
  });
  assert.equal(custom.message.AppId, "wxother0000000000");
  assert.deepEqual(emulator.media.get(String(custom.message.ThumbMediaId))?.bytes, JPEG);
  assert.match(custom.message.MsgId as string, /^\d{19}$/);
});

test("emulator push: entering the session is an event without MsgId", async () => {
  const { emulator } = pushSetup({ format: "json" });
  const push = await emulator.user(OPENID).entersSession("contact-button");
  assert.deepEqual(push.message, {
    ToUserName: emulator.originalId,
    FromUserName: OPENID,
    CreateTime: START / 1000,
    MsgType: "event",
    Event: "user_enter_tempsession",
    SessionFrom: "contact-button",
  });
  assert.equal(push.msgId, undefined);
  assert.equal(await push.request().text(), JSON.stringify(push.message));
});

test("emulator push: MsgIds are unique, increasing 64-bit integers beyond float precision", async () => {
  const { emulator } = pushSetup();
  const user = emulator.user(OPENID);
  const ids: bigint[] = [];
  for (let i = 0; i < 5; i++) ids.push(BigInt((await user.says(`m${i}`)).msgId!));
  for (const id of ids) {
    assert.ok(id > 2n ** 53n && id < 2n ** 63n, String(id));
    assert.notEqual(String(Number(id)), String(id), "a double cannot hold it");
  }
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!);
});

test("emulator push: CreateTime and timestamp follow the emulator's clock", async () => {
  const { emulator, clock } = pushSetup();
  clock.advance(90_500);
  const push = await emulator.user(OPENID).says("later");
  assert.equal(push.message.CreateTime, Math.floor((START + 90_500) / 1000));
  assert.equal(new URL(push.request().url).searchParams.get("timestamp"), String(Math.floor((START + 90_500) / 1000)));
});

test("emulator delivery: no answer within the timeout is re-sent 3 times, then the user sees a notice", async () => {
  const { emulator } = pushSetup({ timeoutMs: 20 });
  const push = await emulator.user(OPENID).says("anyone?");
  const requests: Request[] = [];
  const outcome = await push.deliver((request) => {
    requests.push(request);
    return new Promise<Response>(() => {});
  });
  assert.equal(outcome.ok, false);
  assert.equal(outcome.attempts, 4);
  assert.deepEqual(outcome.failures.map((f) => [f.attempt, f.reason]), [1, 2, 3, 4].map((n) => [n, "timeout"]));
  assert.equal(requests.length, 4);
  assert.ok(requests.every((r) => r.signal.aborted), "WeChat drops each connection");
  const bodies = await Promise.all(requests.map((r) => r.text()));
  assert.ok(bodies.every((b) => b === bodies[0] && b.includes(push.msgId!)), "the same message each time");
  assert.deepEqual(emulator.inbox(OPENID).map((e) => e.kind === "notice" && e.text), [
    "该小程序客服暂时无法提供服务，请稍后再试",
  ]);
});

test("emulator delivery: late, failing or malformed answers are retried until a valid one", async () => {
  const { emulator } = pushSetup({ timeoutMs: 30 });
  const push = await emulator.user(OPENID).says("hi");
  const answers = [
    () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("success")), 200)),
    () => new Response("oops", { status: 500 }),
    () => Promise.reject(new TypeError("connection refused")),
    () => new Response("ok"),
    () => new Response(""),
  ];
  let index = 0;
  const outcome = await push.deliver(() => answers[index++]!(), { retries: 4 });
  assert.equal(outcome.ok, true);
  assert.equal(outcome.attempts, 5);
  assert.equal(outcome.responseText, "");
  assert.deepEqual(outcome.failures.map((f) => [f.attempt, f.reason]), [
    [1, "timeout"],
    [2, "status"],
    [3, "network"],
    [4, "invalid_reply"],
  ]);
  assert.deepEqual(emulator.inbox(OPENID), [], "answered in the end: no notice");
});

test("emulator delivery: retry count and timeout come from the options, then the config, then 3 and 5 s", async () => {
  const { emulator } = pushSetup({ retries: 1 });
  const push = await emulator.user(OPENID).says("hi");
  let calls = 0;
  const failing = () => {
    calls++;
    return new Response("nope", { status: 502 });
  };
  assert.equal((await push.deliver(failing)).attempts, 2);
  assert.equal((await push.deliver(failing, { retries: 0 })).attempts, 1);
  assert.equal(calls, 3);
  assert.deepEqual(deliverySettings({ appId: APP.appId, token: PUSH_TOKEN }), {
    target: { appId: APP.appId, token: PUSH_TOKEN },
    timeoutMs: 5000,
    retries: 3,
  });
  const slow = await push.deliver(
    () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("success")), 60)),
    { timeoutMs: 10, retries: 0 },
  );
  assert.deepEqual(slow.failures.map((f) => f.reason), ["timeout"]);
});

test("emulator delivery: plain mode accepts a transfer_customer_service reply", async () => {
  const { emulator } = pushSetup();
  const push = await emulator.user(OPENID).says("human please");
  const transfer = "<xml><ToUserName><![CDATA[" + OPENID + "]]></ToUserName><FromUserName><![CDATA[gh_x]]>" +
    "</FromUserName><CreateTime>1399197672</CreateTime><MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>";
  const outcome = await push.deliver(() => new Response(transfer));
  assert.deepEqual([outcome.ok, outcome.reply, outcome.encrypted], [true, transfer, false]);
  const json = await push.deliver(() => new Response('{"MsgType":"transfer_customer_service"}'));
  assert.equal(json.reply, '{"MsgType":"transfer_customer_service"}');
});

test("emulator delivery: safe mode refuses an unencrypted reply; events fail without a notice", async () => {
  const { emulator } = pushSetup({ encodingAESKey: KEY, timeoutMs: 50 });
  const transfer = "<xml><MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>";
  const event = await emulator.user(OPENID).entersSession();
  const outcome = await event.deliver(() => new Response(transfer), { retries: 2 });
  assert.equal(outcome.ok, false);
  assert.equal(outcome.responseText, transfer);
  assert.deepEqual(outcome.failures.map((f) => f.reason), ["invalid_reply", "invalid_reply", "invalid_reply"]);
  assert.deepEqual(emulator.inbox(OPENID), []);
  // A reply encrypted with the right key and signed is accepted.
  const message = await emulator.user(OPENID).says("hi");
  const mc = new MessageCrypto({ token: PUSH_TOKEN, encodingAESKey: KEY, appId: APP.appId });
  const encrypt = await mc.encrypt(transfer);
  const reply = JSON.stringify({
    Encrypt: encrypt,
    MsgSignature: sha1([PUSH_TOKEN, "1", "2", encrypt]),
    TimeStamp: 1,
    Nonce: "2",
  });
  const good = await message.deliver(() => new Response(reply));
  assert.deepEqual([good.ok, good.encrypted, good.reply], [true, true, transfer]);
  // Encrypted for another app: the trailing appid does not match.
  const other = new MessageCrypto({ token: PUSH_TOKEN, encodingAESKey: KEY, appId: "wxsomeoneelse00000" });
  const foreign = await other.encrypt(transfer);
  const wrongApp = JSON.stringify({
    Encrypt: foreign,
    MsgSignature: sha1([PUSH_TOKEN, "1", "2", foreign]),
    TimeStamp: 1,
    Nonce: "2",
  });
  assert.equal((await message.deliver(() => new Response(wrongApp), { retries: 0 })).ok, false);
});

test("emulator delivery: without a handler the push goes to push.url through globalThis.fetch", async () => {
  const { emulator } = pushSetup({ format: "json" });
  const push = await emulator.user(OPENID).says("via the network");
  const original = globalThis.fetch;
  const urls: string[] = [];
  globalThis.fetch = ((input: RequestInfo | URL) => {
    urls.push(input instanceof Request ? input.url : String(input));
    return Promise.resolve(new Response("success"));
  }) as typeof fetch;
  try {
    const outcome = await push.deliver();
    assert.equal(outcome.ok, true);
  } finally {
    globalThis.fetch = original;
  }
  assert.equal(urls.length, 1);
  assert.ok(urls[0]!.startsWith(`${URL_}?signature=`));
});

test("emulator push: without a push config actions open the window but build no push", async () => {
  const { emulator } = setup();
  const push = await emulator.user(OPENID).says("hi");
  assert.equal(emulator.user(OPENID).window?.remaining, 5);
  assert.equal(push.message.Content, "hi");
  assert.throws(() => push.request(), /no push config/);
  await assert.rejects(push.deliver(() => new Response("success")), /no push config/);
  const noUrl = createEmulator({ ...APP, push: { token: PUSH_TOKEN } });
  const local = await noUrl.user(OPENID).says("hi");
  assert.equal(new URL(local.request().url).pathname, "/wechat/callback");
  await assert.rejects(local.deliver(), /pass a handler or set push\.url/);
  assert.throws(
    () => createEmulator({ ...APP, push: { token: PUSH_TOKEN, encodingAESKey: "short" } }),
    /encodingAESKey/,
  );
});
