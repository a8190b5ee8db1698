/**
 * Turns a push body (JSON or XML) into a typed {@link PushMessage}. Every failure is a
 * `PushVerificationError("bad_request")` whose message never quotes the body.
 *
 * @module
 */
import { PushVerificationError } from "../errors.ts";
import { idFields, quoteIds } from "../internal/exact_ids.ts";
import { jsonObject } from "../internal/json.ts";
import { parseXmlDocument } from "../internal/xml.ts";
import { missingField, type PushMessage, typedKind } from "./types.ts";

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
 * Parses a body into a message: the common fields and those of the known kinds are
 * checked, `CreateTime` becomes a number, `MsgId` stays a string with all its digits.
 * A body that parses but does not fit its kind is still returned (as an
 * `OtherPushMessage`, see {@link typePushMessage}); only a body that cannot be
 * parsed at all throws.
 *
 * @param text the body (decrypted, in safe mode)
 * @param format its format; default detected from the first character
 * @returns the message
 * @throws {PushVerificationError} `bad_request` when the body is not a JSON object or an XML `<xml>` document
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
 * Types the fields of a message; never throws (see {@link typePushMessage}).
 *
 * @param fields the fields from {@link parseFields}
 * @returns the message
 * @example
 * ```ts
 * import { toPushMessage } from "./parse.ts";
 * const msg = toPushMessage({ ToUserName: "gh_1", FromUserName: "o1", CreateTime: "1", MsgType: "event", Event: "x" });
 * console.log(msg.CreateTime); // 1
 * ```
 */
export function toPushMessage(fields: Record<string, unknown>): PushMessage {
  return typePushMessage(fields).message;
}

/** What did not fit when a message was typed: the kind it claimed and the first field that was wrong. */
export interface PushMismatch {
  /** `text`, `image`, `event:user_enter_tempsession`, … or `common` for the fields every push has. */
  kind: string;
  /** The missing or malformed field, e.g. `SessionFrom`. */
  field: string;
}

/**
 * Types the fields of a verified message without ever refusing it for its shape:
 * - `MsgID` (as some pushes spell it) is read as `MsgId`;
 * - `CreateTime` becomes a number (0 when it is not a whole number of seconds), `MsgId` a
 *   string of 1 to 20 digits (an id that is not is left as sent and never used to deduplicate);
 * - a message whose fields do not fit its kind (a text without `Content`, a session event
 *   without `SessionFrom`) keeps every field as sent: {@link isPushMessage} does not narrow
 *   it to the kind, so it reaches the handler as an `OtherPushMessage`.
 *
 * @param fields the fields from {@link parseFields}
 * @returns the message, and the first mismatch when there was one
 * @example
 * ```ts
 * import { typePushMessage } from "./parse.ts";
 * const { mismatch } = typePushMessage({ ToUserName: "gh_1", FromUserName: "o1", CreateTime: 1, MsgType: "event", Event: "user_enter_tempsession" });
 * console.log(mismatch); // { kind: "event:user_enter_tempsession", field: "SessionFrom" }
 * ```
 */
export function typePushMessage(fields: Record<string, unknown>): { message: PushMessage; mismatch?: PushMismatch } {
  const message: Record<string, unknown> = { ...fields };
  let mismatch: PushMismatch | undefined;
  const note = (kind: string, field: string) => void (mismatch ??= { kind, field });
  if (message.MsgId === undefined && message.MsgID !== undefined) {
    message.MsgId = message.MsgID;
    delete message.MsgID;
  }
  for (const name of COMMON_FIELDS) {
    if (typeof message[name] !== "string") {
      note("common", name);
      message[name] = typeof message[name] === "number" ? String(message[name]) : "";
    }
  }
  const seconds = toSeconds(message.CreateTime);
  if (seconds === undefined) note("common", "CreateTime");
  message.CreateTime = seconds ?? 0;
  for (const name of ["MsgId", "BusinessId"] as const) {
    if (message[name] === undefined) continue;
    const id = toId(message[name]);
    if (id === undefined) note("common", name);
    else message[name] = id;
  }
  const kind = typedKind(message);
  if (kind !== undefined) {
    if (kind.listElement !== undefined) normaliseList(message, kind.listElement);
    const missing = missingField(message, kind);
    if (missing !== undefined) note(kind.key, missing);
  }
  return mismatch === undefined ? { message: message as PushMessage } : { message: message as PushMessage, mismatch };
}

const COMMON_FIELDS = ["ToUserName", "FromUserName", "MsgType"] as const;

/**
 * A subscribe event's `List`, as an array of items whose values are text: JSON has it at the
 * top, XML inside the event's element; one item comes as an object, several as an array.
 * Left alone (and then not typed) when it is neither.
 */
function normaliseList(message: Record<string, unknown>, wrapper: string): void {
  const wrapped = message[wrapper];
  const source = message.List ??
    (typeof wrapped === "object" && wrapped !== null ? (wrapped as Record<string, unknown>).List : undefined);
  const items = Array.isArray(source) ? source : source === undefined ? undefined : [source];
  if (
    items === undefined || !items.every((item) => typeof item === "object" && item !== null && !Array.isArray(item))
  ) {
    return;
  }
  message.List = items.map((item) =>
    Object.fromEntries(
      Object.entries(item as Record<string, unknown>).map(([k, v]) => [k, typeof v === "number" ? String(v) : v]),
    )
  );
}

function toSeconds(value: unknown): number | undefined {
  const seconds = typeof value === "string" && /^\d{1,15}$/.test(value) ? Number(value) : value;
  return typeof seconds === "number" && Number.isSafeInteger(seconds) && seconds >= 0 ? seconds : undefined;
}

// JSON bodies have their MsgId quoted before parsing, so a number here is only a small
// integer from an odd encoding (e.g. an escaped key); it is exact if safe. An id is an
// unsigned 64-bit integer: 1 to 20 digits, which also keeps dedupe keys short.
function toId(value: unknown): string | undefined {
  const id = typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
  return typeof id === "string" && /^\d{1,20}$/.test(id) ? id : undefined;
}

/**
 * The refusal of a malformed push request (its query or its body): `PushVerificationError`
 * `bad_request`, answered 400. The message names what is wrong and never quotes the body.
 *
 * @param message what is wrong
 * @returns the error, to throw
 * @example
 * ```ts
 * import { badRequest } from "./parse.ts";
 * console.log(badRequest("Body is empty").status); // 400
 * ```
 */
export function badRequest(message: string): PushVerificationError {
  return new PushVerificationError("bad_request", message);
}

// --- JSON -------------------------------------------------------------------

/** `MsgId`, and `MsgID` as subscribe events spell it. */
const MSG_IDS = idFields(["MsgId", "MsgID"]);

function parseJson(text: string): Record<string, unknown> {
  const value = jsonObject(quoteIds(text, MSG_IDS));
  if (value === undefined) throw badRequest("Malformed JSON body: not a JSON object");
  if (Object.keys(value).length === 0) throw badRequest("Malformed JSON body: an object without fields");
  return value;
}

// --- XML --------------------------------------------------------------------

function parseXml(text: string): Record<string, unknown> {
  // The reader refuses DTDs, so no entity-expansion or external-entity tricks get in.
  const fields = parseXmlDocument(text);
  if (Object.keys(fields).length === 0) throw badRequest("Malformed XML body: no <xml> root with fields");
  return fields;
}
