// The Chinese pages in step with their English twins: each links the other from its first
// line, and both hold the same fenced commands and code blocks in the same order (comments in
// code may be translated; the code itself may not differ) and the same number of sections.
import { readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { type Fence, headings, readDoc, splitFences } from "./_markdown.ts";

/** Each English page and its Chinese twin. */
const TWINS: ReadonlyArray<readonly [string, string]> = [
  ["README.md", "README.zh-CN.md"],
  ["docs/quick-start.md", "docs/zh-CN/quick-start.md"],
  ["docs/deploying.md", "docs/zh-CN/deploying.md"],
  ["docs/delivery-guarantees.md", "docs/zh-CN/delivery-guarantees.md"],
  ["docs/troubleshooting.md", "docs/zh-CN/troubleshooting.md"],
];

/** A comment in a line of code, by the fence's language: `# …` in shell and TOML, `// …` in TS and JS. */
const COMMENT: Record<string, RegExp> = {
  sh: /(^|\s)#\s.*$/,
  bash: /(^|\s)#\s.*$/,
  toml: /(^|\s)#\s.*$/,
  ts: /(^|\s)\/\/\s.*$/,
  js: /(^|\s)\/\/\s.*$/,
};

/** A fence as the twins must share it: its language and its code without comments. */
function code(fence: Fence): string {
  const comment = COMMENT[fence.lang];
  const lines = fence.text.split("\n");
  return `${fence.lang}\n${lines.map((line) => (comment ? line.replace(comment, "") : line).trimEnd()).join("\n")}`;
}

function fencesOf(file: string): string[] {
  return splitFences(readDoc(file)).fences.map(code);
}

describe("Chinese twins", () => {
  it("every Chinese page has an English twin", () => {
    const chinese = readdirSync(join(ROOT, "docs", "zh-CN")).map((name) => `docs/zh-CN/${name}`);
    expect(chinese.sort()).toEqual(TWINS.map(([, zh]) => zh).filter((zh) => zh.startsWith("docs/")).sort());
  });

  it("comments are told from code", () => {
    const fence = (lang: string, text: string): Fence => ({ lang, text, line: 1 });
    expect(code(fence("sh", "npm test   # every suite\n# whole line\necho '#not' #tag"))).toBe(
      "sh\nnpm test\n\necho '#not' #tag",
    );
    expect(code(fence("ts", 'fetch("https://x"); // 注释'))).toBe('ts\nfetch("https://x");');
    expect(code(fence("json", '{ "a": "# b" }'))).toBe('json\n{ "a": "# b" }');
  });

  for (const [english, chinese] of TWINS) {
    describe(`${english} and ${chinese}`, () => {
      it("link each other from their first line", () => {
        const link = (from: string, to: string) => `](${relative(dirname(join(ROOT, from)), join(ROOT, to))})`;
        expect(readDoc(english).split("\n")[0]).toContain(link(english, chinese));
        expect(readDoc(chinese).split("\n")[0]).toContain(link(chinese, english));
      });

      it("hold the same commands and code blocks, in the same order", () => {
        expect(fencesOf(chinese)).toEqual(fencesOf(english));
      });

      it("have as many sections", () => {
        const sections = (file: string) => headings(readDoc(file)).filter((h) => h.level <= 2).length;
        expect(sections(chinese)).toBe(sections(english));
      });
    });
  }
});
