// The emulator's customer-service send and typing against spec §2 and §3: body validation,
// the send window and its quotas on a moving clock, and the typing rules.
import assert from "node:assert/strict";
import { test } from "./_registry.ts";
import {
  DAY,
  HOUR,
  JPEG,
  MINUTE,
  OPENID,
  postJson,
  raw,
  RID,
  SECOND,
  SEND,
  send,
  setup,
  text,
  token,
  typing,
  upload,
} from "./emulator_support.ts";

async function spoken() {
  const s = setup();
  await s.emulator.user(OPENID).says("hello");
  return { ...s, token: await token(s.emulator) };
}

test("emulator send: each msgtype is delivered to the user's inbox as sent", async () => {
  const { emulator, clock, token: t } = await spoken();
  const media = String((await upload(emulator, t, JPEG, "a.jpg")).media_id);
  const link = {
    title: "Docs",
    description: "Read me",
    url: "https://example.com/a?b=1",
    thumb_url: "https://x/t.png",
  };
  const page = { title: "Shop", pagepath: "pages/index/index?foo=bar", thumb_media_id: media };
  const bodies = [
    { touser: OPENID, msgtype: "text", text: { content: '你好 <a href="https://x">x</a>' } },
    { touser: OPENID, msgtype: "image", image: { media_id: media } },
    { touser: OPENID, msgtype: "link", link },
    { touser: OPENID, msgtype: "miniprogrampage", miniprogrampage: page },
  ];
  for (const body of bodies) {
    clock.advance(SECOND);
    const answer = await postJson(emulator, `${SEND}?access_token=${t}`, body);
    assert.deepEqual(answer, { errcode: 0, errmsg: "ok" });
  }
  const inbox = emulator.user(OPENID).inbox();
  assert.deepEqual(inbox.map((e) => e.kind === "message" && [e.msgtype, e.message]), [
    ["text", bodies[0]!.text],
    ["image", { media_id: media }],
    ["link", link],
    ["miniprogrampage", page],
  ]);
  assert.deepEqual(inbox.map((e) => e.at), [1, 2, 3, 4].map((n) => emulator.now() - (4 - n) * SECOND));
  assert.deepEqual(emulator.inbox(OPENID), inbox);
  assert.deepEqual(emulator.inbox("someone-else"), []);
});

test("emulator send: malformed bodies get 44002, 47001, 40008, 44004 and 45002", async () => {
  const { emulator, token: t } = await spoken();
  const cases: [unknown, number][] = [
    ["", 44002],
    ['{"touser":"x",', 47001],
    ["[]", 47001],
    [{ touser: OPENID, msgtype: "video", video: { media_id: "x" } }, 40008],
    [{ touser: OPENID, text: { content: "no msgtype" } }, 40008],
    [{ touser: OPENID, msgtype: "text" }, 47001],
    [{ touser: OPENID, msgtype: "text", text: "hello" }, 47001],
    [{ touser: OPENID, msgtype: "text", text: { content: 5 } }, 47001],
    [{ touser: OPENID, msgtype: "text", text: { content: "a" }, image: { media_id: "m" } }, 47001],
    [{ touser: OPENID, msgtype: "link", link: { title: "t", description: "d", url: "https://x" } }, 47001],
    [{ touser: OPENID, msgtype: "miniprogrampage", miniprogrampage: { title: "t", pagepath: "p" } }, 47001],
    [{ touser: OPENID, msgtype: "text", text: { content: "" } }, 44004],
    [text("好".repeat(682) + "ab"), 0], // 2048 bytes of UTF-8
    [text("好".repeat(682) + "abc"), 45002], // 2049 bytes
  ];
  for (const [body, errcode] of cases) {
    const answer = await postJson(emulator, `${SEND}?access_token=${t}`, body);
    assert.equal(answer.errcode, errcode, JSON.stringify(body).slice(0, 120));
    if (errcode !== 0) assert.match(String(answer.errmsg), RID);
  }
  const get = await raw(emulator, `${SEND}?access_token=${t}`);
  assert.equal((await get.json() as { errcode: number }).errcode, 43002);
});

test("emulator send: unknown or missing openid gets 40003", async () => {
  const { emulator, token: t } = await spoken();
  assert.equal(await send(emulator, t, text("hi", "oUnknownUser0000000000000000")), 40003);
  assert.equal(await send(emulator, t, { msgtype: "text", text: { content: "hi" } }), 40003);
  assert.deepEqual(emulator.inbox("oUnknownUser0000000000000000"), []);
});

