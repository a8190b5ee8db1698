// The send window in production, the subscribe-message fallback and the send fields WeChat
// added: window rules and the tracker, checkWindow, concurrent spending, business paths,
// aimsgcontext, the text limit, sendText, withTyping, subscribe messages, sendOrSubscribe.
import assert from "node:assert/strict";
import {
  isSubscriptionRefused,
  MemoryStore,
  MiniProgram,
  openWindow,
  OutOfWindowError,
  SendWindowTracker,
  ValidationError,
  WINDOW_GRANTS,
} from "../../mod.ts";
import { fakeFetch, json } from "./_fake.ts";
import { GH_ID, NOW_SECONDS, OPENID, pushRequest } from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const SEND = "/cgi-bin/message/custom/send";
const HOUR = 3600_000;

function app(
  handler?: Parameters<typeof fakeFetch>[0],
  extra: Partial<ConstructorParameters<typeof MiniProgram>[0]> = {},
) {
  const fake = fakeFetch(handler);
  let now = NOW_SECONDS * 1000;
  const mp = new MiniProgram({
    appId: "wx1234567890abcdef",
    appSecret: "secret-value-0123",
    fetch: fake.fetch,
    now: () => now,
    logger: { warn() {} },
    ...extra,
  });
  return { mp, fake, advance: (ms: number) => void (now += ms), now: () => now };
}

test("window rules: a message opens 5 for 48 h, a session entry 2 for 1 min, never added up", () => {
  const t = 1_000_000;
  const message = openWindow(undefined, "message", t);
  assert.deepEqual(message, { kind: "message", remaining: 5, expiresAt: t + 48 * HOUR });
  const session = openWindow(undefined, "session", t);
  assert.deepEqual(session, { kind: "session", remaining: 2, expiresAt: t + 60_000 });
  // A second message resets to 5 (not 10); a session entry never shortens the 48 h window.
  assert.equal(openWindow({ ...message, remaining: 4 }, "message", t + 1000).remaining, 5);
  assert.deepEqual(openWindow({ ...message, remaining: 1 }, "session", t + 1000), {
    kind: "message",
    remaining: 2,
    expiresAt: t + 48 * HOUR,
  });
  assert.equal(openWindow({ ...message, remaining: 4 }, "session", t + 1000).remaining, 4);
  assert.deepEqual(WINDOW_GRANTS.message, { count: 5, durationMs: 48 * HOUR });
});

test("tracker: pushes open the window, sends spend it, 45015/45047 close it; retries do not reopen it", async () => {
  let answer: unknown = { errcode: 0, errmsg: "ok" };
  const { mp, fake } = app(() => json(answer), {
    push: { token: "Tok3nSecretValue", encodingAESKey: "kefuEdgeTestKey0123456789abcdefghijklmnopqr" },
    now: () => NOW_SECONDS * 1000,
  });
  assert.equal(await mp.customerServiceMessage.window(OPENID), undefined, "nothing known yet");
  const text = JSON.stringify({
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS,
    MsgType: "text",
    Content: "hi",
    MsgId: "7370000000000000001",
  });
  // Signed and encrypted with the fixtures' token and key, for this MiniProgram's AppID.
  const deliver = () => mp.push.handle(pushRequest({ body: text, mode: "aes" }), () => undefined).then((r) => r.text());
  assert.equal(await deliver(), "success");
  assert.deepEqual(await mp.customerServiceMessage.window(OPENID), {
    kind: "message",
    remaining: 5,
    expiresAt: (NOW_SECONDS + 48 * 3600) * 1000,
  });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "1" });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "2" });
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 3);
  assert.equal(await deliver(), "success"); // WeChat's retry of the same message: no reset
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 3);
  // A failure WeChat answered is not counted; 45047 closes the window.
  answer = { errcode: 40003, errmsg: "invalid openid" };
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }, { checkWindow: true }));
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 3);
  answer = { errcode: 45047, errmsg: "out of response count limit" };
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "x" }));
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 0);
  // Now checkWindow refuses before any call.
  const calls = fake.to(SEND).length;
  const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "x" }, { checkWindow: true })
    .catch((e: unknown) => e);
  assert.ok(err instanceof OutOfWindowError);
  assert.equal(err.window?.remaining, 0);
  assert.equal(fake.to(SEND).length, calls);
});

