/**
 * The error tree of kefu-edge. Every error thrown by the SDK is a {@link WeChatError}.
 *
 * No error built here ever carries an access token or an app secret: URLs are
 * reduced to their path, and any text that came from elsewhere goes through
 * {@link redact} first.
 *
 * @module
 */

/** Options shared by every error of the tree. */
export interface WeChatErrorOptions {
  /** The underlying error, already redacted. */
  cause?: unknown;
}

/**
 * Base class of every error thrown by kefu-edge.
 *
 * @example Catch anything the SDK throws
 * ```ts
 * import { WeChatError } from "@kefu/edge";
 * try {
 *   throw new WeChatError("Cannot send message: example");
 * } catch (err) {
 *   if (err instanceof WeChatError) console.log(err.message);
 * }
 * ```
 */
export class WeChatError extends Error {
  /**
   * Creates an error of the tree.
   *
   * @param message sentence-case text, detail after a colon
   * @param options the redacted cause
   */
  constructor(message: string, options?: WeChatErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** Fields WeChat returns with a non-zero `errcode`. */
export interface WeChatApiErrorInit {
  /** WeChat's error code. */
  errcode: number;
  /** WeChat's error text. */
  errmsg: string;
  /** The API path that failed, e.g. `/cgi-bin/message/custom/send` (never the query). */
  endpoint: string;
}

/**
 * WeChat answered with `errcode != 0`. Carries `errcode`, `errmsg`, the request id
 * (`rid`) WeChat appends to `errmsg`, and the endpoint path.
 *
 * @example Act on the 48-hour window
 * ```ts
 * import { isOutOfWindow, WeChatApiError } from "@kefu/edge";
 * const err = new WeChatApiError({ errcode: 45015, errmsg: "response out of time limit", endpoint: "/cgi-bin/message/custom/send" });
 * console.log(isOutOfWindow(err)); // true
 * ```
 */
export class WeChatApiError extends WeChatError {
  /** WeChat's error code. */
  readonly errcode: number;
  /** WeChat's error text, as sent. */
  readonly errmsg: string;
  /** WeChat's request id (from `errmsg`'s `rid: ...` suffix), or `undefined`. */
  readonly rid: string | undefined;
  /** The API path that failed. */
  readonly endpoint: string;

  /**
   * Creates the error from WeChat's answer.
   *
   * @param init the fields WeChat returned and the endpoint path
   */
  constructor(init: WeChatApiErrorInit) {
    const errmsg = redact(init.errmsg);
    const hint = HINTS[init.errcode];
    super(`WeChat API error ${init.errcode} at ${init.endpoint}: ${errmsg}${hint === undefined ? "" : ` (${hint})`}`);
    this.errcode = init.errcode;
    this.errmsg = errmsg;
    this.rid = /rid:\s*([\w-]+)/.exec(errmsg)?.[1];
    this.endpoint = init.endpoint;
  }
}

/**
 * WeChat (or a proxy in front of it) answered with an HTTP status the SDK did not expect.
 *
 * @example
 * ```ts
 * import { WeChatHttpError } from "@kefu/edge";
 * const err = new WeChatHttpError(502, "/cgi-bin/media/get");
 * console.log(err.status); // 502
 * ```
 */
export class WeChatHttpError extends WeChatError {
  /** The HTTP status. */
  readonly status: number;
  /** The API path that failed. */
  readonly endpoint: string;

  /**
   * Creates the error for an unexpected status.
   *
   * @param status the HTTP status received
   * @param endpoint the API path, without query
   */
  constructor(status: number, endpoint: string) {
    super(`Unexpected HTTP status ${status} from ${endpoint}`);
    this.status = status;
    this.endpoint = endpoint;
  }
}

/**
 * The connection to WeChat failed (DNS, TCP, TLS, reset) or the body could not be read.
 *
 * @example
 * ```ts
 * import { WeChatNetworkError } from "@kefu/edge";
 * const err = new WeChatNetworkError("/cgi-bin/stable_token", new TypeError("fetch failed"));
 * console.log(err.message);
 * ```
 */
export class WeChatNetworkError extends WeChatError {
  /** The API path that failed. */
  readonly endpoint: string;

  /**
   * Creates the error, redacting the cause.
   *
   * @param endpoint the API path, without query
   * @param cause the underlying error (its message is redacted)
   * @param secrets literal values to blank out of the cause's message as well
   */
  constructor(endpoint: string, cause: unknown, secrets: readonly string[] = []) {
    const safe = redactError(cause, secrets);
    super(`Cannot reach WeChat at ${endpoint}: ${safe.message}`, { cause: safe });
    this.endpoint = endpoint;
  }
}

/**
 * WeChat did not answer within `timeoutMs`.
 *
 * @example
 * ```ts
 * import { WeChatTimeoutError } from "@kefu/edge";
 * console.log(new WeChatTimeoutError("/cgi-bin/media/get", 10_000).timeoutMs); // 10000
 * ```
 */
export class WeChatTimeoutError extends WeChatError {
  /** The API path that timed out. */
  readonly endpoint: string;
  /** The time limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  /** `response`: no answer in time; `body`: the answer's body stopped arriving (no bytes for `timeoutMs`). */
  readonly phase: "response" | "body";

  /**
   * Creates the error for an exceeded time limit.
   *
   * @param endpoint the API path, without query
   * @param timeoutMs the limit that was exceeded
   * @param phase `response` (default): waiting for the answer; `body`: waiting for more of its body
   */
  constructor(endpoint: string, timeoutMs: number, phase: "response" | "body" = "response") {
    super(
      phase === "response"
        ? `WeChat did not answer ${endpoint} within ${timeoutMs} ms`
        : `WeChat stopped sending ${endpoint}: no bytes for ${timeoutMs} ms`,
    );
    this.endpoint = endpoint;
    this.timeoutMs = timeoutMs;
    this.phase = phase;
  }
}

/**
 * A custom `tokenSource` function failed (threw, rejected or timed out). The original
 * error is kept as `cause`, as a redacted copy without its stack.
 *
 * @example
 * ```ts
 * import { TokenSourceError } from "@kefu/edge";
 * const err = new TokenSourceError(new Error("vault unreachable"));
 * console.log(err.message); // "Cannot get an access token: the token source failed: vault unreachable"
 * ```
 */
export class TokenSourceError extends WeChatError {
  /**
   * Wraps what the token source threw.
   *
   * @param cause what the token source threw (its message is redacted)
   * @param secrets literal values to blank out of it as well
   */
  constructor(cause: unknown, secrets: readonly string[] = []) {
    const safe = redactError(cause, secrets);
    super(`Cannot get an access token: the token source failed: ${safe.message}`, { cause: safe });
  }
}

/**
 * An input was refused before any network call. `field` names the offending field.
 *
 * @example
 * ```ts
 * import { ValidationError } from "@kefu/edge";
 * const err = new ValidationError("text.content", "Required");
 * console.log(err.message); // "Invalid text.content: Required"
 * ```
 */
export class ValidationError extends WeChatError {
  /** Dotted path of the offending field, e.g. `link.url`. */
  readonly field: string;

  /**
   * Creates the error for one field.
   *
   * @param field dotted path of the offending field
   * @param detail what is wrong with it
   */
  constructor(field: string, detail: string) {
    super(`Invalid ${field}: ${detail}`);
    this.field = field;
  }
}

/**
 * An upload is larger than the configured limit (`maxUploadBytes`, 10 MiB by default).
 *
 * @example
 * ```ts
 * import { MediaTooLargeError } from "@kefu/edge";
 * const err = new MediaTooLargeError(11 * 1024 * 1024, 10 * 1024 * 1024);
 * console.log(err.field, err.limit); // "media" 10485760
 * ```
 */
export class MediaTooLargeError extends ValidationError {
  /** The size of the refused file, in bytes (at least this many). */
  readonly size: number;
  /** The configured limit, in bytes. */
  readonly limit: number;

  /**
   * Creates the error for an oversized upload.
   *
   * @param size bytes seen (at least)
   * @param limit the configured limit
   */
  constructor(size: number, limit: number) {
    super("media", `file is larger than the ${limit}-byte limit`);
    this.size = size;
    this.limit = limit;
  }
}

/** Why a push request was refused. */
export type PushVerificationReason =
  | "bad_request"
  | "bad_signature"
  | "encryption_required"
  | "nonce_reused"
  | "stale_timestamp"
  | "bad_appid"
  | "undecryptable"
  | "too_large"
  | "unsupported_method";

/**
 * A message-push request was refused: bad signature, stale timestamp, wrong appId,
 * an undecryptable or malformed body. `status` is the HTTP status to answer with.
 *
 * @example
 * ```ts
 * import { PushVerificationError } from "@kefu/edge";
 * const err = new PushVerificationError("bad_signature", "Signature mismatch");
 * console.log(err.status); // 401
 * ```
 */
export class PushVerificationError extends WeChatError {
  /** Machine-readable reason. */
  readonly reason: PushVerificationReason;
  /** HTTP status that fits the reason (400, 401, 403, 405 or 413). */
  readonly status: number;

  /**
   * Creates the error for a refused push.
   *
   * @param reason machine-readable reason
   * @param message short human text (never includes the body)
   */
  constructor(reason: PushVerificationReason, message: string) {
    super(message);
    this.reason = reason;
    this.status = PUSH_STATUS[reason];
  }
}

const PUSH_STATUS: Record<PushVerificationReason, number> = {
  bad_request: 400,
  bad_signature: 401,
  encryption_required: 401,
  nonce_reused: 401,
  stale_timestamp: 401,
  bad_appid: 403,
  undecryptable: 400,
  too_large: 413,
  unsupported_method: 405,
};

/**
 * WeChat error codes that callers commonly act on, by WeChat's meaning.
 *
 * @example
 * ```ts
 * import { ErrCode } from "@kefu/edge";
 * console.log(ErrCode.OutOfResponseWindow); // 45015
 * ```
 */
export const ErrCode = {
  /** -1: system busy, retry later. */
  SystemBusy: -1,
  /** 40001: invalid credential (access_token invalid or not latest). */
  InvalidCredential: 40001,
  /** 40003: invalid openid. */
  InvalidOpenId: 40003,
  /** 40007: invalid media_id (unknown or expired). */
  InvalidMediaId: 40007,
  /** 40014: invalid access_token. */
  InvalidAccessToken: 40014,
  /** 42001: access_token expired. */
  AccessTokenExpired: 42001,
  /** 45015: response out of time limit (outside the 48 h window) or unsubscribed. */
  OutOfResponseWindow: 45015,
  /** 45047: out of response count limit (message quota in the window used up). */
  OutOfResponseCount: 45047,
  /** 45072: invalid typing command. */
  InvalidTypingCommand: 45072,
  /** 45080: no message interaction with the user in the last 30 s. */
  TypingWithoutInteraction: 45080,
  /** 45081: the user already sees the typing state. */
  AlreadyTyping: 45081,
  /** 45009: the daily quota of this API is used up. */
  DailyQuotaExceeded: 45009,
  /** 45011: too many calls this minute; retry next minute. */
  MinuteQuotaExceeded: 45011,
  /** 40164: the calling IP is not in the API IP whitelist. */
  IpNotWhitelisted: 40164,
  /** 48001: the API is not authorised for this mini program. */
  ApiUnauthorized: 48001,
  /** 45002: the content is too long. */
  ContentTooLong: 45002,
  /** 43104: the openid does not belong to this appid. */
  AppIdOpenIdMismatch: 43104,
  /** 43101: the user refused the subscribe message, or a one-time subscription is used up. */
  SubscriptionRefused: 43101,
  /** 47003: the subscribe message's template data is invalid. */
  InvalidTemplateData: 47003,
  /** 40037: invalid template_id. */
  InvalidTemplateId: 40037,
  /** 40129: invalid scene (msgSecCheck's `scene` is not 1–4). */
  InvalidScene: 40129,
  /** 61010: the user has not used the mini program in the last 2 hours (msgSecCheck's `openid`). */
  UserVisitExpired: 61010,
} as const;

/** What to do about a code whose fix is not in WeChat's errmsg. */
const HINTS: Readonly<Record<number, string>> = {
  40164: "the calling IP is not in the mini program's API IP whitelist (开发管理 → 开发设置 → IP白名单); " +
    "Cloudflare Workers call from changing egress IPs, see kefu-edge's docs/troubleshooting.md",
  48001:
    "the mini program has not been granted this API (客服消息 permission), see kefu-edge's docs/troubleshooting.md",
};

/** Error codes after which the token is refreshed and the call replayed once. */
export const TOKEN_INVALID_CODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);

function hasCode(err: unknown, code: number): err is WeChatApiError {
  return err instanceof WeChatApiError && err.errcode === code;
}

/**
 * True when `err` is 45015: the user has not messaged within 48 hours (or unsubscribed).
 *
 * @param err anything caught
 * @returns whether it is a 45015 API error
 * @example
 * ```ts
 * import { isOutOfWindow } from "@kefu/edge";
 * console.log(isOutOfWindow(new Error("x"))); // false
 * ```
 */
export function isOutOfWindow(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.OutOfResponseWindow);
}

