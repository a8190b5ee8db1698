/**
 * Text helpers for customer-service messages: splitting a long answer into parts that each
 * fit WeChat's text limit, and the mini-program link WeChat renders inside a text message.
 *
 * @module
 */
import { ValidationError } from "../errors.ts";

/**
 * The default text limit, in UTF-8 bytes.
 * [UNCERTAIN] WeChat documents no limit; a community answer says about 2048, unit unclear, and
 * longer texts get 45002. Counting UTF-8 bytes is the stricter reading (a Chinese character is 3).
 */
export const DEFAULT_MAX_TEXT_BYTES = 2048;

/** Options of {@link splitText}. */
export interface SplitTextOptions {
  /** The largest part, in UTF-8 bytes; default {@link DEFAULT_MAX_TEXT_BYTES}. */
  maxBytes?: number | undefined;
}

/**
 * The UTF-8 length of `text`, without encoding it.
 *
 * @param text any text
 * @returns its size in UTF-8 bytes (a lone surrogate counts 3, as its replacement character)
 * @example
 * ```ts
 * import { utf8Length } from "@kefu/edge";
 * console.log(utf8Length("a中😀")); // 8
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

// Links are never cut: an <a …>…</a> element, or a URL: visible ASCII up to a blank, a quote, an
// angle bracket or any other character (a CJK character or full-width punctuation ends it).
const PROTECTED = /<a\b[^>]*>[\s\S]*?<\/a\s*>|https?:\/\/[!#-&(-;=?-~]+/gi;
// After a blank line (paragraph), a line end, or a sentence end (CJK, or Latin before a blank).
const PARAGRAPH = /\n[ \t]*\n\s*/g;
const SENTENCE = /(?:[。！？；…]+[”’」』）)]*|[.!?;]+[”’"')\]]*(?=\s)|\n)\s*/g;

/**
 * Splits `content` into parts that each fit `maxBytes` UTF-8 bytes: at paragraph breaks
 * where it can, then at line and sentence ends, then between graphemes (never inside an
 * emoji or a combined character), and never inside a URL or an `<a …>…</a>` link. Adjacent
 * pieces are joined again while they fit, so there are as few parts as the breaks allow.
 * Joining the parts gives `content` back exactly.
 *
 * @param content the text
 * @param options `maxBytes`: the part limit (default 2048)
 * @returns the parts, in order (one part when it fits; none for an empty text)
 * @throws {ValidationError} `maxBytes` when it is not a whole number of at least 4; `text.content` when a
 *   single link (or character) is longer than `maxBytes`
 * @example
 * ```ts
 * import { splitText } from "@kefu/edge";
 * console.log(splitText("第一段。\n\n第二段。", { maxBytes: 16 })); // ["第一段。\n\n", "第二段。"]
 * ```
 */
export function splitText(content: string, options: SplitTextOptions = {}): string[] {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_TEXT_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 4) {
    throw new ValidationError("maxBytes", "must be a whole number of bytes, at least 4");
  }
  if (typeof content !== "string") throw new ValidationError("text.content", "must be a string");
  if (content === "") return [];
  if (utf8Length(content) <= maxBytes) return [content];
  const shielded = protectedRanges(content);
  const inside = (cut: number) => shielded.some(([from, to]) => cut > from && cut < to);
  const breaks = (pattern: RegExp): number[] =>
    [...content.matchAll(pattern)].map((m) => m.index + m[0].length).filter((cut) => !inside(cut));
  const levels = [breaks(PARAGRAPH), breaks(SENTENCE), graphemeBreaks(content).filter((cut) => !inside(cut))];
  const pieces = split(content, 0, content.length, levels, 0, maxBytes);
  return merge(pieces, maxBytes);
}

function protectedRanges(text: string): Array<[number, number]> {
  return [...text.matchAll(PROTECTED)].map((m) => [m.index, m.index + m[0].length]);
}

