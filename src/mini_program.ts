/**
 * `MiniProgram`: configuration and wiring of the HTTP pipeline, the token manager
 * and the API modules.
 *
 * @module
 */
import { isOutOfWindow, isQuotaExceeded, OutOfWindowError, ValidationError } from "./errors.ts";
import { HttpClient, type RetryOptions } from "./http/client.ts";
import { AccessToken, type TokenSource } from "./token/access_token.ts";
import type { Logger } from "./logger.ts";
import type { KeyValueStore } from "./stores/key_value_store.ts";
import { MemoryStore } from "./stores/memory_store.ts";
import {
  CustomerServiceMessage,
  type UploadedMedia,
  type WeChatResult,
} from "./customer_service/customer_service_message.ts";
import type { SendOptions, SendPayloads } from "./customer_service/schemas.ts";
import { SendWindowTracker } from "./customer_service/send_window.ts";
import {
  SubscribeMessage,
  type SubscribeMessagePayload,
  type SubscribeMessageResult,
} from "./subscribe/subscribe_message.ts";
import { type PushOptions, PushReceiver } from "./push/receiver.ts";
import type { ConversationStore } from "./conversation/types.ts";
import { OutboundRecorder } from "./conversation/outbound.ts";
import { Security } from "./security/msg_sec_check.ts";

/** Options of {@link MiniProgram}. */
export interface MiniProgramOptions {
  /** The mini program's AppID (`wx…`). */
  appId: string;
  /** The AppSecret. Never logged, never put in an error. Not needed with a custom `tokenSource`. */
  appSecret?: string | undefined;
  /** Token cache; default a {@link MemoryStore}. Share one (KV, Redis) between instances. */
  store?: KeyValueStore | undefined;
  /** `"stable"` (default), `"classic"`, or a function returning `{ access_token, expires_in }`. */
  tokenSource?: TokenSource | undefined;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch | undefined;
  /** API origin; default `https://api.weixin.qq.com`. */
  baseUrl?: string | undefined;
  /** Per-attempt time limit in ms; default 10,000. For getTempMedia it covers the headers. */
  timeoutMs?: number | undefined;
  /** Clock in ms; default `Date.now`. Tests move time with it. */
  now?: (() => number) | undefined;
  /** Retries of idempotent calls on -1, 5xx, network errors and timeouts. */
  retry?: RetryOptions | undefined;
  /** Upload limit in bytes; default 10 MiB. */
  maxUploadBytes?: number | undefined;
  /** Longest silence of a `getTempMedia` body before it fails, in ms; default 30,000. */
  mediaIdleTimeoutMs?: number | undefined;
  /**
   * Told of each file `uploadTempMedia` sent successfully, with the media_id WeChat gave it: keep
   * a copy there (the worker puts it in its R2 bucket) to show the message after WeChat's 3 days.
   * Called before `uploadTempMedia` returns: do slow work later. What it throws is logged.
   */
  onMediaUploaded?: ((upload: UploadedMedia) => void) | undefined;
  /** Receives warnings (such as a failing store); default `console`. */
  logger?: Logger | undefined;
  /** Message push settings (Token, EncodingAESKey...). Without them `push.handle` answers 503. */
  push?: PushOptions | undefined;
  /**
   * Refuse every send the send-window tracker knows is out of window, before any call (a
   * `send` option overrides it per call); default false.
   */
  checkWindow?: boolean | undefined;
  /** Where send windows are tracked; default `push.dedupeStore`, else `store` (one object per user on Workers). */
  windowStore?: KeyValueStore | undefined;
  /** Longest `text.content`, in UTF-8 bytes; default 2048 ([UNCERTAIN] WeChat's real limit; it answers 45002). */
  maxTextBytes?: number | undefined;
  /** Path of `setTyping` without a business id; default `/cgi-bin/message/custom/typing`. */
  typingPath?: string | undefined;
  /**
   * Where each user's conversation is kept (history, send window, who answers it, push claims):
   * with it, pushes are appended and claimed there in one operation, the handler is not called
   * while a person answers, sends are recorded with who sent them, and WeChat's deletion events
   * purge the user. Default none (pushes are claimed in `push.dedupeStore`, windows tracked in
   * `windowStore`, nothing is kept).
   */
  conversations?: ConversationStore | undefined;
}

/** What {@link MiniProgram.sendOrSubscribe} did. */
export type SendOrSubscribeResult =
  | { sent: "customerServiceMessage"; result: WeChatResult }
  | {
    sent: "subscribeMessage";
    result: SubscribeMessageResult;
    /** Why: the tracker knew the window was closed or spent, or WeChat answered 45015 or 45047. */
    reason: "window_closed" | "window_spent" | 45015 | 45047;
  };

