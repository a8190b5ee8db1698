/**
 * The push handler the worker runs when `createApp` is given none, configured by env:
 * - `FORWARD_URL` (+ `FORWARD_SECRET`): POST every verified message, signed, to your
 *   service; a failed forward fails the run, so it is retried (by WeChat, or by the queue)
 *   and nothing is lost. Your service has 4 s to answer while WeChat waits, and
 *   `FORWARD_TIMEOUT_MS` (default 30 s) in the queue's consumer;
 * - `TRANSFER_TO_KF=on`: answer user messages (not events) with `transfer_customer_service`
 *   (the default `onReply`);
 * - `WELCOME_TEXT`: when a user enters the session, send that text after answering.
 *
 * @module
 */
import {
  actionOf,
  isPushMessage,
  type MiniProgram,
  type PushHandler,
  type PushHandlerContext,
  type PushMessage,
  Reply,
  type SendWindow,
  ValidationError,
} from "../mod.ts";
import { type Env, optionalVar, requireVar } from "./env.ts";
import { forwardMessage, QUEUE_FORWARD_TIMEOUT_MS, SYNC_FORWARD_TIMEOUT_MS } from "./forward.ts";

/** What the worker adds to the push handler's context. */
export interface AppPushContext extends PushHandlerContext {
  /** The worker's bindings and variables. */
  env: Env;
  /** The configured mini program, to call the API (send, setTyping...). */
  miniProgram: MiniProgram;
  /**
   * Runs `task` after WeChat has been answered (through `waitUntil` on Workers), and
   * only when the push was answered successfully. Its failure is logged, not retried.
   */
  afterResponse(task: () => Promise<unknown>): void;
}

/**
 * A push handler for `createApp({ onMessage })`: a core {@link PushHandler} that
 * also receives the worker's context. Any plain `PushHandler` fits. With a queue bound it
 * runs in the queue's consumer, after WeChat was answered: a `Reply` it returns is then
 * ignored (decide passive replies with `onReply`).
 */
export type AppPushHandler = (
  message: PushMessage,
  context: AppPushContext,
) => ReturnType<PushHandler>;

/**
 * Decides the passive reply (`transfer_customer_service`) while WeChat waits, for
 * `createApp({ onReply })`: with a queue bound it runs before the message is enqueued,
 * within 3 s; without one, after `onMessage` (whose own `Reply` wins).
 */
export type AppReplyDecider = (
  message: PushMessage,
  context: PushHandlerContext & { env: Env },
) => Reply | undefined | void | Promise<Reply | undefined | void>;

/** The default handler's settings, read from env. */
export interface DefaultHandlerSettings {
  /** `TRANSFER_TO_KF=on`. */
  transfer: boolean;
  /** `WELCOME_TEXT`. */
  welcomeText: string | undefined;
  /**
   * `FORWARD_URL`, `FORWARD_SECRET`, and `FORWARD_TIMEOUT_MS` (`queueTimeoutMs`: the time a
   * forward may take in the queue's consumer).
   */
  forward: { url: string; secret: string; queueTimeoutMs: number } | undefined;
}

/**
 * Reads the default handler's settings. A `FORWARD_URL` without `FORWARD_SECRET`
 * is refused: unsigned forwards could not be told from forgeries.
 *
 * @param env the bindings
 * @returns the settings
 * @throws {ConfigError} for a malformed value (`FORWARD_TIMEOUT_MS` is read with `FORWARD_URL`
 *   only), or `FORWARD_SECRET` missing with `FORWARD_URL` set
 * @example
 * ```ts
 * import { defaultHandlerSettings } from "./push_handler.ts";
 * console.log(defaultHandlerSettings({ TRANSFER_TO_KF: "on" }).transfer); // true
 * ```
 */
export function defaultHandlerSettings(env: Env): DefaultHandlerSettings {
  const url = optionalVar(env, "FORWARD_URL");
  return {
    transfer: optionalVar(env, "TRANSFER_TO_KF") === "on",
    welcomeText: optionalVar(env, "WELCOME_TEXT"),
    forward: url === undefined ? undefined : {
      url,
      secret: requireVar(env, "FORWARD_SECRET"),
      queueTimeoutMs: optionalVar(env, "FORWARD_TIMEOUT_MS") ?? QUEUE_FORWARD_TIMEOUT_MS,
    },
  };
}

