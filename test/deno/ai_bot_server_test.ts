// The Deno server (worker/deno.ts) with the AI bot: BOT_URL pointing at a fake OpenAI-compatible
// model this test serves on 127.0.0.1, the emulator as WeChat (WECHAT_API_BASE, on another
// loopback port), conversations and the queue in the server's Deno KV.
import { serveDeno } from "../../worker/deno.ts";
import { createEmulator, createFakeChatModel } from "../../src/testing/mod.ts";

const APP_ID = "wxdenobot0000001";
const SECRET = "deno-bot-secret";
const PUSH = { token: "DenoBotToken1", encodingAESKey: "DenoBotKey0123456789abcdefghijklmnopqrstuvw" };
const MODEL_KEY = "sk-deno-bot-test-key-0123456789";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

Deno.test("the Deno server answers a user with the AI bot from the queue, labelled, the key in no log line", async () => {
  const model = createFakeChatModel({ apiKey: MODEL_KEY, answer: () => "来自 Deno 的回答" });
  const modelServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (r) => model.fetch(r));
  const logged: string[] = [];
  let emulator = createEmulator({ appId: APP_ID, appSecret: SECRET });
  const wechat = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (r) => emulator.fetch(r));
  const server = await serveDeno({
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    env: {
      WECHAT_APPID: APP_ID,
      WECHAT_SECRET: SECRET,
      WECHAT_TOKEN: PUSH.token,
      WECHAT_AES_KEY: PUSH.encodingAESKey,
      WECHAT_API_BASE: `http://127.0.0.1:${wechat.addr.port}`,
      BOT_URL: `http://127.0.0.1:${modelServer.addr.port}/v1`,
      BOT_MODEL: "deno-model",
      BOT_API_KEY: MODEL_KEY,
      BOT_SYSTEM_PROMPT: "你是 Deno 测试的客服。",
    },
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
  });
  try {
    // The users' pushes go to the server's callback.
    emulator = createEmulator({
      appId: APP_ID,
      appSecret: SECRET,
      push: { ...PUSH, url: `${server.url}/wechat/callback` },
    });
    const user = emulator.user("o_deno_bot_user_0001");
    const outcome = await (await user.says("你好，Deno")).deliver();
    assertEquals([outcome.ok, outcome.responseText], [true, "success"], "WeChat's answer");
    const deadline = Date.now() + 10_000;
    while (user.inbox().every((e) => e.kind !== "message") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const answers = user.inbox().flatMap((e) => e.kind === "message" ? [[e.message.content, e.aiMsgContext]] : []);
    assertEquals(answers, [["来自 Deno 的回答", { is_ai_msg: 1 }]], "the bot's answer");
    assertEquals(model.requests[0]?.messages, [
      { role: "system", content: "你是 Deno 测试的客服。" },
      { role: "user", content: "你好，Deno" },
    ], "what the model received");
    for (const line of logged) if (line.includes(MODEL_KEY)) throw new Error(`the key in a log line: ${line}`);
  } finally {
    await server.close();
    await wechat.shutdown();
    await modelServer.shutdown();
  }
});
