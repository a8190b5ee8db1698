/**
 * An offline WeChat for tests and local development: `createEmulator` answers the Mini
 * Program server API (access tokens, customer-service messages, typing, temporary media)
 * through a `fetch` you hand to the SDK, emulates users whose messages open the send
 * window, and builds and delivers the signed pushes WeChat would send. Web APIs only.
 *
 * @example Send a reply to an emulated user
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 *
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: emulator.fetch });
 * await emulator.user("OPENID").says("hello");
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "Hi! How can I help?" });
 * const [entry] = emulator.inbox("OPENID");
 * console.log(entry?.kind === "message" && entry.message); // { content: "Hi! How can I help?" }
 * ```
 *
 * @example Run your own worker against the emulator and the chat page (`dev.ts`)
 * ```ts ignore
 * import app from "./worker.ts";
 * import { withEmulator } from "kefu-edge/testing";
 * export { KefuStore } from "kefu-edge/worker/durable-object";
 * export default withEmulator(app);
 * ```
 *
 * @module
 */
export { createEmulator } from "./emulator.ts";
export {
  createFakeChatModel,
  type FakeChatAnswer,
  type FakeChatModel,
  type FakeChatModelOptions,
  type FakeChatRequest,
} from "./fake_chat_model.ts";
export { withEmulator, type WithEmulatorOptions } from "./dev_server/with_emulator.ts";
export { buildPush, type BuiltPush, deliverPush, type DeliverySettings, type PushTarget } from "./push.ts";
export type {
  ContentCheckOptions,
  DeliverOptions,
  DeliveryFailure,
  DeliveryOutcome,
  EmulatedUser,
  Emulator,
  EmulatorFaults,
  EmulatorMedia,
  EmulatorOptions,
  EmulatorTokens,
  FaultKind,
  FaultOptions,
  FetchLike,
  InboxEntry,
  MediaInfo,
  MiniProgramPageInput,
  PushAction,
  PushBuildOptions,
  PushConfig,
  PushFields,
  PushList,
  RecordedCall,
  RequestHandler,
  SubscribeChoice,
  TokenInfo,
  TokenStatus,
} from "./types.ts";
