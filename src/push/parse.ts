/**
 * Turns a push body (JSON or XML) into a typed {@link PushMessage}. Every failure is a
 * `PushVerificationError("bad_request")` whose message never quotes the body.
 *
 * @module
 */
import { PushVerificationError } from "../errors.ts";
import { parseXmlDocument } from "./_xml.ts";
import type { PushMessage } from "./types.ts";

/** The two body formats WeChat can be configured to send. */
export type PushFormat = "json" | "xml";

/**
 * The format of a body, from its first non-blank character: `{` is JSON, `<` is XML.
 * The Content-Type is not consulted: WeChat's is undocumented and proxies rewrite it.
 *
 * @param text the body
 * @returns `"json"`, `"xml"`, or `undefined` for anything else
 * @example
 * ```ts
 * import { detectFormat } from "./parse.ts";
 * console.log(detectFormat("  <xml></xml>")); // "xml"
 * ```
 */
export function detectFormat(text: string): PushFormat | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    if (c === 0x7b) return "json";
    if (c === 0x3c) return "xml";
    return undefined;
  }
  return undefined;
}

/**
 * Parses a body into its top-level fields, as sent (no typing yet).
 *
 * @param text the body
 * @param format its format, from {@link detectFormat}
 * @returns the fields of the JSON object or of the XML `<xml>` root
 * @throws {PushVerificationError} `bad_request` when the body is malformed
 * @example
 * ```ts
 * import { parseFields } from "./parse.ts";
 * console.log(parseFields('{"MsgId":7360000000000000123}', "json")); // { MsgId: "7360000000000000123" }
 * ```
 */
export function parseFields(text: string, format: PushFormat): Record<string, unknown> {
  return format === "json" ? parseJson(text) : parseXml(text);
}

/**
 * Parses the body of an encrypted (compatible or safe mode) delivery. WeChat's safe-mode
 * XML envelope has one fixed shape; it is read directly, which costs a fraction of a full
 * XML parse, and anything else (compatible mode, other spacing, comments) takes the full
 * parser. Either way the `Encrypt` found is then checked against `msg_signature`.
 *
 * @param text the body
 * @param format its format, from {@link detectFormat}
 * @returns the envelope's fields (`Encrypt`, `ToUserName`, and in compatible mode the message's own)
 * @throws {PushVerificationError} `bad_request` when the body is malformed
 * @example
 * ```ts
 * import { parseEnvelope } from "./parse.ts";
 * const xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>";
 * console.log(parseEnvelope(xml, "xml")); // { ToUserName: "gh_1", Encrypt: "abc=" }
 * ```
 */
export function parseEnvelope(text: string, format: PushFormat): Record<string, unknown> {
  if (format === "xml") {
    const match = SAFE_XML_ENVELOPE.exec(text);
    if (match !== null) return { ToUserName: match[1], Encrypt: match[2] };
  }
  return parseFields(text, format);
}

/** `<xml><ToUserName>CDATA</ToUserName><Encrypt>CDATA base64</Encrypt></xml>`, blanks allowed between tags. */
const SAFE_XML_ENVELOPE =
  /^\s*<xml>\s*<ToUserName><!\[CDATA\[([^\]<>&]*)\]\]><\/ToUserName>\s*<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]*)\]\]><\/Encrypt>\s*<\/xml>\s*$/;

/**
 * Parses a body into a typed message: the common fields and those of the known kinds
 * are checked, `CreateTime` becomes a number, `MsgId` stays a string with all its digits.
 *
 * @param text the body (decrypted, in safe mode)
 * @param format its format; default detected from the first character
 * @returns the message
 * @throws {PushVerificationError} `bad_request` when the body is malformed or a field is missing
 * @example
 * ```ts
 * import { parsePushMessage } from "./parse.ts";
 * const msg = parsePushMessage('{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":7360000000000000123}');
 * console.log(msg.MsgId); // "7360000000000000123"
 * ```
 */
export function parsePushMessage(text: string, format: PushFormat | undefined = detectFormat(text)): PushMessage {
  if (format === undefined) throw badRequest("Body is neither JSON nor XML");
  return toPushMessage(parseFields(text, format));
}

/**
 * Checks and types the fields of a message.
 *
 * @param fields the fields from {@link parseFields}
 * @returns the message
 * @throws {PushVerificationError} `bad_request` naming the first missing or malformed field
 * @example
 * ```ts
 * import { toPushMessage } from "./parse.ts";
 * const msg = toPushMessage({ ToUserName: "gh_1", FromUserName: "o1", CreateTime: "1", MsgType: "event", Event: "x" });
 * console.log(msg.CreateTime); // 1
 * ```
 */
