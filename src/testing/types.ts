/**
 * The public types of the WeChat emulator: its options, the emulator itself, and
 * what it records and hands out (calls, tokens, media, users, pushes).
 *
 * @module
 */
import type { MsgType } from "../customer_service/schemas.ts";
import type { SendWindow } from "../customer_service/send_window.ts";

/** A fetch-compatible function, as the SDK's `fetch` option expects (no DOM types: `Request | string | URL` is `RequestInfo | URL`). */
export type FetchLike = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

/**
 * Something that answers a request: your app's `fetch` handler (Hono's `app.fetch`, `app.request`…),
 * to which the emulated WeChat delivers its pushes. (The SDK's `PushHandler` is another thing: the
 * function `mp.push.handle` runs for each verified message.)
 */
export type RequestHandler = (request: Request) => Response | Promise<Response>;

/** How the emulated WeChat pushes user messages to your server (消息推送配置). */
export interface PushConfig {
  /** Your callback URL. Deliveries without a handler POST here with `globalThis.fetch`. */
  url?: string;
  /** The push Token (used for `signature` and `msg_signature`). */
  token: string;
  /** The 43-character EncodingAESKey. Set: safe mode (encrypted bodies). Unset: plain mode. */
  encodingAESKey?: string;
  /** Data format of the pushes; default `"xml"`, WeChat's default. */
  format?: "json" | "xml";
  /** How long WeChat waits for your answer before re-sending, in ms; default 5000. */
  timeoutMs?: number;
  /** Re-sends after the first attempt when the answer is late or invalid; default 3. */
  retries?: number;
}

/** Options of `createEmulator`. */
export interface EmulatorOptions {
  /** The AppID the emulated WeChat knows; other appids get 40013. */
  appId: string;
  /** The AppSecret; any other secret gets 40125. */
  appSecret: string;
  /** Push configuration; without it, user actions still open the send window but build no push. */
  push?: PushConfig;
  /** Clock in ms; default `Date.now`. Move time in tests by passing your own. */
  now?: () => number;
  /** The mini program's original id (`gh_…`), the `ToUserName` of pushes; default derived from `appId`. */
  originalId?: string;
  /**
   * How many recorded calls, and inbox entries per user, are kept; the oldest go first.
   * Default 10,000: bounded memory for a long-running dev server, more than any test needs.
   */
  maxRecorded?: number;
  /**
   * The mini program's subscribe-message templates: each template_id with its field names
   * (`thing1`, `time2`, …). With templates given, another template_id gets 40037 and data
   * without exactly those fields 47003; without, any well-formed template is accepted.
   */
  templates?: Readonly<Record<string, readonly string[]>>;
  /**
   * How `/wxa/msg_sec_check` (`mp.security.msgSecCheck`) judges text: word lists stand in for
   * WeChat's model. Default: `emulator-risky` and WeChat's own test sample are risky,
   * `emulator-review` goes to review, anything else passes.
   */
  contentCheck?: ContentCheckOptions;
}

/** How the emulator's text check judges (see {@link EmulatorOptions.contentCheck}). */
export interface ContentCheckOptions {
  /** A text containing one of these is `risky`; replaces the default list. */
  risky?: readonly string[];
  /** A text containing one of these (and none of `risky`) goes to `review`; replaces the default list. */
  review?: readonly string[];
  /** The label a hit carries; default 21000 (其他). */
  label?: number;
}

/** How a user answers the subscription popup for a template (`wx.requestSubscribeMessage`). */
export interface SubscribeChoice {
  /** The template. */
  templateId: string;
  /** `accept` (default) or `reject`. */
  status?: "accept" | "reject";
  /** A long-term subscription, not used up by a send; default one-time. */
  longTerm?: boolean;
}

/** Kinds of injected faults. */
export type FaultKind =
  /** `{"errcode":-1,"errmsg":"system error …"}` */
  | "system_busy"
  /** HTTP 500 with an HTML body. */
  | "http_500"
  /** No answer until the request's signal aborts. */
  | "hang"
  /** `{"errcode":40001,…}` without touching the token. */
  | "invalid_token";

/** Where an injected fault applies. */
export interface FaultOptions {
  /** Only calls to this path, e.g. `/cgi-bin/message/custom/send`; default any API call. */
  path?: string;
}

/**
 * Faults on demand: the next `n` matching calls fail the chosen way.
 *
 * @example Make the next send answer -1
 * ```ts
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * emulator.faults.next(1, "system_busy", { path: "/cgi-bin/message/custom/send" });
 * console.log(emulator.faults.pending); // 1
 * ```
 */
