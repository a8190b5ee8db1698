// Content security: mp.security.msgSecCheck (version 2) on the wire and typed, its input named
// field by field before any call, and the emulator's check — word lists, WeChat's codes, and the
// rule that the user must have used the mini program in the last 2 hours.
import assert from "node:assert/strict";
import {
  AI_MSG_CONTEXT,
  isUserVisitExpired,
  MiniProgram,
  type MsgSecCheckInput,
  ValidationError,
  WeChatApiError,
} from "../../mod.ts";
import { test } from "./_registry.ts";
import { fakeFetch, json } from "./_fake.ts";
import { APP, HOUR, MINUTE, OPENID, setup } from "./emulator_support.ts";

const CHECK = "/wxa/msg_sec_check";

function sdk(fetch: typeof globalThis.fetch, now?: () => number): MiniProgram {
  return new MiniProgram({ ...APP, fetch, ...(now === undefined ? {} : { now }), retry: { baseDelayMs: 1 } });
}

test("msgSecCheck: POST /wxa/msg_sec_check with version 2 as a number, the token in the query only", async () => {
  const fake = fakeFetch(() =>
    json({
      errcode: 0,
      errmsg: "ok",
      trace_id: "60ae120f-371d5872-7941a05b",
      result: { suggest: "risky", label: "20001" },
      detail: [
        { strategy: "content_model", errcode: 0, suggest: "risky", label: 20001, prob: 90 },
        { strategy: "keyword", errcode: 0, suggest: "pass", label: "100", keyword: "" },
      ],
    })
  );
  const mp = sdk(fake.fetch);
  const verdict = await mp.security.msgSecCheck({ openid: OPENID, scene: 2, content: "你好", title: "t" });
  const [call] = fake.to(CHECK);
  assert.equal(call?.request.method, "POST");
  assert.equal(call?.url.searchParams.get("access_token"), "ACCESS_TOKEN_1");
  assert.deepEqual(JSON.parse(call!.body), { version: 2, openid: OPENID, scene: 2, content: "你好", title: "t" });
  // Labels arrive as numbers or strings: both are numbers in the result.
  assert.deepEqual(verdict, {
    errcode: 0,
    errmsg: "ok",
    trace_id: "60ae120f-371d5872-7941a05b",
    result: { suggest: "risky", label: 20001 },
    detail: [
      { strategy: "content_model", errcode: 0, suggest: "risky", label: 20001, prob: 90 },
      { strategy: "keyword", errcode: 0, suggest: "pass", label: 100 },
    ],
  });
});

test("msgSecCheck: an answer without a readable verdict reads as review, never as pass", async () => {
  const mp = sdk(fakeFetch(() => json({ errcode: 0, errmsg: "ok", result: { suggest: "maybe" } })).fetch);
  const verdict = await mp.security.msgSecCheck({ openid: OPENID, scene: 1, content: "x" });
  assert.deepEqual(verdict.result, { suggest: "review", label: 0 });
});

test("msgSecCheck: bad input is named before any call", async () => {
  const fake = fakeFetch();
  const mp = sdk(fake.fetch);
  const good: MsgSecCheckInput = { openid: OPENID, scene: 2, content: "hi" };
  const cases: Array<[unknown, string]> = [
    [{ ...good, openid: "" }, "openid"],
    [{ ...good, scene: 5 }, "scene"],
    [{ ...good, scene: "2" }, "scene"],
    [{ ...good, content: "  " }, "content"],
    [{ ...good, content: "字".repeat(2501) }, "content"],
    [{ ...good, nickname: 7 }, "nickname"],
    [{ ...good, version: 1 }, "version"],
  ];
  for (const [input, field] of cases) {
    const err = await mp.security.msgSecCheck(input as MsgSecCheckInput).catch((e: unknown) => e);
    assert.ok(err instanceof ValidationError, `${field}: ${String(err)}`);
    assert.equal(err.field, field);
  }
  assert.equal(fake.calls.length, 0);
  // 2,500 characters are fine.
  await mp.security.msgSecCheck({ ...good, content: "字".repeat(2500) });
  assert.equal(fake.to(CHECK).length, 1);
});