/**
 * True when `err` is 45047: the message quota for the current window is used up.
 *
 * @param err anything caught
 * @returns whether it is a 45047 API error
 * @example
 * ```ts
 * import { isQuotaExceeded } from "@kefu/edge";
 * console.log(isQuotaExceeded(null)); // false
 * ```
 */
export function isQuotaExceeded(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.OutOfResponseCount);
}

/**
 * True when `err` is 40003: the openid is not a user of this mini program.
 *
 * @param err anything caught
 * @returns whether it is a 40003 API error
 * @example
 * ```ts
 * import { isInvalidOpenId } from "@kefu/edge";
 * console.log(isInvalidOpenId(undefined)); // false
 * ```
 */
export function isInvalidOpenId(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.InvalidOpenId);
}

/**
 * True when `err` is 40007: the media_id is unknown or older than 3 days.
 *
 * @param err anything caught
 * @returns whether it is a 40007 API error
 * @example
 * ```ts
 * import { isInvalidMediaId } from "@kefu/edge";
 * console.log(isInvalidMediaId(undefined)); // false
 * ```
 */
export function isInvalidMediaId(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.InvalidMediaId);
}

/**
 * True when `err` is -1: WeChat's system is busy; try again later.
 *
 * @param err anything caught
 * @returns whether it is a -1 API error
 * @example
 * ```ts
 * import { isSystemBusy } from "@kefu/edge";
 * console.log(isSystemBusy(undefined)); // false
 * ```
 */
