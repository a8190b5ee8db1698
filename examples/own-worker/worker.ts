// A team's own worker: the kefu-edge app with its own push handler. Deploy it with
// `npx wrangler@4.86.0 deploy` (wrangler.toml: main = "worker.ts"); run it locally against the
// emulator and the chat page with dev.ts (see docs/emulator.md: "Your own worker against the emulator").
import { isPushMessage } from "kefu-edge";
import { createApp } from "kefu-edge/worker";

export { KefuStore } from "kefu-edge/worker/durable-object"; // the Durable Object class KEFU_STORE binds, when you bind it

export default createApp({
  onMessage: async (message, { miniProgram }) => {
    const send = (content: string) =>
      miniProgram.customerServiceMessage.send(message.FromUserName, "text", { content });
    if (isPushMessage(message, "text")) await send(`You said: ${message.Content}`);
    if (isPushMessage(message, "miniprogrampage")) await send(`Thanks for sharing “${message.Title}”`);
  },
});
