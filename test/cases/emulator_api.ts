// The emulator's HTTP surface: error shape, routing, call records, media (spec §4, §5) and faults.
import assert from "node:assert/strict";
import { test } from "./_registry.ts";
import {
  BASE,
  DAY,
  GET,
  getJson,
  JPEG,
  OPENID,
  PNG,
  raw,
  RID,
  SEND,
  setup,
  STABLE,
  stableToken,
  text,
  token,
  TYPING,
  UPLOAD,
  upload,
} from "./emulator_support.ts";

test("emulator errors: HTTP 200, WeChat's JSON Content-Type, errmsg ending in a rid", async () => {
  const { emulator } = setup();
  const response = await raw(emulator, `${SEND}?access_token=nope`, { method: "POST", body: "{}" });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; encoding=utf-8");
  const body = await response.json() as { errcode: number; errmsg: string };
  assert.deepEqual(Object.keys(body), ["errcode", "errmsg"]);
  assert.equal(body.errcode, 40001);
  assert.match(body.errmsg, /^invalid credential, access_token is invalid or not latest/);
  assert.match(body.errmsg, RID);
  const other = await (await raw(emulator, `${SEND}?access_token=nope`, { method: "POST", body: "{}" })).json();
  assert.notEqual((other as { errmsg: string }).errmsg, body.errmsg, "each answer has its own rid");
});

test("emulator routing: any origin by path; unknown paths get HTTP 404", async () => {
  const { emulator } = setup();
  const body = JSON.stringify({ grant_type: "client_credential", appid: "wx1234567890abcdef", secret: "x" });
  for (const origin of ["http://127.0.0.1:8787", "https://wechat.example.test", BASE]) {
    const response = await emulator.fetch(`${origin}/cgi-bin/stable_token`, { method: "POST", body });
    assert.equal((await response.json() as { errcode: number }).errcode, 40125, origin);
  }
  const request = new Request(`${BASE}/cgi-bin/stable_token`, { method: "POST", body });
  assert.equal((await (await emulator.fetch(request)).json() as { errcode: number }).errcode, 40125);
  for (const path of ["/cgi-bin/message/custom/business/sendall", "/", "/cgi-bin/tokens"]) {
    const response = await raw(emulator, path);
    assert.equal(response.status, 404, path);
  }
  assert.equal(emulator.calls.at(-1)?.status, 404);
});

test("emulator calls: method, path, query without the token, parsed body, answer", async () => {
  const { emulator } = setup();
  const t = await token(emulator);
  emulator.user(OPENID);
  await raw(emulator, `${SEND}?access_token=${t}&extra=1`, { method: "POST", body: JSON.stringify(text("hi")) });
  await upload(emulator, t, JPEG, "photo.jpg");
  await raw(emulator, `${GET}?access_token=${t}&media_id=abc`);
  const [tokenCall, sendCall, uploadCall, getCall] = emulator.calls;
  assert.deepEqual(tokenCall, {
    method: "POST",
    path: STABLE,
    query: {},
    withToken: false,
    body: { grant_type: "client_credential", appid: "wx1234567890abcdef", secret: "APP_SECRET_VALUE_0123456789" },
    at: emulator.now(),
    status: 200,
  });
  assert.deepEqual(sendCall, {
    method: "POST",
    path: SEND,
    query: { extra: "1" },
    withToken: true,
    body: text("hi"),
    at: emulator.now(),
    status: 200,
    errcode: 45015,
  });
  assert.deepEqual(uploadCall?.query, { type: "image" });
  const part = (uploadCall?.body as { media: { filename: string; size: number } }).media;
  assert.deepEqual([part.filename, part.size], ["photo.jpg", JPEG.byteLength]);
  assert.deepEqual([getCall?.method, getCall?.query, getCall?.body, getCall?.errcode], [
    "GET",
    { media_id: "abc" },
    undefined,
    40007,
  ]);
  assert.ok(!JSON.stringify(emulator.calls).includes(t), "the token is never recorded");
});

test("emulator fetch: an already aborted signal rejects before anything is recorded", async () => {
  const { emulator } = setup();
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(raw(emulator, STABLE, { method: "POST", body: "{}", signal: controller.signal }));
  assert.equal(emulator.calls.length, 0);
});

