// Node: npm install kefu-edge, then: node examples/node.mjs
// Sends a message to an emulated user: no WeChat account, no network.
import { MiniProgram } from "kefu-edge";
import { createEmulator } from "kefu-edge/testing";

const appId = "wx0000000000demo";
const appSecret = "demo-secret-not-real";
const emulator = createEmulator({ appId, appSecret });
const mp = new MiniProgram({ appId, appSecret, fetch: emulator.fetch });

const user = emulator.user("o_demo_user_node");
await user.says("hello"); // opens the 48-hour window, as a real user message would
await mp.customerServiceMessage.send("o_demo_user_node", "text", { content: "Hi from node 👋" });

console.log(JSON.stringify(user.inbox().map((entry) => entry.kind === "message" ? entry.message : entry)));
