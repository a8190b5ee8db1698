// The push module's own XML reader (src/internal/xml.ts): what it reads, what it refuses,
// and a round-trip property over random field maps serialised as WeChat would.
import assert from "node:assert/strict";
import fc from "fast-check";
import { PushVerificationError } from "../../mod.ts";
import { MAX_XML_DEPTH, MAX_XML_ELEMENTS, parseXmlDocument, type XmlFields } from "../../src/internal/xml.ts";
import { parseFields } from "../../src/push/parse.ts";
import { test } from "./_registry.ts";

/** Put in refused bodies: no error message may quote it. */
const MARK = "S3cretBodyText";

function refuses(xml: string, why: RegExp): void {
  assert.throws(
    () => parseXmlDocument(xml),
    (err: unknown) => {
      assert.ok(err instanceof PushVerificationError, `not a PushVerificationError: ${String(err)}`);
      assert.equal(err.reason, "bad_request");
      assert.match(err.message, why);
      assert.ok(!err.message.includes(MARK) && err.message.length < 80, err.message);
      return true;
    },
    JSON.stringify(xml.slice(0, 80)),
  );
}

const read = (inner: string): XmlFields => parseXmlDocument(`<xml>${inner}</xml>`);

// --- What it reads -------------------------------------------------------------------

test("push xml: CDATA is kept exactly, '<' and '&' included, ']]>' split over two sections", () => {
  assert.deepEqual(
    read(
      "<A><![CDATA[a < b & c &amp; <d/>]]></A>" +
        "<B><![CDATA[x]]]]><![CDATA[>y]]></B>" +
        "<C><![CDATA[  both ends  ]]></C>" +
        "<D><![CDATA[]]></D>" +
        "<E><![CDATA[<!DOCTYPE x [<!ENTITY e 'f'>]><xml></xml>]]></E>" +
        "<F><![CDATA[ a]]>&#13;<![CDATA[b ]]></F>" +
        "<G><![CDATA[line1\nline2]]></G>",
    ),
    {
      A: "a < b & c &amp; <d/>",
      B: "x]]>y",
      C: "  both ends  ",
      D: "",
      E: "<!DOCTYPE x [<!ENTITY e 'f'>]><xml></xml>",
      F: " a\rb ",
      G: "line1\nline2",
    },
  );
});

test("push xml: the five entities and character references are decoded; any other reference is refused", () => {
  assert.deepEqual(
    read(
      "<A>&lt;&gt;&amp;&quot;&apos;</A>" +
        "<B>&#65;&#x42;&#x4e2d;&#x4E2D;&#20013;&#x1F600;&#128512;&#0000065;</B>" +
        "<E>&amp;lt;</E>" +
        "<F>a>b</F>",
    ),
    { A: `<>&"'`, B: "AB中中中😀😀A", E: "&lt;", F: "a>b" },
  );
  // XML 1.0: without a DTD no other entity exists, and a reference must name an XML Char.
  for (
    const ref of ["&#0;", "&#xD800;", "&#xFFFE;", "&#x110000;", "&#99999999999999999999;", "&#8;", "&nbsp;", "&copy;"]
  ) {
    assert.throws(() => read(`<C>a${ref}b</C>`), /Malformed XML body/, ref);
  }
});

test("push xml: blanks at the ends of plain text are trimmed, inside kept; CRLF reads as LF", () => {
  assert.deepEqual(
    parseXmlDocument(
      "\n\t <xml>\r\n  <A>  1  </A>\n  <B>\n   <![CDATA[o1]]>\n  </B>\r\n  <C> a  b </C>\n  <D>   </D>" +
        "<E>&#32;x&#9;</E><F>a\r\nb\rc</F><G><![CDATA[a\r\nb]]></G>\n</xml>\n\n",
    ),
    { A: "1", B: "o1", C: "a  b", D: "", E: " x\t", F: "a\nb\nc", G: "a\nb" },
  );
  // Only the ends of the whole value are trimmed: blanks between sections and comments stay.
  assert.deepEqual(
    read("<A> a <![CDATA[ b ]]> c </A><B> a <!-- x --> b </B><C> <![CDATA[]]> <!-- x --> </C><D>\n<!-- x -->\n</D>"),
    { A: "a  b  c", B: "a  b", C: "", D: "" },
  );
});

