// The real SDK driven through the emulator: what a user of kefu-edge sees end to end.
import assert from "node:assert/strict";
import {
  filenameFromContentDisposition,
  isOutOfWindow,
  isQuotaExceeded,
  isTypingWithoutInteraction,
  MemoryStore,
  MiniProgram,
  type MiniProgramOptions,
  WeChatApiError,
} from "../../mod.ts";
import { test } from "./_registry.ts";
import {
  APP,
  clock,
  GET,
  HOUR,
  JPEG,
  MINUTE,
  OPENID,
  SECOND,
  SEND,
  setup,
  STABLE,
  TYPING,
  UPLOAD,
} from "./emulator_support.ts";
import { createEmulator } from "../../src/testing/mod.ts";

function sdk(options: Partial<MiniProgramOptions> = {}) {
  const s = setup();
  const mp = new MiniProgram({
    ...APP,
    fetch: s.emulator.fetch,
    now: s.clock.now,
    retry: { baseDelayMs: 1 },
    timeoutMs: 2000,
    ...options,
  });
  return { ...s, mp };
}

const callsTo = (calls: readonly { path: string }[], path: string) => calls.filter((c) => c.path === path).length;

test("emulator + SDK: every message type reaches a user who spoke", async () => {
  const { emulator, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  const cs = mp.customerServiceMessage;
  const { media_id } = await cs.uploadTempMedia("image", JPEG, { filename: "photo.jpg" });
  const link = {
    title: "Docs",
    description: "Read me",
    url: "https://example.com/docs",
    thumb_url: "https://example.com/t.png",
  };
  const page = { title: "Shop", pagepath: "pages/index/index?foo=bar", thumb_media_id: media_id };
  assert.deepEqual(await cs.send(OPENID, "text", { content: "你好, World" }), { errcode: 0, errmsg: "ok" });
  await cs.send(OPENID, "image", { media_id });
  await cs.send(OPENID, "link", link);
  await cs.send(OPENID, "miniprogrampage", page);
  assert.deepEqual(emulator.inbox(OPENID).map((e) => e.kind === "message" && [e.msgtype, e.message]), [
    ["text", { content: "你好, World" }],
    ["image", { media_id }],
    ["link", link],
    ["miniprogrampage", page],
  ]);
  // One token for the whole conversation, carried in the query and never recorded.
  assert.equal(emulator.tokens.issued, 1);
  assert.ok(emulator.calls.filter((c) => c.path !== STABLE).every((c) => c.withToken));
  await cs.send(OPENID, "text", { content: "fifth" });
  await assert.rejects(cs.send(OPENID, "text", { content: "sixth" }), isQuotaExceeded);
});

test("emulator + SDK: outside the 48 h window send throws an isOutOfWindow error", async () => {
  const { emulator, clock, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  clock.advance(48 * HOUR);
  const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "too late" }).then(
    () => assert.fail("send should have failed"),
    (e: unknown) => e,
  );
  assert.ok(isOutOfWindow(err));
  assert.equal((err as WeChatApiError).endpoint, SEND);
  assert.match(String((err as WeChatApiError).rid), /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
  assert.deepEqual(emulator.inbox(OPENID), []);
});

test("emulator + SDK: setTyping follows the 30 s interaction rule", async () => {
  const { emulator, clock, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  await mp.customerServiceMessage.setTyping(OPENID, "Typing");
  assert.equal(emulator.user(OPENID).typing, true);
  clock.advance(30 * SECOND);
  await assert.rejects(mp.customerServiceMessage.setTyping(OPENID, "CancelTyping"), isTypingWithoutInteraction);
});

test("emulator + SDK: uploadTempMedia then getTempMedia round-trips the bytes", async () => {
  const { emulator, mp } = sdk();
  const cs = mp.customerServiceMessage;
  const uploaded = await cs.uploadTempMedia("image", "", { name: "cloud.jpg", value: JPEG });
  assert.equal(uploaded.type, "image");
  assert.equal(uploaded.created_at, Math.floor(emulator.now() / 1000));
  const response = await cs.getTempMedia(uploaded.media_id);
  assert.equal(response.headers.get("content-type"), "image/jpeg");
  assert.equal(filenameFromContentDisposition(response.headers.get("content-disposition")), `${uploaded.media_id}.jpg`);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), JPEG);
  // A user's image is fetched the same way with the MediaId of its push.
  const push = await emulator.user(OPENID).sendsImage(Uint8Array.from([0xff, 0xd8, 0xff, 7, 7]));
  const image = await cs.getTempMedia(String(push.message.MediaId));
  assert.deepEqual([...new Uint8Array(await image.arrayBuffer())], [0xff, 0xd8, 0xff, 7, 7]);
  await assert.rejects(
    cs.getTempMedia("unknownMediaId"),
    (e: unknown) => e instanceof WeChatApiError && e.errcode === 40007,
  );
});