test("emulator media: upload then get round-trips bytes, type and file name", async () => {
  const { emulator } = setup();
  const t = await token(emulator);
  for (
    const [bytes, filename, type, ext] of [[JPEG, "a.JPEG", "image/jpeg", "jpg"], [
      PNG,
      "b.png",
      "image/png",
      "png",
    ]] as const
  ) {
    const answer = await upload(emulator, t, bytes, filename);
    assert.deepEqual(Object.keys(answer), ["errcode", "errmsg", "type", "media_id", "created_at"]);
    assert.equal(answer.errcode, 0);
    assert.equal(answer.type, "image");
    assert.equal(answer.created_at, Math.floor(emulator.now() / 1000));
    const mediaId = String(answer.media_id);
    assert.match(mediaId, /^[A-Za-z0-9_-]{64}$/);
    const response = await raw(emulator, `${GET}?access_token=${t}&media_id=${mediaId}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), type);
    assert.equal(response.headers.get("content-disposition"), `attachment; filename="${mediaId}.${ext}"`);
    assert.equal(response.headers.get("content-length"), String(bytes.byteLength));
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
    assert.deepEqual(emulator.media.get(mediaId)?.bytes, bytes);
    assert.equal(emulator.media.get(mediaId)?.source, "upload");
  }
  assert.equal(emulator.media.list().length, 2);
});

test("emulator media: 41005, 44001, 40004, 40005 and 40006 on bad uploads", async () => {
  const { emulator } = setup();
  const t = await token(emulator);
  assert.equal((await upload(emulator, t, JPEG, "a.jpg", { field: "file" })).errcode, 41005);
  assert.equal((await upload(emulator, t, new Uint8Array(0), "a.jpg")).errcode, 44001);
  assert.equal((await upload(emulator, t, JPEG, "a.jpg", { type: "voice" })).errcode, 40004);
  assert.equal((await upload(emulator, t, JPEG, "a.jpg", { type: "" })).errcode, 40004);
  assert.equal((await upload(emulator, t, JPEG, "a.txt")).errcode, 40005);
  assert.equal((await upload(emulator, t, JPEG, "noextension")).errcode, 40005);
  assert.equal((await upload(emulator, t, new Uint8Array(10 * 1024 * 1024 + 1), "big.jpg")).errcode, 40006);
  assert.equal((await upload(emulator, t, new Uint8Array(10 * 1024 * 1024), "max.jpg")).errcode, 0);
  // A `media` part without a filename is a plain field, not a file.
  const form = new FormData();
  form.set("media", "not a file");
  const noFile = await raw(emulator, `${UPLOAD}?access_token=${t}&type=image`, { method: "POST", body: form });
  assert.equal((await noFile.json() as { errcode: number }).errcode, 41005);
  const notMultipart = await raw(emulator, `${UPLOAD}?access_token=${t}&type=image`, { method: "POST", body: "x" });
  assert.equal((await notMultipart.json() as { errcode: number }).errcode, 41005);
  assert.equal(emulator.media.list().length, 1);
});

test("emulator media: get answers 40007 as JSON for unknown ids and after 3 days", async () => {
  const { emulator, clock } = setup();
  const mediaId = String((await upload(emulator, await token(emulator), JPEG, "a.jpg")).media_id);
  clock.advance(3 * DAY - 1);
  let t = await token(emulator);
  const fine = await raw(emulator, `${GET}?access_token=${t}&media_id=${mediaId}`);
  assert.equal(fine.headers.get("content-type"), "image/jpeg");
  await fine.body?.cancel();
  clock.advance(1);
  t = await token(emulator);
  const expired = await raw(emulator, `${GET}?access_token=${t}&media_id=${mediaId}`);
  assert.equal(expired.headers.get("content-type"), "application/json; encoding=utf-8");
  const body = await expired.json() as { errcode: number; errmsg: string };
  assert.equal(body.errcode, 40007);
  assert.match(body.errmsg, /^invalid media_id rid: /);
  assert.equal(emulator.media.get(mediaId), undefined);
  assert.equal((await getJson(emulator, `${GET}?access_token=${t}&media_id=unknown`)).errcode, 40007);
  assert.equal((await getJson(emulator, `${GET}?access_token=${t}`)).errcode, 40007);
  const post = await raw(emulator, `${GET}?access_token=${t}&media_id=${mediaId}`, { method: "POST" });
  assert.equal((await post.json() as { errcode: number }).errcode, 43001);
});

test("emulator media: add() stores bytes the API serves", async () => {
  const { emulator } = setup();
  const item = emulator.media.add(PNG, "image/png");
  assert.equal(item.type, "image");
  const response = await raw(emulator, `${GET}?access_token=${await token(emulator)}&media_id=${item.mediaId}`);
  assert.equal(response.headers.get("content-type"), "image/png");
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), PNG);
});

test("emulator faults: system_busy for the next N calls, then normal answers", async () => {
  const { emulator } = setup();
  emulator.faults.next(2, "system_busy");
  assert.equal(emulator.faults.pending, 2);
  for (let i = 0; i < 2; i++) {
    const answer = await stableToken(emulator);
    assert.equal(answer.errcode, -1);
    assert.match(String(answer.errmsg), /^system error rid: /);
  }
  assert.equal(emulator.faults.pending, 0);
  assert.equal((await stableToken(emulator)).expires_in, 7200);
  assert.deepEqual(emulator.calls.map((c) => [c.fault, c.errcode]), [
    ["system_busy", -1],
    ["system_busy", -1],
    [undefined, undefined],
  ]);
  assert.equal(emulator.tokens.issued, 1);
});

test("emulator faults: restricted to a path, queued in order, cleared on demand", async () => {
  const { emulator } = setup();
  const t = await token(emulator);
  await emulator.user(OPENID).says("hi");
  emulator.faults.next(1, "http_500", { path: SEND });
  emulator.faults.next(1, "invalid_token", { path: SEND });
  const typingAnswer = await raw(emulator, `${TYPING}?access_token=${t}`, {
    method: "POST",
    body: JSON.stringify({ touser: OPENID, command: "Typing" }),
  });
  assert.equal((await typingAnswer.json() as { errcode: number }).errcode, 0, "other paths unaffected");
  const sendInit = { method: "POST", body: JSON.stringify(text("x")) };
  const first = await raw(emulator, `${SEND}?access_token=${t}`, sendInit);
  assert.equal(first.status, 500);
  assert.match(await first.text(), /500/);
  const second = await raw(emulator, `${SEND}?access_token=${t}`, sendInit);
  assert.equal((await second.json() as { errcode: number }).errcode, 40001);
  assert.equal(emulator.tokens.status(t), "valid", "an injected 40001 leaves the token alone");
  emulator.faults.next(3, "system_busy", { path: SEND });
  emulator.faults.clear();
  const third = await raw(emulator, `${SEND}?access_token=${t}`, sendInit);
  assert.equal((await third.json() as { errcode: number }).errcode, 0);
  assert.deepEqual(emulator.inbox(OPENID).map((e) => e.kind), ["typing", "message"], "faulty sends delivered nothing");
  assert.throws(() => emulator.faults.next(0, "hang"), RangeError);
  assert.throws(() => emulator.faults.next(1, "teapot" as "hang"), RangeError);
});

test("emulator faults: hang answers nothing until the request's signal aborts", async () => {
  const { emulator } = setup();
  emulator.faults.next(1, "hang", { path: STABLE });
  const controller = new AbortController();
  const pending = raw(emulator, STABLE, { method: "POST", body: "{}", signal: controller.signal });
  const settled = await Promise.race([
    pending.then(() => "answered", () => "rejected"),
    new Promise((resolve) => setTimeout(() => resolve("still hanging"), 50)),
  ]);
  assert.equal(settled, "still hanging");
  assert.equal(emulator.calls.at(-1)?.status, undefined);
  controller.abort();
  await assert.rejects(pending, (err: unknown) => err instanceof Error && err.name === "AbortError");
  assert.equal(emulator.calls.at(-1)?.fault, "hang");
  assert.equal((await stableToken(emulator)).expires_in, 7200, "the next call is answered");
});

test("emulator maxRecorded keeps the newest calls and inbox entries, so a long dev session stays bounded", async () => {
  const { emulator } = setup({ maxRecorded: 3 });
  const user = emulator.user(OPENID);
  await user.says("hi");
  const accessToken = await token(emulator);
  for (const n of [1, 2, 3, 4]) {
    assert.equal(await postJsonErrcode(emulator, accessToken, `m${n}`), 0);
  }
  assert.equal(emulator.calls.length, 3);
  assert.deepEqual(emulator.calls.map((c) => c.path), [SEND, SEND, SEND]);
  assert.deepEqual(user.inbox().map((e) => e.kind === "message" ? e.message.content : e.kind), ["m2", "m3", "m4"]);
  assert.throws(() => setup({ maxRecorded: 0 }), /maxRecorded/);
});

async function postJsonErrcode(emulator: Parameters<typeof token>[0], accessToken: string, content: string) {
  const res = await raw(emulator, `${SEND}?access_token=${accessToken}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(text(content)),
  });
  return ((await res.json()) as { errcode: number }).errcode;
}
