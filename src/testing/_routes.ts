// Private: the WeChat API endpoints the emulator answers, by path.
import type { MediaStore } from "./_media.ts";
import { mediaIdsOf, parseJsonObject, parseSend, parseSubscribe, parseTyping } from "./_messages.ts";
import type { ParsedBody } from "./_request.ts";
import { ApiFailure, jsonResponse, okResponse } from "./_responses.ts";
import type { TokenAuthority } from "./_tokens.ts";
import type { UserState } from "./_user_state.ts";
import { checkText, type ContentCheck } from "./_sec_check.ts";

/** One request, parsed once. */
export interface RouteContext {
  readonly request: Request;
  readonly url: URL;
  readonly body: ParsedBody;
}

/** Answers a request, or throws {@link ApiFailure} for an errcode answer. */
export type Route = (context: RouteContext) => Response | Promise<Response>;

/** The emulator state the endpoints work on. */
export interface RouteState {
  readonly tokens: TokenAuthority;
  readonly media: MediaStore;
  /** Subscribe-message templates (template_id → field names), or undefined to accept any. */
  readonly templates: Readonly<Record<string, readonly string[]>> | undefined;
  /** How `/wxa/msg_sec_check` judges text. */
  readonly contentCheck: ContentCheck;
  /** The emulator's clock, ms. */
  now(): number;
  /** The next message id (a 64-bit integer, as a string). */
  nextMsgId(): string;
  /** The known user with this OpenID, or undefined (40003). */
  userState(openId: unknown): UserState | undefined;
}

/** The endpoint table: path → handler. */
export function routes(state: RouteState): Map<string, Route> {
  const { tokens, media } = state;
  const authorized = (method: "GET" | "POST", route: Route): Route => (context) => {
    requireMethod(context.request, method);
    tokens.authorize(context.url.searchParams.get("access_token"));
    return route(context);
  };
  const knownUser = (openId: unknown): UserState => {
    const user = state.userState(openId);
    if (user === undefined) throw new ApiFailure(40003);
    return user;
  };
  const send = (business: boolean): Route =>
    authorized("POST", ({ body }) => {
      const parsed = parseSend(body.text);
      // The business path serves 客服子商户 and needs their id (community reports: 40101 without).
      if (business && parsed.businessId === undefined) throw new ApiFailure(40101);
      const user = knownUser(parsed.touser);
      for (const mediaId of mediaIdsOf(parsed)) if (media.get(mediaId) === undefined) throw new ApiFailure(40007);
      user.deliver(parsed.msgtype, parsed.object, {
        ...(business && parsed.businessId !== undefined ? { businessId: parsed.businessId } : {}),
        ...(parsed.aiMsgContext === undefined ? {} : { aiMsgContext: parsed.aiMsgContext }),
      });
      return okResponse();
    });
  const typing = (business: boolean): Route =>
    authorized("POST", ({ body }) => {
      const { touser, command, businessId } = parseTyping(body.text);
      if (business && businessId === undefined) throw new ApiFailure(40101);
      knownUser(touser).setTyping(command);
      return okResponse();
    });
  return new Map<string, Route>([
    ["/cgi-bin/stable_token", ({ request, body }) => {
      requireMethod(request, "POST");
      const { grant_type, appid, secret, force_refresh } = parseJsonObject(body.text);
      return jsonResponse(tokens.stable({ grant_type, appid, secret, force_refresh }));
    }],
    ["/cgi-bin/token", ({ request, url }) => {
      requireMethod(request, "GET");
      const query = url.searchParams;
      return jsonResponse(
        tokens.classic({ grant_type: query.get("grant_type"), appid: query.get("appid"), secret: query.get("secret") }),
      );
    }],
    ["/cgi-bin/message/custom/send", send(false)],
    ["/cgi-bin/message/custom/business/send", send(true)],
    ["/cgi-bin/message/custom/typing", typing(false)],
    ["/cgi-bin/message/custom/business/typing", typing(true)],
    [
      "/cgi-bin/message/subscribe/send",
      authorized("POST", ({ body }) => {
        const message = parseSubscribe(body.text, state.templates);
        const msgid = state.nextMsgId();
        knownUser(message.touser).deliverSubscribe({
          templateId: message.templateId,
          data: message.data,
          ...(message.page === undefined ? {} : { page: message.page }),
          msgid,
        });
        // The msgid is a bare 64-bit integer, as WeChat writes it.
        return new Response(`{"errcode":0,"errmsg":"ok","msgid":${msgid}}`, {
          headers: { "content-type": "application/json; encoding=utf-8" },
        });
      }),
    ],
    [
      "/cgi-bin/media/upload",
      authorized("POST", ({ url, body }) => media.upload(url.searchParams.get("type"), body.form)),
    ],
    [
      "/wxa/msg_sec_check",
      authorized(
        "POST",
        ({ body }) => jsonResponse(checkText(body.text, state.contentCheck, state.userState, state.now())),
      ),
    ],
    ["/cgi-bin/media/get", authorized("GET", ({ url }) => media.download(url.searchParams.get("media_id")))],
  ]);
}

function requireMethod(request: Request, method: "GET" | "POST"): void {
  if (request.method !== method) throw new ApiFailure(method === "POST" ? 43002 : 43001);
}
