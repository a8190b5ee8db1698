// A bot that answers from the conversation and hands off to a person: node examples/conversation-bot.mjs
// Runs against the emulator: no WeChat account, no network, no model (the "model" here is one line).
import { MemoryConversationStore, MiniProgram } from "kefu-edge";
import { createEmulator } from "kefu-edge/testing";

const appId = "wx0000000000demo";
const appSecret = "demo-secret-not-real";
const push = { token: "DemoPushToken1", encodingAESKey: "DemoPushKey0123456789abcdefghijklmnopqrstuv" };
const emulator = createEmulator({ appId, appSecret, push });
const conversations = new MemoryConversationStore(); // DenoKvConversationStore, or the KEFU_STORE Durable Objects
const mp = new MiniProgram({ appId, appSecret, push, fetch: emulator.fetch, conversations });

// Your push endpoint. The handler is not called while a person answers the user.
const endpoint = (request) =>
  mp.push.handle(request, async (message, { conversation }) => {
    if (message.MsgType !== "text") return;
    if (message.Content.includes("人工")) {
      await conversation.requestHuman("the user asked for a person"); // the bot stops here
      return;
    }
    const turns = await conversation.chat(20); // [{ role: "user" | "assistant", content, at }], oldest first
    await conversation.reply(`（第 ${turns.length} 轮）收到：${message.Content}`); // recorded as the bot's
  });

const user = emulator.user("o_demo_user_conv");
await (await user.says("我的订单到哪了？")).deliver(endpoint);
await (await user.says("转人工")).deliver(endpoint);
await (await user.says("还在吗？")).deliver(endpoint); // kept, but the bot stays out

// An agent takes over and answers; the send is recorded as theirs.
const ref = { appId, openId: "o_demo_user_conv" };
await conversations.setHandoff(ref, { state: "human", by: "agent:alice", from: ["waiting"] });
await mp.customerServiceMessage.sendText("o_demo_user_conv", "您好，我是客服小李", { sender: "agent:alice" });

const page = await conversations.history(ref, { limit: 10 });
for (const entry of page.entries.reverse()) console.log(entry.sender, entry.type, entry.text ?? entry.to);
await conversations.purge(ref); // what WeChat's user_authorization_revoke does too
console.log(await conversations.history(ref, { limit: 10 })); // null
