// An AI customer-service bot that answers from the conversation and hands off to a person: node examples/ai-bot.mjs
// Runs offline: the emulator is WeChat and createFakeChatModel the model. For a real model, drop `fetch`.
import { aiBot, MemoryConversationStore, MiniProgram } from "kefu-edge";
import { createEmulator, createFakeChatModel } from "kefu-edge/testing";

const appId = "wx0000000000demo";
const appSecret = "demo-secret-not-real";
const push = { token: "DemoPushToken1", encodingAESKey: "DemoPushKey0123456789abcdefghijklmnopqrstuv" };
const emulator = createEmulator({ appId, appSecret, push });
const conversations = new MemoryConversationStore(); // the bot answers from the history: it needs one
const mp = new MiniProgram({ appId, appSecret, push, fetch: emulator.fetch, conversations });
const model = createFakeChatModel(); // echoes the user; hands complaints and refunds to a person

const bot = aiBot({
  baseUrl: "https://api.deepseek.com/v1", // any OpenAI-compatible Chat Completions endpoint
  model: "deepseek-chat",
  apiKey: "sk-your-key", // process.env.BOT_API_KEY in your code: never logged
  miniProgram: mp,
  fetch: model.fetch, // only here: the fake model answers instead of DeepSeek
  logger: { warn: () => {} }, // the bot's log lines (no content, no key); console by default
});
const endpoint = (request) => mp.push.handle(request, bot); // your push URL

const user = emulator.user("o_demo_user_bot");
for (const text of ["你们几点开门？", "我要投诉，退款一直没到账", "还在吗？"]) {
  await (await user.says(text)).deliver(endpoint);
}
for (const entry of user.inbox()) {
  if (entry.kind === "message") console.log(entry.aiMsgContext ? "[AI]" : "[--]", entry.message.content);
}
console.log((await conversations.handoff({ appId, openId: "o_demo_user_bot" })).state); // a person is awaited
console.log(model.requests.at(-1).messages.map((message) => message.role).join(" → "));
