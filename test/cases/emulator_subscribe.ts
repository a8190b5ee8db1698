// The emulator mirrors what the SDK added: business paths, aimsgcontext, subscribe messages
// with users who accept or refuse templates, and the three subscribe events as pushes; and the
// SDK's send window, subscribe send and fallback driven against it end to end.
import assert from "node:assert/strict";
import { isPushMessage, isSubscriptionRefused, MiniProgram, type PushMessage } from "../../mod.ts";
import { createEmulator } from "../../src/testing/mod.ts";
import { test } from "./_registry.ts";
import { APP, clock, HOUR, OPENID, raw, SEND, setup } from "./emulator_support.ts";

const PUSH = { token: "Tok3nSecretValue", encodingAESKey: "kefuEdgeTestKey0123456789abcdefghijklmnopqr" };
const SUBSCRIBE = "/cgi-bin/message/subscribe/send";

async function tokenOf(emulator: ReturnType<typeof setup>["emulator"]): Promise<string> {
  const response = await raw(emulator, "/cgi-bin/stable_token", {
    method: "POST",
    body: JSON.stringify({ grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret }),
  });
  return (await response.json() as { access_token: string }).access_token;
}

async function post(
  emulator: ReturnType<typeof setup>["emulator"],
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const t = await tokenOf(emulator);
  const text = await (await raw(emulator, `${path}?access_token=${t}`, { method: "POST", body: JSON.stringify(body) }))
    .text();
  return JSON.parse(text.replace(/"msgid":(\d+)/, '"msgid":"$1"')) as Record<string, unknown>;
}

test("emulator business paths: businessid is needed there, kept in the inbox; typing alike", async () => {
  const { emulator } = setup();
  await emulator.user(OPENID).says("hi");
  const message = { touser: OPENID, msgtype: "text", text: { content: "hello" } };
  assert.equal((await post(emulator, "/cgi-bin/message/custom/business/send", message)).errcode, 40101);
  assert.equal(
    (await post(emulator, "/cgi-bin/message/custom/business/send", { ...message, businessid: "9001" })).errcode,
    0,
  );
  assert.equal(
    (await post(emulator, "/cgi-bin/message/custom/business/typing", { touser: OPENID, command: "Typing" })).errcode,
    40101,
  );
  assert.equal(
    (await post(emulator, "/cgi-bin/message/custom/business/typing", {
      touser: OPENID,
      command: "Typing",
      businessid: "9001",
    })).errcode,
    0,
  );
  const sent = emulator.inbox(OPENID).find((e) => e.kind === "message");
  assert.equal(sent?.kind === "message" && sent.businessId, "9001");
});

test("emulator aimsgcontext: { msgid } and { is_ai_msg: 1 } are kept; other shapes get 47001", async () => {
  const { emulator } = setup();
  await emulator.user(OPENID).says("hi");
  const message = { touser: OPENID, msgtype: "text", text: { content: "an AI answer" } };
  for (const context of [{ is_ai_msg: 1 }, { msgid: "7380000000000000001" }]) {
    assert.equal((await post(emulator, SEND, { ...message, aimsgcontext: context })).errcode, 0);
  }
  for (const context of [{ is_ai_msg: 2 }, { msgid: "" }, "yes", { msgid: "1", is_ai_msg: 1 }]) {
    assert.equal(
      (await post(emulator, SEND, { ...message, aimsgcontext: context })).errcode,
      47001,
      JSON.stringify(context),
    );
  }
  const marked = emulator.inbox(OPENID).filter((e) => e.kind === "message" && e.aiMsgContext !== undefined);
  assert.equal(marked.length, 2);
});

test("emulator subscribe: 43101 until the user accepts; a one-time acceptance allows one send, long-term any", async () => {
  const { emulator } = setup();
  const user = emulator.user(OPENID);
  const message = { touser: OPENID, template_id: "T-order", data: { thing1: { value: "Order 42" } }, page: "pages/a" };
  await user.says("hi"); // a known user
  assert.equal((await post(emulator, SUBSCRIBE, message)).errcode, 43101);
  await user.subscribes("T-order");
  const sent = await post(emulator, SUBSCRIBE, message);
  assert.equal(sent.errcode, 0);
  assert.match(String(sent.msgid), /^\d{16,20}$/);
  assert.equal((await post(emulator, SUBSCRIBE, message)).errcode, 43101, "the one-time acceptance is used up");
  await user.subscribes({ templateId: "T-order", longTerm: true });
  for (let i = 0; i < 3; i++) assert.equal((await post(emulator, SUBSCRIBE, message)).errcode, 0);
  await user.changesSubscription("T-order", "reject");
  assert.equal((await post(emulator, SUBSCRIBE, message)).errcode, 43101);
  const inbox = emulator.inbox(OPENID).filter((e) => e.kind === "subscribe");
  assert.equal(inbox.length, 4);
  assert.deepEqual(inbox[0], {
    kind: "subscribe",
    templateId: "T-order",
    data: { thing1: { value: "Order 42" } },
    page: "pages/a",
    msgid: sent.msgid,
    at: inbox[0]!.at,
  });
  assert.equal((await post(emulator, SUBSCRIBE, { ...message, touser: "o-unknown" })).errcode, 40003);
});