test("emulator send: unknown or expired media_id gets 40007; a user's image can be sent back", async () => {
  const { emulator, clock, token: t } = await spoken();
  const image = (media_id: string) => ({ touser: OPENID, msgtype: "image", image: { media_id } });
  const page = (thumb_media_id: string) => ({
    touser: OPENID,
    msgtype: "miniprogrampage",
    miniprogrampage: { title: "t", pagepath: "pages/a", thumb_media_id },
  });
  assert.equal(await send(emulator, t, image("nope")), 40007);
  assert.equal(await send(emulator, t, page("nope")), 40007);
  const push = await emulator.user(OPENID).sendsImage(JPEG);
  assert.equal(await send(emulator, t, image(String(push.message.MediaId))), 0);
  const old = emulator.media.add(JPEG);
  clock.advance(3 * DAY);
  const fresh = await token(emulator);
  await emulator.user(OPENID).says("again");
  assert.equal(await send(emulator, fresh, page(old.mediaId)), 40007);
  assert.equal(await send(emulator, fresh, image(old.mediaId)), 40007);
  assert.equal(emulator.inbox(OPENID).length, 1, "only the valid image was delivered");
});

test("emulator send: non-ASCII sent as \\uXXXX escapes gets 40033; raw UTF-8 and ASCII escapes pass", async () => {
  const { emulator, token: t } = await spoken();
  const escaped = `{"touser":"${OPENID}","msgtype":"text","text":{"content":"\\u4f60\\u597d"}}`;
  assert.equal(await send(emulator, t, escaped), 40033);
  const rawUtf8 = `{"touser":"${OPENID}","msgtype":"text","text":{"content":"你好"}}`;
  assert.equal(await send(emulator, t, rawUtf8), 0);
  const asciiEscape = `{"touser":"${OPENID}","msgtype":"text","text":{"content":"a\\u003cb\\n"}}`;
  assert.equal(await send(emulator, t, asciiEscape), 0);
  // An escaped backslash followed by "u4f60" is literal text, not an escape.
  const literal = `{"touser":"${OPENID}","msgtype":"text","text":{"content":"C:\\\\u4f60"}}`;
  assert.equal(await send(emulator, t, literal), 0);
  assert.deepEqual(
    emulator.inbox(OPENID).map((e) => e.kind === "message" && e.message.content),
    ["你好", "a<b\n", "C:\\u4f60"],
  );
});

test("emulator window: no user message means 45015", async () => {
  const { emulator } = setup();
  emulator.user(OPENID);
  const t = await token(emulator);
  assert.equal(await send(emulator, t, text("hi")), 45015);
  assert.equal(emulator.user(OPENID).window, undefined);
});

test("emulator window: 5 messages within 48 h of a user message, then 45047; 45015 after 48 h", async () => {
  const { emulator, clock, token: t } = await spoken();
  assert.deepEqual(emulator.user(OPENID).window, {
    kind: "message",
    remaining: 5,
    expiresAt: emulator.now() + 48 * HOUR,
  });
  for (let i = 0; i < 5; i++) assert.equal(await send(emulator, t, text(`m${i}`)), 0);
  assert.equal(await send(emulator, t, text("m5")), 45047);
  assert.equal(emulator.user(OPENID).window?.remaining, 0);
  await emulator.user(OPENID).says("more");
  clock.advance(48 * HOUR - 1);
  const t2 = await token(emulator);
  assert.equal(await send(emulator, t2, text("late but in time")), 0);
  clock.advance(1);
  assert.equal(await send(emulator, t2, text("too late")), 45015);
  assert.equal(emulator.inbox(OPENID).length, 6);
});

test("emulator window: quotas do not accumulate; each user message resets to 5", async () => {
  const { emulator, token: t } = await spoken();
  for (let i = 0; i < 3; i++) assert.equal(await send(emulator, t, text(`a${i}`)), 0);
  await emulator.user(OPENID).says("again");
  assert.equal(emulator.user(OPENID).window?.remaining, 5);
  for (let i = 0; i < 5; i++) assert.equal(await send(emulator, t, text(`b${i}`)), 0);
  assert.equal(await send(emulator, t, text("b5")), 45047);
});

