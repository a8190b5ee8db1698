/**
 * The customer-service message API (客服消息), PowerWeChat's
 * `MiniProgramApp.CustomerServiceMessage`: send, setTyping, uploadTempMedia, getTempMedia.
 *
 * @module
 */
import { ValidationError } from "../errors.ts";
import { validate } from "../_validate.ts";
import type { HttpClient } from "../http/client.ts";
import { readMedia } from "./media.ts";
import {
  mediaIdSchema,
  type MediaType,
  mediaTypeSchema,
  msgTypeSchema,
  openIdSchema,
  type SendPayloads,
  sendSchemas,
  type TypingCommand,
  typingCommandSchema,
} from "./schemas.ts";
import { toUploadFile, type UploadBody, type UploadForm } from "./upload.ts";

/** WeChat's plain acknowledgement. */
export interface WeChatResult {
  /** 0 on success. */
  errcode: number;
  /** `ok` on success. */
  errmsg: string;
}

/** What uploadTempMedia returns. `media_id` is valid for 3 days. */
export interface UploadTempMediaResult {
  /** The media type, `image`. */
  type: string;
  /** The media_id to send in `image` and `miniprogrampage` messages. */
  media_id: string;
  /** Upload time, seconds since the epoch. */
  created_at: number;
}

/** Default upload limit: 10 MiB (WeChat's temporary image limit). */
export const DEFAULT_MAX_UPLOAD_BYTES: number = 10 * 1024 * 1024;

/** Default for {@link GetTempMediaOptions.idleTimeoutMs}: 30 s without a byte ends a download. */
export const DEFAULT_MEDIA_IDLE_TIMEOUT_MS = 30_000;

/** Options of {@link CustomerServiceMessage.getTempMedia}. */
export interface GetTempMediaOptions {
  /**
   * Longest wait for the next bytes of the body once the headers have arrived, in ms; a
   * download that stalls longer fails with {@link WeChatTimeoutError} instead of hanging.
   * Default the MiniProgram's `mediaIdleTimeoutMs` (30 s); `Infinity` waits forever.
   */
  idleTimeoutMs?: number | undefined;
}

/**
 * Sends customer-service messages and handles temporary media. Reached as
 * `mp.customerServiceMessage`.
 *
 * @example Reply to a user
 * ```ts ignore
 * import { MiniProgram } from "../../mod.ts";
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret" });
 * await mp.customerServiceMessage.send("OPENID", "text", { content: "Hello World" });
 * ```
 */
export class CustomerServiceMessage {
  readonly #http: HttpClient;
  readonly #maxUploadBytes: number;
  readonly #mediaIdleTimeoutMs: number;

  /**
   * Creates the module; `MiniProgram` does this for you.
   *
   * @param http the SDK's request pipeline
   * @param options `maxUploadBytes`: upload limit (default 10 MiB); `mediaIdleTimeoutMs`:
   *   the default {@link GetTempMediaOptions.idleTimeoutMs} (30 s)
   */
  constructor(
    http: HttpClient,
    options: { maxUploadBytes?: number | undefined; mediaIdleTimeoutMs?: number | undefined } = {},
  ) {
    this.#http = http;
    this.#maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    this.#mediaIdleTimeoutMs = idleTimeout("mediaIdleTimeoutMs", options.mediaIdleTimeoutMs) ??
      DEFAULT_MEDIA_IDLE_TIMEOUT_MS;
  }