test("push xml: nested elements become objects and repeated names arrays", () => {
  const xml = `<xml>
    <ToUserName><![CDATA[gh_1]]></ToUserName>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[subscribe_msg_popup_event]]></Event>
    <SubscribeMsgPopupEvent>
      <List>
        <TemplateId><![CDATA[T1]]></TemplateId>
        <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
        <PopupScene>0</PopupScene>
      </List>
      <List>
        <TemplateId><![CDATA[T2]]></TemplateId>
        <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
        <PopupScene>0</PopupScene>
      </List>
    </SubscribeMsgPopupEvent>
    <Single><List><Id>1</Id></List></Single>
    <R>1</R><R/><R><X>2</X><X>3</X></R>
  </xml>`;
  assert.deepEqual(parseXmlDocument(xml), {
    ToUserName: "gh_1",
    MsgType: "event",
    Event: "subscribe_msg_popup_event",
    SubscribeMsgPopupEvent: {
      List: [
        { TemplateId: "T1", SubscribeStatusString: "accept", PopupScene: "0" },
        { TemplateId: "T2", SubscribeStatusString: "reject", PopupScene: "0" },
      ],
    },
    Single: { List: { Id: "1" } },
    R: ["1", "", { X: ["2", "3"] }],
  });
});

test("push xml: attributes are checked and ignored, '>' inside quotes included", () => {
  assert.deepEqual(
    parseXmlDocument(
      `<xml a="1" b='2'><A x="a>b" y='c"d>' z = "&amp;&#65;&lt;" >t</A><B q='/>'/><C k="v" /><D\n\tk="v"\n></D></xml>`,
    ),
    { A: "t", B: "", C: "", D: "" },
  );
});