export interface EmulatorFaults {
  /**
   * Makes the next `n` API calls (to `options.path`, if given) fail with `kind`.
   * Rules queue up in the order they were added.
   *
   * @param n how many calls
   * @param kind how they fail
   * @param options restrict to one path
   */
  next(n: number, kind: FaultKind, options?: FaultOptions): void;
  /** Drops every fault not yet used. */
  clear(): void;
  /** Faulty answers still to come, over all rules. */
  readonly pending: number;
}

/** One request the emulator received, with the token left out. */
export interface RecordedCall {
  /** HTTP method. */
  readonly method: string;
  /** URL path, e.g. `/cgi-bin/message/custom/send`. */
  readonly path: string;
  /** Query parameters except `access_token`. */
  readonly query: Readonly<Record<string, string>>;
  /** Whether the query carried an `access_token`. */
  readonly withToken: boolean;
  /**
   * The body: parsed JSON, the raw text when it is not JSON, a summary of a multipart
   * form (`{ name: value }`, files as `{ filename, type, size }`), or `undefined`.
   */
  readonly body: unknown;
  /** Emulator time of the call, ms. */
  readonly at: number;
  /** HTTP status answered; `undefined` while unanswered (a hang). */
  status?: number;
  /** `errcode` answered, when the answer was an error. */
  errcode?: number;
  /** The injected fault that answered, if any. */
  fault?: FaultKind;
}

/** How a token stands at a given time. */
export type TokenStatus = "valid" | "invalid" | "expired" | "unknown";

/** One issued access token. */
export interface TokenInfo {
  /** The token. */
  readonly token: string;
  /** `stable` (/cgi-bin/stable_token) or `classic` (/cgi-bin/token); the two are isolated. */
  readonly kind: "stable" | "classic";
  /** Issue time, ms. */
  readonly issuedAt: number;
  /** Natural expiry (issue + 7200 s), ms; after it calls get 42001. */
  readonly expiresAt: number;
  /** When it was invalidated by a newer token (calls get 40001 from then on), ms. */
  readonly invalidAt: number | undefined;
  /** Issued by a `force_refresh: true` call. */
  readonly forced: boolean;
}

/**
 * What tests can see of the emulator's access tokens.
 *
 * @example Count issuances
 * ```ts
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * console.log(emulator.tokens.issued); // 0
 * ```
 */
export interface EmulatorTokens {
  /** Tokens this emulator issued so far, both kinds. */
  readonly issued: number;
  /** Effective `force_refresh` rotations so far. */
  readonly forceRefreshes: number;
  /**
   * Every token issued, oldest first, with those an earlier emulator of the same AppID and
   * AppSecret issued that this one has seen (it accepts them, as WeChat would after a restart).
   *
   * @returns the tokens
   */
  list(): TokenInfo[];
  /**
   * How `token` stands now.
   *
   * @param token an access token
   * @returns `valid`, `invalid` (40001), `expired` (42001) or `unknown` (40001)
   */
  status(token: string): TokenStatus;
  /**
   * Invalidates `token` now, as a leak response would; calls with it get 40001.
   *
   * @param token an access token
   */
  invalidate(token: string): void;
}

/** A stored temporary media file. */
export interface MediaInfo {
  /** The media_id. */
  readonly mediaId: string;
  /** Always `image`: mini programs handle images only. */
  readonly type: "image";
  /** MIME type served by /cgi-bin/media/get. */
  readonly contentType: string;
  /** The file's bytes. */
  readonly bytes: Uint8Array;
  /** Upload time, ms; the media expires 3 days later. */
  readonly createdAt: number;
  /** `upload` (uploadTempMedia) or `user` (an image or card cover a user sent). */
  readonly source: "upload" | "user";
}

/**
 * Lookups in the emulator's temporary media.
 *
 * @example Store and find an image
 * ```ts
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const { mediaId } = emulator.media.add(new Uint8Array([0xff, 0xd8, 0xff]));
 * console.log(emulator.media.get(mediaId)?.contentType); // "image/jpeg"
 * ```
 */
export interface EmulatorMedia {
  /**
   * The media with this id, while it has not expired.
   *
   * @param mediaId a media_id
   * @returns the media, or `undefined` when unknown or older than 3 days
   */
  get(mediaId: string): MediaInfo | undefined;
  /**
   * Every media stored, expired ones included, oldest first.
   *
   * @returns the media
   */
  list(): MediaInfo[];
  /**
   * Stores bytes as if uploaded now.
   *
   * @param bytes the file content
   * @param contentType its MIME type; default `image/jpeg`
   * @returns the stored media
   */
  add(bytes: Uint8Array, contentType?: string): MediaInfo;
}

