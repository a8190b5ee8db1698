/**
 * Where WeChat API calls go: the one place that picks the upstream `fetch` and
 * origin. Production: `https://api.weixin.qq.com` through the global fetch;
 * `WECHAT_API_BASE` overrides the origin; a `fetch` passed to `createApp`
 * replaces the transport (tests); `WECHAT_EMULATOR=on` (local development) makes
 * the in-process emulator the upstream.
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

/** Builds the emulator upstream for a configuration (see `worker/emulator.ts`). */
export type EmulatorUpstream = (settings: UpstreamSettings) => Upstream;

/**
 * Picks the upstream for `settings`: the emulator when `WECHAT_EMULATOR=on`, else
 * the injected `fetch` (or the global one) towards `WECHAT_API_BASE` (or WeChat).
 *
 * @param settings the validated WeChat settings
 * @param options `fetch`: the transport given to `createApp`; `emulator`: the emulator factory, if this entry has one
 * @returns the fetch and origin to hand to the MiniProgram
 * @throws {ConfigError} `WECHAT_EMULATOR` when emulator mode is asked for but this entry has no emulator
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
      // The production entry leaves the emulator out of its bundle.
      throw new ConfigError("WECHAT_EMULATOR", "invalid", "is on, but this entry has no emulator (use worker/dev.ts)");
    }
    return options.emulator(settings);
  }
  return { fetch: options.fetch, baseUrl: settings.apiBase };
}
