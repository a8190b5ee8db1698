/**
 * The customer-service message API (客服消息), PowerWeChat's
 * `MiniProgramApp.CustomerServiceMessage`: send, setTyping, uploadTempMedia, getTempMedia.
 *
 * @module
 */
import {
  isAlreadyTyping,
  isOutOfWindow,
  isQuotaExceeded,
  OutOfWindowError,
  ValidationError,
  WeChatApiError,
} from "../errors.ts";
import { validate } from "../internal/validate.ts";
import type { Logger } from "../logger.ts";
import type { HttpClient } from "../http/client.ts";
import { readMedia } from "./media.ts";
import { mediaIdSchema, mediaTypeSchema, openIdSchema, typingCommandSchema } from "../internal/field_schemas.ts";
import {
  type MediaType,
  msgTypeSchema,
  type SendOptions,
  sendOptionsSchema,
  type SendPayloads,
  sendSchemas,
  type TextPayload,
  type TypingCommand,
  type TypingOptions,
  typingOptionsSchema,
} from "./schemas.ts";
import type { SendWindow, SendWindowTracker } from "./send_window.ts";
import { messageEntry, type OutboundRecorder, outcomeOf } from "../conversation/outbound.ts";
import { DEFAULT_MAX_TEXT_BYTES, splitText, utf8Length } from "./text.ts";
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

/** A file uploadTempMedia sent and WeChat took (see `MiniProgramOptions.onMediaUploaded`). */
export interface UploadedMedia {
  /** The media_id WeChat gave it. */
  mediaId: string;
  /** The media type, `image`. */
  type: string;
  /** When WeChat took it, ms since the epoch (its 3 days count from then). */
  createdAt: number;
  /** The file as it was sent, with its name and Content-Type. */
  file: File;
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

/** Settings of {@link CustomerServiceMessage}; `MiniProgram` passes its own. */
export interface CustomerServiceMessageOptions {
  /** Upload limit, bytes; default 10 MiB. */
  maxUploadBytes?: number | undefined;
  /** Default {@link GetTempMediaOptions.idleTimeoutMs}, ms; default 30 s. */
  mediaIdleTimeoutMs?: number | undefined;
  /** Told of each file uploadTempMedia sent successfully (to keep a copy); what it throws is logged. */
  onUploaded?: ((upload: UploadedMedia) => void) | undefined;
  /** Receives a failing `onUploaded`; default `console`. */
  logger?: Logger | undefined;
  /** Longest `text.content`, in UTF-8 bytes; default {@link DEFAULT_MAX_TEXT_BYTES}. */
  maxTextBytes?: number | undefined;
  /** Refuse sends the tracker knows are out of window (`SendOptions.checkWindow`'s default); default false. */
  checkWindow?: boolean | undefined;
  /** The send-window tracker; without one, `window()` knows nothing and nothing is checked. */
  windows?: SendWindowTracker | undefined;
  /**
   * The users' conversations: sends are recorded there with who sent them and how they went,
   * and the window is theirs (the tracker is not used then).
   */
  conversations?: OutboundRecorder | undefined;
  /**
   * Path of `setTyping` without a business id; default `/cgi-bin/message/custom/typing`.
   * [UNCERTAIN] WeChat's newest page names `/cgi-bin/message/custom/business/typing` for mini
   * programs while the original page, the cloud API and the SDKs use the plain path, and the
   * business path answers 40101 without a businessid in community reports: the plain path is
   * the default, this option the way out if WeChat moves.
   */
  typingPath?: string | undefined;
}

/** Options of {@link CustomerServiceMessage.withTyping}. */
export interface WithTypingOptions {
  /** A 客服子商户 id for the typing commands. */
  businessId?: string | undefined;
  /** How often "typing…" is shown again while the task runs, ms; default 15,000 (how long it lasts). */
  renewEveryMs?: number | undefined;
  /** Who shows it, for the conversation's history: `bot`, `api` (the default) or `agent:<name>`. */
  sender?: TypingOptions["sender"];
}

/** Options of {@link CustomerServiceMessage.sendText}. */
export interface SendTextOptions extends SendOptions {
  /** The largest part, UTF-8 bytes; default the module's `maxTextBytes` (2048). */
  maxBytes?: number | undefined;
}

/**
 * Sends customer-service messages and handles temporary media. Reached as
 * `mp.customerServiceMessage`.
 *
 * @example Reply to a user
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" }); // offline WeChat
 * await wechat.user("OPENID").says("Hi");
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 *
 * const cs = mp.customerServiceMessage;
 * console.log(await cs.send("OPENID", "text", { content: "Hello World" })); // { errcode: 0, errmsg: "ok" }
 * ```
 */
export class CustomerServiceMessage {
  readonly #http: HttpClient;
  readonly #maxUploadBytes: number;
  readonly #mediaIdleTimeoutMs: number;
  readonly #maxTextBytes: number;
  readonly #checkWindow: boolean;
  readonly #windows: SendWindowTracker | undefined;
  readonly #conversations: OutboundRecorder | undefined;
  readonly #typingPath: string;
  readonly #onUploaded: ((upload: UploadedMedia) => void) | undefined;
  readonly #logger: Logger;