  /**
   * Sends a message to a user (POST /cgi-bin/message/custom/send). Allowed within 48 h
   * of the user's last message (5 messages), see {@link isOutOfWindow}.
   *
   * Not retried after a timeout, a network error, a 5xx or -1: the message may have
   * been delivered, and a blind replay could send it twice. It is replayed once after
   * an invalid-token error, which WeChat answers without delivering.
   *
   * @param openId the user's OpenID (`touser`)
   * @param msgType `text`, `image`, `link` or `miniprogrampage`
   * @param payload the object for that type, in WeChat's field names
   * @returns WeChat's `{ errcode: 0, errmsg: "ok" }`
   * @example
   * ```ts ignore
   * await mp.customerServiceMessage.send("OPENID", "link", {
   *   title: "Docs", description: "Read me", url: "https://example.com", thumb_url: "https://example.com/t.png",
   * });
   * ```
   */
  send<T extends keyof SendPayloads>(openId: string, msgType: T, payload: SendPayloads[T]): Promise<WeChatResult> {
    return this.#run(() => {
      const touser = validate(openIdSchema, openId, "touser");
      const msgtype = validate(msgTypeSchema, msgType, "msgtype");
      const body = validate(sendSchemas[msgtype], payload, msgtype);
      return this.#http.json<WeChatResult>({
        method: "POST",
        path: "/cgi-bin/message/custom/send",
        json: { touser, msgtype, [msgtype]: body },
        idempotent: false,
      });
    });
  }

  /**
   * Shows or hides "typing…" to the user (POST /cgi-bin/message/custom/typing).
   * Needs a message from the user in the last 30 s; the state lasts 15 s.
   *
   * @param openId the user's OpenID (`touser`)
   * @param command `Typing` or `CancelTyping`
   * @returns WeChat's `{ errcode: 0, errmsg: "ok" }`
   * @example
   * ```ts ignore
   * await mp.customerServiceMessage.setTyping("OPENID", "Typing");
   * ```
   */
  setTyping(openId: string, command: TypingCommand): Promise<WeChatResult> {
    return this.#run(() => {
      const touser = validate(openIdSchema, openId, "touser");
      const checked = validate(typingCommandSchema, command, "command");
      return this.#http.json<WeChatResult>({
        method: "POST",
        path: "/cgi-bin/message/custom/typing",
        json: { touser, command: checked },
        // A replayed "Typing" whose first answer was lost gets 45081 (already typing);
        // only cancelling is safe to repeat.
        idempotent: checked === "CancelTyping",
      });
    });
  }

  /**
   * Uploads a temporary image (POST /cgi-bin/media/upload), valid for 3 days.
   * Accepts a file path (Deno, Bun, Node), PowerWeChat's manual form
   * `("image", "", { name, value })`, or a Blob, File, bytes or stream with
   * `{ filename }`. Empty files and files over `maxUploadBytes` are refused
   * before any network call.
   *
   * @param type the media type; WeChat accepts `image` only
   * @param pathOrBody a file path, `""` with `form.value`, or the content
   * @param form `{ name, value }` or `{ filename, contentType }`
   * @returns `{ type, media_id, created_at }`
   * @example
   * ```ts ignore
   * const { media_id } = await mp.customerServiceMessage.uploadTempMedia("image", "./resource/cloud.jpg");
   * await mp.customerServiceMessage.uploadTempMedia("image", "", { name: "cloud.jpg", value: bytes });
   * ```
   */
  uploadTempMedia(type: MediaType, pathOrBody: string | UploadBody, form?: UploadForm): Promise<UploadTempMediaResult> {
    return this.#run(async () => {
      const mediaType = validate(mediaTypeSchema, type, "type");
      const file = await toUploadFile(pathOrBody, form, this.#maxUploadBytes);
      const body = new FormData();
      body.set("media", file, file.name);
      const result = await this.#http.json<{ type?: string; media_id?: string; created_at?: number | string }>({
        method: "POST",
        path: "/cgi-bin/media/upload",
        query: { type: mediaType },
        form: body,
        idempotent: true,
      });
      return {
        type: result.type ?? mediaType,
        media_id: String(result.media_id ?? ""),
        created_at: Number(result.created_at ?? 0),
      };
    });
  }

  /**
   * Downloads a temporary media file (GET /cgi-bin/media/get). Returns WeChat's
   * `Response` with its body unread, so it streams; headers (Content-Type,
   * Content-Disposition) are intact. An error answer throws {@link WeChatApiError}
   * (40007 for an unknown or expired media_id), whatever its Content-Type.
   *
   * The body is cut with {@link WeChatTimeoutError} when WeChat sends no bytes for
   * `idleTimeoutMs` (default 30 s), so a stalled download never hangs its reader.
   *
   * @param mediaId the media_id
   * @param options `idleTimeoutMs`: longest silence of the body, in ms
   * @returns the streaming response
   * @example
   * ```ts ignore
   * const res = await mp.customerServiceMessage.getTempMedia(mediaId);
   * const name = filenameFromContentDisposition(res.headers.get("content-disposition"));
   * await res.body?.pipeTo(destination);
   * ```
   */
  getTempMedia(mediaId: string, options: GetTempMediaOptions = {}): Promise<Response> {
    return this.#run(() => {
      const media_id = validate(mediaIdSchema, mediaId, "media_id");
      const idleMs = idleTimeout("idleTimeoutMs", options.idleTimeoutMs) ?? this.#mediaIdleTimeoutMs;
      return this.#http.call({
        method: "GET",
        path: "/cgi-bin/media/get",
        query: { media_id },
        idempotent: true,
      }, (response, endpoint) => readMedia(response, endpoint, idleMs));
    });
  }

  // Validation throws synchronously inside; callers always get a rejected promise.
  #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function idleTimeout(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0) {
    throw new ValidationError(field, "must be a positive number of milliseconds (or Infinity)");
  }
  return value;
}

export type { UploadBody, UploadForm };
