/**
 * `MiniProgram`: configuration and wiring of the HTTP pipeline, the token manager
 * and the API modules.
 *
 * @module
 */
import { ValidationError } from "./errors.ts";
import { HttpClient, type RetryOptions } from "./http/client.ts";
import { AccessToken, type Logger, type TokenSource } from "./token/access_token.ts";
import type { KeyValueStore } from "./stores/key_value_store.ts";
import { MemoryStore } from "./stores/memory_store.ts";
import { CustomerServiceMessage } from "./customer_service/customer_service_message.ts";
import { type PushOptions, PushReceiver } from "./push/receiver.ts";

/** Options of {@link MiniProgram}. */
export interface MiniProgramOptions {
  /** The mini program's AppID (`wx…`). */
  appId: string;
  /** The AppSecret. Never logged, never put in an error. Not needed with a custom `tokenSource`. */
  appSecret?: string;
  /** Token cache; default a {@link MemoryStore}. Share one (KV, Redis) between instances. */
  store?: KeyValueStore;
  /** `"stable"` (default), `"classic"`, or a function returning `{ access_token, expires_in }`. */
  tokenSource?: TokenSource;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** API origin; default `https://api.weixin.qq.com`. */
  baseUrl?: string;
  /** Per-attempt time limit in ms; default 10,000. For getTempMedia it covers the headers. */
  timeoutMs?: number;
  /** Clock in ms; default `Date.now`. Tests move time with it. */
  now?: () => number;
  /** Retries of idempotent calls on -1, 5xx, network errors and timeouts. */
  retry?: RetryOptions;
  /** Upload limit in bytes; default 10 MiB. */
  maxUploadBytes?: number;
  /** Longest silence of a `getTempMedia` body before it fails, in ms; default 30,000. */
  mediaIdleTimeoutMs?: number;
  /** Receives warnings (such as a failing store); default `console`. */
  logger?: Logger;
  /** Message push settings (Token, EncodingAESKey...). Without them `push.handle` answers 503. */
  push?: PushOptions;
}

/**
 * A WeChat Mini Program: the entry point of the SDK.
 *
 * @example Send a text message
 * ```ts ignore
 * import { MiniProgram } from "../mod.ts";
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret" });
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "Hello World" });
 * ```
 */
export class MiniProgram {
  /** The AppID. */
  readonly appId: string;
  /** Access-token manager shared by every call of this instance. */
  readonly accessToken: AccessToken;
  /** Customer-service messages: send, setTyping, uploadTempMedia, getTempMedia. */
  readonly customerServiceMessage: CustomerServiceMessage;
  /** The clock this instance uses, in ms. */
  readonly now: () => number;
  /** Message push receiver: `mp.push.handle(request, handler)` answers WeChat's pushes. */
  readonly push: PushReceiver;

  /**
   * Creates a client for one mini program.
   *
   * @param options see {@link MiniProgramOptions}
   */
  constructor(options: MiniProgramOptions) {
    if (typeof options.appId !== "string" || options.appId.trim() === "") {
      throw new ValidationError("appId", "must not be empty");
    }
    const source = options.tokenSource ?? "stable";
    const appSecret = options.appSecret ?? "";
    if (typeof source === "string" && appSecret === "") {
      throw new ValidationError("appSecret", `required for the "${source}" token source`);
    }
    const fetchFn = options.fetch ?? globalThis.fetch?.bind(globalThis);
    if (typeof fetchFn !== "function") {
      throw new ValidationError("fetch", "no global fetch in this runtime: pass one in the options");
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.appId = options.appId;
    this.now = options.now ?? Date.now;
    const http = new HttpClient({
      baseUrl: options.baseUrl ?? "https://api.weixin.qq.com",
      fetch: fetchFn,
      timeoutMs,
      retry: options.retry,
      tokens: () => this.accessToken,
      secrets: appSecret === "" ? [] : [appSecret],
    });
    this.accessToken = new AccessToken({
      appId: options.appId,
      appSecret,
      source,
      store: options.store ?? new MemoryStore({ now: this.now }),
      http,
      now: this.now,
      timeoutMs,
      logger: options.logger ?? console,
    });
    this.customerServiceMessage = new CustomerServiceMessage(http, {
      maxUploadBytes: options.maxUploadBytes,
      mediaIdleTimeoutMs: options.mediaIdleTimeoutMs,
    });
    this.push = new PushReceiver({
      ...options.push,
      appId: options.appId,
      now: this.now,
      logger: options.logger ?? console,
    });
  }
}
