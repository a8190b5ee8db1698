/**
 * A small, strict XML reader for WeChat's push bodies: a root `<xml>` whose children are
 * fields holding text and CDATA, or (for some events) nested elements. It replaces a
 * general-purpose parser to keep the Workers bundle small, and reads only well-formed
 * XML 1.0 without a DTD: no DOCTYPE or entity declarations, so no external entities and
 * no entity expansion. It runs in linear time (forward scans only, no backtracking regex)
 * and refuses anything else with a `PushVerificationError("bad_request")` whose message
 * never quotes the body.
 *
 * Private to kefu-edge (see README.md beside this file).
 *
 * @module
 */
import { PushVerificationError } from "../errors.ts";

/** What an element reads as: its text, its child elements by name, or a list of those for repeated names. */
export type XmlValue = string | XmlFields | (string | XmlFields)[];

/** The child elements of an element, by name; a name that repeats holds the values in order. */
export interface XmlFields {
  [name: string]: XmlValue;
}

/** Deepest accepted nesting, the root `<xml>` counting as 1. WeChat's deepest events reach 4. */
export const MAX_XML_DEPTH = 32;
/** Most elements accepted in one document (a 64 KiB body of `<a/>` holds about 16,000). */
export const MAX_XML_ELEMENTS = 10_000;

const NAMED_ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
/** What may follow `<?xml` up to `?>` (XML 1.0 `XMLDecl`): a version, an optional encoding and standalone. */
const XML_DECLARATION =
  /^[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\3)?[ \t\r\n]*$/;

/**
 * `text` as one CDATA section, or several: a `]]>` inside is split across two sections so it
 * cannot close the section early. What WeChat's bodies and replies wrap their text in.
 *
 * @param text the text
 * @returns the CDATA markup
 * @example
 * ```ts
 * import { cdata, parseXmlDocument } from "./xml.ts";
 * console.log(cdata("a]]>b")); // "<![CDATA[a]]]]><![CDATA[>b]]>"
 * console.log(parseXmlDocument(`<xml><A>${cdata("a]]>b")}</A></xml>`).A); // "a]]>b"
 * ```
 */