test("tracker: a CreateTime in the future counts as now; an earlier one is kept (no window outlasts WeChat's)", async () => {
  let now = NOW_SECONDS * 1000;
  const clock = () => now;
  const tracker = new SendWindowTracker(new MemoryStore({ now: clock }), { appId: "wx1", now: clock });
  const t = now;
  await tracker.record("o_day_ahead", "message", t + 24 * HOUR);
  await tracker.record("o_in_skew", "message", t + 100_000);
  await tracker.record("o_hour_ago", "message", t - HOUR);
  await tracker.record("o_gone", "message", t - 49 * HOUR);
  await tracker.record("o_session_ahead", "session", t + 10 * 24 * HOUR);
  await tracker.record("o_no_time", "message", Number.NaN);
  assert.equal((await tracker.window("o_day_ahead"))?.expiresAt, t + 48 * HOUR);
  assert.equal((await tracker.window("o_in_skew"))?.expiresAt, t + 48 * HOUR);
  assert.equal((await tracker.window("o_hour_ago"))?.expiresAt, t + 47 * HOUR, "an old time is not moved forward");
  assert.equal(await tracker.window("o_gone"), undefined);
  assert.equal(await tracker.window("o_no_time"), undefined);
  assert.deepEqual(await tracker.window("o_session_ahead"), { kind: "session", remaining: 2, expiresAt: t + 60_000 });
  now += 61_000;
  assert.equal(await tracker.window("o_session_ahead"), undefined, "closed a minute after now, not after CreateTime");

  // Through the push receiver: a verified message dated a day ahead opens the window from now.
  const { mp } = app(undefined, {
    push: { token: "Tok3nSecretValue", encodingAESKey: "kefuEdgeTestKey0123456789abcdefghijklmnopqr" },
    now: () => NOW_SECONDS * 1000,
  });
  const ahead = JSON.stringify({
    ToUserName: GH_ID,
    FromUserName: OPENID,
    CreateTime: NOW_SECONDS + 24 * 3600,
    MsgType: "text",
    Content: "from the future",
    MsgId: "7370000000000000077",
  });
  const answer = await mp.push.handle(pushRequest({ body: ahead, mode: "aes" }), () => undefined);
  assert.equal(await answer.text(), "success");
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.expiresAt, (NOW_SECONDS + 48 * 3600) * 1000);
});

test("checkWindow: a closed or spent window is refused with zero network calls; an unknown one goes ahead", async () => {
  const { mp, fake, advance } = app(undefined, { checkWindow: true });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "unknown user: WeChat decides" });
  assert.equal(fake.to(SEND).length, 1);
  await mp.sendWindows.record(OPENID, "session", NOW_SECONDS * 1000);
  await mp.customerServiceMessage.send(OPENID, "text", { content: "1" });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "2" });
  const spent = await mp.customerServiceMessage.send(OPENID, "text", { content: "3" }).catch((e: unknown) => e);
  assert.ok(spent instanceof OutOfWindowError && spent.window?.remaining === 0);
  assert.match(spent.message, /45047/);
  advance(61_000);
  await mp.sendWindows.record(OPENID, "session", NOW_SECONDS * 1000); // an old entry opens nothing now
  assert.equal(await mp.customerServiceMessage.window(OPENID), undefined);
  // An expired window is unknown again: the send goes ahead, and WeChat decides.
  assert.deepEqual(await mp.customerServiceMessage.send(OPENID, "text", { content: "4" }), {
    errcode: 0,
    errmsg: "ok",
  });
  assert.equal(fake.to(SEND).length, 4);
  // Per call, checkWindow: false overrides the MiniProgram's true.
  await mp.sendWindows.close(OPENID);
  await mp.customerServiceMessage.send(OPENID, "text", { content: "5" }, { checkWindow: false });
  assert.equal(fake.to(SEND).length, 5);
});

test("tracker: concurrent sends can never both take the last message (atomic slots)", async () => {
  for (let round = 0; round < 10; round++) {
    const store = new MemoryStore();
    const tracker = new SendWindowTracker(store, { appId: "wx1" });
    await tracker.record(OPENID, "session", Date.now()); // 2 messages
    const tickets = await Promise.all(Array.from({ length: 6 }, () => tracker.reserve(OPENID)));
    assert.equal(tickets.filter((t) => typeof t === "object").length, 2);
    assert.equal(tickets.filter((t) => t === "closed").length, 4);
    assert.equal((await tracker.window(OPENID))?.remaining, 0);
  }
});

