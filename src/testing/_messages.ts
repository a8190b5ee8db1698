// Private: the outbound message types (spec §2) — one table that the send check, the media
// check and the dev server's chat page all read — and validation of the send and typing bodies.
import { jsonObject } from "../internal/json.ts";
import { ApiFailure } from "./_responses.ts";
import type { InboxEntry } from "./types.ts";

/** A msgtype the emulator accepts on `/cgi-bin/message/custom/send`. */
export type MsgType = Extract<InboxEntry, { kind: "message" }>["msgtype"];

/** How the dev server's chat page shows a message of one type: fields of the msgtype's object, by role. */
export interface MessageView {
  /** Names the type on cards, e.g. "Mini program". */
  readonly label: string;
  /** Shown as the message text. */
  readonly text?: string;
  /** Shown as a card's title. */
  readonly title?: string;
  /** Shown as lines under the title. */
  readonly lines?: readonly string[];
  /** Holds a media_id, shown as an image. */
  readonly image?: string;
}

/** What the emulator knows of one outbound message type. */
export interface MessageSpec {
  /** Fields the msgtype's object must carry as strings (47001 otherwise). */
  readonly required: readonly string[];
  /** Fields that may be present, as strings. */
  readonly optional?: readonly string[];
  /** Fields that hold a media_id, which must exist (40007). */
  readonly media?: readonly string[];
  /** Further checks of the object (throw {@link ApiFailure}). */
  readonly check?: (object: Record<string, unknown>) => void;
  /** How the chat page shows it. */
  readonly view: MessageView;
}

// [UNCERTAIN] the text limit is undocumented; a community answer says ~2048 with the unit
// unclear. We count UTF-8 bytes, the stricter reading, so an emulator pass means WeChat passes.
const MAX_TEXT_BYTES = 2048;

/**
 * Every outbound message type: one entry per type of the core's table (`MSG_TYPES`, in
 * src/customer_service/schemas.ts); the compiler points here until each has one.
 */
export const MESSAGE_TYPES: { readonly [K in MsgType]: MessageSpec } = {
  text: {
    required: ["content"],
    check: (object) => checkText(object.content as string),
    view: { label: "Text", text: "content" },
  },
  image: { required: ["media_id"], media: ["media_id"], view: { label: "Image", image: "media_id" } },
  link: {
    required: ["title", "description", "url", "thumb_url"],
    view: { label: "Link", title: "title", lines: ["description", "url"] },
  },
  miniprogrampage: {
    required: ["title", "pagepath", "thumb_media_id"],
    // silenceper adds an optional appid to miniprogrampage; accepted when it is a string.
    optional: ["appid"],
    media: ["thumb_media_id"],
    view: { label: "Mini program", title: "title", lines: ["pagepath"], image: "thumb_media_id" },
  },
};

const MSGTYPES = Object.keys(MESSAGE_TYPES) as MsgType[];

/** A validated send body. */
export interface SendBody {
  touser: unknown;
  msgtype: MsgType;
  object: Record<string, unknown>;
  /** `businessid`, when given. */
  businessId?: string;
  /** `aimsgcontext`, when given. */
  aiMsgContext?: Record<string, unknown>;
}

/** Parses a send body; throws 44002, 40033, 47001, 40008, 44004 or 45002. */
export function parseSend(text: string): SendBody {
  const body = parseJsonObject(text);
  const msgtype = body.msgtype;
  if (!isMsgType(msgtype)) throw new ApiFailure(40008);
  // Exactly the one object that matches msgtype.
  if (MSGTYPES.some((other) => other !== msgtype && other in body)) throw new ApiFailure(47001);
  const object = body[msgtype];
  if (!isRecord(object)) throw new ApiFailure(47001);
  const spec = MESSAGE_TYPES[msgtype];
  for (const field of spec.required) if (typeof object[field] !== "string") throw new ApiFailure(47001);
  for (const field of spec.optional ?? []) {
    if (field in object && typeof object[field] !== "string") throw new ApiFailure(47001);
  }
  spec.check?.(object);
  const parsed: SendBody = { touser: body.touser, msgtype, object };
  if (body.businessid !== undefined) parsed.businessId = businessIdOf(body.businessid);
  if (body.aimsgcontext !== undefined) parsed.aiMsgContext = aiMsgContextOf(body.aimsgcontext);
  return parsed;
}

function businessIdOf(value: unknown): string {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  throw new ApiFailure(47001);
}

