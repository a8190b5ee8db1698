// The three subscribe-message events: typed, with their List always an array, in JSON and XML.
import assert from "node:assert/strict";
import { isPushMessage, type PushMessage } from "../../mod.ts";
import { GH_ID, NOW_SECONDS, OPENID, plainApp, pushApp, pushRequest, recordingHandler } from "./push_fixtures.ts";
import { test } from "./_registry.ts";

const head = { ToUserName: GH_ID, FromUserName: OPENID, CreateTime: NOW_SECONDS, MsgType: "event" };
const xmlHead = `<ToUserName><![CDATA[${GH_ID}]]></ToUserName><FromUserName><![CDATA[${OPENID}]]></FromUserName>` +
  `<CreateTime>${NOW_SECONDS}</CreateTime><MsgType><![CDATA[event]]></MsgType>`;

async function receive(
  body: string,
  format: "json" | "xml",
  mode: "plain" | "aes",
  nonce: string,
): Promise<PushMessage> {
  const mp = mode === "aes" ? pushApp() : plainApp();
  const { handler, calls } = recordingHandler();
  const response = await mp.push.handle(pushRequest({ body, format, mode, nonce }), handler);
  assert.equal(await response.text(), "success");
  assert.equal(calls.length, 1);
  return calls[0]!;
}

const popupOne = { TemplateId: "T-order", SubscribeStatusString: "accept", PopupScene: "2" };
const popupTwo = { TemplateId: "T-ship", SubscribeStatusString: "reject", PopupScene: "2" };

const cases: Array<{ name: string; event: string; json: string; xml: string; list: unknown[] }> = [
  {
    name: "popup, one template (an object)",
    event: "subscribe_msg_popup_event",
    json: JSON.stringify({ ...head, Event: "subscribe_msg_popup_event", List: popupOne }),
    xml: `<xml>${xmlHead}<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>` +
      `<List><TemplateId><![CDATA[T-order]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>` +
      `<PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>`,
    list: [popupOne],
  },
  {
    name: "popup, two templates (an array)",
    event: "subscribe_msg_popup_event",
    json: JSON.stringify({
      ...head,
      Event: "subscribe_msg_popup_event",
      List: [popupOne, { ...popupTwo, PopupScene: 2 }],
    }),
    xml: `<xml>${xmlHead}<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>` +
      `<List><TemplateId>T-order</TemplateId><SubscribeStatusString>accept</SubscribeStatusString><PopupScene>2</PopupScene></List>` +
      `<List><TemplateId>T-ship</TemplateId><SubscribeStatusString>reject</SubscribeStatusString><PopupScene>2</PopupScene></List>` +
      `</SubscribeMsgPopupEvent></xml>`,
    list: [popupOne, popupTwo],
  },
  {
    name: "change",
    event: "subscribe_msg_change_event",
    json: JSON.stringify({
      ...head,
      Event: "subscribe_msg_change_event",
      List: { TemplateId: "T-order", SubscribeStatusString: "reject" },
    }),
    xml: `<xml>${xmlHead}<Event><![CDATA[subscribe_msg_change_event]]></Event><SubscribeMsgChangeEvent><List>` +
      `<TemplateId>T-order</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>`,
    list: [{ TemplateId: "T-order", SubscribeStatusString: "reject" }],
  },
  {
    name: "sent, a 64-bit MsgID kept exact",
    event: "subscribe_msg_sent_event",
    json: `{"ToUserName":"${GH_ID}","FromUserName":"${OPENID}","CreateTime":${NOW_SECONDS},"MsgType":"event",` +
      `"Event":"subscribe_msg_sent_event","List":{"TemplateId":"T-order","MsgID":1700827132819554304,"ErrorCode":0,` +
      `"ErrorStatus":"success"}}`,
    xml: `<xml>${xmlHead}<Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List>` +
      `<TemplateId>T-order</TemplateId><MsgID>1700827132819554304</MsgID><ErrorCode>0</ErrorCode>` +
      `<ErrorStatus>success</ErrorStatus></List></SubscribeMsgSentEvent></xml>`,
    list: [{ TemplateId: "T-order", MsgID: "1700827132819554304", ErrorCode: "0", ErrorStatus: "success" }],
  },
];

for (const c of cases) {
  for (const format of ["json", "xml"] as const) {
    for (const mode of ["plain", "aes"] as const) {
      test(`push subscribe: ${c.name}, ${format}, ${mode}`, async () => {
        const message = await receive(format === "json" ? c.json : c.xml, format, mode, `${c.event}-${format}`);
        assert.ok(isPushMessage(message, c.event as "subscribe_msg_popup_event"), "typed");
        assert.deepEqual(message.List, c.list);
      });
    }
  }
}

test("push subscribe: an event without a usable List reaches the handler untyped", async () => {
  const body = JSON.stringify({ ...head, Event: "subscribe_msg_popup_event", List: "oops" });
  const message = await receive(body, "json", "plain", "bad-list");
  assert.equal(isPushMessage(message, "subscribe_msg_popup_event"), false);
  assert.equal(message.List, "oops");
});
