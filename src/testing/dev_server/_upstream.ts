/**
 * Private to the dev server (`withEmulator`): the in-process WeChat emulator as the app's
 * upstream (`WECHAT_EMULATOR=on`), one emulator per isolate per configuration, answering
 * the API for the configured AppID and AppSecret.
 *
 * The same emulator serves the app's API calls and the `/_emulator/` routes: a user who
 * "says" something there opens the send window that `/api/messages` then uses.
 *
 * @module
 */
import { createEmulator } from "../emulator.ts";
import type { Emulator } from "../types.ts";
import { ConfigError, type EmulatorUpstream, pushSettings, type UpstreamSettings } from "../../../worker/dev_seam.ts";
import { Changes, ExchangeLog, recordingFetch, SentLog } from "./_log.ts";

/** One emulated mini program and what the dev routes keep about it. */
export interface EmulatorSession {
  /** The emulated WeChat. */
  readonly emulator: Emulator;
  /** Recent pushes to the app and API calls from it, oldest first (bounded). */
  readonly exchanges: ExchangeLog;
  /** What each emulated user sent through the dev routes. */
  readonly sent: SentLog;
  /** Goes up whenever `exchanges` or `sent` change: the chat page waits on it. */
  readonly changes: Changes;
}

/** What {@link emulatorUpstream} returns. */
export interface EmulatorUpstreams {
  /** For `createApp({ emulator })`. */
  select: EmulatorUpstream;
  /**
   * The emulator of `appId`, once the app has used it.
   *
   * @param appId the AppID
   * @returns the emulator, or `undefined`
   */
  emulatorFor(appId: string): Emulator | undefined;
  /**
   * The session of a configuration, created on first use: the very emulator `select`
   * hands to the app for the same settings.
   *
   * @param settings the WeChat settings (AppSecret required)
   * @returns the session
   * @throws {ConfigError} `WECHAT_SECRET` when the AppSecret is missing
   */
  session(settings: UpstreamSettings): EmulatorSession;
}

/**
 * An {@link EmulatorUpstream} for `createApp({ emulator })`, with its emulators
 * reachable for inspection and for the dev routes.
 *
 * @param options `now`: the emulator's clock in ms
 * @returns the upstream factory, `emulatorFor(appId)` and `session(settings)`
 * @example Hand it to an app
 * ```ts
 * import { createApp } from "@kefu/edge/worker";
 * import { emulatorUpstream } from "./_upstream.ts";
 * const upstream = emulatorUpstream();
 * const app = createApp({ emulator: upstream.select });
 * const env = { WECHAT_EMULATOR: "on", WECHAT_APPID: "wx123", WECHAT_SECRET: "secret", API_KEY: "key-0123456789" };
 * const { emulator } = upstream.session({ appId: "wx123", appSecret: "secret", emulator: true });
 * await emulator.user("OPENID").says("Hi");
 * const headers = { authorization: "Bearer key-0123456789", "content-type": "application/json" };
 * const body = JSON.stringify({ touser: "OPENID", msgtype: "text", text: { content: "Hello" } });
 * const res = await app.request("/api/messages", { method: "POST", headers, body }, env);
 * console.log(res.status, emulator.inbox("OPENID").length); // 200 1
 * ```
 */
export function emulatorUpstream(options: { now?: () => number } = {}): EmulatorUpstreams {
  const sessions = new Map<string, EmulatorSession>();
  const session = (settings: UpstreamSettings): EmulatorSession => {
    if (settings.appSecret === undefined) throw new ConfigError("WECHAT_SECRET", "missing");
    const key = JSON.stringify([settings.appId, settings.appSecret, settings.pushToken, settings.aesKey]);
    let found = sessions.get(key);
    if (found === undefined) {
      const push = pushSettings(settings);
      const emulator = createEmulator({
        appId: settings.appId,
        appSecret: settings.appSecret,
        ...(push === undefined ? {} : { push }),
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      const changes = new Changes();
      found = { emulator, exchanges: new ExchangeLog(changes), sent: new SentLog(changes), changes };
      sessions.set(key, found);
    }
    return found;
  };
  const fetches = new WeakMap<EmulatorSession, typeof fetch>();
  const select: EmulatorUpstream = (settings) => {
    const current = session(settings);
    let fetchFn = fetches.get(current);
    if (fetchFn === undefined) {
      const { emulator, exchanges } = current;
      fetches.set(current, fetchFn = recordingFetch(emulator.fetch, exchanges, () => emulator.now()));
    }
    return { fetch: fetchFn, baseUrl: undefined };
  };
  return {
    select,
    session,
    emulatorFor: (appId) => [...sessions.values()].find((s) => s.emulator.appId === appId)?.emulator,
  };
}
