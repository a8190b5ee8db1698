// The same worker against the in-process WeChat emulator, for `wrangler dev` only.
import app from "./worker.ts";
import { withEmulator } from "kefu-edge/testing";
export { KefuStore } from "kefu-edge/worker/durable-object";
export default withEmulator(app);
