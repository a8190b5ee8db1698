// Private: the push wire formats (spec §6): JSON and XML bodies, safe-mode envelopes, replies.
import { jsonObject } from "../internal/json.ts";
import { cdata } from "../internal/xml.ts";
// The core's table of typed push kinds names the element each event's XML List is wrapped in.
import { typedKind } from "../push/types.ts";
import type { PushFields, PushList } from "./types.ts";

/** Fields WeChat writes as bare integers; every other field is a string. */
const INTEGER_FIELDS = new Set(["CreateTime", "MsgId"]);

/**
 * JSON with `MsgId` as a bare 64-bit integer: JSON.stringify cannot write one from a
 * string without quotes, and a number would lose digits, so fields are written one by one.
 */
export function toJson(fields: PushFields): string {
  const parts = Object.entries(fields).map(([key, value]) => {
    if (Array.isArray(value)) return `${JSON.stringify(key)}:${jsonList(value)}`;
    const scalar = value as string | number;
    return `${JSON.stringify(key)}:${INTEGER_FIELDS.has(key) ? integer(key, scalar) : JSON.stringify(String(scalar))}`;
  });
  return `{${parts.join(",")}}`;
}

/** `<xml><Field><![CDATA[…]]></Field>…</xml>`, integers bare; a `List` inside the event's element. */
export function toXml(fields: PushFields): string {
  const parts = Object.entries(fields).map(([key, value]) => {
    if (Array.isArray(value)) return xmlList(String(fields.Event ?? ""), value);
    const scalar = value as string | number;
    return `<${key}>${INTEGER_FIELDS.has(key) ? integer(key, scalar) : cdata(String(scalar))}</${key}>`;
  });
  return `<xml>${parts.join("")}</xml>`;
}

// One item as an object, several as an array: how WeChat writes a subscribe event's List.
// A MsgID inside is a bare 64-bit integer.
function jsonList(items: PushList): string {
  const item = (fields: Readonly<Record<string, string>>) =>
    `{${
      Object.entries(fields).map(([k, v]) =>
        `${JSON.stringify(k)}:${k === "MsgID" ? integer(k, v) : JSON.stringify(v)}`
      )
        .join(",")
    }}`;
  return items.length === 1 ? item(items[0]!) : `[${items.map(item).join(",")}]`;
}

/**
 * `subscribe_msg_popup_event` → `<SubscribeMsgPopupEvent><List>…</List>…</SubscribeMsgPopupEvent>`: the
 * element the core's table gives the event, else (an event the core does not type) its name in PascalCase.
 */
function xmlList(event: string, items: PushList): string {
  const wrapper = typedKind({ MsgType: "event", Event: event })?.listElement ??
    event.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
  const lists = items.map((fields) =>
    `<List>${
      Object.entries(fields).map(([k, v]) => `<${k}>${k === "MsgID" ? integer(k, v) : cdata(v)}</${k}>`).join("")
    }</List>`
  );
  return `<${wrapper}>${lists.join("")}</${wrapper}>`;
}

/** The safe-mode body: `ToUserName` and `Encrypt` only. */
export function envelope(format: "json" | "xml", toUserName: string, encrypt: string): string {
  return format === "json"
    ? JSON.stringify({ ToUserName: toUserName, Encrypt: encrypt })
    : `<xml><ToUserName>${cdata(toUserName)}</ToUserName><Encrypt>${cdata(encrypt)}</Encrypt></xml>`;
}

/** An encrypted reply's fields, from JSON or XML; undefined when the text is not one. */
export function readEncryptedReply(
  text: string,
): { encrypt: string; msgSignature: string; timestamp: string; nonce: string } | undefined {
  const get = replyReader(text);
  if (get === undefined) return undefined;
  const [encrypt, msgSignature, timestamp, nonce] = ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"].map(get);
  if (encrypt === undefined || msgSignature === undefined || timestamp === undefined || nonce === undefined) {
    return undefined;
  }
  return { encrypt, msgSignature, timestamp, nonce };
}

/** Whether `text` is a well-formed reply message: a JSON object or an `<xml>…</xml>` document. */
export function isPlainReply(text: string): boolean {
  return replyReader(text) !== undefined;
}

// Returns a field reader for a JSON object or an <xml> document, or undefined for anything else.
function replyReader(text: string): ((name: string) => string | undefined) | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const record = jsonObject(trimmed);
    if (record === undefined) return undefined;
    return (name) => {
      const value = record[name];
      return typeof value === "string" || typeof value === "number" ? String(value) : undefined;
    };
  }
  if (/^<xml>[\s\S]*<\/xml>$/.test(trimmed)) return (name) => xmlField(trimmed, name);
  return undefined;
}

function xmlField(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>\\s*(?:<!\\[CDATA\\[([\\s\\S]*?)\\]\\]>|([^<]*))\\s*</${name}>`).exec(xml);
  return match === null ? undefined : (match[1] ?? match[2] ?? "").trim();
}

function integer(key: string, value: string | number): string {
  const text = String(value);
  if (!/^-?\d+$/.test(text)) throw new TypeError(`Push field ${key} must be an integer: ${text}`);
  return text;
}