export function isSystemBusy(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.SystemBusy);
}

/**
 * True when `err` is 45072: the typing command is not `Typing` or `CancelTyping`.
 *
 * @param err anything caught
 * @returns whether it is a 45072 API error
 * @example
 * ```ts
 * import { isInvalidTypingCommand } from "@kefu/edge";
 * console.log(isInvalidTypingCommand(undefined)); // false
 * ```
 */
export function isInvalidTypingCommand(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.InvalidTypingCommand);
}

/**
 * True when `err` is 45080: typing needs a message interaction within the last 30 s.
 *
 * @param err anything caught
 * @returns whether it is a 45080 API error
 * @example
 * ```ts
 * import { isTypingWithoutInteraction } from "@kefu/edge";
 * console.log(isTypingWithoutInteraction(undefined)); // false
 * ```
 */
export function isTypingWithoutInteraction(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.TypingWithoutInteraction);
}

/**
 * True when `err` is 45081: the typing state is already shown (it lasts 15 s).
 *
 * @param err anything caught
 * @returns whether it is a 45081 API error
 * @example
 * ```ts
 * import { isAlreadyTyping } from "@kefu/edge";
 * console.log(isAlreadyTyping(undefined)); // false
 * ```
 */
export function isAlreadyTyping(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.AlreadyTyping);
}