test("emulator window: entering the session allows 2 messages within 1 minute", async () => {
  const { emulator, clock } = setup();
  const t = await token(emulator);
  await emulator.user(OPENID).entersSession("from-button");
  assert.deepEqual(emulator.user(OPENID).window, { kind: "session", remaining: 2, expiresAt: emulator.now() + MINUTE });
  assert.equal(await send(emulator, t, text("welcome")), 0);
  assert.equal(await send(emulator, t, text("how can I help")), 0);
  assert.equal(await send(emulator, t, text("third")), 45047);
  await emulator.user(OPENID).entersSession();
  clock.advance(MINUTE - 1);
  assert.equal(await send(emulator, t, text("just in time")), 0);
  clock.advance(1);
  assert.equal(await send(emulator, t, text("too late")), 45015);
  await emulator.user(OPENID).says("a message opens 48 h");
  assert.equal(await send(emulator, t, text("ok")), 0);
  assert.equal(emulator.user(OPENID).window?.kind, "message");
});

test("emulator window: entering the session never shortens an open 48 h window", async () => {
  const { emulator, clock, token: t } = await spoken();
  for (let i = 0; i < 5; i++) assert.equal(await send(emulator, t, text(`m${i}`)), 0);
  const before = emulator.user(OPENID).window?.expiresAt;
  await emulator.user(OPENID).entersSession();
  assert.deepEqual(emulator.user(OPENID).window, { kind: "message", remaining: 2, expiresAt: before });
  clock.advance(HOUR);
  assert.equal(await send(emulator, t, text("one")), 0);
  assert.equal(await send(emulator, t, text("two")), 0);
  assert.equal(await send(emulator, t, text("three")), 45047);
});

test("emulator typing: needs an interaction within 30 s, lasts 15 s, shows in the inbox", async () => {
  const { emulator, clock, token: t } = await spoken();
  const user = emulator.user(OPENID);
  assert.equal(await typing(emulator, t, "Typing"), 0);
  assert.equal(user.typing, true);
  clock.advance(15 * SECOND - 1);
  assert.equal(await typing(emulator, t, "Typing"), 45081);
  clock.advance(1);
  assert.equal(user.typing, false);
  assert.equal(await typing(emulator, t, "Typing"), 0, "15 s later the state has ended");
  clock.advance(15 * SECOND - 1);
  assert.equal(await typing(emulator, t, "CancelTyping"), 0, "29.999 s after the message");
  clock.advance(1);
  assert.equal(await typing(emulator, t, "Typing"), 45080, "30 s after the message");
  assert.deepEqual(user.inbox(), [
    { kind: "typing", command: "Typing", at: emulator.now() - 30 * SECOND },
    { kind: "typing", command: "Typing", at: emulator.now() - 15 * SECOND },
    { kind: "typing", command: "CancelTyping", at: emulator.now() - 1 },
  ]);
});

test("emulator typing: 45072 bad command, 40003 unknown user, 45015 outside the window", async () => {
  const { emulator } = setup();
  const t = await token(emulator);
  emulator.user(OPENID);
  assert.equal(await typing(emulator, t, "typing"), 45072);
  assert.equal(await typing(emulator, t, ""), 45072);
  assert.equal(await typing(emulator, t, "Typing", "oUnknownUser0000000000000000"), 40003);
  assert.equal(await typing(emulator, t, "Typing"), 45015);
  const malformed = await postJson(emulator, `/cgi-bin/message/custom/typing?access_token=${t}`, "{oops");
  assert.equal(malformed.errcode, 47001);
  await emulator.user(OPENID).entersSession();
  assert.equal(await typing(emulator, t, "Typing"), 0, "a session entry counts as an interaction");
});

test("emulator typing: sending a message cancels the typing state", async () => {
  const { emulator, token: t } = await spoken();
  assert.equal(await typing(emulator, t, "Typing"), 0);
  assert.equal(await send(emulator, t, text("here you go")), 0);
  assert.equal(emulator.user(OPENID).typing, false);
  assert.equal(await typing(emulator, t, "Typing"), 0, "not 45081: the message ended the state");
  assert.equal(await typing(emulator, t, "CancelTyping"), 0);
  assert.equal(emulator.user(OPENID).typing, false);
  assert.equal(await typing(emulator, t, "Typing"), 0, "CancelTyping ended it too");
});