  /**
   * Creates the module; `MiniProgram` does this for you.
   *
   * @param http the SDK's request pipeline
   * @param options limits, the send-window tracker and its default check, the typing path
   */
  constructor(http: HttpClient, options: CustomerServiceMessageOptions = {}) {
    this.#http = http;
    this.#maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    this.#mediaIdleTimeoutMs = idleTimeout("mediaIdleTimeoutMs", options.mediaIdleTimeoutMs) ??
      DEFAULT_MEDIA_IDLE_TIMEOUT_MS;
    const maxTextBytes = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
    if (!Number.isSafeInteger(maxTextBytes) || maxTextBytes < 4) {
      throw new ValidationError("maxTextBytes", "must be a whole number of bytes, at least 4");
    }
    this.#maxTextBytes = maxTextBytes;
    this.#checkWindow = options.checkWindow ?? false;
    this.#windows = options.windows;
    this.#conversations = options.conversations;
    this.#typingPath = options.typingPath ?? "/cgi-bin/message/custom/typing";
    if (!this.#typingPath.startsWith("/")) throw new ValidationError("typingPath", "must be an API path");
    this.#onUploaded = options.onUploaded;
    this.#logger = options.logger ?? console;
  }

  /**
   * Sends a message to a user (POST /cgi-bin/message/custom/send, or
   * `/cgi-bin/message/custom/business/send` with a `businessId`). Allowed within 48 h of the
   * user's last message (5 messages), see {@link isOutOfWindow}. A `text.content` over the
   * text limit (2048 UTF-8 bytes by default) is refused before any call (see `splitText`).
   *
   * Not retried after a timeout, a network error, a 5xx or -1: the message may have
   * been delivered, and a blind replay could send it twice. It is replayed once after
   * an invalid-token error, which WeChat answers without delivering.
   *
   * The send-window tracker counts each successful send, and 45015/45047 close the window.
   * With `checkWindow` the send is refused with `OutOfWindowError`, before any call, when the
   * tracker knows the window is closed or spent (and takes its message atomically first, so
   * two concurrent sends cannot both use the last one); when it knows nothing, the send goes
   * ahead and WeChat decides.
   *
   * @param openId the user's OpenID (`touser`)
   * @param msgType a key of {@link SendPayloads} (`MSG_TYPES` lists them)
   * @param payload the object for that type, in WeChat's field names
   * @param options `checkWindow`, `businessId` (客服子商户), `aiMsgContext` (AI-generated label)
   * @returns WeChat's `{ errcode: 0, errmsg: "ok" }`
   * @example An article card, and an answer labelled as AI-generated
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("Where are the docs?");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * await mp.customerServiceMessage.send("OPENID", "link", {
   *   title: "Docs", description: "Read me", url: "https://example.com", thumb_url: "https://example.com/t.png",
   * });
   * const answer = "They are at https://example.com";
   * await mp.customerServiceMessage.send("OPENID", "text", { content: answer }, { aiMsgContext: { is_ai_msg: 1 } });
   * console.log(wechat.inbox("OPENID").length); // 2
   * ```
   */
  send<T extends keyof SendPayloads>(
    openId: string,
    msgType: T,
    payload: SendPayloads[T],
    options: SendOptions = {},
  ): Promise<WeChatResult> {
    return this.#run(async () => {
      const touser = validate(openIdSchema, openId, "touser");
      const msgtype = validate(msgTypeSchema, msgType, "msgtype");
      const body = validate(sendSchemas[msgtype], payload, msgtype);
      if (msgtype === "text") this.#checkTextSize((body as TextPayload).content);
      const { checkWindow = this.#checkWindow, businessId, aiMsgContext, sender = "api" } = validate(
        sendOptionsSchema,
        options,
        "options",
      );
      const json: Record<string, unknown> = { touser, msgtype, [msgtype]: body };
      if (businessId !== undefined) json.businessid = businessId;
      if (aiMsgContext !== undefined) json.aimsgcontext = aiMsgContext;
      const path = businessId === undefined ? "/cgi-bin/message/custom/send" : "/cgi-bin/message/custom/business/send";
      const recorder = this.#conversations;
      if (recorder !== undefined) {
        const reserved = await recorder.before(touser, sender, checkWindow);
        const fields = body as unknown as Record<string, unknown>;
        let sent: WeChatResult;
        try {
          sent = await this.#http.json<WeChatResult>({ method: "POST", path, json, idempotent: false });
        } catch (err) {
          await recorder.after(touser, messageEntry(msgtype, fields, sender, outcomeOf(err)), {
            spend: true,
            reserved,
          });
          throw err;
        }
        await recorder.after(touser, messageEntry(msgtype, fields, sender, "ok"), { spend: true, reserved });
        return sent;
      }
      const windows = this.#windows;
      const ticket = checkWindow && windows !== undefined ? await windows.reserve(touser) : undefined;
      if (ticket === "closed") throw new OutOfWindowError(touser, await windows!.window(touser));
      let result: WeChatResult;
      try {
        result = await this.#http.json<WeChatResult>({ method: "POST", path, json, idempotent: false });
      } catch (err) {
        if (isOutOfWindow(err) || isQuotaExceeded(err)) await windows?.close(touser).catch(() => {});
        // Another failure may or may not have been delivered: the message stays counted only
        // if WeChat took it, which it said it did not.
        else if (err instanceof WeChatApiError) await ticket?.release();
        throw err;
      }
      if (ticket === undefined) await windows?.reserve(touser); // counts the send in a window it knows
      return result;
    });
  }

