/**
 * Private: the dev server's one way into the worker. `withEmulator` (in
 * `src/testing/dev_server/`) wraps an app built with `createApp` and answers its own
 * `/_emulator/` routes the way the app answers its routes: the same reading of the env, the
 * same error answers, body checks and WeChat settings. Those pieces belong to the worker and
 * are not part of `@kefu/edge/worker`, so the dev server takes them, and the public types it
 * needs, from this file and from no other `worker/` file (`test/cases/worker_imports.ts`
 * fails otherwise). What is here may change in any release; build on `@kefu/edge/worker`.
 *
 * @module
 */
export type { AppEnv, AppLogger, KefuApp } from "./types.ts";
export type { QueueBatchLike, QueueLike, QueueMessageLike } from "./queue_types.ts";
export { ConfigError, type Env, lenientVar } from "./env.ts";
export { answerErrors, HttpError } from "./errors.ts";
export { jsonBody, rejectInvalid, userParamsSchema } from "./schemas.ts";
export { executionContext } from "./background.ts";
export { wechatSettings } from "./wechat.ts";
export { EMULATOR_UPSTREAM, type EmulatorUpstream, pushSettings, type UpstreamSettings } from "./upstream.ts";
