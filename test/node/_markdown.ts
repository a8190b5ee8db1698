// Reads the repository's Markdown as GitHub renders it: the docs' files, their headings and
// the anchors GitHub gives them, their links, and their fenced code blocks. Used by the link
// checker and by the test that keeps the Chinese pages in step with the English ones.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../../scripts/_dev_server.ts";

/** The Markdown files the link checker reads, relative to the root: the READMEs and docs/. */
export function docFiles(): string[] {
  const docs = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? docs(join(dir, entry.name)) : entry.name.endsWith(".md") ? [join(dir, entry.name)] : []
    );
  return ["README.md", "README.zh-CN.md", ...docs("docs").sort()];
}

/** A file's text, by its path relative to the root. */
export function readDoc(file: string): string {
  return readFileSync(join(ROOT, file), "utf8");
}

/** A fenced code block: its info string's first word and its text. */
export interface Fence {
  lang: string;
  text: string;
  /** The 1-based line of the opening fence. */
  line: number;
}

/** The lines of a Markdown text outside fenced code blocks (a fence's lines become ""), and its fences. */
export function splitFences(markdown: string): { prose: string[]; fences: Fence[] } {
  const prose: string[] = [];
  const fences: Fence[] = [];
  let open: { marker: string; lang: string; line: number; body: string[] } | undefined;
  for (const [i, line] of markdown.split("\n").entries()) {
    if (open === undefined) {
      const start = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
      if (start) {
        open = { marker: start[1]!, lang: start[2] ?? "", line: i + 1, body: [] };
        prose.push("");
      } else {
        prose.push(line);
      }
      continue;
    }
    const close = new RegExp(`^ {0,3}${open.marker[0]}{${open.marker.length},}\\s*$`);
    if (close.test(line)) {
      fences.push({ lang: open.lang, text: open.body.join("\n"), line: open.line });
      open = undefined;
    } else {
      open.body.push(line);
    }
    prose.push("");
  }
  if (open !== undefined) throw new Error(`unclosed code fence at line ${open.line}`);
  return { prose, fences };
}

/** Inline code spans blanked out, so a link or heading syntax inside one is not read as such. */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, (span) => " ".repeat(span.length));
}

/** A heading's text as GitHub renders it (links by their text, no emphasis or HTML). */
function headingText(raw: string): string {
  return raw
    .replace(/\s+#+\s*$/, "")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .replace(/\*\*|\*/g, "")
    .trim();
}

/**
 * GitHub's anchor for a heading text (the github-slugger rules): lower case; every character
 * that is not a letter, a mark, a number, a connector (`_`), `-` or a space removed (CJK
 * characters are letters and stay); spaces become `-`.
 */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "").replace(/ /g, "-");
}

/** A heading: its level, text and the anchor GitHub gives it. */
export interface Heading {
  level: number;
  text: string;
  anchor: string;
}

/** The headings of a Markdown text, with GitHub's anchors (a repeated one gets `-1`, `-2`, …). */
export function headings(markdown: string): Heading[] {
  const seen = new Map<string, number>();
  const result: Heading[] = [];
  for (const line of splitFences(markdown).prose) {
    const m = /^ {0,3}(#{1,6})\s+(.*)$/.exec(line);
    if (!m) continue;
    const text = headingText(m[2]!);
    const base = slug(text);
    let anchor = base;
    while (seen.has(anchor)) {
      const n = seen.get(base)! + 1;
      seen.set(base, n);
      anchor = `${base}-${n}`;
    }
    seen.set(anchor, 0);
    result.push({ level: m[1]!.length, text, anchor });
  }
  return result;
}

/** Every anchor a link may point at in a Markdown text: its headings', and HTML `id`/`name`s. */
export function anchors(markdown: string): Set<string> {
  const all = new Set(headings(markdown).map((h) => h.anchor));
  for (const line of splitFences(markdown).prose) {
    for (const m of line.matchAll(/<[a-z][^>]*\s(?:id|name)="([^"]+)"/gi)) all.add(m[1]!);
  }
  return all;
}

/** A link in a Markdown text: where it points, as written, and its line. */
export interface Link {
  target: string;
  line: number;
}

/** The links of a Markdown text outside code: inline links and images, reference definitions, HTML href/src. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  for (const [i, raw] of splitFences(markdown).prose.entries()) {
    const line = withoutCodeSpans(raw);
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      found.push({ target: m[1]!, line: i + 1 });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
    if (definition) found.push({ target: definition[1]!, line: i + 1 });
    for (const m of line.matchAll(/<[a-z][^>]*\s(?:href|src)="([^"]+)"/gi)) found.push({ target: m[1]!, line: i + 1 });
  }
  return found;
}

/** Whether a link leaves the repository (a URL with a scheme, or protocol-relative). */
export function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");
}

/** A path relative to the root, for messages. */
export function fromRoot(path: string): string {
  return relative(ROOT, path) || ".";
}