test("push xml: comments, the declaration and processing instructions are skipped", () => {
  assert.deepEqual(
    parseXmlDocument(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- before < & -->\n<?pi data?>\n<xml><!-- a --><A>1<!-- in text -->2</A>` +
        `<!----><B><!-- c --><C>3</C><?pi?></B></xml><!-- after -->\n<?pi?>\n`,
    ),
    { A: "12", B: { C: "3" } },
  );
  assert.deepEqual(parseXmlDocument(`\uFEFF<?xml version="1.0"?><xml><A>1</A></xml>`), { A: "1" });
});

test("push xml: self-closing and empty elements read as empty strings; an empty root as no fields", () => {
  assert.deepEqual(read("<A/><B /><C></C><D x='1'/>"), { A: "", B: "", C: "", D: "" });
  assert.deepEqual(parseXmlDocument("<xml/>"), {});
  assert.deepEqual(parseXmlDocument("<xml>\n  <!-- nothing -->\n</xml>"), {});
  // parse.ts still wants at least one field.
  for (const xml of ["<xml/>", "<xml></xml>", "<xml> </xml>"]) {
    assert.throws(() => parseFields(xml, "xml"), /no <xml> root with fields/);
  }
});

test("push xml: names like constructor and toString are plain own fields", () => {
  const fields = read(
    "<constructor>1</constructor><toString>2</toString><hasOwnProperty>3</hasOwnProperty><constructor>4</constructor>" +
      "<n:s>5</n:s><a-b.c_d>6</a-b.c_d><名前>7</名前><_x>8</_x>",
  );
  assert.deepEqual(fields, {
    constructor: ["1", "4"],
    toString: "2",
    hasOwnProperty: "3",
    "n:s": "5",
    "a-b.c_d": "6",
    名前: "7",
    _x: "8",
  });
  assert.equal(Object.getPrototypeOf(fields), Object.prototype);
});

test("push xml: depth and element limits are exact", () => {
  const nested = (levels: number) => "<a>".repeat(levels) + "x" + "</a>".repeat(levels);
  let expected: XmlFields | string = "x";
  for (let i = 1; i < MAX_XML_DEPTH; i++) expected = { a: expected };
  assert.deepEqual(read(nested(MAX_XML_DEPTH - 1)), expected);
  refuses(`<xml>${nested(MAX_XML_DEPTH)}</xml>`, /too deep/);
  refuses(`<xml>${"<a>".repeat(100_000)}`, /too deep/);
  const many = read("<A/>".repeat(MAX_XML_ELEMENTS - 1)).A;
  assert.ok(Array.isArray(many) && many.length === MAX_XML_ELEMENTS - 1);
  refuses(`<xml>${"<A/>".repeat(MAX_XML_ELEMENTS)}</xml>`, /too many elements/);
});

test("push xml: large inputs take linear time", () => {
  const started = Date.now();
  // Each would be quadratic for a reader that rescans to the end of the body per segment.
  const long = [
    `<xml><A>${"a<!---->".repeat(40_000)}</A></xml>`,
    `<xml><A>${"&amp;x".repeat(50_000)}</A></xml>`,
    `<xml><A>${"<![CDATA[]]>".repeat(30_000)}</A></xml>`,
    `<xml><A ${Array.from({ length: 5_000 }, (_, i) => `a${i}=">"`).join(" ")}>1</A></xml>`,
    `<xml>${"<A>1</A>\n".repeat(MAX_XML_ELEMENTS - 1)}</xml>`,
  ];
  assert.equal(read(`<A>${"a<!---->".repeat(3)}</A>`).A, "aaa");
  for (const xml of long) parseXmlDocument(xml);
  for (const xml of [`<xml><A>${"]]".repeat(50_000)}`, `<xml>${"<!--".repeat(50_000)}`, "<".repeat(100_000)]) {
    assert.throws(() => parseXmlDocument(xml), PushVerificationError);
  }
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2_000, `took ${elapsed} ms`);
});

// --- What it refuses ---------------------------------------------------------------

test("push xml: DTDs and entity declarations are refused, wherever they are", () => {
  const laughs = `<!DOCTYPE xml [<!ENTITY a "${MARK}"><!ENTITY b "&a;&a;&a;&a;">]><xml><A>&b;</A></xml>`;
  refuses(laughs, /DTDs/);
  refuses(`<?xml version="1.0"?><!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><A>${MARK}</A></xml>`, /DTDs/);
  refuses(`<!doctype xml><xml><A>${MARK}</A></xml>`, /DTDs/);
  refuses(`<xml><!DOCTYPE x><A>${MARK}</A></xml>`, /DTDs/);
  refuses(`<xml><A><!ENTITY x '${MARK}'></A></xml>`, /DTDs/);
  refuses(`<xml><A><!ELEMENT x ANY></A></xml>`, /DTDs/);
  refuses(`<xml><A><![IGNORE[${MARK}]]></A></xml>`, /DTDs/);
});

test("push xml: mismatched, unclosed and stray tags are refused", () => {
  refuses(`<xml><A>${MARK}</B></xml>`, /mismatched end tag/);
  refuses(`<xml><A>${MARK}</A></XML>`, /mismatched end tag/);
  refuses(`<xml><A>${MARK}</AB></xml>`, /mismatched end tag/);
  refuses(`<xml><AB>${MARK}</A></xml>`, /mismatched end tag/);
  refuses(`<xml><A1>${MARK}</A></xml>`, /mismatched end tag/);
  refuses(`<xml><A><B>${MARK}</A></B></xml>`, /mismatched end tag/);
  refuses(`<xml><A>${MARK}</A>`, /unclosed element/);
  refuses(`<xml><A>${MARK}`, /unclosed element/);
  refuses(`<xml><A>${MARK}</A></xml></xml>`, /end tag without a start tag/);
  refuses(`</xml>`, /end tag without a start tag/);
  refuses(`<xml><A><![CDATA[${MARK}</A></xml>`, /unclosed CDATA/);
  refuses(`<xml><A><!-- ${MARK} </A></xml>`, /unclosed comment/);
  refuses(`<xml><A><!-- a -- ${MARK} --></A></xml>`, /'--' inside a comment/);
  refuses(`<xml><A><!-- ${MARK} ---></A></xml>`, /'--' inside a comment/);
  refuses(`<xml><A>${MARK}</A><?pi x</xml>`, /unclosed processing instruction/);
  refuses(`<xml><A>${MARK}</A ></xml`, /bad end tag/);
  refuses(`<xml><A>${MARK}</A x></xml>`, /bad end tag/);
  refuses(`<xml><A>${MARK}</ A></xml>`, /bad name/);
});

test("push xml: text or elements outside the root, and roots other than <xml>, are refused", () => {
  refuses(`${MARK}<xml><A>1</A></xml>`, /text outside the root/);
  refuses(`<xml><A>1</A></xml>${MARK}`, /text outside the root/);
  refuses(`<xml><A>1</A></xml>&amp;`, /text outside the root/);
  refuses(`<xml><A>1</A></xml><xml><B>${MARK}</B></xml>`, /second element/);
  refuses(`<xml/><A>${MARK}</A>`, /second element/);
  refuses(`<![CDATA[${MARK}]]><xml><A>1</A></xml>`, /CDATA outside/);
  refuses(`<root><A>${MARK}</A></root>`, /root element is not <xml>/);
  refuses(`<XML><A>${MARK}</A></XML>`, /root element is not <xml>/);
  refuses(`<A>${MARK}</A>`, /root element is not <xml>/);
  refuses("", /no root element/);
  refuses(`  \n <!-- ${MARK} -->`, /no root element/);
  refuses(`<xml>${MARK}</xml>`, /text directly inside <xml>/);
  refuses(`<xml><![CDATA[${MARK}]]></xml>`, /text directly inside <xml>/);
});

test("push xml: text mixed with elements is refused", () => {
  refuses(`<xml>${MARK}<A>1</A></xml>`, /text mixed with elements/);
  refuses(`<xml><A>1</A>${MARK}</xml>`, /text mixed with elements/);
  refuses(`<xml><A>${MARK}<B>1</B></A></xml>`, /text mixed with elements/);
  refuses(`<xml><A><B>1</B>${MARK}</A></xml>`, /text mixed with elements/);
  refuses(`<xml><A><![CDATA[${MARK}]]><B>1</B></A></xml>`, /text mixed with elements/);
  refuses(`<xml><A><B>1</B><![CDATA[]]></A></xml>`, /text mixed with elements/);
});

test("push xml: malformed names, attributes, references and declarations are refused", () => {
  refuses(`<xml><1A>${MARK}</1A></xml>`, /bad name/);
  refuses(`<xml>< A>${MARK}</A></xml>`, /bad name/);
  refuses(`<xml><-A>${MARK}</-A></xml>`, /bad name/);
  refuses(`<xml><>${MARK}</></xml>`, /bad name/);
  refuses(`<xml><__proto__>${MARK}</__proto__></xml>`, /reserved element name/);
  refuses(`<xml><A><__proto__><x>1</x></__proto__></A></xml>`, /reserved element name/);
  refuses(`<xml><A x=1>${MARK}</A></xml>`, /bad attribute/);
  refuses(`<xml><A x>${MARK}</A></xml>`, /bad attribute/);
  refuses(`<xml><A x="1'>${MARK}</A></xml>`, /unclosed attribute value/);
  refuses(`<xml><A x='1'y='2'>${MARK}</A></xml>`, /bad start tag/);
  refuses(`<xml><A x='1' x='2'>${MARK}</A></xml>`, /duplicate attribute/);
  refuses(`<xml><A x='<'>${MARK}</A></xml>`, /'<' in an attribute value/);
  refuses(`<xml><A x='&'>${MARK}</A></xml>`, /bad entity reference/);
  refuses(`<xml><A/ >${MARK}</xml>`, /bad start tag/);
  refuses(`<xml><A${MARK}`, /bad start tag/);
  refuses(`<xml><A>${MARK} & more</A></xml>`, /bad entity reference/);
  refuses(`<xml><A>${MARK} &amp</A></xml>`, /bad entity reference/);
  refuses(`<xml><A>${MARK} &#;</A></xml>`, /bad character reference/);
  refuses(`<xml><A>${MARK} &#x;</A></xml>`, /bad character reference/);
  refuses(`<xml><A>${MARK} &#X41;</A></xml>`, /bad character reference/);
  refuses(`<xml><A>${MARK} &#12a;</A></xml>`, /bad entity reference/);
  refuses(`<xml><A>${MARK} &a b;</A></xml>`, /bad entity reference/);
  refuses(`<xml><A>${MARK} ]]> </A></xml>`, /']]>' in text/);
  refuses(`<xml><A>${MARK}</A><?xml version="1.0"?></xml>`, /misplaced XML declaration/);
  refuses(` <?xml version="1.0"?><xml><A>${MARK}</A></xml>`, /misplaced XML declaration/);
  refuses(`<?XML version="1.0"?><xml><A>${MARK}</A></xml>`, /misplaced XML declaration/);
  refuses(`<?xml version="1.0"?><?xml version="1.0"?><xml><A>${MARK}</A></xml>`, /misplaced XML declaration/);
  refuses(`<?pi/${MARK}?><xml><A>1</A></xml>`, /bad processing instruction/);
});

test("push xml: refusals reach parseFields as bad_request without quoting the body", () => {
  for (const xml of [`<xml><A>${MARK}</B></xml>`, `<!DOCTYPE x><xml><A>${MARK}</A></xml>`, `<xml>${MARK}`]) {
    assert.throws(
      () => parseFields(xml, "xml"),
      (err: unknown) =>
        err instanceof PushVerificationError && err.reason === "bad_request" && !err.message.includes(MARK),
    );
  }
});

// --- Round trip and robustness properties ---------------------------------------------

/** XML 1.0 `Char`. */
function isXmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

/** Any XML character, often one of those that need care. */
const xmlChar = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0x10ffff }).filter(isXmlChar).map((c) => String.fromCodePoint(c)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("<", ">", "&", "]", "]]>", "<![CDATA[", "&amp;", "\r", "\r\n", "\n", "\t", " "),
  },
  { weight: 2, arbitrary: fc.constantFrom("a", "1", '"', "'", "中", "😀", "-", "--", "<!--", "\u0085", "\u2028") },
);
const xmlString = fc.string({ unit: xmlChar, maxLength: 12 });
const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/);