/** Something a user received: a message, a typing change, or WeChat's failure notice. */
export type InboxEntry =
  | {
    readonly kind: "message";
    /** One of the core's message types (`MSG_TYPES`). */
    readonly msgtype: MsgType;
    /** The msgtype's object as sent, e.g. `{ content: "hi" }`. */
    readonly message: Readonly<Record<string, unknown>>;
    readonly at: number;
    /** The 客服子商户 it was sent for (`businessid`, on the business path). */
    readonly businessId?: string;
    /** Its `aimsgcontext`: WeChat shows it as "内容由第三方AI生成". */
    readonly aiMsgContext?: Readonly<Record<string, unknown>>;
  }
  | {
    /** A subscribe message (订阅消息) delivered to the user. */
    readonly kind: "subscribe";
    readonly templateId: string;
    /** The template's fields as sent: `{ thing1: { value } }`. */
    readonly data: Readonly<Record<string, { readonly value: string }>>;
    readonly page?: string;
    /** The id WeChat answered with, as a string. */
    readonly msgid: string;
    readonly at: number;
  }
  | { readonly kind: "typing"; readonly command: "Typing" | "CancelTyping"; readonly at: number }
  | {
    /** WeChat's "该小程序客服暂时无法提供服务，请稍后再试" after a push went unanswered. */
    readonly kind: "notice";
    readonly text: string;
    readonly at: number;
  };

/** Overrides for the signed push, to reproduce WeChat's vectors or fix a test's values. */
export interface PushBuildOptions {
  /** `timestamp` query value; default `now()` in seconds. */
  timestamp?: string;
  /** `nonce` query value; default random digits. */
  nonce?: string;
  /** The 16 random bytes in front of the encrypted message (safe mode). */
  random?: Uint8Array | string;
}

/** A mini-program card a user sends. */
export interface MiniProgramPageInput {
  /** Card title. */
  title: string;
  /** Page path, may carry a query. */
  pagePath: string;
  /** The card's AppId; default the emulator's appId. */
  appId?: string;
  /** Cover image bytes; default a 1×1 PNG. Stored as media (`ThumbMediaId`). */
  thumb?: Uint8Array;
  /** Cover MIME type; default `image/png`. */
  thumbContentType?: string;
}

/** Settings of one delivery. */
export interface DeliverOptions {
  /** No answer within this many ms counts as a failure; default the push config's, else 5000. */
  timeoutMs?: number;
  /** Re-sends after the first attempt; default the push config's, else 3. */
  retries?: number;
}

/** Why one delivery attempt did not count as answered. */
export interface DeliveryFailure {
  /** 1-based attempt number. */
  readonly attempt: number;
  /** `timeout`, `network` (the handler threw), `status` (not HTTP 200) or `invalid_reply`. */
  readonly reason: "timeout" | "network" | "status" | "invalid_reply";
  /** Detail: the status, the error message, or what was wrong with the reply. */
  readonly detail: string;
}

/** What happened when the emulated WeChat delivered a push. */
export interface DeliveryOutcome {
  /** Whether an attempt got a valid answer (`success`, empty, or a valid reply). */
  readonly ok: boolean;
  /** Attempts made, 1 to 1 + retries. */
  readonly attempts: number;
  /** HTTP status of the last answer, if any. */
  readonly status: number | undefined;
  /** Body of the last answer, if any. */
  readonly responseText: string | undefined;
  /** The reply message: the decrypted text of an encrypted reply, or a plain reply body; none for `success`. */
  readonly reply: string | undefined;
  /** Whether the reply was encrypted (and its MsgSignature checked out). */
  readonly encrypted: boolean;
  /** Why earlier (or all) attempts failed. */
  readonly failures: readonly DeliveryFailure[];
}

/** A push payload: WeChat's field names; `CreateTime` and `MsgId` are written as bare integers. */
export type PushFields = Readonly<Record<string, string | number | PushList>>;

/**
 * The `List` of a subscribe event: one item per template, each of text fields. JSON writes
 * one item as an object and several as an array; XML writes each as a `<List>` inside the
 * event's element (`<SubscribeMsgPopupEvent>`), as WeChat does.
 */
export type PushList = readonly Readonly<Record<string, string>>[];

/**
 * A push the emulated WeChat built for a user action: build its `Request`, or deliver it.
 *
 * @example Deliver a user's message to your app
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * const app = { fetch: (request: Request) => mp.push.handle(request, () => {}) };
 *
 * const push = await emulator.user("OPENID").says("hello");
 * const outcome = await push.deliver((request) => app.fetch(request));
 * console.log(outcome.ok, outcome.attempts); // true 1
 * ```
 */
export interface PushAction {
  /** The message as WeChat would push it; `MsgId` is a decimal string (a 64-bit integer). */
  readonly message: PushFields;
  /** The `MsgId`, or `undefined` for events. */
  readonly msgId: string | undefined;
  /**
   * Builds the signed request WeChat would send (a new `Request` each time).
   *
   * @returns the request
   */
  request(): Request;
  /**
   * Delivers the push with WeChat's retry behaviour.
   *
   * @param handler your app's fetch handler; default `globalThis.fetch` to `push.url`
   * @param options timeout and retry count
   * @returns the outcome
   */
  deliver(handler?: RequestHandler, options?: DeliverOptions): Promise<DeliveryOutcome>;
}

