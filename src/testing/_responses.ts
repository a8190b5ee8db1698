// Private: the shape of WeChat's answers — errcode JSON with a rid, HTTP 200 even on errors.
import { randomRid } from "./_random.ts";

/** WeChat labels its JSON answers this way (quoted from a real error response). */
export const JSON_CONTENT_TYPE = "application/json; encoding=utf-8";

/** errmsg texts, in WeChat's words where the spec quotes them. */
const ERRMSG: Record<number, string> = {
  [-1]: "system error",
  40001:
    "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",
  40002: "invalid grant_type",
  40003: "invalid openid",
  40004: "invalid media type",
  40005: "invalid file type",
  40006: "invalid file size",
  40007: "invalid media_id",
  40008: "invalid message type",
  40013: "invalid appid",
  40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
  40037: "invalid template_id",
  40101: "missing parameter",
  40125: "invalid appsecret",
  40129: "invalid scene",
  41001: "access_token missing",
  41002: "appid missing",
  41004: "appsecret missing",
  41005: "media data missing",
  41030: "invalid page",
  42001: "access_token expired",
  43101: "user refuse to accept the msg",
  43001: "require GET method",
  43002: "require POST method",
  44001: "empty media data",
  44002: "empty post data",
  44004: "empty content",
  45002: "content size out of limit",
  45009: "reach max api daily quota limit",
  45011: "api minute-quota reach limit mustslower retry next minute",
  45015: "response out of time limit or subscription is canceled",
  45047: "out of response count limit",
  45072: "invalid command",
  45080: "no message interaction with the user in the previous 30 seconds",
  45081: "已经在输入状态,不可重复下发",
  47001: "data format error",
  47003: "argument invalid! data.thing1.value invalid",
  // As community reports quote WeChat's answer to a user without a recent visit.
  61010: "code is expired",
};

/** Thrown inside a handler to answer with an errcode; the router turns it into the JSON answer. */
export class ApiFailure extends Error {
  readonly errcode: number;

  constructor(errcode: number) {
    super(`errcode ${errcode}`);
    this.errcode = errcode;
  }
}

/** `{"errcode":N,"errmsg":"… rid: …"}` with HTTP 200, as WeChat answers every error. */
export function errorResponse(errcode: number): Response {
  const errmsg = `${ERRMSG[errcode] ?? "unknown error"} rid: ${randomRid()}`;
  return jsonResponse({ errcode, errmsg });
}

/** A JSON answer with WeChat's Content-Type. */
export function jsonResponse(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": JSON_CONTENT_TYPE } });
}

/** `{"errcode":0,"errmsg":"ok"}` plus any extra fields. */
export function okResponse(extra: Record<string, unknown> = {}): Response {
  return jsonResponse({ errcode: 0, errmsg: "ok", ...extra });
}