type Value = string | Fields | (string | Fields)[];
interface Fields {
  [name: string]: Value;
}

const { fields } = fc.letrec<{ fields: Fields; value: Value; item: string | Fields }>((tie) => ({
  fields: fc.uniqueArray(fc.tuple(fieldName, tie("value")), {
    selector: (entry) => entry[0],
    minLength: 1,
    maxLength: 5,
  })
    .map((entries) => Object.fromEntries(entries)),
  item: fc.oneof({ depthSize: "small", withCrossShrink: true }, xmlString, tie("fields")),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: xmlString },
    { weight: 1, arbitrary: fc.stringMatching(/^\d{1,19}$/) },
    { weight: 1, arbitrary: tie("fields") },
    { weight: 1, arbitrary: fc.array(tie("item"), { minLength: 2, maxLength: 3 }) },
  ),
}));

interface Style {
  /**
   * How text that is not all digits is written: in CDATA, as escaped plain text, or (not
   * WeChat's way, but valid XML) cut into pieces of both, with comments and blanks around.
   */
  text: "cdata" | "escaped" | "mixed";
  /** Newlines and indentation between elements. */
  pretty: boolean;
  /** Picks the cuts of mixed text. */
  random: () => number;
}

/** A small seeded PRNG (mulberry32), so a failing case replays from fast-check's seed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** CDATA: `]]>` is split over two sections, and a CR goes between sections as a reference. */
function cdata(text: string): string {
  return `<![CDATA[${text.replace(/]]>/g, "]]]]><![CDATA[>").replace(/\r/g, "]]>&#13;<![CDATA[")}]]>`;
}