// [UNCERTAIN] the mini-program shape of aimsgcontext: { is_ai_msg: 1 } (the documented one, and
// the SDK's) or { msgid } (from a single SDK); both are accepted, anything else is 47001.
function aiMsgContextOf(value: unknown): Record<string, unknown> {
  if (!isRecord(value)) throw new ApiFailure(47001);
  const keys = Object.keys(value);
  const ok = keys.length === 1 && ((typeof value.msgid === "string" && value.msgid !== "") || value.is_ai_msg === 1);
  if (!ok) throw new ApiFailure(47001);
  return value;
}

/** A validated subscribe-message body. */
export interface SubscribeBody {
  touser: unknown;
  templateId: string;
  data: Record<string, { value: string }>;
  page?: string;
}

/**
 * Parses a subscribe-message body (spec §6.9); throws 44002, 40033, 47001, 40037 (unknown
 * template), 47003 (data that does not fit the template) or 41030 (bad page).
 */
export function parseSubscribe(
  text: string,
  templates: Readonly<Record<string, readonly string[]>> | undefined,
): SubscribeBody {
  const body = parseJsonObject(text);
  const templateId = body.template_id;
  if (typeof templateId !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(templateId)) throw new ApiFailure(40037);
  if (templates !== undefined && !Object.hasOwn(templates, templateId)) throw new ApiFailure(40037);
  const data = body.data;
  if (!isRecord(data) || Object.keys(data).length === 0) throw new ApiFailure(47003);
  for (const value of Object.values(data)) {
    if (!isRecord(value) || typeof value.value !== "string") throw new ApiFailure(47003);
  }
  const fields = templates?.[templateId];
  if (fields !== undefined) {
    const keys = Object.keys(data).sort();
    if (keys.length !== fields.length || [...fields].sort().some((f, i) => f !== keys[i])) throw new ApiFailure(47003);
  }
  const page = body.page;
  if (page !== undefined && (typeof page !== "string" || page === "" || page.length > 1024)) {
    throw new ApiFailure(41030);
  }
  const parsed: SubscribeBody = { touser: body.touser, templateId, data: data as Record<string, { value: string }> };
  if (page !== undefined) parsed.page = page as string;
  return parsed;
}

/** Parses a typing body; throws 44002, 40033, 47001 or 45072. */
export function parseTyping(
  text: string,
): { touser: unknown; command: "Typing" | "CancelTyping"; businessId?: string } {
  const body = parseJsonObject(text);
  const command = body.command;
  if (command !== "Typing" && command !== "CancelTyping") throw new ApiFailure(45072);
  return body.businessid === undefined
    ? { touser: body.touser, command }
    : { touser: body.touser, command, businessId: businessIdOf(body.businessid) };
}

/** The media ids a send refers to (they must exist: 40007). */
export function mediaIdsOf({ msgtype, object }: SendBody): string[] {
  return (MESSAGE_TYPES[msgtype].media ?? []).map((field) => object[field] as string);
}

/** Parses a JSON API body: 44002 when empty, 40033 for escaped non-ASCII, 47001 when malformed. */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === "") throw new ApiFailure(44002);
  if (hasEscapedNonAscii(text)) throw new ApiFailure(40033);
  const body = jsonObject(text);
  if (body === undefined) throw new ApiFailure(47001);
  return body;
}

// A `\uXXXX` escape is one whose backslash is not itself escaped: preceded by an even run of backslashes.
const ESCAPE = /(?<!\\)(?:\\\\)*\\u([0-9a-fA-F]{4})/g;

/**
 * Whether JSON text carries non-ASCII characters as `\uXXXX` escapes. WeChat shows them to
 * the user literally, so SDKs must send raw UTF-8.
 * [UNCERTAIN] the spec only hints (global code 40033 forbids `\uxxxx` characters) that this
 * endpoint answers 40033; we do, so that an SDK that escapes is caught offline. ASCII escapes
 * (`\u003c`, control characters) are left alone.
 */
export function hasEscapedNonAscii(text: string): boolean {
  for (const match of text.matchAll(ESCAPE)) {
    if (Number.parseInt(match[1] ?? "0", 16) >= 0x80) return true;
  }
  return false;
}

function checkText(content: string): void {
  if (content === "") throw new ApiFailure(44004);
  if (new TextEncoder().encode(content).byteLength > MAX_TEXT_BYTES) throw new ApiFailure(45002);
}

function isMsgType(value: unknown): value is MsgType {
  return typeof value === "string" && Object.hasOwn(MESSAGE_TYPES, value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
