/**
 * The in-process WeChat emulator as the upstream (`WECHAT_EMULATOR=on`): one emulator
 * per isolate per configuration, answering the API for the configured AppID and
 * AppSecret. For local development and smoke tests only; the production entry
 * (`worker/index.ts`) leaves it out of its bundle.
 *
 * @module
 */
import { createEmulator, type Emulator } from "../src/testing/mod.ts";
import type { EmulatorUpstream, UpstreamSettings } from "./upstream.ts";
import { ConfigError } from "./env.ts";

/**
 * An {@link EmulatorUpstream} for `createApp({ emulator })`, with its emulators
 * reachable for inspection.
 *
 * @param options `now`: the emulator's clock in ms
 * @returns the upstream factory and `emulatorFor(appId)`
 * @example
 * ```ts ignore
 * const upstream = emulatorUpstream();
 * const app = createApp({ emulator: upstream.select });
 * ```
 */
export function emulatorUpstream(options: { now?: () => number } = {}): {
  select: EmulatorUpstream;
  emulatorFor(appId: string): Emulator | undefined;
} {
  const emulators = new Map<string, Emulator>();
  const select: EmulatorUpstream = (settings: UpstreamSettings) => {
    if (settings.appSecret === undefined) throw new ConfigError("WECHAT_SECRET", "missing");
    const key = JSON.stringify([settings.appId, settings.appSecret, settings.pushToken, settings.aesKey]);
    let emulator = emulators.get(key);
    if (emulator === undefined) {
      emulator = createEmulator({
        appId: settings.appId,
        appSecret: settings.appSecret,
        ...(settings.pushToken === undefined ? {} : {
          push: {
            token: settings.pushToken,
            ...(settings.aesKey === undefined ? {} : { encodingAESKey: settings.aesKey }),
          },
        }),
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      emulators.set(key, emulator);
    }
    return { fetch: emulator.fetch as typeof fetch, baseUrl: undefined };
  };
  return {
    select,
    emulatorFor: (appId) => [...emulators.values()].find((e) => e.appId === appId),
  };
}