/**
 * Escaped plain text. CRs become references (line ends would be normalised), and so do
 * blanks in the value's leading or trailing run (`atEnds`), which trimming would drop.
 */
function escaped(chars: string[], atEnds: (index: number) => boolean, offset: number): string {
  return chars.map((c, i) => {
    if (c === "&") return "&amp;";
    if (c === "<") return "&lt;";
    if (c === ">") return "&gt;";
    if (c === "\r" || ((c === " " || c === "\t" || c === "\n") && atEnds(offset + i))) {
      return `&#${c.charCodeAt(0)};`;
    }
    return c;
  }).join("");
}

/** A string as WeChat writes it: digits bare, other text in CDATA or escaped (or, in "mixed", both). */
function serialiseText(value: string, style: Style): string {
  if (/^\d*$/.test(value)) return value;
  if (style.text === "cdata") return cdata(value);
  const chars = Array.from(value);
  let lead = 0;
  while (lead < chars.length && /^[ \t\n]$/.test(chars[lead]!)) lead++;
  let trail = chars.length;
  while (trail > lead && /^[ \t\n]$/.test(chars[trail - 1]!)) trail--;
  const atEnds = (index: number) => index < lead || index >= trail;
  if (style.text === "escaped") return escaped(chars, atEnds, 0);
  // Blanks, comments and processing instructions around the text, which trimming removes.
  const pad = () => ["", " ", "\n  ", " <!-- c --> ", "\t<?pi?>\n "][Math.floor(style.random() * 5)]!;
  let out = pad() + pad();
  for (let from = 0; from < chars.length;) {
    const to = Math.min(chars.length, from + 1 + Math.floor(style.random() * 4));
    const piece = chars.slice(from, to);
    out += style.random() < 0.5 ? cdata(piece.join("")) : escaped(piece, atEnds, from);
    if (style.random() < 0.3) out += style.random() < 0.5 ? "<!-- c -->" : "<?pi?>";
    from = to;
  }
  return out + pad() + pad();
}

