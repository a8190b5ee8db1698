// `npm start -- --fake-model`: the dev server with the AI bot pointed at a local fake model (started
// on 127.0.0.1 by the command itself, stopped with it). A user's message is answered by the bot,
// labelled AI-generated, in the same action's answer; a complaint goes to a person.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_VARS, FAKE_MODEL_FLAG } from "../../scripts/_dev_server.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";

const OPENID = "o_fake_model_user";
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ flags: [FAKE_MODEL_FLAG], timeoutMs: 90_000 });
}, 100_000);

afterAll(async () => await server?.stop());

// deno-lint-ignore no-explicit-any
async function says(text: string, openId = OPENID): Promise<any> {
  const response = await fetch(`${server.url}/_emulator/users/${openId}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  expect(response.status).toBe(200);
  return await response.json();
}

describe("npm start -- --fake-model", () => {
  it("prints where the fake model runs", () => {
    expect(server.output()).toMatch(/AI bot\s+answers from a local fake model at http:\/\/127\.0\.0\.1:\d+\/v1/);
  });

  it("the bot answers a user from the fake model, labelled AI-generated, with typing first", async () => {
    const body = await says("营业时间是几点？");
    expect(body.delivery).toMatchObject({ ok: true });
    const messages = body.received.filter((e: { kind: string }) => e.kind === "message");
    expect(messages).toHaveLength(1);
    expect(messages[0].message.content).toContain("营业时间是几点？");
    expect(messages[0].message.content).toContain("本地模拟模型");
    expect(messages[0].aiMsgContext).toEqual({ is_ai_msg: 1 });
    expect(body.received[0].kind).toBe("typing");
  });

  it("a complaint goes to a person: the notice, and the handoff route says waiting", async () => {
    const body = await says("我要投诉");
    const texts = body.received.filter((e: { kind: string }) => e.kind === "message").map((
      e: { message: { content: string } },
    ) => e.message.content);
    expect(texts).toEqual(["已为您转接人工客服，请稍候，客服会尽快回复您。"]);
    const handoff = await fetch(`${server.url}/api/users/${OPENID}/handoff`, {
      headers: { authorization: `Bearer ${DEV_VARS.API_KEY}` },
    });
    expect(await handoff.json()).toMatchObject({ state: "waiting" });
    // A keyword: the same, not a transfer to WeChat's own tool (which the emulator does not have):
    // --fake-model turns the dev server's TRANSFER_TO_KF off.
    const keyword = await says("转人工", "o_fake_model_user_2");
    expect(JSON.stringify(keyword.delivery)).not.toContain("transfer_customer_service");
    expect(keyword.received.at(-1)?.message?.content).toBe("已为您转接人工客服，请稍候，客服会尽快回复您。");
    // Kept, but not answered, while a person is awaited.
    const later = await says("还在吗");
    expect(later.received.filter((e: { kind: string }) => e.kind === "message")).toEqual([]);
  });
});