test("emulator subscribe: with templates given, an unknown template is 40037 and data that does not fit 47003", async () => {
  const { emulator } = setup({ templates: { "T-order": ["thing1", "time2"] } });
  const user = emulator.user(OPENID);
  await user.says("hi");
  await user.subscribes({ templateId: "T-order", longTerm: true });
  const data = { thing1: { value: "Order 42" }, time2: { value: "2026-12-01 10:00" } };
  assert.equal((await post(emulator, SUBSCRIBE, { touser: OPENID, template_id: "T-other", data })).errcode, 40037);
  assert.equal(
    (await post(emulator, SUBSCRIBE, { touser: OPENID, template_id: "T-order", data: { thing1: data.thing1 } }))
      .errcode,
    47003,
  );
  assert.equal(
    (await post(emulator, SUBSCRIBE, { touser: OPENID, template_id: "T-order", data: { ...data, x: { value: 1 } } }))
      .errcode,
    47003,
  );
  assert.equal((await post(emulator, SUBSCRIBE, { touser: OPENID, template_id: "T-order", data })).errcode, 0);
  assert.throws(() => user.subscribes("T-unknown"), /Unknown template/);
});

for (const format of ["json", "xml"] as const) {
  test(`emulator subscribe events (${format}): popup, change and sent reach the SDK typed, List always an array`, async () => {
    const c = clock();
    const emulator = createEmulator({ ...APP, now: c.now, push: { ...PUSH, format } });
    const mp = new MiniProgram({ ...APP, fetch: emulator.fetch, now: c.now, push: PUSH });
    const seen: PushMessage[] = [];
    const deliver = (push: { deliver(h: (r: Request) => Promise<Response>): Promise<{ ok: boolean }> }) =>
      push.deliver((request) => mp.push.handle(request, (m) => void seen.push(m)));
    const user = emulator.user(OPENID);
    await deliver(await user.says("hi"));
    assert.ok(
      (await deliver(await user.subscribes([{ templateId: "T1" }, { templateId: "T2", status: "reject" }]))).ok,
    );
    await mp.subscribeMessage.send(OPENID, { template_id: "T1", data: { thing1: { value: "x" } } });
    for (const push of await user.takeSubscribeSentEvents()) assert.ok((await deliver(push)).ok);
    assert.ok((await deliver(await user.changesSubscription("T1", "reject"))).ok);
    const [popup, sent, change] = seen.slice(1);
    assert.ok(popup !== undefined && isPushMessage(popup, "subscribe_msg_popup_event"));
    assert.deepEqual(popup.List.map((i) => [i.TemplateId, i.SubscribeStatusString]), [["T1", "accept"], [
      "T2",
      "reject",
    ]]);
    assert.ok(sent !== undefined && isPushMessage(sent, "subscribe_msg_sent_event"));
    assert.equal(sent.List.length, 1); // one item: WeChat writes an object, the SDK gives an array
    assert.match(sent.List[0]!.MsgID, /^\d{16,20}$/);
    assert.equal(sent.List[0]!.ErrorStatus, "success");
    assert.ok(change !== undefined && isPushMessage(change, "subscribe_msg_change_event"));
    assert.deepEqual(change.List, [{ TemplateId: "T1", SubscribeStatusString: "reject" }]);
  });
}

test("emulator + SDK: pushes open the tracker's window, sendOrSubscribe falls back once WeChat says 45015", async () => {
  const c = clock();
  const emulator = createEmulator({ ...APP, now: c.now, push: PUSH });
  const mp = new MiniProgram({ ...APP, fetch: emulator.fetch, now: c.now, push: PUSH });
  const user = emulator.user(OPENID);
  await (await user.says("hi")).deliver((request) => mp.push.handle(request, () => undefined));
  await (await user.subscribes("T1")).deliver((request) => mp.push.handle(request, () => undefined));
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 5);
  const message = { msgtype: "text" as const, payload: { content: "shipped" } };
  const fallback = { template_id: "T1", data: { thing1: { value: "Order 42" } } };
  assert.equal((await mp.sendOrSubscribe(OPENID, message, fallback)).sent, "customerServiceMessage");
  assert.equal((await mp.customerServiceMessage.window(OPENID))?.remaining, 4);
  c.advance(49 * HOUR); // the window closes for WeChat (and the tracker's expires too)
  const outside = await mp.sendOrSubscribe(OPENID, message, fallback);
  assert.equal(outside.sent, "subscribeMessage");
  assert.equal(emulator.inbox(OPENID).filter((e) => e.kind === "subscribe").length, 1);
  // The one-time acceptance is used up: the next fallback is refused with 43101.
  const refused = await mp.sendOrSubscribe(OPENID, message, fallback).catch((e: unknown) => e);
  assert.ok(isSubscriptionRefused(refused));
});
