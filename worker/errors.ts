/**
 * The worker's error answers: one JSON shape, `{ error: { code, message, errcode?, field? } }`,
 * and the mapping from every error the app can meet to a status and a code.
 * Messages never carry a stack, a token or a secret.
 *
 * @module
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  MediaTooLargeError,
  OutOfWindowError,
  redact,
  ValidationError,
  WeChatApiError,
  WeChatError,
  WeChatHttpError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "../mod.ts";
// Private helper (a documented exception, see src/internal/README.md): the error answer the
// push receiver writes too, so both have one shape and the same security headers.
import { errorResponse } from "../src/internal/error_response.ts";
import { ConfigError, type Env, secretValues } from "./env.ts";

/** The body of every error answer. */
export interface ErrorBody {
  /** What went wrong. */
  error: {
    /** Machine-readable code, e.g. `validation_error`, `wechat_api_error`. */
    code: string;
    /** Human-readable text; safe to show. */
    message: string;
    /** WeChat's errcode, when WeChat answered with one. */
    errcode?: number;
    /** The offending input field, for validation errors. */
    field?: string;
    /** The configuration variable, for configuration errors. */
    variable?: string;
    /** The configuration variables of which some must be set, for configuration errors. */
    variables?: string[];
    /** For `out_of_window`: the window the tracker knows (spent: `remaining` 0), or `null` (closed). */
    window?: { kind: "message" | "session"; remaining: number; expiresAt: number } | null;
  };
}

/**
 * An error answer: status, code and message, ready to be sent as {@link ErrorBody}.
 *
 * @example
 * ```ts
 * import { HttpError } from "@kefu/edge/worker";
 * const err = new HttpError(401, "unauthorized", "Missing bearer token");
 * console.log(err.toResponse().status); // 401
 * ```
 */
export class HttpError extends Error {
  /** HTTP status of the answer. */
  readonly status: number;
  /** Machine-readable code. */
  readonly code: string;
  /** Extra fields of the error object (`errcode`, `field`, `variable`). */
  readonly extra: Omit<ErrorBody["error"], "code" | "message">;
  /** Extra response headers (e.g. `WWW-Authenticate`). */
  readonly headers: Record<string, string>;

  /**
   * Builds the answer's parts.
   *
   * @param status HTTP status
   * @param code machine-readable code
   * @param message safe human-readable text
   * @param extra `errcode`, `field` or `variable`
   * @param headers extra response headers
   */
  constructor(
    status: number,
    code: string,
    message: string,
    extra: Omit<ErrorBody["error"], "code" | "message"> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }

  /**
   * The JSON answer.
   *
   * @returns a `Response` with the {@link ErrorBody}
   */
  toResponse(): Response {
    const error: ErrorBody["error"] = { code: this.code, message: this.message, ...this.extra };
    return errorResponse(this.status, error, this.headers);
  }
}

/**
 * Maps anything thrown in the app to an {@link HttpError}: SDK errors by class,
 * configuration errors to 503, unknown errors to a generic 500.
 *
 * @param err what was thrown
 * @returns the answer to send
 * @example
 * ```ts
 * import { toHttpError } from "./errors.ts";
 * console.log(toHttpError(new Error("boom")).status); // 500
 * ```
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ConfigError) {
    const code = err.problem === "missing" ? "config_missing" : "config_invalid";
    return new HttpError(503, code, err.message, { variable: err.variable });
  }
  if (err instanceof MediaTooLargeError) {
    return new HttpError(413, "payload_too_large", `Media is larger than the ${err.limit}-byte limit`, {
      field: err.field,
    });
  }
  if (err instanceof ValidationError) {
    return new HttpError(400, "validation_error", err.message, { field: err.field });
  }
  if (err instanceof OutOfWindowError) {
    return new HttpError(409, "out_of_window", err.message, { window: err.window ?? null });
  }
  if (err instanceof WeChatApiError) {
    return new HttpError(502, "wechat_api_error", err.message, { errcode: err.errcode });
  }
  if (err instanceof WeChatTimeoutError) {
    return new HttpError(504, "upstream_timeout", `WeChat did not answer ${err.endpoint} in time`);
  }
  if (err instanceof WeChatHttpError) {
    return new HttpError(502, "upstream_http_error", `WeChat answered ${err.endpoint} with HTTP ${err.status}`);
  }
  if (err instanceof WeChatNetworkError) {
    return new HttpError(502, "upstream_unreachable", `Cannot reach WeChat at ${err.endpoint}`);
  }
  if (err instanceof WeChatError) {
    return new HttpError(502, "upstream_invalid_response", redact(err.message));
  }
  // Hono's own: a malformed JSON body (400) from a validator, or a 4xx from a middleware. (Every
  // body limit of the app throws its own 413, and the push receiver answers its refusals itself.)
  if (err instanceof HTTPException && err.status >= 400 && err.status < 500) {
    return new HttpError(err.status, "bad_request", redact(err.message));
  }
  return new HttpError(500, "internal_error", "Internal error");
}

/**
 * A one-line description of an error for logs: its class and redacted message, never a stack.
 *
 * @param err what was thrown
 * @param secrets literal values to blank out (the configured secrets)
 * @returns a log-safe line
 * @example
 * ```ts
 * import { describeError } from "./errors.ts";
 * console.log(describeError(new Error("key abcdefgh"), ["abcdefgh"])); // "Error: key [redacted]"
 * ```
 */
export function describeError(err: unknown, secrets: readonly string[]): string {
  const name = err instanceof Error ? err.name : typeof err;
  const message = err instanceof Error ? err.message : String(err);
  return `${name}: ${redact(message, secrets)}`;
}

/**
 * The `onError` handler of a Hono app: the error's JSON answer, and one redacted log line
 * (method, path, status, error) for a 5xx.
 *
 * @param logger where 5xx answers are logged
 * @returns the handler for `app.onError`
 * @example A validation error anywhere in a route
 * ```ts
 * import { Hono } from "hono";
 * import { ValidationError } from "@kefu/edge";
 * import type { AppEnv } from "@kefu/edge/worker";
 * import { answerErrors } from "./errors.ts";
 * const app = new Hono<AppEnv>().get("/x", () => {
 *   throw new ValidationError("touser", "must be an OpenID");
 * });
 * app.onError(answerErrors(console));
 * const res = await app.request("/x");
 * const { error } = await res.json();
 * console.log(res.status, error.code, error.field); // 400 "validation_error" "touser"
 * ```
 */
export function answerErrors<E extends { Bindings: Env } = { Bindings: Env }>(
  logger: { error(message: string): void },
): (err: Error, c: Context<E>) => Response {
  return (err, c) => {
    const answer = toHttpError(err);
    if (answer.status >= 500) {
      const line = describeError(err, secretValues(c.env ?? {}));
      logger.error(`kefu-edge: ${c.req.method} ${new URL(c.req.url).pathname} answered ${answer.status}: ${line}`);
    }
    return answer.toResponse();
  };
}