test("msgSecCheck against the emulator: word lists give risky and review, anything else passes", async () => {
  const { emulator } = setup({ contentCheck: { risky: ["坏词"], review: ["可疑"], label: 20003 } });
  await emulator.user(OPENID).says("hi");
  const mp = sdk(emulator.fetch, emulator.now.bind(emulator));
  const check = (content: string, extra: Partial<MsgSecCheckInput> = {}) =>
    mp.security.msgSecCheck({ openid: OPENID, scene: 2, content, ...extra });
  assert.deepEqual((await check("您的订单已发货")).result, { suggest: "pass", label: 100 });
  const risky = await check("这是坏词，也可疑");
  assert.deepEqual(risky.result, { suggest: "risky", label: 20003 });
  assert.deepEqual(risky.detail.find((d) => d.strategy === "keyword"), {
    strategy: "keyword",
    errcode: 0,
    suggest: "risky",
    label: 20003,
    keyword: "坏词",
  });
  assert.equal((await check("有点可疑")).result.suggest, "review");
  // The title and nickname are checked with the content.
  assert.equal((await check("正常", { title: "坏词" })).result.suggest, "risky");
  assert.match((await check("正常")).trace_id, /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
});

test("msgSecCheck against the emulator: WeChat's own test sample is risky by default", async () => {
  const { emulator } = setup();
  await emulator.user(OPENID).says("hi");
  const mp = sdk(emulator.fetch, emulator.now.bind(emulator));
  const sample = "特3456书yuuo莞6543李zxcz蒜7782法fgnv级";
  assert.equal((await mp.security.msgSecCheck({ openid: OPENID, scene: 4, content: sample })).result.suggest, "risky");
  assert.equal(
    (await mp.security.msgSecCheck({ openid: OPENID, scene: 4, content: "emulator-review" })).result.suggest,
    "review",
  );
});

test("msgSecCheck against the emulator: 61010 once the user's last visit is 2 hours old; a visit renews it", async () => {
  const { emulator, clock } = setup();
  const user = emulator.user(OPENID);
  await user.says("hi");
  const mp = sdk(emulator.fetch, clock.now);
  const check = () => mp.security.msgSecCheck({ openid: OPENID, scene: 2, content: "在吗" });
  clock.advance(2 * HOUR - MINUTE);
  assert.equal((await check()).result.suggest, "pass");
  clock.advance(MINUTE);
  const err = await check().catch((e: unknown) => e);
  assert.ok(isUserVisitExpired(err), String(err));
  // Opening the mini program counts, without a message.
  user.visits();
  assert.equal((await check()).result.suggest, "pass");
  // A user never seen is 40003.
  const unknown = await mp.security.msgSecCheck({ openid: "o_never_seen_0000000000", scene: 2, content: "x" })
    .catch((e: unknown) => e);
  assert.ok(unknown instanceof WeChatApiError && unknown.errcode === 40003);
  // Each failure is one call: a check that answered is not retried.
  assert.equal(emulator.calls.filter((c) => c.path === CHECK).length, 4);
});

test("msgSecCheck against the emulator: malformed bodies get WeChat's codes", async () => {
  const { emulator } = setup();
  await emulator.user(OPENID).says("hi");
  const token = (await (await emulator.fetch("https://api.weixin.qq.com/cgi-bin/stable_token", {
    method: "POST",
    body: JSON.stringify({ grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret }),
  })).json() as { access_token: string }).access_token;
  const post = async (body: unknown) =>
    (await (await emulator.fetch(`https://api.weixin.qq.com${CHECK}?access_token=${token}`, {
      method: "POST",
      body: JSON.stringify(body),
    })).json() as { errcode: number }).errcode;
  const good = { version: 2, openid: OPENID, scene: 2, content: "hi" };
  assert.equal(await post(good), 0);
  assert.equal(await post({ ...good, version: "2" }), 0, "version as a string is taken too");
  assert.equal(await post({ ...good, version: 1 }), 47001);
  assert.equal(await post({ ...good, scene: 9 }), 40129);
  assert.equal(await post({ ...good, content: "" }), 47001);
  assert.equal(await post({ ...good, content: "a".repeat(2501) }), 47001);
  assert.equal(await post({ ...good, openid: "o_unknown" }), 40003);
  const missingToken = await emulator.fetch(`https://api.weixin.qq.com${CHECK}`, {
    method: "POST",
    body: JSON.stringify(good),
  });
  assert.equal((await missingToken.json() as { errcode: number }).errcode, 41001);
});

test("AI_MSG_CONTEXT is { is_ai_msg: 1 }, sent as aimsgcontext; { msgid } is still accepted", async () => {
  const { emulator } = setup();
  await emulator.user(OPENID).says("hi");
  const mp = sdk(emulator.fetch, emulator.now.bind(emulator));
  assert.deepEqual(AI_MSG_CONTEXT, { is_ai_msg: 1 });
  assert.ok(Object.isFrozen(AI_MSG_CONTEXT));
  await mp.customerServiceMessage.send(OPENID, "text", { content: "a" }, { aiMsgContext: AI_MSG_CONTEXT });
  await mp.customerServiceMessage.send(OPENID, "text", { content: "b" }, { aiMsgContext: { msgid: "7380000000001" } });
  const labels = emulator.inbox(OPENID).flatMap((e) => e.kind === "message" ? [e.aiMsgContext] : []);
  assert.deepEqual(labels, [{ is_ai_msg: 1 }, { msgid: "7380000000001" }]);
});
