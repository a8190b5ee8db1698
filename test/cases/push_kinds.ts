// The typed push kinds come from one list (KnownPushMessages) and one table of the receiver's
// checks (PUSH_KINDS) that the compiler holds to it. These cases check the table at run time
// against messages written here by hand, and the compiler's refusals with @ts-expect-error:
// when a refusal stops happening, the type check of the tests fails.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { isPushMessage, type KnownPushMessages, type TextMessage } from "../../mod.ts";
import { typePushMessage } from "../../src/push/parse.ts";
import { PUSH_KINDS, type PushKindChecks } from "../../src/push/types.ts";
import { GH_ID, NOW_SECONDS, OPENID } from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const head = { ToUserName: GH_ID, FromUserName: OPENID, CreateTime: NOW_SECONDS };
const item = { TemplateId: "T-order", SubscribeStatusString: "accept" };

// One whole message per typed kind, with only the fields the kind requires besides the
// common ones (so removing any of them must make the message untyped).
const WHOLE: Record<string, Record<string, unknown>> = {
  text: { MsgType: "text", Content: "hi", MsgId: "7360000000000000001" },
  image: { MsgType: "image", PicUrl: "https://mmbiz.qpic.cn/x", MediaId: "m1", MsgId: "7360000000000000002" },
  miniprogrampage: {
    MsgType: "miniprogrampage",
    Title: "Order",
    AppId: "wx1234567890abcdef",
    PagePath: "pages/order?id=1",
    ThumbUrl: "https://mmbiz.qpic.cn/t",
    ThumbMediaId: "t1",
    MsgId: "7360000000000000003",
  },
  user_enter_tempsession: { MsgType: "event", Event: "user_enter_tempsession", SessionFrom: "" },
  subscribe_msg_popup_event: { MsgType: "event", Event: "subscribe_msg_popup_event", List: [item] },
  subscribe_msg_change_event: { MsgType: "event", Event: "subscribe_msg_change_event", List: [item] },
  subscribe_msg_sent_event: {
    MsgType: "event",
    Event: "subscribe_msg_sent_event",
    List: [{ TemplateId: "T-order", MsgID: "1", ErrorCode: "0", ErrorStatus: "success" }],
  },
};
const KINDS = Object.keys(PUSH_KINDS) as (keyof KnownPushMessages)[];

test("push kinds: each typed kind narrows whole, and stays untyped without any one of its fields", () => {
  assert.deepEqual(KINDS.toSorted(), Object.keys(WHOLE).sort(), "a hand-written message for every typed kind");
  for (const kind of KINDS) {
    const whole: Record<string, unknown> = { ...head, ...WHOLE[kind] };
    const { message, mismatch } = typePushMessage(whole);
    assert.equal(mismatch, undefined, kind);
    for (const other of KINDS) assert.equal(isPushMessage(message, other), other === kind, `${kind} as ${other}`);
    const own = Object.keys(whole).filter((name) => !["ToUserName", "FromUserName", "CreateTime"].includes(name));
    for (const name of own.filter((name) => name !== "MsgType" && name !== "Event")) {
      const { [name]: _, ...without } = whole;
      const untyped = typePushMessage(without);
      assert.equal(isPushMessage(untyped.message, kind), false, `${kind} without ${name}`);
      assert.equal(untyped.mismatch?.field, name, `${kind} without ${name}: the warning names the field`);
    }
  }
});

test("push kinds: a MsgType that only reads like an event claims no event", () => {
  const { message, mismatch } = typePushMessage({
    ...head,
    MsgType: "event:user_enter_tempsession",
    SessionFrom: "button",
  });
  assert.equal(mismatch, undefined);
  assert.equal(isPushMessage(message, "user_enter_tempsession"), false);
});

// A typed kind's type is public under its own name: every message type of src/push/types.ts
// (an interface extending PushMessageBase) is exported by the push entry and by mod.ts.
test("push kinds: every message type is exported by src/push/mod.ts and mod.ts", async () => {
  const root = new URL("../../", import.meta.url);
  const types = await readFile(new URL("src/push/types.ts", root), "utf8");
  const names = [...types.matchAll(/^export interface (\w+) extends PushMessageBase\b/gm)].map((m) => m[1]!);
  assert.ok(names.length >= 8, `found the message types (${names.length})`);
  for (const entry of ["src/push/mod.ts", "mod.ts"]) {
    const text = await readFile(new URL(entry, root), "utf8");
    const missing = names.filter((name) => !new RegExp(`\\btype ${name}\\b`).test(text));
    assert.deepEqual(missing, [], `${entry} exports every message type`);
  }
}, ["node", "deno", "bun"]);

// What the compiler refuses: each line below must fail the type check.
type Checks<K extends keyof KnownPushMessages> = PushKindChecks<K, KnownPushMessages[K]>;
/** A message type with a field the parser has no check for. */
interface CountMessage extends TextMessage {
  Count: number;
}
export const REFUSED: unknown[] = [
  // @ts-expect-error an entry lists every field its kind requires
  { fields: { Content: "text" } } satisfies Checks<"text">,
  // @ts-expect-error and no field its kind does not require
  { fields: { Content: "text", MsgId: "id", Title: "text" } } satisfies Checks<"text">,
  // @ts-expect-error each with the check its type takes (MsgId is an id)
  { fields: { Content: "text", MsgId: "text" } } satisfies Checks<"text">,
  // @ts-expect-error an event says so
  { fields: { SessionFrom: "text" } } satisfies Checks<"user_enter_tempsession">,
  // @ts-expect-error a message does not
  { event: true, fields: { Content: "text", MsgId: "id" } } satisfies Checks<"text">,
  // @ts-expect-error a kind with a List names its XML element
  { event: true, fields: { List: "list" } } satisfies Checks<"subscribe_msg_sent_event">,
  // @ts-expect-error a kind without one does not
  { fields: { Content: "text", MsgId: "id" }, listElement: "Text" } satisfies Checks<"text">,
  // @ts-expect-error the key is the type's MsgType (or Event)
  { fields: { Content: "text", MsgId: "id" } } satisfies PushKindChecks<"txt", TextMessage>,
  // @ts-expect-error a field the parser cannot check makes every entry impossible
  { fields: { Content: "text", MsgId: "id", Count: "text" } } satisfies PushKindChecks<"text", CountMessage>,
];
// The same entries written right compile: the refusals above are for the reasons given.
export const ACCEPTED: unknown[] = [
  { fields: { Content: "text", MsgId: "id" } } satisfies Checks<"text">,
  { event: true, fields: { SessionFrom: "text" } } satisfies Checks<"user_enter_tempsession">,
  { event: true, fields: { List: "list" }, listElement: "X" } satisfies Checks<"subscribe_msg_sent_event">,
];
