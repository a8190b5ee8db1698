/**
 * The one request pipeline every WeChat call goes through: token injection,
 * timeout, errcode → error, and the retry rules. Private to the SDK.
 *
 * @module
 */
import {
  redact,
  TOKEN_INVALID_CODES,
  WeChatApiError,
  WeChatError,
  WeChatHttpError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "../errors.ts";
import { type IdFields, quoteIds } from "../internal/exact_ids.ts";
import { apiBaseSchema } from "../internal/field_schemas.ts";
import { validate } from "../internal/validate.ts";

/** What the pipeline needs from the token manager. */
export interface TokenProvider {
  getToken(): Promise<string>;
  invalidate(failedToken: string): Promise<void>;
}

/** Retry settings for transient failures of idempotent calls. */
export interface RetryOptions {
  /** Retries after the first attempt for -1, 5xx, network errors and timeouts. Default 2. */
  maxRetries?: number;
  /** First backoff delay in ms; doubles each retry, plus jitter. Default 300. */
  baseDelayMs?: number;
}

/** Settings of {@link HttpClient}. */
export interface HttpClientOptions {
  /** API origin, optionally with a path prefix (`https://proxy.example/wechat`); checked by {@link apiBase}. */
  baseUrl: string;
  fetch: typeof fetch;
  timeoutMs: number;
  retry?: RetryOptions | undefined;
  /** Supplies tokens for calls that need one; read lazily (the token manager uses this client too). */
  tokens: () => TokenProvider;
  /** Literal values that must never appear in an error (the app secret). */
  secrets: readonly string[];
}

/** One WeChat API call. */
export interface ApiRequest {
  method: "GET" | "POST";
  /** API path, e.g. `/cgi-bin/message/custom/send`. */
  path: string;
  query?: Record<string, string>;
  /** JSON body (sent as raw UTF-8). */
  json?: unknown;
  /** Multipart body. */
  form?: FormData;
  /**
   * Whether replaying the call after an ambiguous failure is harmless. A `send`
   * that timed out may have been delivered, so it is not idempotent and is not
   * retried on -1, 5xx, network errors or timeouts. Every call, idempotent or not,
   * is replayed once after an invalid-token error: WeChat rejected it unprocessed.
   */
  idempotent: boolean;
  /** Put `access_token` in the query. Default true. */
  withToken?: boolean;
}

/** Reads a successful HTTP response; throws {@link WeChatApiError} on an errcode. */
export type ResponseReader<T> = (response: Response, endpoint: string) => Promise<T>;

/**
 * Sends WeChat API calls. Retry rules live here and nowhere else:
 * - 40001/40014/42001 on a call that carried a token: compare-and-expire that token,
 *   fetch one, replay exactly once;
 * - -1, HTTP 5xx, network errors and timeouts on idempotent calls: up to
 *   `maxRetries` retries with exponential backoff and jitter.
 */
export class HttpClient {
  readonly #options: HttpClientOptions;
  readonly #base: string;
  readonly #maxRetries: number;
  readonly #baseDelayMs: number;
  /** Absolute URL of each API path, resolved once: a handful of fixed paths per client. */
  readonly #endpoints = new Map<string, string>();

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#base = apiBase(options.baseUrl);
    this.#maxRetries = options.retry?.maxRetries ?? 2;
    this.#baseDelayMs = options.retry?.baseDelayMs ?? 300;
  }

  /** Sends `request` and returns its JSON answer, with a non-zero errcode thrown. */
  json<T>(request: ApiRequest): Promise<T> {
    return this.call(request, readJson<T>);
  }

  /** Sends `request` and hands the response to `read`, applying the retry rules. */
  async call<T>(request: ApiRequest, read: ResponseReader<T>): Promise<T> {
    const withToken = request.withToken ?? true;
    let replayedForToken = false;
    for (let retries = 0;;) {
      const token = withToken ? await this.#options.tokens().getToken() : undefined;
      try {
        return await this.#attempt(request, token, read);
      } catch (err) {
        if (
          token !== undefined && !replayedForToken && err instanceof WeChatApiError &&
          TOKEN_INVALID_CODES.has(err.errcode)
        ) {
          replayedForToken = true;
          await this.#options.tokens().invalidate(token);
          continue;
        }
        if (request.idempotent && retries < this.#maxRetries && isTransient(err)) {
          retries++;
          await sleep(this.#baseDelayMs * 2 ** (retries - 1) * (1 + Math.random() / 2));
          continue;
        }
        throw err;
      }
    }
  }

  async #attempt<T>(request: ApiRequest, token: string | undefined, read: ResponseReader<T>): Promise<T> {
    const { path } = request;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#options.timeoutMs);
    try {
      const [url, init] = this.#buildRequest(request, token, controller.signal);
      const response = await this.#options.fetch(url, init);
      if (response.status >= 300) {
        await response.body?.cancel().catch(() => {});
        throw new WeChatHttpError(response.status, path);
      }
      return await read(response, path);
    } catch (err) {
      const secrets = token === undefined ? this.#options.secrets : [...this.#options.secrets, token];
      if (err instanceof WeChatApiError) {
        throw new WeChatApiError({ errcode: err.errcode, errmsg: redact(err.errmsg, secrets), endpoint: path });
      }
      if (err instanceof WeChatError) throw err;
      if (timedOut) throw new WeChatTimeoutError(path, this.#options.timeoutMs);
      throw new WeChatNetworkError(path, err, secrets);
    } finally {
      clearTimeout(timer);
    }
  }

  // (url, init) rather than a Request object: constructing a Request costs undici
  // about 50 µs per call, a tenth of a loopback round trip.
  #buildRequest(request: ApiRequest, token: string | undefined, signal: AbortSignal): [string, RequestInit] {
    let url = this.#endpoints.get(request.path);
    if (url === undefined) {
      url = new URL(this.#base + request.path).href;
      this.#endpoints.set(request.path, url);
    }
    // The query as URL.searchParams would write it, without building a URL per call.
    let separator = "?";
    if (token !== undefined) {
      url += `${separator}${formPair("access_token", token)}`;
      separator = "&";
    }
    if (request.query !== undefined) {
      for (const key of Object.keys(request.query)) {
        url += `${separator}${formPair(key, request.query[key]!)}`;
        separator = "&";
      }
    }
    const init: RequestInit = { method: request.method, signal };
    if (request.json !== undefined) {
      init.body = JSON.stringify(request.json);
      init.headers = { "content-type": "application/json" };
    } else if (request.form !== undefined) {
      init.body = request.form;
    }
    return [url, init];
  }
}

/** Characters application/x-www-form-urlencoded leaves as they are. */
const FORM_SAFE = /^[A-Za-z0-9*._-]*$/;

/** `key=value`, encoded exactly as URLSearchParams encodes it. */
function formPair(key: string, value: string): string {
  return FORM_SAFE.test(key) && FORM_SAFE.test(value)
    ? `${key}=${value}`
    : new URLSearchParams([[key, value]]).toString();
}

/**
 * The base every API path is appended to: an http(s) URL without query or fragment, its
 * trailing slashes removed, so `https://proxy.example/wechat/` keeps its `/wechat` prefix.
 *
 * @throws {ValidationError} `baseUrl` for anything else
 */
export function apiBase(baseUrl: string): string {
  const url = new URL(validate(apiBaseSchema, baseUrl, "baseUrl"));
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

function isTransient(err: unknown): boolean {
  if (err instanceof WeChatApiError) return err.errcode === -1;
  if (err instanceof WeChatHttpError) return err.status >= 500;
  return err instanceof WeChatNetworkError || err instanceof WeChatTimeoutError;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Parses a JSON answer; throws {@link WeChatApiError} when it carries a non-zero errcode.
 * A body that is not JSON at all is an unexpected answer. `ids` names 64-bit id fields
 * (`msgid`) to keep exact, as strings.
 */
export async function readJson<T>(response: Response, endpoint: string, ids?: IdFields): Promise<T> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(ids === undefined ? text : quoteIds(text, ids));
  } catch {
    throw new WeChatError(`Unexpected answer from ${endpoint}: body is not JSON`);
  }
  throwIfApiError(body, endpoint);
  return body as T;
}

/**
 * Throws {@link WeChatApiError} when `body` is an object with a non-zero numeric `errcode`.
 */
export function throwIfApiError(body: unknown, endpoint: string): void {
  if (typeof body !== "object" || body === null) return;
  const { errcode, errmsg } = body as { errcode?: unknown; errmsg?: unknown };
  if (typeof errcode === "number" && errcode !== 0) {
    throw new WeChatApiError({ errcode, errmsg: typeof errmsg === "string" ? errmsg : "", endpoint });
  }
}