/**
 * True when `err` is 45009: the API's daily quota is used up (it resets at midnight Beijing time).
 *
 * @param err anything caught
 * @returns whether it is a 45009 API error
 * @example
 * ```ts
 * import { isDailyQuotaExceeded } from "@kefu/edge";
 * console.log(isDailyQuotaExceeded(undefined)); // false
 * ```
 */
export function isDailyQuotaExceeded(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.DailyQuotaExceeded);
}

/**
 * True when `err` is 45011: too many calls this minute; retry in the next minute.
 *
 * @param err anything caught
 * @returns whether it is a 45011 API error
 * @example
 * ```ts
 * import { isMinuteQuotaExceeded } from "@kefu/edge";
 * console.log(isMinuteQuotaExceeded(undefined)); // false
 * ```
 */
export function isMinuteQuotaExceeded(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.MinuteQuotaExceeded);
}

/**
 * True when `err` is 40164: the calling IP is not in the API IP whitelist (Workers' egress IPs change).
 *
 * @param err anything caught
 * @returns whether it is a 40164 API error
 * @example
 * ```ts
 * import { isIpNotWhitelisted } from "@kefu/edge";
 * console.log(isIpNotWhitelisted(undefined)); // false
 * ```
 */
export function isIpNotWhitelisted(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.IpNotWhitelisted);
}

