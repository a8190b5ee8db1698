// Text helpers: splitText's guarantees as properties, and the mini-program link builder.
import assert from "node:assert/strict";
import fc from "fast-check";
import { miniProgramLink, splitText, utf8Length, ValidationError } from "../../mod.ts";
import { test } from "./_registry.ts";

const LINK = '<a data-miniprogram-appid="wx1" data-miniprogram-path="pages/a?b=1" href="https://x.example">打开</a>';
const URL_TEXT = "https://example.com/orders/1024?from=kefu&lang=zh_CN";

/** Text made of what AI answers hold: CJK, Latin sentences, emoji (with ZWJ), blank lines, links and URLs. */
const answer = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("你好，", "订单已发货。", "Thanks! ", "It ships today. ", "a", "中") },
    { weight: 2, arbitrary: fc.constantFrom("\n", "\n\n", "\n \n", "。", "！", "? ") },
    { weight: 2, arbitrary: fc.constantFrom("😀", "👨‍👩‍👧", "é", "🇨🇳") },
    { weight: 1, arbitrary: fc.constantFrom(LINK, URL_TEXT, ` ${URL_TEXT} `) },
  ),
  { maxLength: 80 },
).map((parts) => parts.join(""));

function protectedSpans(text: string): string[] {
  return [...text.matchAll(/<a\b[^>]*>[\s\S]*?<\/a\s*>|https?:\/\/[!#-&(-;=?-~]+/gi)].map((m) => m[0]);
}

test("splitText: every part fits, the parts join back to the text, and no link or URL is cut", () => {
  fc.assert(
    fc.property(answer, fc.integer({ min: 120, max: 400 }), (text, maxBytes) => {
      const parts = splitText(text, { maxBytes });
      assert.equal(parts.join(""), text);
      for (const part of parts) assert.ok(utf8Length(part) <= maxBytes, `${utf8Length(part)} > ${maxBytes}`);
      assert.ok(parts.every((p) => p !== ""));
      for (const span of protectedSpans(text)) {
        assert.ok(parts.some((p) => p.includes(span)), `cut inside ${span}`);
      }
      // No part ends inside a grapheme: re-segmenting the whole text has a boundary at every cut.
      const boundaries = new Set(
        [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)].map((s) => s.index),
      );
      let at = 0;
      for (const part of parts) {
        assert.ok(at === 0 || boundaries.has(at), `cut at ${at} splits a grapheme`);
        at += part.length;
      }
    }),
    { numRuns: 500 },
  );
});

test("splitText: paragraph breaks are preferred to sentence ends, and sentence ends to anything else", () => {
  const para = `${"第一段。".repeat(10)}\n\n${"第二段。".repeat(10)}`; // 120 + 2 + 120 bytes
  assert.deepEqual(splitText(para, { maxBytes: 200 }), [`${"第一段。".repeat(10)}\n\n`, "第二段。".repeat(10)]);
  const sentences = "这是第一句。这是第二句。这是第三句。"; // 54 bytes
  assert.deepEqual(splitText(sentences, { maxBytes: 40 }), ["这是第一句。这是第二句。", "这是第三句。"]);
  assert.deepEqual(splitText("One. Two. Three.", { maxBytes: 10 }), ["One. Two. ", "Three."]);
  assert.deepEqual(splitText("short", { maxBytes: 100 }), ["short"]);
  assert.deepEqual(splitText(""), []);
});

test("splitText: a link longer than the limit is refused, naming text.content; a bad limit names maxBytes", () => {
  assert.throws(
    () => splitText(`看这里 ${LINK}`, { maxBytes: 50 }),
    (e: unknown) =>
      e instanceof ValidationError && e.field === "text.content" && /longer than the 50-byte limit/.test(e.message),
  );
  for (const maxBytes of [0, 3, 1.5, Number.NaN]) {
    assert.throws(
      () => splitText("x", { maxBytes }),
      (e: unknown) => e instanceof ValidationError && e.field === "maxBytes",
    );
  }
});

test("miniProgramLink: escapes attributes, keeps the AppID the sender's own, refuses what would break the link", () => {
  const link = miniProgramLink({ text: "查看订单", path: 'pages/order?id=1&x="2"', appId: "wx1" });
  assert.equal(
    link,
    '<a data-miniprogram-appid="wx1" data-miniprogram-path="pages/order?id=1&amp;x=&quot;2&quot;" ' +
      'href="https://developers.weixin.qq.com">查看订单</a>',
  );
  const sender = { appId: "wx1234567890abcdef" };
  assert.match(
    miniProgramLink({ text: "go", path: "pages/a", href: "https://m.example/a" }, sender),
    /appid="wx1234567890abcdef"/,
  );
  const refuses = (options: Parameters<typeof miniProgramLink>[0], field: string, mp?: { appId: string }) =>
    assert.throws(
      () => miniProgramLink(options, mp),
      (e: unknown) => e instanceof ValidationError && e.field === field,
    );
  refuses({ text: "go", path: "pages/a", appId: "wxOTHER" }, "appId", sender);
  refuses({ text: "go", path: "pages/a" }, "appId");
  refuses({ text: "a</a><a href='x'>", path: "pages/a", appId: "wx1" }, "text");
  refuses({ text: " ", path: "pages/a", appId: "wx1" }, "text");
  refuses({ text: "go", path: "", appId: "wx1" }, "path");
  refuses({ text: "go", path: "pages/a", appId: "wx1", href: "javascript:alert(1)" }, "href");
});