test("emulator + SDK: a -1 fault on an idempotent call is retried", async () => {
  const { emulator, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  const { media_id } = await mp.customerServiceMessage.uploadTempMedia("image", JPEG, { filename: "a.jpg" });
  emulator.faults.next(2, "system_busy", { path: GET });
  const response = await mp.customerServiceMessage.getTempMedia(media_id);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), JPEG);
  assert.deepEqual(emulator.calls.filter((c) => c.path === GET).map((c) => c.errcode), [-1, -1, undefined]);
  emulator.faults.next(1, "http_500", { path: TYPING });
  await mp.customerServiceMessage.setTyping(OPENID, "CancelTyping");
  assert.equal(callsTo(emulator.calls, TYPING), 2);
});

test("emulator + SDK: a -1 fault on send is not retried (the message may have gone out)", async () => {
  const { emulator, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  emulator.faults.next(1, "system_busy", { path: SEND });
  await assert.rejects(
    mp.customerServiceMessage.send(OPENID, "text", { content: "once" }),
    (e: unknown) => e instanceof WeChatApiError && e.errcode === -1,
  );
  assert.equal(callsTo(emulator.calls, SEND), 1);
});

test("emulator + SDK: a 40001 fault triggers exactly one replay", async () => {
  const { emulator, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  emulator.faults.next(1, "invalid_token", { path: SEND });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "after one replay" });
  assert.equal(callsTo(emulator.calls, SEND), 2);
  assert.equal(callsTo(emulator.calls, STABLE), 2, "the failed token was dropped and fetched again");
  assert.equal(emulator.inbox(OPENID).length, 1);
  emulator.faults.next(2, "invalid_token", { path: SEND });
  await assert.rejects(
    mp.customerServiceMessage.send(OPENID, "text", { content: "never" }),
    (e: unknown) => e instanceof WeChatApiError && e.errcode === 40001,
  );
  assert.equal(callsTo(emulator.calls, SEND), 4, "one replay, not more");
  assert.equal(emulator.inbox(OPENID).length, 1);
});

test("emulator + SDK: a force-refreshed (leaked) token is replaced after one 40001", async () => {
  const { emulator, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  await mp.customerServiceMessage.send(OPENID, "text", { content: "first" });
  const [first] = emulator.tokens.list();
  emulator.tokens.invalidate(first!.token);
  await mp.customerServiceMessage.send(OPENID, "text", { content: "second" });
  assert.deepEqual(emulator.calls.filter((c) => c.path === SEND).map((c) => c.errcode), [undefined, 40001, undefined]);
  assert.equal(emulator.tokens.issued, 2);
});

test("emulator + SDK: after a restart (a new emulator, the token still in the store) the first send meets no 40001", async () => {
  // What `npm start` run twice does: the worker's token cache (local KV) outlives the emulator.
  const c = clock();
  const store = new MemoryStore();
  const options = { ...APP, store, now: c.now, retry: { baseDelayMs: 1 }, timeoutMs: 2000 };
  const before = createEmulator({ ...APP, now: c.now });
  await before.user(OPENID).says("hi");
  await new MiniProgram({ ...options, fetch: before.fetch }).customerServiceMessage.send(OPENID, "text", {
    content: "first run",
  });
  assert.equal(before.tokens.issued, 1);

  c.advance(5 * MINUTE);
  const again = createEmulator({ ...APP, now: c.now });
  await again.user(OPENID).says("hi again");
  await new MiniProgram({ ...options, fetch: again.fetch }).customerServiceMessage.send(OPENID, "text", {
    content: "second run",
  });
  // One send, answered ok: no 40001, no replay, no new token.
  assert.deepEqual(again.calls.map((call) => [call.path, call.errcode]), [[SEND, undefined]]);
  assert.equal(again.tokens.issued, 0);
});

test("emulator + SDK: the SDK's early refresh lands in stable_token's renewal window", async () => {
  const { emulator, clock, mp } = sdk();
  await emulator.user(OPENID).says("hi");
  await mp.customerServiceMessage.setTyping(OPENID, "Typing");
  // The SDK refreshes 240 s before expiry; stable_token renews in the last 300 s.
  clock.advance(7200 * SECOND - 240 * SECOND);
  await emulator.user(OPENID).says("still here");
  await mp.customerServiceMessage.send(OPENID, "text", { content: "fresh token" });
  const [old, renewed] = emulator.tokens.list();
  assert.equal(emulator.tokens.issued, 2);
  assert.equal(emulator.tokens.status(old!.token), "valid", "the old token still serves other isolates");
  assert.equal(emulator.calls.at(-1)?.errcode, undefined);
  assert.equal(renewed?.kind, "stable");
});

test("emulator + SDK: the classic token source works against /cgi-bin/token", async () => {
  const { emulator, mp } = sdk({ tokenSource: "classic" });
  await emulator.user(OPENID).says("hi");
  await mp.customerServiceMessage.send(OPENID, "text", { content: "classic" });
  assert.deepEqual(emulator.tokens.list().map((t) => t.kind), ["classic"]);
});

test("emulator + SDK: a hang fault surfaces as the SDK's timeout", async () => {
  const { emulator, mp } = sdk({ timeoutMs: 50, retry: { maxRetries: 0 } });
  emulator.faults.next(1, "hang", { path: UPLOAD });
  await assert.rejects(
    mp.customerServiceMessage.uploadTempMedia("image", JPEG, { filename: "a.jpg" }),
    (e: unknown) => e instanceof Error && e.name === "WeChatTimeoutError",
  );
});