/**
 * True when `err` is 48001: the API is not authorised for this mini program (客服 permission).
 *
 * @param err anything caught
 * @returns whether it is a 48001 API error
 * @example
 * ```ts
 * import { isApiUnauthorized } from "@kefu/edge";
 * console.log(isApiUnauthorized(undefined)); // false
 * ```
 */
export function isApiUnauthorized(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.ApiUnauthorized);
}

/**
 * True when `err` is 45002: the content is too long.
 *
 * @param err anything caught
 * @returns whether it is a 45002 API error
 * @example
 * ```ts
 * import { isContentTooLong } from "@kefu/edge";
 * console.log(isContentTooLong(undefined)); // false
 * ```
 */
export function isContentTooLong(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.ContentTooLong);
}

/**
 * True when `err` is 43104: the openid does not belong to this mini program's appid.
 *
 * @param err anything caught
 * @returns whether it is a 43104 API error
 * @example
 * ```ts
 * import { isAppIdOpenIdMismatch } from "@kefu/edge";
 * console.log(isAppIdOpenIdMismatch(undefined)); // false
 * ```
 */
export function isAppIdOpenIdMismatch(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.AppIdOpenIdMismatch);
}

/**
 * True when `err` is 43101: the user refused the subscribe message, or used up a one-time subscription.
 *
 * @param err anything caught
 * @returns whether it is a 43101 API error
 * @example
 * ```ts
 * import { isSubscriptionRefused } from "@kefu/edge";
 * console.log(isSubscriptionRefused(undefined)); // false
 * ```
 */
export function isSubscriptionRefused(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.SubscriptionRefused);
}

/**
 * True when `err` is 47003: the subscribe message's template data is invalid.
 *
 * @param err anything caught
 * @returns whether it is a 47003 API error
 * @example
 * ```ts
 * import { isInvalidTemplateData } from "@kefu/edge";
 * console.log(isInvalidTemplateData(undefined)); // false
 * ```
 */
export function isInvalidTemplateData(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.InvalidTemplateData);
}

/**
 * True when `err` is 40037: the template_id is invalid.
 *
 * @param err anything caught
 * @returns whether it is a 40037 API error
 * @example
 * ```ts
 * import { isInvalidTemplateId } from "@kefu/edge";
 * console.log(isInvalidTemplateId(undefined)); // false
 * ```
 */
export function isInvalidTemplateId(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.InvalidTemplateId);
}

/**
 * True when `err` is 61010: the user has not used the mini program in the last 2 hours, so
 * WeChat will not check content for them (`mp.security.msgSecCheck`).
 *
 * @param err anything caught
 * @returns whether it is a 61010 API error
 * @example
 * ```ts
 * import { isUserVisitExpired } from "@kefu/edge";
 * console.log(isUserVisitExpired(undefined)); // false
 * ```
 */
export function isUserVisitExpired(err: unknown): err is WeChatApiError {
  return hasCode(err, ErrCode.UserVisitExpired);
}

/**
 * A send was refused before any network call because the send-window tracker knows the
 * user's window is closed or spent (`checkWindow`). Carries the window it saw.
 *
 * @example
 * ```ts
 * import { OutOfWindowError } from "@kefu/edge";
 * const err = new OutOfWindowError("o1", { kind: "message", remaining: 0, expiresAt: 0 });
 * console.log(err.window?.remaining); // 0
 * ```
 */
export class OutOfWindowError extends WeChatError {
  /** The user. */
  readonly openId: string;
  /** The window the tracker saw: spent (`remaining: 0`), or `undefined` when it has closed. */
  readonly window: { kind: "message" | "session"; remaining: number; expiresAt: number } | undefined;