export function toPushMessage(fields: Record<string, unknown>): PushMessage {
  const message: Record<string, unknown> = { ...fields };
  for (const name of COMMON_FIELDS) requireString(message, name);
  message.CreateTime = toSeconds(message.CreateTime);
  if (message.MsgId !== undefined) message.MsgId = toMsgId(message.MsgId);
  if (message.BusinessId !== undefined) message.BusinessId = toId(message.BusinessId, "BusinessId");
  const kind = message.MsgType === "event" ? `event:${String(message.Event)}` : String(message.MsgType);
  for (const name of KIND_FIELDS[kind] ?? []) requireString(message, name);
  return message as PushMessage;
}

const COMMON_FIELDS = ["ToUserName", "FromUserName", "MsgType"] as const;

/** The fields each typed kind must carry, as strings. */
const KIND_FIELDS: Record<string, readonly string[]> = {
  text: ["Content", "MsgId"],
  image: ["PicUrl", "MediaId", "MsgId"],
  miniprogrampage: ["Title", "AppId", "PagePath", "ThumbUrl", "ThumbMediaId", "MsgId"],
  "event:user_enter_tempsession": ["Event", "SessionFrom"],
};

function requireString(message: Record<string, unknown>, name: string): void {
  if (typeof message[name] !== "string") throw badRequest(`Invalid message: ${name} is missing or not text`);
}

function toSeconds(value: unknown): number {
  const seconds = typeof value === "string" && /^\d{1,15}$/.test(value) ? Number(value) : value;
  if (typeof seconds !== "number" || !Number.isSafeInteger(seconds) || seconds < 0) {
    throw badRequest("Invalid message: CreateTime is not a whole number of seconds");
  }
  return seconds;
}

// JSON bodies have their MsgId quoted before parsing, so a number here is only a
// small integer from an odd encoding (e.g. an escaped key); it is exact if safe.
function toId(value: unknown, name: string): string {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  throw badRequest(`Invalid message: ${name} is not an id`);
}

/**
 * A MsgId is an unsigned 64-bit integer: 1 to 20 digits. Anything longer is not WeChat's,
 * and would make the dedupe key outgrow what stores accept (Workers KV: 512 bytes).
 */
function toMsgId(value: unknown): string {
  const id = toId(value, "MsgId");
  if (!/^\d{1,20}$/.test(id)) throw badRequest("Invalid message: MsgId is not an id of 1 to 20 digits");
  return id;
}

function badRequest(message: string): PushVerificationError {
  return new PushVerificationError("bad_request", message);
}

// --- JSON -------------------------------------------------------------------

/**
 * `"MsgId": <integer>`; the lookahead leaves floats and anything odd to JSON.parse.
 * Starting with the literal lets the engine scan for it quickly.
 */
const NUMERIC_MSG_ID = /"MsgId"(\s*:\s*)(-?(?:0|[1-9]\d*))(?=\s*[,}])/g;

function parseJson(text: string): Record<string, unknown> {
  // MsgId is a 64-bit integer: JSON.parse would round it to a double, so it is
  // turned into a string in the text first (Node 20 has no JSON.parse source access).
  const quoted = text.includes('"MsgId"') ? text.replace(NUMERIC_MSG_ID, quoteMsgId) : text;
  let value: unknown;
  try {
    value = JSON.parse(quoted);
  } catch {
    throw badRequest("Malformed JSON body");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("Malformed JSON body: not an object");
  }
  return value as Record<string, unknown>;
}

/**
 * A `"` preceded by an odd run of backslashes is escaped, i.e. inside a string value:
 * such a match is text, not a key, and stays as it is.
 */
function quoteMsgId(match: string, colon: string, digits: string, offset: number, text: string): string {
  let backslashes = 0;
  while (offset - backslashes > 0 && text.charCodeAt(offset - backslashes - 1) === 0x5c) backslashes++;
  return backslashes % 2 === 1 ? match : `"MsgId"${colon}"${digits}"`;
}

// --- XML --------------------------------------------------------------------

function parseXml(text: string): Record<string, unknown> {
  // The reader refuses DTDs, so no entity-expansion or external-entity tricks get in.
  const fields = parseXmlDocument(text);
  if (Object.keys(fields).length === 0) throw badRequest("Malformed XML body: no <xml> root with fields");
  return fields;
}