function graphemeBreaks(text: string): number[] {
  const segmenter = typeof Intl.Segmenter === "function"
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" })
    : undefined;
  if (segmenter === undefined) {
    // Without Intl.Segmenter, code points: never half a surrogate pair.
    const cuts: number[] = [];
    for (let i = 0; i < text.length;) {
      i += (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
      cuts.push(i);
    }
    return cuts;
  }
  return [...segmenter.segment(text)].map((s) => s.index + s.segment.length);
}

/** `text[from, to)` cut at the breaks of `levels[level]` within it, finer levels for what is still too long. */
function split(
  text: string,
  from: number,
  to: number,
  levels: number[][],
  level: number,
  maxBytes: number,
): string[] {
  const piece = text.slice(from, to);
  if (utf8Length(piece) <= maxBytes) return [piece];
  const cuts = levels[level]!.filter((cut) => cut > from && cut < to);
  if (level === levels.length - 1) return pack(text, from, to, cuts, maxBytes);
  const out: string[] = [];
  let start = from;
  for (const cut of [...cuts, to]) {
    out.push(...split(text, start, cut, levels, level + 1, maxBytes));
    start = cut;
  }
  return out;
}

/** The finest level: as many graphemes per piece as fit. */
function pack(text: string, from: number, to: number, cuts: number[], maxBytes: number): string[] {
  const out: string[] = [];
  let start = from;
  let last = from;
  for (const cut of [...cuts, to]) {
    if (utf8Length(text.slice(start, cut)) > maxBytes) {
      if (last !== start) {
        out.push(text.slice(start, last));
        start = last;
      }
      if (utf8Length(text.slice(start, cut)) > maxBytes) throw unbreakable(text.slice(start, cut), maxBytes);
    }
    last = cut;
  }
  out.push(text.slice(start, to));
  return out;
}

function unbreakable(piece: string, maxBytes: number): ValidationError {
  return new ValidationError(
    "text.content",
    `a link (or a single character) of ${utf8Length(piece)} bytes is longer than the ${maxBytes}-byte limit`,
  );
}

function merge(pieces: string[], maxBytes: number): string[] {
  const out: string[] = [];
  let current = "";
  let bytes = 0;
  for (const piece of pieces) {
    const size = utf8Length(piece);
    if (current !== "" && bytes + size > maxBytes) {
      out.push(current);
      current = "";
      bytes = 0;
    }
    current += piece;
    bytes += size;
  }
  if (current !== "") out.push(current);
  return out;
}

/** What {@link miniProgramLink} builds a link from. */
export interface MiniProgramLinkOptions {
  /** The link's text, as the user sees it. */
  text: string;
  /** The page to open, as in app.json, with an optional query (`pages/order/index?id=42`). */
  path: string;
  /** The mini program's AppID: it must be the sender's own (WeChat's rule). Default the given MiniProgram's. */
  appId?: string | undefined;
  /** For WeChat clients below 6.5.16, which open this URL instead; default `https://developers.weixin.qq.com`. */
  href?: string | undefined;
}

/**
 * The `<a data-miniprogram-appid="…" data-miniprogram-path="…" href="…">…</a>` link that WeChat
 * renders inside a text message as a tap to open a page of the mini program. Attribute values
 * are escaped; the text may not hold `<` or `>`, which would end the link (other characters are
 * kept as they are: [UNCERTAIN] whether WeChat decodes entities in message text).
 *
 * @param options the text, the page path, the AppID and the fallback `href`
 * @param miniProgram the sender: its AppID is the default, and a different `appId` is refused
 * @returns the link, to put in `text.content`
 * @throws {ValidationError} naming the field: an empty text or path, `<`/`>` in the text, an AppID that
 *   is not the sender's, an `href` that is not an http(s) URL
 * @example
 * ```ts
 * import { miniProgramLink } from "@kefu/edge";
 * console.log(miniProgramLink({ text: "查看订单", path: "pages/order?id=1&from=kf", appId: "wx1" }));
 * // <a data-miniprogram-appid="wx1" data-miniprogram-path="pages/order?id=1&amp;from=kf" href="https://developers.weixin.qq.com">查看订单</a>
 * ```
 */
export function miniProgramLink(options: MiniProgramLinkOptions, miniProgram?: { appId: string }): string {
  const { text, path } = options;
  if (typeof text !== "string" || text.trim() === "") throw new ValidationError("text", "must not be empty");
  if (/[<>]/.test(text)) throw new ValidationError("text", "must not contain < or >");
  if (typeof path !== "string" || path.trim() === "") throw new ValidationError("path", "must not be empty");
  const appId = options.appId ?? miniProgram?.appId;
  if (typeof appId !== "string" || appId === "") {
    throw new ValidationError("appId", "is required without a MiniProgram");
  }
  if (miniProgram !== undefined && appId !== miniProgram.appId) {
    throw new ValidationError("appId", "must be the sending mini program's own AppID (WeChat's rule)");
  }
  const href = options.href ?? "https://developers.weixin.qq.com";
  if (!/^https?:\/\/[^\s]+$/i.test(href)) throw new ValidationError("href", "must be an http(s) URL");
  return `<a data-miniprogram-appid="${attribute(appId)}" data-miniprogram-path="${attribute(path)}" ` +
    `href="${attribute(href)}">${text}</a>`;
}

function attribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