function serialiseFields(fields: Fields, style: Style, indent: string): string {
  const gap = style.pretty ? `\n${indent}  ` : "";
  let out = "";
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      const inner = typeof item === "string"
        ? serialiseText(item, style)
        : serialiseFields(item, style, `${indent}  `) + (style.pretty ? `\n${indent}  ` : "");
      out += `${gap}<${name}>${inner}</${name}>`;
    }
  }
  return out;
}

test("push xml: random field maps serialised as WeChat would read back unchanged", () => {
  const style = fc.record({
    text: fc.constantFrom("cdata", "escaped", "mixed"),
    pretty: fc.boolean(),
    random: fc.integer().map(seeded),
  });
  fc.assert(
    fc.property(fields, style, fc.boolean(), (value, style, declaration) => {
      const xml = `${declaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ""}<xml>${
        serialiseFields(value, style, "")
      }${style.pretty ? "\n" : ""}</xml>`;
      assert.deepStrictEqual(parseXmlDocument(xml), value);
      assert.deepStrictEqual(parseFields(xml, "xml"), value);
    }),
    { numRuns: 2_000 },
  );
});

test("push xml: random edits of valid XML either read or are refused as bad_request", () => {
  const valid = fields.chain((value) =>
    fc.tuple(
      fc.constant(`<xml>${serialiseFields(value, { text: "mixed", pretty: true, random: seeded(1) }, "")}</xml>`),
      fc.boolean(),
    )
  );
  const piece = fc.oneof(
    fc.string({ maxLength: 3 }),
    fc.constantFrom("<", ">", "&", "]]>", "<!--", "-->", "<![CDATA[", "</", "/>", "<!DOCTYPE", "'", '"', "&#", ";"),
  );
  fc.assert(
    fc.property(valid, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 4 }), piece), { maxLength: 4 }), ([xml], edits) => {
      let out = xml;
      for (const [at, remove, insert] of edits) {
        const i = at % (out.length + 1);
        out = out.slice(0, i) + insert + out.slice(i + remove);
      }
      try {
        const result = parseXmlDocument(out);
        assert.equal(Object.getPrototypeOf(result), Object.prototype);
      } catch (err) {
        assert.ok(err instanceof PushVerificationError && err.reason === "bad_request", String(err));
      }
    }),
    { numRuns: 2_000 },
  );
});