  /**
   * Creates the error.
   *
   * @param openId the user
   * @param window what the tracker knows (spent), or `undefined` (closed)
   */
  constructor(openId: string, window: OutOfWindowError["window"]) {
    super(
      window === undefined
        ? "Cannot send message: the user's send window is closed (WeChat would answer 45015)"
        : "Cannot send message: the user's send window is spent (WeChat would answer 45047)",
    );
    this.openId = openId;
    this.window = window;
  }
}

/**
 * A bot's message was refused before any network call: a person has taken the conversation
 * over (`human`), or one was asked for (`waiting`), so nothing the bot sends reaches the user;
 * or the conversation was deleted while the bot worked (`deleted`: the user revoked their
 * authorization, or it was purged), so the bot does not write to them again.
 *
 * @example
 * ```ts
 * import { HandedOffError } from "@kefu/edge";
 * const err = new HandedOffError("o1", "human");
 * console.log(err.state, err.message); // "human" "Cannot send the bot's message: a person answers this conversation (human)"
 * ```
 */
export class HandedOffError extends WeChatError {
  /** The user. */
  readonly openId: string;
  /** Who answers the conversation now. */
  readonly state: "human" | "waiting" | "closed" | "bot" | "deleted";

  /**
   * Creates the error.
   *
   * @param openId the user
   * @param state the conversation's handoff state
   */
  constructor(openId: string, state: HandedOffError["state"]) {
    super(
      state === "deleted"
        ? "Cannot send the bot's message: the user's conversation was deleted"
        : `Cannot send the bot's message: a person answers this conversation (${state})`,
    );
    this.openId = openId;
    this.state = state;
  }
}

// The classes' names, set where a minifier that renames classes (the deployed worker is built
// without wrangler's keep_names) would lose them: `err.name` and log lines stay `WeChatApiError`...
// A subclass of your own still gets its own name (`new.target.name`).
for (
  const [type, name] of [
    [WeChatError, "WeChatError"],
    [WeChatApiError, "WeChatApiError"],
    [WeChatHttpError, "WeChatHttpError"],
    [WeChatNetworkError, "WeChatNetworkError"],
    [WeChatTimeoutError, "WeChatTimeoutError"],
    [TokenSourceError, "TokenSourceError"],
    [ValidationError, "ValidationError"],
    [MediaTooLargeError, "MediaTooLargeError"],
    [PushVerificationError, "PushVerificationError"],
    [OutOfWindowError, "OutOfWindowError"],
    [HandedOffError, "HandedOffError"],
  ] as const
) Object.defineProperty(type, "name", { value: name });

const SECRET_PARAMS = /([?&](?:access_token|secret|appsecret)=)[^&#\s"')]*/gi;
const SECRET_JSON = /("(?:access_token|secret|appsecret)"\s*:\s*")[^"]*/gi;

/**
 * Removes credentials from text: `access_token`/`secret` URL parameters and JSON fields,
 * and any extra literal values given (such as the current token and the app secret).
 *
 * @param text text that may contain credentials
 * @param secrets literal values to blank out as well
 * @returns the text with every credential replaced by `[redacted]`
 * @example
 * ```ts
 * import { redact } from "@kefu/edge";
 * console.log(redact("https://x/y?access_token=abc&a=1")); // "https://x/y?access_token=[redacted]&a=1"
 * ```
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  // Literal values first: a pattern stops at a quote or a parenthesis, so a secret that
  // contains one would otherwise be cut in two and its tail left in the text.
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out.replace(SECRET_PARAMS, "$1[redacted]").replace(SECRET_JSON, "$1[redacted]");
}

/**
 * Copies an unknown thrown value into a plain `Error` whose message has been
 * through {@link redact}; its stack is dropped, because a runtime may have put
 * the request URL into it.
 */
function redactError(cause: unknown, secrets: readonly string[]): Error {
  const name = cause instanceof Error ? cause.name : "Error";
  const message = cause instanceof Error ? cause.message : String(cause);
  const safe = new Error(redact(message, secrets));
  safe.name = name;
  safe.stack = `${name}: ${safe.message}`;
  return safe;
}
