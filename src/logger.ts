/**
 * `Logger`: where the SDK writes its warnings. One type for the whole package: the access
 * token, the send window tracker and the push receiver take it, and the worker's logger
 * (`AppLogger` in `@kefu/edge/worker`) extends it.
 *
 * @module
 */

/**
 * Receives warnings (a failing store, a push that does not fit its kind); never given a token,
 * a secret or message content.
 *
 * @example Collect the warnings of a MiniProgram whose token store is down
 * ```ts
 * import { type Logger, MemoryStore, MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 *
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const warnings: string[] = [];
 * const logger: Logger = { warn: (line) => warnings.push(line) };
 * const store = new MemoryStore();
 * store.get = () => Promise.reject(new Error("store unreachable"));
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch, store, logger });
 * await mp.accessToken.getToken(); // WeChat still answers: the token is cached in memory
 * console.log(warnings[0]?.startsWith("kefu-edge: token store read failed")); // true
 * ```
 */
export interface Logger {
  /** Logs a warning. */
  warn(message: string): void;
}
