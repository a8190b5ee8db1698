/**
 * Replies a push handler can return, and their wire forms.
 *
 * @module
 */
import { cdata } from "../internal/xml.ts";
import type { PushFormat } from "./parse.ts";
import type { PushMessage } from "./types.ts";

/** The kinds of reply, in WeChat's `MsgType` words. */
export type ReplyType = "transfer_customer_service";

/**
 * What a push handler returns to answer WeChat with more than `success`.
 *
 * @example Hand the conversation to the customer-service tool
 * ```ts
 * import { MiniProgram, Reply } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * // Your fetch handler: `export default { fetch: handler }` on Workers, or given to the server on Deno, Bun or Node
 * const handler = (request: Request) => mp.push.handle(request, () => Reply.transferCustomerService());
 *
 * // The emulated WeChat pushes a user's message to it:
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", push: { token: "TOKEN" } });
 * const outcome = await (await wechat.user("OPENID").says("I need a human")).deliver(handler);
 * console.log(outcome.reply?.includes("<MsgType><![CDATA[transfer_customer_service]]></MsgType>")); // true
 * ```
 */
export class Reply {
  /** The reply's `MsgType`. */
  readonly type: ReplyType;

  private constructor(type: ReplyType) {
    this.type = type;
  }

  /**
   * Forwards the user's message to the WeChat customer-service tool (`transfer_customer_service`).
   * Only for user messages: WeChat does not forward events.
   *
   * @returns the reply
   * @example
   * ```ts
   * import { Reply } from "@kefu/edge";
   * console.log(Reply.transferCustomerService().type); // "transfer_customer_service"
   * ```
   */
  static transferCustomerService(): Reply {
    return new Reply("transfer_customer_service");
  }

  /**
   * The reply kept in a dedupe mark, read back for a retry of an answered message.
   *
   * @param type a stored {@link Reply.type}
   * @returns the reply, or `undefined` for anything else
   * @example
   * ```ts
   * import { Reply } from "@kefu/edge";
   * console.log(Reply.fromType("transfer_customer_service")?.type); // "transfer_customer_service"
   * ```
   */
  static fromType(type: string): Reply | undefined {
    return type === "transfer_customer_service" ? new Reply(type) : undefined;
  }
}

/**
 * The reply's XML: to the user (the message's sender), from the mini program.
 *
 * @param reply what the handler returned
 * @param message the message being answered
 * @param createTime seconds since the epoch
 * @returns the XML document
 * @example
 * ```ts
 * import { Reply } from "@kefu/edge";
 * import { replyXml } from "./reply.ts";
 * const msg = { ToUserName: "gh_1", FromUserName: "o1", CreateTime: 1, MsgType: "text", Content: "hi", MsgId: "1" } as const;
 * console.log(replyXml(Reply.transferCustomerService(), msg, 1399197672));
 * ```
 */
export function replyXml(reply: Reply, message: PushMessage, createTime: number): string {
  return `<xml><ToUserName>${cdata(message.FromUserName)}</ToUserName>` +
    `<FromUserName>${cdata(message.ToUserName)}</FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType>${cdata(reply.type)}</MsgType></xml>`;
}

/** The fields of a safe-mode reply envelope. */
export interface EncryptedEnvelope {
  Encrypt: string;
  MsgSignature: string;
  TimeStamp: string;
  Nonce: string;
}

/**
 * Wraps an encrypted reply in the envelope of the request's format.
 *
 * @param format the request's format
 * @param envelope ciphertext, its signature, the timestamp and nonce it was signed with
 * @returns the response body
 * @example
 * ```ts
 * import { envelopeBody } from "./reply.ts";
 * console.log(envelopeBody("json", { Encrypt: "abc=", MsgSignature: "f00", TimeStamp: "1713424427", Nonce: "415670741" }));
 * // {"Encrypt":"abc=","MsgSignature":"f00","TimeStamp":1713424427,"Nonce":"415670741"}
 * ```
 */
export function envelopeBody(format: PushFormat, envelope: EncryptedEnvelope): string {
  if (format === "json") {
    // WeChat's sample sends TimeStamp as a number and Nonce as a string.
    return JSON.stringify({ ...envelope, TimeStamp: Number(envelope.TimeStamp) });
  }
  return `<xml><Encrypt>${cdata(envelope.Encrypt)}</Encrypt>` +
    `<MsgSignature>${cdata(envelope.MsgSignature)}</MsgSignature>` +
    `<TimeStamp>${envelope.TimeStamp}</TimeStamp><Nonce>${cdata(envelope.Nonce)}</Nonce></xml>`;
}
