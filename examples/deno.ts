// Deno: deno add jsr:@kefu/edge, then: deno run examples/deno.ts
// Sends a message to an emulated user: no WeChat account, no network.
import { MiniProgram } from "@kefu/edge";
import { createEmulator } from "@kefu/edge/testing";

const appId = "wx0000000000demo";
const appSecret = "demo-secret-not-real";
const emulator = createEmulator({ appId, appSecret });
const mp = new MiniProgram({ appId, appSecret, fetch: emulator.fetch });

const user = emulator.user("o_demo_user_deno");
await user.says("hello"); // opens the 48-hour window, as a real user message would
await mp.customerServiceMessage.send("o_demo_user_deno", "text", { content: "Hi from deno 👋" });

console.log(JSON.stringify(user.inbox().map((entry) => entry.kind === "message" ? entry.message : entry)));
