// The AI bot against a fake OpenAI-compatible server this test starts on 127.0.0.1 (a free port)
// and stops: the bot calls it with the runtime's own fetch, over HTTP, as it would a real model.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { expect, test } from "vitest";
import { aiBot, MemoryConversationStore, MiniProgram } from "../../mod.ts";
import { createEmulator, createFakeChatModel, type FakeChatModelOptions } from "../../src/testing/mod.ts";
import { botCases, MODEL_KEY, type ModelUnderTest } from "../cases/_bot_suite.ts";

async function startServer(options: FakeChatModelOptions): Promise<ModelUnderTest> {
  const model = createFakeChatModel(options);
  const server = serve({ fetch: (request: Request) => model.fetch(request), hostname: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    fetch: undefined,
    requests: model.requests,
    close: () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections(): void }).closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

for (const [name, fn] of botCases) test(`AI bot over HTTP: ${name}`, () => fn(startServer), 30_000);

test("AI bot over HTTP: a model that cannot be reached is a network failure; the key shows in no log line", async () => {
  // A port that was just free: nothing listens there now.
  const { baseUrl, close } = await startServer({});
  await close();
  const wechat = createEmulator({ appId: "wxaibotnet000001", appSecret: "s", push: { token: "T" } });
  const logs: string[] = [];
  const logger = { warn: (line: string) => void logs.push(line) };
  const mp = new MiniProgram({
    appId: "wxaibotnet000001",
    appSecret: "s",
    fetch: wechat.fetch,
    push: { token: "T" },
    conversations: new MemoryConversationStore(),
    logger,
  });
  const bot = aiBot({ baseUrl, model: "m", apiKey: MODEL_KEY, miniProgram: mp, logger, fallbackText: "稍后再试" });
  const outcome = await (await wechat.user("o_user_net_0000000001").says("你好")).deliver((r) =>
    mp.push.handle(r, bot)
  );
  expect(outcome.ok).toBe(true);
  const failed = logs.map((line) => JSON.parse(line)).find((line) => line.event === "kefu-edge.bot_model_failed");
  expect(failed.failure).toBe("network");
  expect(logs.join("\n")).not.toContain(MODEL_KEY);
  expect(wechat.inbox("o_user_net_0000000001").at(-1)).toMatchObject({
    kind: "message",
    message: { content: "稍后再试" },
  });
});