/**
 * A WeChat Mini Program: the entry point of the SDK.
 *
 * @example Send a text message
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" }); // offline WeChat
 * await wechat.user("OPENID").says("Hi");
 *
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "Hello World" });
 * console.log(wechat.inbox("OPENID")[0]?.kind === "message"); // true
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
  /** Subscribe messages: `send` — the fallback outside the send window. */
  readonly subscribeMessage: SubscribeMessage;
  /** Content security: `msgSecCheck` — WeChat's check of a text before users see it. */
  readonly security: Security;
  /** The send-window tracker the push receiver feeds and `send` consults (without `conversations`). */
  readonly sendWindows: SendWindowTracker;
  /** The users' conversations, when configured. */
  readonly conversations: ConversationStore | undefined;

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
    const logger = options.logger ?? console;
    // One in-memory store serves whatever was given no store: tokens, push claims, windows.
    const memory = new MemoryStore({ now: this.now });
    const store = options.store ?? memory;
    const dedupeStore = options.push?.dedupeStore ?? memory;
    this.sendWindows = new SendWindowTracker(options.windowStore ?? options.push?.dedupeStore ?? store, {
      appId: options.appId,
      now: this.now,
      logger,
    });
    this.accessToken = new AccessToken({
      appId: options.appId,
      appSecret,
      source,
      store,
      http,
      now: this.now,
      timeoutMs,
      logger: options.logger ?? console,
    });
    this.conversations = options.conversations;
    const recorder = options.conversations === undefined
      ? undefined
      : new OutboundRecorder(options.conversations, options.appId, logger);
    this.customerServiceMessage = new CustomerServiceMessage(http, {
      maxUploadBytes: options.maxUploadBytes,
      mediaIdleTimeoutMs: options.mediaIdleTimeoutMs,
      maxTextBytes: options.maxTextBytes,
      checkWindow: options.checkWindow,
      windows: this.sendWindows,
      typingPath: options.typingPath,
      conversations: recorder,
      onUploaded: options.onMediaUploaded,
      logger,
    });
    this.subscribeMessage = new SubscribeMessage(http, { conversations: recorder });
    this.security = new Security(http);
    this.push = new PushReceiver({
      ...options.push,
      dedupeStore,
      appId: options.appId,
      now: this.now,
      logger,
      windows: this.sendWindows,
      conversations: options.conversations,
      replyText: (openId, text, sendOptions) => this.customerServiceMessage.sendText(openId, text, sendOptions),
    });
  }

  /**
   * Sends a customer-service message, or — when the user's send window is closed — the given
   * subscribe message instead, and says which it did. The window is closed when the tracker
   * knows it (checked before any call) or when WeChat answers 45015 or 45047; any other
   * failure is thrown as it is. The subscribe message needs the user's acceptance of its
   * template (43101 otherwise).
   *
   * @param openId the user's OpenID
   * @param message the customer-service message: `msgtype`, its `payload`, and send `options`
   * @param fallback the subscribe message to send instead
   * @returns which was sent, WeChat's answer, and why the fallback was taken
   * @example A user who wrote today gets the customer-service message
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("Where is my order?");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * const outcome = await mp.sendOrSubscribe(
   *   "OPENID",
   *   { msgtype: "text", payload: { content: "Your order has shipped." } },
   *   { template_id: "TEMPLATE_ID", page: "pages/order/index?id=42", data: { thing1: { value: "Order 42" } } },
   * );
   * console.log(outcome.sent); // "customerServiceMessage"
   * ```
   */
  async sendOrSubscribe<T extends keyof SendPayloads>(
    openId: string,
    message: { msgtype: T; payload: SendPayloads[T]; options?: SendOptions | undefined },
    fallback: SubscribeMessagePayload,
  ): Promise<SendOrSubscribeResult> {
    let reason: "window_closed" | "window_spent" | 45015 | 45047;
    try {
      const result = await this.customerServiceMessage.send(openId, message.msgtype, message.payload, {
        ...message.options,
        checkWindow: true,
      });
      return { sent: "customerServiceMessage", result };
    } catch (err) {
      if (err instanceof OutOfWindowError) reason = err.window === undefined ? "window_closed" : "window_spent";
      else if (isOutOfWindow(err)) reason = 45015;
      else if (isQuotaExceeded(err)) reason = 45047;
      else throw err;
    }
    return { sent: "subscribeMessage", result: await this.subscribeMessage.send(openId, fallback), reason };
  }
}