/**
 * One WeChat user of the emulated mini program.
 *
 * @example A user speaks, then reads what they received
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: emulator.fetch });
 *
 * const user = emulator.user("o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
 * await user.says("hello");
 * console.log(user.window?.remaining); // 5
 * await mp.customerServiceMessage.send(user.openId, "text", { content: "Hi!" });
 * console.log(user.inbox().length, user.window?.remaining); // 1 4
 * ```
 */
export interface EmulatedUser {
  /** The user's OpenID. */
  readonly openId: string;
  /** The open send window (`SendWindow` of `@kefu/edge`, on the emulator's clock), or `undefined` when closed. */
  readonly window: SendWindow | undefined;
  /** Whether the user sees "typing…" now. */
  readonly typing: boolean;
  /**
   * The user sends a text message: opens a 48-hour window for 5 messages.
   *
   * @param text the message
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  says(text: string, options?: PushBuildOptions): Promise<PushAction>;
  /**
   * The user sends an image: stored as media, so getTempMedia works with its MediaId.
   *
   * @param bytes the image
   * @param contentType its MIME type; default `image/jpeg`
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  sendsImage(bytes: Uint8Array, contentType?: string, options?: PushBuildOptions): Promise<PushAction>;
  /**
   * The user sends a mini-program card.
   *
   * @param page title, page path and optional cover
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  sendsMiniProgramPage(page: MiniProgramPageInput, options?: PushBuildOptions): Promise<PushAction>;
  /**
   * The user opens the mini program (no message, no push): what the text check's rule that
   * the user has used it in the last 2 hours counts, like any of the user's actions.
   */
  visits(): void;
  /**
   * The user enters the customer-service session (`user_enter_tempsession`).
   *
   * @param sessionFrom the contact button's `session-from`
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  entersSession(sessionFrom?: string, options?: PushBuildOptions): Promise<PushAction>;
  /**
   * The user answers the subscription popup (`wx.requestSubscribeMessage`) for one or more
   * templates: an accepted one-time subscription allows one subscribe message, a long-term
   * one any number; a rejected one gets 43101. Pushes `subscribe_msg_popup_event`.
   *
   * @param choices one template id (accepted, one-time) or each template's choice
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  subscribes(
    choices: string | SubscribeChoice | readonly SubscribeChoice[],
    options?: PushBuildOptions,
  ): Promise<PushAction>;
  /**
   * The user changes a subscription in the mini program's settings. Pushes `subscribe_msg_change_event`.
   *
   * @param templateId the template
   * @param status `accept` or `reject`
   * @param options push overrides
   * @returns the push WeChat sends for it
   */
  changesSubscription(templateId: string, status: "accept" | "reject", options?: PushBuildOptions): Promise<PushAction>;
  /**
   * The `subscribe_msg_sent_event` pushes for the subscribe messages sent to this user since the
   * last call (WeChat reports each send's outcome this way), oldest first.
   *
   * @returns the pushes, ready to deliver
   */
  takeSubscribeSentEvents(): Promise<PushAction[]>;
  /**
   * What the user received, oldest first.
   *
   * @returns messages, typing changes and notices
   */
  inbox(): InboxEntry[];
}

/**
 * An offline WeChat: answers the API through `fetch`, emulates users and pushes.
 *
 * @example Drive the SDK against it
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: emulator.fetch });
 * await emulator.user("OPENID").says("hi");
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "Hello" });
 * console.log(emulator.calls.map((call) => call.path)); // ["/cgi-bin/stable_token", "/cgi-bin/message/custom/send"]
 * ```
 */
export interface Emulator {
  /** The AppID. */
  readonly appId: string;
  /** The original id (`gh_…`) used as `ToUserName` in pushes. */
  readonly originalId: string;
  /** Answers the WeChat API at any origin (matched by path). */
  readonly fetch: FetchLike;
  /** Every request received, oldest first. */
  readonly calls: readonly RecordedCall[];
  /** Issued tokens. */
  readonly tokens: EmulatorTokens;
  /** Temporary media. */
  readonly media: EmulatorMedia;
  /** Faults on demand. */
  readonly faults: EmulatorFaults;
  /**
   * The user with this OpenID (created on first use; unknown OpenIDs get 40003).
   *
   * @param openId the OpenID
   * @returns the user
   */
  user(openId: string): EmulatedUser;
  /**
   * What a user received, oldest first; empty for a user never seen.
   *
   * @param openId the OpenID
   * @returns the entries
   */
  inbox(openId: string): InboxEntry[];
  /**
   * The emulator's clock.
   *
   * @returns the time, ms
   */
  now(): number;
}