test("business paths and aimsgcontext: the right path and body; bad values are named before any call", async () => {
  const { mp, fake } = app();
  await mp.customerServiceMessage.send(OPENID, "text", { content: "hi" }, {
    businessId: "9001",
    aiMsgContext: { is_ai_msg: 1 },
  });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "hi" }, {
    aiMsgContext: { msgid: "7370000000000000001" },
  });
  await mp.customerServiceMessage.setTyping(OPENID, "Typing", { businessId: "9001" });
  await mp.customerServiceMessage.setTyping(OPENID, "CancelTyping");
  assert.deepEqual(
    fake.calls.filter((c) => c.url.pathname !== "/cgi-bin/stable_token").map((c) => [c.url.pathname, c.body]),
    [
      [
        "/cgi-bin/message/custom/business/send",
        `{"touser":"${OPENID}","msgtype":"text","text":{"content":"hi"},"businessid":"9001","aimsgcontext":{"is_ai_msg":1}}`,
      ],
      [
        "/cgi-bin/message/custom/send",
        `{"touser":"${OPENID}","msgtype":"text","text":{"content":"hi"},"aimsgcontext":{"msgid":"7370000000000000001"}}`,
      ],
      ["/cgi-bin/message/custom/business/typing", `{"touser":"${OPENID}","command":"Typing","businessid":"9001"}`],
      ["/cgi-bin/message/custom/typing", `{"touser":"${OPENID}","command":"CancelTyping"}`],
    ],
  );
  const before = fake.calls.length;
  for (
    const [options, field] of [
      [{ businessId: "has space" }, "options.businessId"],
      [{ aiMsgContext: { is_ai_msg: 2 } }, "options.aiMsgContext"],
      [{ aiMsgContext: { msgid: "1", extra: 1 } }, "options.aiMsgContext.extra"],
    ] as const
  ) {
    const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "x" }, options as never).catch((e) =>
      e
    );
    assert.ok(err instanceof ValidationError && err.field === field, `${JSON.stringify(options)}: ${err}`);
  }
  assert.equal(fake.calls.length, before);
  // The plain typing path is configurable ([UNCERTAIN] which one WeChat wants).
  const moved = app(undefined, { typingPath: "/cgi-bin/message/custom/business/typing" });
  await moved.mp.customerServiceMessage.setTyping(OPENID, "Typing");
  assert.equal(moved.fake.calls.at(-1)?.url.pathname, "/cgi-bin/message/custom/business/typing");
});

test("text limit: over 2048 UTF-8 bytes is refused naming text.content, with the size and the limit", async () => {
  const { mp, fake } = app();
  const err = await mp.customerServiceMessage.send(OPENID, "text", { content: "中".repeat(683) }).catch((e) => e);
  assert.ok(err instanceof ValidationError && err.field === "text.content");
  assert.match(err.message, /2049 UTF-8 bytes, over the 2048-byte limit/);
  await mp.customerServiceMessage.send(OPENID, "text", { content: "中".repeat(682) }); // 2046 bytes
  assert.equal(fake.to(SEND).length, 1);
  const small = app(undefined, { maxTextBytes: 10 });
  await assert.rejects(
    small.mp.customerServiceMessage.send(OPENID, "text", { content: "12345678901" }),
    ValidationError,
  );
});

test("sendText: parts in order, each within the limit; refused up front when the window has too few left", async () => {
  const { mp, fake } = app(undefined, { maxTextBytes: 40 });
  const text = "第一段第一句。第一段第二句。\n\n第二段，很短。";
  const results = await mp.customerServiceMessage.sendText(OPENID, text);
  const sent = fake.to(SEND).map((c) => JSON.parse(c.body).text.content as string);
  assert.equal(results.length, sent.length);
  assert.equal(sent.join(""), text);
  assert.ok(sent.length >= 2 && sent.every((p) => new TextEncoder().encode(p).length <= 40));
  await mp.sendWindows.record(OPENID, "session", NOW_SECONDS * 1000); // 2 left
  const long = "一二三四五六七八九十。".repeat(10); // 300 bytes: 8 parts of 40
  const err = await mp.customerServiceMessage.sendText(OPENID, long, { checkWindow: true }).catch((e) => e);
  assert.ok(err instanceof OutOfWindowError && err.window?.remaining === 2);
  assert.equal(fake.to(SEND).length, sent.length, "nothing of it was sent");
});

