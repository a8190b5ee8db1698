// Private: validation of the send and typing bodies (spec §2 and §3).
import { ApiFailure } from "./_responses.ts";

export const MSGTYPES = ["text", "image", "link", "miniprogrampage"] as const;
export type MsgType = typeof MSGTYPES[number];

/** Fields each msgtype's object must carry as strings. */
const FIELDS: Record<MsgType, readonly string[]> = {
  text: ["content"],
  image: ["media_id"],
  link: ["title", "description", "url", "thumb_url"],
  miniprogrampage: ["title", "pagepath", "thumb_media_id"],
};

// [UNCERTAIN] the text limit is undocumented; a community answer says ~2048 with the unit
// unclear. We count UTF-8 bytes, the stricter reading, so an emulator pass means WeChat passes.
const MAX_TEXT_BYTES = 2048;

/** A validated send body. */
export interface SendBody {
  touser: unknown;
  msgtype: MsgType;
  object: Record<string, unknown>;
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
  for (const field of FIELDS[msgtype]) if (typeof object[field] !== "string") throw new ApiFailure(47001);
  // silenceper adds an optional appid to miniprogrampage; accepted when it is a string.
  if (msgtype === "miniprogrampage" && "appid" in object && typeof object.appid !== "string") {
    throw new ApiFailure(47001);
  }
  if (msgtype === "text") checkText(object.content as string);
  return { touser: body.touser, msgtype, object };
}

/** Parses a typing body; throws 44002, 40033, 47001 or 45072. */
export function parseTyping(text: string): { touser: unknown; command: "Typing" | "CancelTyping" } {
  const body = parseJsonObject(text);
  const command = body.command;
  if (command !== "Typing" && command !== "CancelTyping") throw new ApiFailure(45072);
  return { touser: body.touser, command };
}

/** The media ids a send refers to (they must exist: 40007). */
export function mediaIdsOf({ msgtype, object }: SendBody): string[] {
  if (msgtype === "image") return [object.media_id as string];
  if (msgtype === "miniprogrampage") return [object.thumb_media_id as string];
  return [];
}

/** Parses a JSON API body: 44002 when empty, 40033 for escaped non-ASCII, 47001 when malformed. */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === "") throw new ApiFailure(44002);
  if (hasEscapedNonAscii(text)) throw new ApiFailure(40033);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiFailure(47001);
  }
  if (!isRecord(body)) throw new ApiFailure(47001);
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
  return typeof value === "string" && (MSGTYPES as readonly string[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
