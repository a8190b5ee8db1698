// The link checker: every relative link in README.md, README.zh-CN.md and docs/**/*.md points
// at a file or folder of the repository, and every `#anchor` at a heading (by GitHub's anchor
// rules, CJK headings included) or an HTML id of its target. Each docs page opens with a
// contents list of its sections.
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { anchors, docFiles, headings, isExternal, links, readDoc, slug } from "./_markdown.ts";

/** The broken links of one file (its path relative to the root), as "line: target: why". */
function brokenLinks(file: string, text: string, read: (file: string) => string = readDoc): string[] {
  const problems: string[] = [];
  for (const { target, line } of links(text)) {
    if (isExternal(target)) continue;
    const hash = target.indexOf("#");
    const pathPart = (hash < 0 ? target : target.slice(0, hash)).replace(/\?.*$/, "");
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const path = pathPart === "" ? join(ROOT, file) : resolve(ROOT, dirname(file), decodeURIComponent(pathPart));
    if (path !== ROOT && !path.startsWith(ROOT + sep)) {
      problems.push(`${line}: ${target}: outside the repository`);
      continue;
    }
    if (pathPart !== "" && !existsSync(path)) {
      problems.push(`${line}: ${target}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    const targetFile = pathPart === "" ? file : path.slice(ROOT.length + 1);
    if (!targetFile.endsWith(".md") || (pathPart !== "" && statSync(path).isDirectory())) {
      // GitHub's line anchors are the only ones a source file has.
      if (!/^L\d+(-L\d+)?$/.test(anchor)) problems.push(`${line}: ${target}: not a Markdown file, no such anchor`);
      continue;
    }
    const targetText = pathPart === "" ? text : read(targetFile);
    if (!anchors(targetText).has(anchor)) problems.push(`${line}: ${target}: no heading with this anchor`);
  }
  return problems;
}

describe("GitHub's heading anchors", () => {
  it("follow GitHub's rules, CJK headings and repeats included", () => {
    expect(slug("Message push (消息推送)")).toBe("message-push-消息推送");
    expect(slug("Quick start: every route against npm start")).toBe("quick-start-every-route-against-npm-start");
    expect(slug("40164 invalid ip … not in whitelist")).toBe("40164-invalid-ip--not-in-whitelist");
    expect(slug("URL verification fails (Token验证失败)")).toBe("url-verification-fails-token验证失败");
    expect(slug("部署前的检查清单：登录、KV、队列")).toBe("部署前的检查清单登录kv队列");
    expect(slug("transfer_customer_service does nothing")).toBe("transfer_customer_service-does-nothing");
    const markdown = "# Install\n\n## Bun\n\n```sh\n# Bun\n```\n\n## Bun\n\n## `npm start`, [the page](x.md)\n";
    expect(headings(markdown).map((h) => h.anchor)).toEqual(["install", "bun", "bun-1", "npm-start-the-page"]);
  });

  it("the checker reports a missing file and a missing anchor, not a link inside code", () => {
    const page = [
      "# Here",
      "[ok](#here) [sdk](sdk.md#options) [gone](no-such-page.md) [wrong](sdk.md#no-such-section)",
      "`[not a link](nowhere.md)`",
      "```md",
      "[not a link either](nowhere.md)",
      "```",
      '<a href="../README.md#install">install</a> [up](../../outside.md)',
    ].join("\n");
    expect(brokenLinks("docs/page.md", page)).toEqual([
      "2: no-such-page.md: no such file",
      "2: sdk.md#no-such-section: no heading with this anchor",
      "7: ../../outside.md: outside the repository",
    ]);
  });
});

describe("links in the docs", () => {
  const files = docFiles();

  it("reads the READMEs and every page under docs/", () => {
    expect(files).toContain("README.md");
    expect(files).toContain("README.zh-CN.md");
    expect(files.filter((f) => f.startsWith(`docs${sep}`)).length).toBeGreaterThan(5);
  });

  for (const file of files) {
    it(`${file}: every relative link and anchor resolves`, () => {
      expect(brokenLinks(file, readDoc(file))).toEqual([]);
    });
  }
});

describe("contents lists", () => {
  for (const file of docFiles().filter((f) => f.startsWith(`docs${sep}`))) {
    it(`${file} opens with a list of its sections`, () => {
      const text = readDoc(file);
      const sections = headings(text).filter((h) => h.level === 2).map((h) => `#${h.anchor}`);
      // The first list of in-page links, before the first section.
      const beforeFirst = text.slice(0, text.search(/^## /m));
      const listed = [...beforeFirst.matchAll(/^- \[[^\]]+\]\((#[^)]+)\)$/gm)].map((m) => m[1]);
      expect(sections.length).toBeGreaterThan(0);
      expect(listed).toEqual(sections);
    });
  }
});