/**
 * Builds the default push handler from its settings.
 *
 * @param settings what {@link defaultHandlerSettings} read
 * @param deps the `fetch` used to forward, the clock (ms) and a logger
 * @returns the handler
 * @example Forward every message to your service
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { defaultHandlerSettings, defaultPushHandler } from "./push_handler.ts";
 * const env = { FORWARD_URL: "https://bot.example/wechat", FORWARD_SECRET: "forward-secret" };
 * const forwarded: Request[] = [];
 * const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
 *   forwarded.push(new Request(input, init));
 *   return Promise.resolve(new Response("ok"));
 * };
 * const handler = defaultPushHandler(defaultHandlerSettings(env), { fetch, now: Date.now, logger: console });
 *
 * const message = { ToUserName: "gh_1", FromUserName: "OPENID", CreateTime: 1, MsgType: "event", Event: "x" };
 * const miniProgram = new MiniProgram({ appId: "wx123", appSecret: "secret" });
 * const context = { attempt: 1, encrypted: false, format: "xml" as const, deliveryId: "d1", env, miniProgram };
 * await handler(message, { ...context, afterResponse: () => {} });
 * console.log(forwarded[0]?.url, forwarded[0]?.headers.get("x-kefu-delivery")); // "https://bot.example/wechat" "d1"
 * ```
 */
export function defaultPushHandler(
  settings: DefaultHandlerSettings,
  deps: { fetch: typeof fetch; now: () => number; logger: { warn(message: string): void } },
): AppPushHandler {
  return async (message, context) => {
    if (settings.forward !== undefined) {
      // A message that opens the send window carries the window it opened, so your service
      // knows how many replies it has (advisory: see the README's send window section).
      const opened = await openedWindow(message, context);
      const { url, secret, queueTimeoutMs } = settings.forward;
      await forwardMessage(opened === undefined ? message : { ...message, KefuWindow: opened.window }, {
        url,
        secret,
        deliveryId: context.deliveryId,
        fetch: deps.fetch,
        now: deps.now,
        // From a queue (no request) WeChat was answered already: the forward gets the queue's time.
        timeoutMs: context.request === undefined ? queueTimeoutMs : SYNC_FORWARD_TIMEOUT_MS,
      });
    }
    const welcome = settings.welcomeText;
    if (welcome !== undefined && isPushMessage(message, "user_enter_tempsession") && hasSender(message)) {
      const openId = message.FromUserName;
      context.afterResponse(() =>
        context.miniProgram.customerServiceMessage.send(openId, "text", { content: welcome }).catch((err: unknown) => {
          // The SDK's messages carry no token or secret; the openid is left out on purpose.
          deps.logger.warn(`kefu-edge: welcome message failed: ${err instanceof Error ? err.message : String(err)}`);
        })
      );
    }
  };
}

// A verified message is never refused for its shape: one whose FromUserName is missing or
// not an OpenID is forwarded as it came, without a window (there is no user to look up).
function hasSender(message: PushMessage): boolean {
  const sender: unknown = message.FromUserName;
  return typeof sender === "string" && sender !== "";
}

async function openedWindow(
  message: PushMessage,
  context: AppPushContext,
): Promise<{ window: SendWindow | null } | undefined> {
  if (actionOf(message) === undefined || !hasSender(message)) return undefined;
  // With conversations, accepting the push (or the consumer taking it) returned the window:
  // no second call to the store.
  if (context.conversation !== undefined) return { window: context.conversation.window ?? null };
  try {
    return { window: await context.miniProgram.customerServiceMessage.window(message.FromUserName) ?? null };
  } catch (err) {
    if (err instanceof ValidationError) return undefined; // a FromUserName that is not an OpenID
    throw err;
  }
}

/**
 * The default passive reply: with `TRANSFER_TO_KF=on`, user messages (not events) are
 * handed to the customer-service tool.
 *
 * @param settings what {@link defaultHandlerSettings} read
 * @returns the decision, or `undefined` when there is nothing to decide
 * @example
 * ```ts
 * import { defaultReplyDecider } from "./push_handler.ts";
 * console.log(defaultReplyDecider({ transfer: false, welcomeText: undefined, forward: undefined })); // undefined
 * ```
 */
export function defaultReplyDecider(settings: DefaultHandlerSettings): AppReplyDecider | undefined {
  if (!settings.transfer) return undefined;
  return (message) => (message.MsgType === "event" ? undefined : Reply.transferCustomerService());
}