test("withTyping: typing at once, renewed while the task runs, 45081 fine, 45080 stops it, a failure cancels it", async () => {
  const typing: string[] = [];
  let next: number | undefined;
  const { mp } = app((request, url) => {
    if (url.pathname !== "/cgi-bin/message/custom/typing") return json({ errcode: 0, errmsg: "ok" });
    return request.json().then((body: { command: string }) => {
      typing.push(body.command);
      const code = next ?? 0;
      next = undefined;
      return json({ errcode: code, errmsg: code === 0 ? "ok" : "nope" });
    });
  });
  const slow = (ms: number, value: string) => new Promise<string>((r) => setTimeout(() => r(value), ms));
  // A task that runs until "typing…" has been shown `count` times (or 3 s: then too few were).
  const untilTyping = async (count: number, value: string) => {
    for (let waited = 0; typing.length < count && waited < 3000; waited += 10) await slow(10, "");
    return value;
  };
  assert.equal(
    await mp.customerServiceMessage.withTyping(OPENID, () => untilTyping(3, "answer"), { renewEveryMs: 40 }),
    "answer",
  );
  assert.ok(typing.length >= 3 && typing.every((c) => c === "Typing"), typing.join(","));
  // 45081 (already typing) keeps renewing; 45080 (no interaction in 30 s) stops quietly.
  typing.length = 0;
  next = 45081;
  await mp.customerServiceMessage.withTyping(OPENID, () => untilTyping(3, "x"), { renewEveryMs: 30 });
  assert.ok(typing.length >= 3, typing.join(","));
  typing.length = 0;
  next = 45080;
  assert.equal(await mp.customerServiceMessage.withTyping(OPENID, () => slow(100, "y"), { renewEveryMs: 20 }), "y");
  assert.deepEqual(typing, ["Typing"]);
  typing.length = 0;
  await assert.rejects(
    mp.customerServiceMessage.withTyping(OPENID, async () => {
      await slow(10, "");
      throw new Error("model down");
    }),
    /model down/,
  );
  assert.deepEqual(typing, ["Typing", "CancelTyping"]);
});

test("subscribeMessage.send: WeChat's body, a 64-bit msgid kept exact, fields named, guards for 43101", async () => {
  let answer = '{"errcode":0,"errmsg":"ok","msgid":1700827132819554304}';
  const { mp, fake } = app(() => new Response(answer, { headers: { "content-type": "application/json" } }));
  const result = await mp.subscribeMessage.send(OPENID, {
    template_id: "T-order_1",
    page: "pages/order/index?id=42",
    data: { thing1: { value: "订单 42" }, time2: { value: "2026-12-01 10:00" } },
    miniprogram_state: "formal",
    lang: "zh_CN",
  });
  assert.deepEqual(result, { errcode: 0, errmsg: "ok", msgid: "1700827132819554304" });
  assert.equal(
    fake.to("/cgi-bin/message/subscribe/send")[0]!.body,
    `{"touser":"${OPENID}","template_id":"T-order_1","page":"pages/order/index?id=42","data":{"thing1":{"value":"订单 42"},` +
      `"time2":{"value":"2026-12-01 10:00"}},"miniprogram_state":"formal","lang":"zh_CN"}`,
  );
  for (
    const [message, field] of [
      [{ template_id: "T", data: {} }, "data"],
      [{ template_id: "T", data: { thing1: { value: 1 } } }, "data.thing1.value"],
      [{ template_id: "bad id", data: { a: { value: "x" } } }, "template_id"],
      [{ template_id: "T", data: { a: { value: "x" } }, lang: "fr" }, "lang"],
    ] as const
  ) {
    const err = await mp.subscribeMessage.send(OPENID, message as never).catch((e) => e);
    assert.ok(err instanceof ValidationError && err.field === field, `${field}: ${err}`);
  }
  answer = '{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1-2-3"}';
  const refused = await mp.subscribeMessage.send(OPENID, { template_id: "T", data: { a: { value: "x" } } }).catch((e) =>
    e
  );
  assert.ok(isSubscriptionRefused(refused));
});

test("sendOrSubscribe: the message inside the window, the subscribe message outside it (by the tracker or by WeChat)", async () => {
  let outOfWindow = false;
  const { mp, fake } = app((_request, url) =>
    json(
      url.pathname === SEND && outOfWindow
        ? { errcode: 45015, errmsg: "response out of time limit" }
        : { errcode: 0, errmsg: "ok" },
    )
  );
  const message = { msgtype: "text" as const, payload: { content: "Your order shipped" } };
  const fallback = { template_id: "T", data: { thing1: { value: "Order 42" } } };
  assert.deepEqual(await mp.sendOrSubscribe(OPENID, message, fallback), {
    sent: "customerServiceMessage",
    result: { errcode: 0, errmsg: "ok" },
  });
  outOfWindow = true;
  const byWeChat = await mp.sendOrSubscribe(OPENID, message, fallback);
  assert.equal(byWeChat.sent, "subscribeMessage");
  assert.equal(byWeChat.sent === "subscribeMessage" && byWeChat.reason, 45015);
  // The 45015 closed the tracker's window: the next one is decided before any send.
  await mp.sendWindows.record(OPENID, "session", NOW_SECONDS * 1000);
  await mp.sendWindows.close(OPENID);
  const sends = fake.to(SEND).length;
  const byTracker = await mp.sendOrSubscribe(OPENID, message, fallback);
  assert.equal(byTracker.sent === "subscribeMessage" && byTracker.reason, "window_spent");
  assert.equal(fake.to(SEND).length, sends);
  assert.equal(fake.to("/cgi-bin/message/subscribe/send").length, 2);
});