export function cdata(text: string): string {
  return `<![CDATA[${text.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

/** One open element. Frames are reused by depth, so a parse allocates few of them. */
interface Frame {
  name: string;
  /** Child elements read so far; `undefined` until the first. */
  fields: XmlFields | undefined;
  /** Text read so far (decoded plain text and CDATA), without leading or held-back trailing blanks. */
  value: string;
  /** Blanks of plain text after the last text read: kept only if more text follows. */
  pending: string;
  /** Whether any text (non-blank plain text or a CDATA section, even empty) was read. */
  hasText: boolean;
}

/**
 * Reads a WeChat push body and returns the fields of its root `<xml>` element.
 *
 * An element holding only text and CDATA becomes a string: CDATA exactly as written,
 * plain text with the five XML entities and character references decoded (any other
 * entity, or a reference to a code point XML does not allow, is refused),
 * and the blanks of plain text at both ends trimmed. An element holding elements
 * becomes an object of them (blanks between them ignored); a name that repeats among
 * siblings becomes an array. Attributes, comments and processing instructions are
 * checked and skipped; line ends are normalised to `\n` as XML requires.
 *
 * @param text the body
 * @returns the children of the root `<xml>`; `{}` when it has none
 * @throws {PushVerificationError} `bad_request` for a DTD or entity declaration, mismatched
 *   or unclosed tags, text or a second element outside the root, a root other than `xml`,
 *   text mixed with elements, more than {@link MAX_XML_DEPTH} levels or
 *   {@link MAX_XML_ELEMENTS} elements, and anything else that is not well-formed
 * @example
 * ```ts
 * import { parseXmlDocument } from "./xml.ts";
 * const fields = parseXmlDocument("<xml><MsgType><![CDATA[text]]></MsgType><A><B>1</B><B>2</B></A></xml>");
 * console.log(fields); // { MsgType: "text", A: { B: ["1", "2"] } }
 * ```
 */
export function parseXmlDocument(text: string): XmlFields {
  if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
  const end = text.length;
  const frames: Frame[] = [];
  let depth = 0;
  let elements = 0;
  let root: XmlFields | undefined;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const start = i;

  while (i < end) {
    const lt = text.indexOf("<", i);
    const stop = lt === -1 ? end : lt;
    if (stop > i) {
      if (depth === 0) {
        if (skipBlanks(text, i, stop) !== stop) fail("text outside the root element");
      } else {
        addPlainText(frames[depth - 1]!, text, i, stop);
      }
    }
    if (lt === -1) break;
    const next = text.charCodeAt(lt + 1);

    if (next === 0x21 /* ! */) {
      if (text.startsWith("<!--", lt)) {
        const close = text.indexOf("-->", lt + 4);
        if (close === -1) fail("unclosed comment");
        if (text.indexOf("--", lt + 4) !== close) fail("'--' inside a comment");
        i = close + 3;
      } else if (text.startsWith("<![CDATA[", lt)) {
        if (depth === 0) fail("CDATA outside the root element");
        const close = text.indexOf("]]>", lt + 9);
        if (close === -1) fail("unclosed CDATA section");
        addText(frames[depth - 1]!, text.slice(lt + 9, close));
        i = close + 3;
      } else {
        fail("DTDs and declarations are not accepted");
      }
    } else if (next === 0x3f /* ? */) {
      const nameEnd = scanName(text, lt + 2);
      const target = text.slice(lt + 2, nameEnd);
      if (target.toLowerCase() === "xml" && (target !== "xml" || lt !== start)) {
        fail("misplaced XML declaration");
      }
      const close = text.indexOf("?>", nameEnd);
      if (target === "xml" && close !== -1 && !XML_DECLARATION.test(text.slice(nameEnd, close))) {
        fail("bad XML declaration");
      }
      if (close === -1) fail("unclosed processing instruction");
      if (close !== nameEnd && !isBlank(text.charCodeAt(nameEnd))) fail("bad processing instruction");
      i = close + 2;
    } else if (next === 0x2f /* / */) {
      if (depth === 0) fail("end tag without a start tag");
      const frame = frames[depth - 1]!;
      const nameEnd = scanName(text, lt + 2);
      if (nameEnd - lt - 2 !== frame.name.length || !text.startsWith(frame.name, lt + 2)) fail("mismatched end tag");
      const gt = skipBlanks(text, nameEnd, end);
      if (text.charCodeAt(gt) !== 0x3e /* > */) fail("bad end tag");
      i = gt + 1;
      depth--;
      const value = frame.fields ?? frame.value;
      if (depth === 0) root = finishRoot(frame);
      else addChild(frames[depth - 1]!, frame.name, value);
    } else {
      const nameEnd = scanName(text, lt + 1);
      const name = text.slice(lt + 1, nameEnd);
      if (depth === 0) {
        if (root !== undefined) fail("a second element outside the root");
        if (name !== "xml") fail("the root element is not <xml>");
      } else if (name === "__proto__") {
        fail("reserved element name");
      }
      if (depth === MAX_XML_DEPTH) fail("elements nested too deep");
      if (++elements > MAX_XML_ELEMENTS) fail("too many elements");
      const tagEnd = skipAttributes(text, nameEnd);
      if (text.charCodeAt(tagEnd) === 0x2f /* / */) {
        // Self-closing: an empty value, at once.
        i = tagEnd + 2;
        if (depth === 0) root = {};
        else addChild(frames[depth - 1]!, name, "");
        continue;
      }
      i = tagEnd + 1;
      const frame = frames[depth++] ??= { name, fields: undefined, value: "", pending: "", hasText: false };
      frame.name = name;
      frame.fields = undefined;
      frame.value = "";
      frame.pending = "";
      frame.hasText = false;
    }
  }
  if (depth > 0) fail("unclosed element");
  if (root === undefined) fail("no root element");
  return root;
}

function fail(what: string): never {
  throw new PushVerificationError("bad_request", `Malformed XML body: ${what}`);
}

function finishRoot(frame: Frame): XmlFields {
  if (frame.hasText) fail("text directly inside <xml>");
  return frame.fields ?? {};
}

function addChild(parent: Frame, name: string, value: string | XmlFields): void {
  if (parent.hasText) fail("text mixed with elements");
  const fields = parent.fields ??= {};
  parent.pending = "";
  if (!Object.hasOwn(fields, name)) {
    fields[name] = value;
    return;
  }
  const previous = fields[name]!;
  // Values are strings or objects, never arrays, so an array here is a list already made.
  if (Array.isArray(previous)) previous.push(value);
  else fields[name] = [previous, value];
}

/** Appends text (a CDATA section, or decoded plain text that is not blank at its ends). */
function addText(frame: Frame, text: string): void {
  if (frame.fields !== undefined) fail("text mixed with elements");
  frame.value += frame.pending + text;
  frame.pending = "";
  frame.hasText = true;
}

/** Plain text `text[from, to)`: blanks at the start of the value are dropped, at the end held back. */
function addPlainText(frame: Frame, text: string, from: number, to: number): void {
  const first = frame.hasText ? from : skipBlanks(text, from, to);
  let last = to;
  while (last > first && isBlank(text.charCodeAt(last - 1))) last--;
  if (last === first) {
    if (frame.hasText) frame.pending += text.slice(from, to);
    return;
  }
  const raw = text.slice(first, last);
  if (raw.includes("]]>")) fail("']]>' in text");
  addText(frame, raw.includes("&") ? decodeReferences(raw) : raw);
  frame.pending = text.slice(last, to);
}

/**
 * Decodes the references of plain text or an attribute value: the five XML entities and
 * character references to an XML `Char`. A document without a DTD declares no other entity,
 * so any other name, a reference to a code point XML does not allow, and an `&` that starts
 * no reference are malformed, as XML 1.0 says.
 */
function decodeReferences(raw: string): string {
  let out = "";
  let from = 0;
  for (let amp = raw.indexOf("&"); amp !== -1; amp = raw.indexOf("&", from)) {
    out += raw.slice(from, amp);
    let p = amp + 1;
    let decoded: string | undefined;
    if (raw.charCodeAt(p) === 0x23 /* # */) {
      const hex = raw.charCodeAt(++p) === 0x78; /* x */
      if (hex) p++;
      const digitsStart = p;
      let code = 0;
      for (;; p++) {
        const digit = digitValue(raw.charCodeAt(p), hex);
        if (digit < 0) break;
        // Past the Unicode range the value no longer matters: it stays invalid.
        if (code <= 0x10ffff) code = code * (hex ? 16 : 10) + digit;
      }
      if (p === digitsStart) fail("bad character reference");
      if (raw.charCodeAt(p) !== 0x3b /* ; */) fail("bad entity reference");
      if (!isXmlChar(code)) fail("character reference to a code point XML does not allow");
      decoded = String.fromCodePoint(code);
    } else {
      p = scanName(raw, p, "bad entity reference");
      if (raw.charCodeAt(p) !== 0x3b /* ; */) fail("bad entity reference");
      const name = raw.slice(amp + 1, p);
      decoded = Object.hasOwn(NAMED_ENTITIES, name) ? NAMED_ENTITIES[name]! : fail("undeclared entity");
    }
    from = p + 1;
    out += decoded;
  }
  return out + raw.slice(from);
}

function digitValue(c: number, hex: boolean): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (!hex) return -1;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** XML 1.0 `Char`: what a character reference may stand for. */
function isXmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

/**
 * Checks the attributes of a start tag from just after its name, and returns the index
 * of its closing `>` or of the `/` of `/>`. Values are skipped, not kept.
 */
function skipAttributes(text: string, p: number): number {
  let seen: Set<string> | undefined;
  for (;;) {
    const c = text.charCodeAt(p);
    if (c === 0x3e /* > */) return p;
    if (c === 0x2f /* / */) {
      if (text.charCodeAt(p + 1) !== 0x3e) fail("bad start tag");
      return p;
    }
    if (!isBlank(c)) fail("bad start tag");
    p = skipBlanks(text, p, text.length);
    const d = text.charCodeAt(p);
    if (d === 0x3e || d === 0x2f) continue;
    const nameEnd = scanName(text, p);
    const name = text.slice(p, nameEnd);
    seen ??= new Set();
    if (seen.has(name)) fail("duplicate attribute");
    seen.add(name);
    p = skipBlanks(text, nameEnd, text.length);
    if (text.charCodeAt(p) !== 0x3d /* = */) fail("bad attribute");
    p = skipBlanks(text, p + 1, text.length);
    const quote = text.charCodeAt(p);
    if (quote !== 0x22 && quote !== 0x27) fail("bad attribute");
    const close = text.indexOf(quote === 0x22 ? '"' : "'", p + 1);
    if (close === -1) fail("unclosed attribute value");
    const value = text.slice(p + 1, close);
    if (value.includes("<")) fail("'<' in an attribute value");
    if (value.includes("&")) decodeReferences(value);
    p = close + 1;
  }
}

/** The end of the XML `Name` that must start at `p`; `what` is the complaint when none does. */
function scanName(text: string, p: number, what = "bad name"): number {
  const start = p;
  for (;;) {
    const c = text.charCodeAt(p);
    if (
      (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a ||
      (p > start && ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e))
    ) {
      p++;
    } else if (c >= 0xd800 && c <= 0xdb7f) {
      // U+10000..U+EFFFF, as a surrogate pair.
      const low = text.charCodeAt(p + 1);
      if (!(low >= 0xdc00 && low <= 0xdfff)) break;
      p += 2;
    } else if (c >= 0x80 && (isNameStartChar(c) || (p > start && isNameChar(c)))) {
      p++;
    } else {
      break;
    }
  }
  if (p === start) fail(what);
  return p;
}

/** The non-ASCII BMP part of XML 1.0 `NameStartChar`. */
function isNameStartChar(c: number): boolean {
  return (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xf6) || (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) || (c >= 0x37f && c <= 0x1fff) || c === 0x200c || c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) || (c >= 0x2c00 && c <= 0x2fef) || (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xf900 && c <= 0xfdcf) || (c >= 0xfdf0 && c <= 0xfffd);
}

/** The non-ASCII BMP characters XML 1.0 `NameChar` adds to `NameStartChar`. */
function isNameChar(c: number): boolean {
  return c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

function skipBlanks(text: string, p: number, end: number): number {
  while (p < end && isBlank(text.charCodeAt(p))) p++;
  return p;
}
