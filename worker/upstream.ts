/**
 * Where WeChat API calls go: the one place that picks the upstream `fetch` and
 * origin. Production: `https://api.weixin.qq.com` through the global fetch;
 * `WECHAT_API_BASE` overrides the origin; a `fetch` passed to `createApp`
 * replaces the transport (tests); `WECHAT_EMULATOR=on` (local development) makes
 * the in-process emulator the upstream, when the app was given one: `createApp({ emulator })`,
 * or `withEmulator(app)` from `kefu-edge/testing`, which hands it over in the env.
 *
 * @module
 */
import { ConfigError } from "./env.ts";

/** The WeChat settings an upstream is chosen from. */
export interface UpstreamSettings {
  /** `WECHAT_APPID`. */
  appId: string;
  /** `WECHAT_SECRET`, when set. */
  appSecret?: string | undefined;
  /** `WECHAT_TOKEN`, when set and valid. */
  pushToken?: string | undefined;
  /** `WECHAT_AES_KEY`, when set and valid. */
  aesKey?: string | undefined;
  /** `WECHAT_API_BASE`. */
  apiBase?: string | undefined;
  /** `WECHAT_EMULATOR=on`. */
  emulator: boolean;
}

/** The transport and origin the MiniProgram uses. `undefined` keeps the SDK's default. */
export interface Upstream {
  /** The transport; `undefined`: the global fetch. */
  fetch?: typeof fetch | undefined;
  /** The API origin; `undefined`: `https://api.weixin.qq.com`. */
  baseUrl?: string | undefined;
}

/** Builds the emulator upstream for a configuration (`withEmulator` in `kefu-edge/testing` makes one). */
export type EmulatorUpstream = (settings: UpstreamSettings) => Upstream;

/**
 * The message-push settings of a configuration, as `MiniProgram`'s `push` option and the
 * emulator's take them: `undefined` without a push token, no `encodingAESKey` in plain mode.
 *
 * @param settings the validated WeChat settings
 * @returns `{ token, encodingAESKey? }`, or `undefined`
 * @example
 * ```ts
 * import { pushSettings } from "./upstream.ts";
 * console.log(pushSettings({ appId: "wx1", pushToken: "TOKEN", emulator: false })); // { token: "TOKEN" }
 * ```
 */
export function pushSettings(settings: UpstreamSettings): { token: string; encodingAESKey?: string } | undefined {
  if (settings.pushToken === undefined) return undefined;
  return settings.aesKey === undefined
    ? { token: settings.pushToken }
    : { token: settings.pushToken, encodingAESKey: settings.aesKey };
}

/**
 * The env entry under which `withEmulator` (`kefu-edge/testing`) hands the app its emulator.
 * A symbol, not a name: no variable, secret or process environment can set it, only code that
 * wraps the app.
 */
export const EMULATOR_UPSTREAM: unique symbol = Symbol("kefu-edge.emulator-upstream");

/**
 * The emulator upstream handed over in `env`, if any.
 *
 * @param env the bindings
 * @returns the upstream factory under {@link EMULATOR_UPSTREAM}, or `undefined`
 * @example
 * ```ts
 * import { injectedEmulator } from "./upstream.ts";
 * console.log(injectedEmulator({ WECHAT_EMULATOR: "on" })); // undefined
 * ```
 */
export function injectedEmulator(env: object): EmulatorUpstream | undefined {
  const value: unknown = (env as { [EMULATOR_UPSTREAM]?: unknown })[EMULATOR_UPSTREAM];
  return typeof value === "function" ? value as EmulatorUpstream : undefined;
}

/**
 * Picks the upstream for `settings`: the emulator when `WECHAT_EMULATOR=on`, else
 * the injected `fetch` (or the global one) towards `WECHAT_API_BASE` (or WeChat).
 *
 * @param settings the validated WeChat settings
 * @param options `fetch`: the transport given to `createApp`; `emulator`: the emulator factory, if this entry has one
 * @returns the fetch and origin to hand to the MiniProgram
 * @throws {ConfigError} `WECHAT_EMULATOR` when emulator mode is asked for but the app was given no emulator
 * @example
 * ```ts
 * import { selectUpstream } from "./upstream.ts";
 * const up = selectUpstream({ appId: "wx1", emulator: false, apiBase: "http://127.0.0.1:9000" }, {});
 * console.log(up.baseUrl); // "http://127.0.0.1:9000"
 * ```
 */
export function selectUpstream(
  settings: UpstreamSettings,
  options: { fetch?: typeof fetch | undefined; emulator?: EmulatorUpstream | undefined },
): Upstream {
  if (settings.emulator) {
    if (options.emulator === undefined) {
      // Production entries leave the emulator out of their bundle.
      throw new ConfigError(
        "WECHAT_EMULATOR",
        "invalid",
        "is on, but this app has no emulator (wrap it with withEmulator from kefu-edge/testing)",
      );
    }
    return options.emulator(settings);
  }
  return { fetch: options.fetch, baseUrl: settings.apiBase };
}