  /**
   * What the send-window tracker knows about the user's window: opened by the user's messages
   * (5 in 48 h) and session entries (2 in 1 min) that the push receiver verified, spent by
   * successful sends, closed by 45015/45047. Advisory: messages sent by WeChat's own agent
   * tools, or by another system using the same AppID, are invisible to it; WeChat decides.
   *
   * @param openId the user's OpenID
   * @returns `{ kind, remaining, expiresAt }` (`expiresAt` in ms), or `undefined` when nothing is known
   * @example The window a user's message opened
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch, push: { token: "TOKEN" } });
   * const push = await wechat.user("OPENID").says("Hi");
   * await push.deliver((request) => mp.push.handle(request, () => {})); // the push receiver records it
   *
   * const window = await mp.customerServiceMessage.window("OPENID");
   * console.log(window?.kind, window?.remaining); // "message" 5
   * ```
   */
  window(openId: string): Promise<SendWindow | undefined> {
    return this.#run(async () => {
      const touser = validate(openIdSchema, openId, "openId");
      const recorder = this.#conversations;
      if (recorder !== undefined) return await recorder.store.window(recorder.ref(touser));
      return await this.#windows?.window(touser);
    });
  }

  /**
   * Sends a long text as as many messages as it takes, each within the text limit (see
   * `splitText`: paragraph, then sentence breaks; never inside a link), in order. With
   * `checkWindow`, refused up front with `OutOfWindowError` (and the window) when the tracker
   * knows the parts are more than the window has left.
   *
   * @param openId the user's OpenID
   * @param content the text
   * @param options `maxBytes` per part, and the options of {@link CustomerServiceMessage.send}
   * @returns WeChat's answer to each part
   * @example A long answer in as many messages as it takes
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("Tell me everything");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * const longAnswer = "Here is everything. ".repeat(150); // about 3,000 bytes
   * const results = await mp.customerServiceMessage.sendText("OPENID", longAnswer, { checkWindow: true });
   * console.log(results.length); // 2
   * ```
   */
  sendText(openId: string, content: string, options: SendTextOptions = {}): Promise<WeChatResult[]> {
    return this.#run(async () => {
      const { maxBytes = this.#maxTextBytes, ...send } = options;
      const parts = splitText(content, { maxBytes: Math.min(maxBytes, this.#maxTextBytes) });
      if (parts.length === 0) throw new ValidationError("text.content", "must not be empty");
      const checkWindow = send.checkWindow ?? this.#checkWindow;
      if (checkWindow && (this.#windows !== undefined || this.#conversations !== undefined)) {
        const window = await this.window(validate(openIdSchema, openId, "touser"));
        if (window !== undefined && window.remaining < parts.length) throw new OutOfWindowError(openId, window);
      }
      const results: WeChatResult[] = [];
      for (const part of parts) results.push(await this.send(openId, "text", { content: part }, send));
      return results;
    });
  }

  /**
   * Shows or hides "typing…" to the user (POST /cgi-bin/message/custom/typing, or
   * `/cgi-bin/message/custom/business/typing` with a `businessId`). Needs a message from the
   * user in the last 30 s; the state lasts 15 s.
   *
   * @param openId the user's OpenID (`touser`)
   * @param command `Typing` or `CancelTyping`
   * @param options `businessId` (客服子商户)
   * @returns WeChat's `{ errcode: 0, errmsg: "ok" }`
   * @example
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * const user = wechat.user("OPENID");
   * await user.says("Hi");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * await mp.customerServiceMessage.setTyping("OPENID", "Typing");
   * console.log(user.typing); // true
   * ```
   */
  setTyping(openId: string, command: TypingCommand, options: TypingOptions = {}): Promise<WeChatResult> {
    return this.#run(() => {
      const touser = validate(openIdSchema, openId, "touser");
      const checked = validate(typingCommandSchema, command, "command");
      const { businessId, sender = "api" } = validate(typingOptionsSchema, options, "options");
      const call = this.#http.json<WeChatResult>({
        method: "POST",
        path: businessId === undefined ? this.#typingPath : "/cgi-bin/message/custom/business/typing",
        json: businessId === undefined
          ? { touser, command: checked }
          : { touser, command: checked, businessid: businessId },
        // A replayed "Typing" whose first answer was lost gets 45081 (already typing);
        // only cancelling is safe to repeat.
        idempotent: checked === "CancelTyping",
      });
      const recorder = this.#conversations;
      if (recorder === undefined) return call;
      const entry = (outcome: "ok" | "unknown" | number) =>
        ({ sender, type: "typing", msgType: checked, outcome }) as const;
      return call.then(
        async (result) => (await recorder.after(touser, entry("ok"), { spend: false, reserved: false }), result),
        async (err: unknown) => {
          await recorder.after(touser, entry(outcomeOf(err)), { spend: false, reserved: false });
          throw err;
        },
      );
    });
  }

  /**
   * Runs `task` while the user sees "typing…": shown at once, shown again each time its 15 s
   * run out while the task is still working, and cancelled if the task fails. 45081 (already
   * typing) is fine; 45080 (no interaction in the last 30 s) stops it quietly, as any other
   * typing failure does: the task's result is what matters. The reply you send afterwards
   * ends the typing state by itself.
   *
   * @param openId the user's OpenID
   * @param task the slow work, e.g. asking your AI model for the answer
   * @param options `businessId`, `renewEveryMs`
   * @returns what `task` returned
   * @throws what `task` threw
   * @example "typing…" while the answer is worked out
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("What is 6 × 7?");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   * const bot = { reply: (_question: string) => Promise.resolve("42") }; // your AI model, say
   *
   * const answer = await mp.customerServiceMessage.withTyping("OPENID", () => bot.reply("What is 6 × 7?"));
   * await mp.customerServiceMessage.send("OPENID", "text", { content: answer });
   * console.log(wechat.inbox("OPENID").map((entry) => entry.kind)); // ["typing", "message"]
   * ```
   */
  async withTyping<T>(openId: string, task: () => Promise<T> | T, options: WithTypingOptions = {}): Promise<T> {
    const every = options.renewEveryMs ?? TYPING_DURATION_MS;
    const typingOptions: TypingOptions = { businessId: options.businessId, sender: options.sender };
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const show = async (): Promise<void> => {
      try {
        await this.setTyping(openId, "Typing", typingOptions);
      } catch (err) {
        if (!isAlreadyTyping(err)) stopped = true; // 45080 and the rest: stop quietly
      }
      if (!stopped) timer = setTimeout(() => void show(), every);
    };
    const first = show();
    try {
      const result = await task();
      return result;
    } catch (err) {
      stopped = true;
      clearTimeout(timer);
      await first;
      await this.setTyping(openId, "CancelTyping", typingOptions).catch(() => {});
      throw err;
    } finally {
      stopped = true;
      clearTimeout(timer);
    }
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
   * @example Upload an image, then send it
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("Show me");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   * const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0]); // a JPEG's first bytes
   *
   * // A path works too on Deno, Bun and Node: uploadTempMedia("image", "./resource/cloud.jpg")
   * const { media_id } = await mp.customerServiceMessage.uploadTempMedia("image", "", { name: "cloud.jpg", value: bytes });
   * await mp.customerServiceMessage.uploadTempMedia("image", new Blob([bytes]), { filename: "cloud.jpg" });
   * console.log(await mp.customerServiceMessage.send("OPENID", "image", { media_id })); // { errcode: 0, errmsg: "ok" }
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
      const uploaded = {
        type: result.type ?? mediaType,
        media_id: String(result.media_id ?? ""),
        created_at: Number(result.created_at ?? 0),
      };
      this.#tellUploaded(uploaded, file);
      return uploaded;
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
   * @example Download an image a user sent
   * ```ts
   * import { filenameFromContentDisposition, MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * const push = await wechat.user("OPENID").sendsImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
   * const mediaId = String(push.message.MediaId);
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * const res = await mp.customerServiceMessage.getTempMedia(mediaId);
   * const name = filenameFromContentDisposition(res.headers.get("content-disposition"));
   * const bytes = new Uint8Array(await new Response(res.body).arrayBuffer()); // or res.body.pipeTo(destination)
   * console.log(res.headers.get("content-type"), name?.endsWith(".jpg"), bytes.length); // "image/jpeg" true 4
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

  #tellUploaded(uploaded: UploadTempMediaResult, file: File): void {
    if (this.#onUploaded === undefined || uploaded.media_id === "") return;
    // WeChat gives seconds; a missing or unreadable time counts from now.
    const createdAt = uploaded.created_at > 0 ? uploaded.created_at * 1000 : Date.now();
    try {
      this.#onUploaded({ mediaId: uploaded.media_id, type: uploaded.type, createdAt, file });
    } catch (err) {
      const error = err instanceof Error ? err.name : typeof err;
      this.#logger.warn(JSON.stringify({ event: "kefu-edge.upload_hook_failed", error }));
    }
  }

  #checkTextSize(content: string): void {
    const size = utf8Length(content);
    if (size > this.#maxTextBytes) {
      throw new ValidationError(
        "text.content",
        `is ${size} UTF-8 bytes, over the ${this.#maxTextBytes}-byte limit (WeChat answers 45002): split it with splitText`,
      );
    }
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

/** How long WeChat shows "typing…" after one `Typing` command. */
const TYPING_DURATION_MS = 15_000;

function idleTimeout(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0) {
    throw new ValidationError(field, "must be a positive number of milliseconds (or Infinity)");
  }
  return value;
}

export type { UploadBody, UploadForm };
