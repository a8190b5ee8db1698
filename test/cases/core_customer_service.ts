import assert from "node:assert/strict";
import { MiniProgram, ValidationError } from "../../mod.ts";
import { fakeFetch } from "./_fake.ts";
import { test } from "./_registry.ts";

const APP = { appId: "wx1234567890abcdef", appSecret: "APP_SECRET_VALUE_0123456789" };
const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";

function setup(handler?: Parameters<typeof fakeFetch>[0]) {
  const fake = fakeFetch(handler);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { baseDelayMs: 1 } });
  return { fake, mp };
}

test("send text: exact JSON body, token in the query", async () => {
  const { fake, mp } = setup();
  const result = await mp.customerServiceMessage.send(OPENID, "text", { content: "Hello World" });
  assert.deepEqual(result, { errcode: 0, errmsg: "ok" });
  const [call] = fake.to("/cgi-bin/message/custom/send");
  assert.ok(call);
  assert.equal(call.request.method, "POST");
  assert.equal(call.url.searchParams.get("access_token"), "ACCESS_TOKEN_1");
  assert.equal(call.body, `{"touser":"${OPENID}","msgtype":"text","text":{"content":"Hello World"}}`);
});

test("send refuses an empty text before any network call", async () => {
  const { fake, mp } = setup();
  await assert.rejects(
    mp.customerServiceMessage.send(OPENID, "text", { content: "" }),
    (err: unknown) => err instanceof ValidationError && err.field === "text.content",
  );
  assert.equal(fake.calls.length, 0);
});
