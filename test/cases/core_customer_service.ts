import assert from "node:assert/strict";
import { MediaTooLargeError, MiniProgram, ValidationError, WeChatApiError } from "../../mod.ts";
import { filenameFromContentDisposition, isInvalidMediaId, MSG_TYPES, type MsgType, sendSchemas } from "../../mod.ts";
import { delay, fakeFetch, json } from "./_fake.ts";
import { test } from "./_registry.ts";

export const APP = { appId: "wx1234567890abcdef", appSecret: "APP_SECRET_VALUE_0123456789" };
export const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
const SEND = "/cgi-bin/message/custom/send";
const UPLOAD = "/cgi-bin/media/upload";
const GET = "/cgi-bin/media/get";
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]);
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9]);

function setup(handler?: Parameters<typeof fakeFetch>[0], extra: { maxUploadBytes?: number } = {}) {
  const fake = fakeFetch(handler);
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, retry: { baseDelayMs: 1 }, ...extra });
  return { fake, mp };
}

// --- send -------------------------------------------------------------------

test("send text: exact JSON body, POST, token in the query", async () => {
  const { fake, mp } = setup();
  const result = await mp.customerServiceMessage.send(OPENID, "text", { content: "Hello World" });
  assert.deepEqual(result, { errcode: 0, errmsg: "ok" });
  const [call] = fake.to(SEND);
  assert.ok(call);
  assert.equal(call.request.method, "POST");
  assert.equal(call.url.origin, "https://api.weixin.qq.com");
  assert.equal(call.url.searchParams.get("access_token"), "ACCESS_TOKEN_1");
  assert.match(call.request.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(call.body, `{"touser":"${OPENID}","msgtype":"text","text":{"content":"Hello World"}}`);
});

test("send image, link and miniprogrampage: WeChat's exact serialisations", async () => {
  const { fake, mp } = setup();
  const cs = mp.customerServiceMessage;
  await cs.send("OPENID", "image", { media_id: "MEDIA_ID" });
  await cs.send("OPENID", "link", {
    title: "title",
    description: "description",
    url: "https://example.com/a?b=c",
    thumb_url: "https://example.com/t.png",
  });
  await cs.send("OPENID", "miniprogrampage", {
    title: "title",
    pagepath: "pages/index/index?foo=bar",
    thumb_media_id: "thumbMediaId",
  });
  assert.deepEqual(fake.to(SEND).map((c) => c.body), [
    `{"touser":"OPENID","msgtype":"image","image":{"media_id":"MEDIA_ID"}}`,
    `{"touser":"OPENID","msgtype":"link","link":{"title":"title","description":"description","url":"https://example.com/a?b=c","thumb_url":"https://example.com/t.png"}}`,
    `{"touser":"OPENID","msgtype":"miniprogrampage","miniprogrampage":{"title":"title","pagepath":"pages/index/index?foo=bar","thumb_media_id":"thumbMediaId"}}`,
  ]);
});

test("send: Chinese and emoji go out as raw UTF-8, never \\u escapes", async () => {
  const { fake, mp } = setup();
  await mp.customerServiceMessage.send(OPENID, "text", { content: '你好，世界 👋 <a href="x">=</a>' });
  const [call] = fake.to(SEND);
  assert.ok(call);
  const bytes = new Uint8Array(await call.request.clone().arrayBuffer());
  const expected = new TextEncoder().encode(`"content":"你好，世界 👋 <a href=\\"x\\">=</a>"`);
  assert.ok(indexOf(bytes, expected) >= 0, "UTF-8 bytes of the text are in the body");
  assert.ok(!/\\u[0-9a-fA-F]{4}/.test(call.body));
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const invalidSends: Array<[string, () => [string, string, unknown], string]> = [
  ["empty openid", () => ["", "text", { content: "x" }], "touser"],
  ["openid with a slash", () => ["a/b", "text", { content: "x" }], "touser"],
  ["unknown msgtype", () => [OPENID, "video", { media_id: "x" }], "msgtype"],
  ["missing content", () => [OPENID, "text", {}], "text.content"],
  ["blank content", () => [OPENID, "text", { content: "   " }], "text.content"],
  ["content not a string", () => [OPENID, "text", { content: 42 }], "text.content"],
  ["typo'd key", () => [OPENID, "text", { content: "x", contnet: "y" }], "text.contnet"],
  ["image without media_id", () => [OPENID, "image", {}], "image.media_id"],
  [
    "link with a bad url",
    () => [OPENID, "link", { title: "t", description: "d", url: "not a url", thumb_url: "https://x.y/z.png" }],
    "link.url",
  ],
  [
    "link with a javascript: thumb_url",
    () => [OPENID, "link", { title: "t", description: "d", url: "https://x.y", thumb_url: "javascript:alert(1)" }],
    "link.thumb_url",
  ],
  [
    "miniprogrampage without pagepath",
    () => [OPENID, "miniprogrampage", { title: "t", thumb_media_id: "m" }],
    "miniprogrampage.pagepath",
  ],
  ["payload not an object", () => [OPENID, "text", "hello"], "text"],
];

for (const [name, args, field] of invalidSends) {
  test(`send refuses ${name} (field ${field}) with zero network calls`, async () => {
    const { fake, mp } = setup();
    const [openId, msgType, payload] = args();
    // deno-lint-ignore no-explicit-any
    const send = mp.customerServiceMessage.send as (...a: any[]) => Promise<unknown>;
    await assert.rejects(send.call(mp.customerServiceMessage, openId, msgType, payload), (err: unknown) => {
      assert.ok(err instanceof ValidationError, String(err));
      assert.equal(err.field, field);
      assert.ok(err.message.includes(field), err.message);
      return true;
    });
    assert.equal(fake.calls.length, 0);
  });
}

test("the public payload schemas accept and refuse what send does", async () => {
  assert.deepEqual([...MSG_TYPES], ["text", "image", "link", "miniprogrampage"]);
  const { fake, mp } = setup();
  const payloads: Array<[MsgType, unknown]> = [
    ["text", { content: "hi" }],
    ["text", { content: "  " }],
    ["text", { content: "hi", extra: 1 }],
    ["image", { media_id: "MEDIA_ID" }],
    ["image", { media_id: "../x" }],
    ["link", { title: "t", description: "d", url: "https://x.y", thumb_url: "https://x.y/t.png" }],
    ["link", { title: "t", description: "d", url: "ftp://x.y", thumb_url: "https://x.y/t.png" }],
    ["miniprogrampage", { title: "t", pagepath: "pages/index/index?a=1", thumb_media_id: "M" }],
    ["miniprogrampage", { title: "t", thumb_media_id: "M" }],
  ];
  for (const [msgtype, payload] of payloads) {
    const checked = sendSchemas[msgtype].safeParse(payload);
    // deno-lint-ignore no-explicit-any
    const sent = await mp.customerServiceMessage.send(OPENID, msgtype, payload as any).then(() => true, (err) => {
      assert.ok(err instanceof ValidationError, String(err));
      assert.equal(err.message, `Invalid ${err.field}: ${checked.error?.issues[0]?.message}`);
      return false;
    });
    assert.equal(sent, checked.success, `${msgtype} ${JSON.stringify(payload)}`);
  }
  assert.equal(fake.to(SEND).length, 4);
});

test("send surfaces WeChat's error with errcode, errmsg, rid and endpoint", async () => {
  const { mp } = setup(() =>
    json({
      errcode: 45015,
      errmsg: "response out of time limit or subscription is canceled rid: 6789abcd-1234abcd-5678ef01",
    })
  );
  await assert.rejects(mp.customerServiceMessage.send(OPENID, "text", { content: "hi" }), (err: unknown) => {
    assert.ok(err instanceof WeChatApiError);
    assert.equal(err.errcode, 45015);
    assert.equal(err.rid, "6789abcd-1234abcd-5678ef01");
    assert.equal(err.endpoint, SEND);
    return true;
  });
});

// --- setTyping -----------------------------------------------------------------

test("setTyping sends {touser, command} and validates the command", async () => {
  const { fake, mp } = setup();
  await mp.customerServiceMessage.setTyping(OPENID, "Typing");
  await mp.customerServiceMessage.setTyping(OPENID, "CancelTyping");
  assert.deepEqual(fake.to("/cgi-bin/message/custom/typing").map((c) => JSON.parse(c.body)), [
    { touser: OPENID, command: "Typing" },
    { touser: OPENID, command: "CancelTyping" },
  ]);
  await assert.rejects(
    mp.customerServiceMessage.setTyping(OPENID, "typing" as never),
    (err: unknown) => err instanceof ValidationError && err.field === "command",
  );
  assert.equal(fake.to("/cgi-bin/message/custom/typing").length, 2);
});

// --- uploadTempMedia -------------------------------------------------------------

function uploadOk() {
  return json({ errcode: 0, errmsg: "ok", type: "image", media_id: "MEDIA_1", created_at: "1714037059" });
}

async function mediaPart(fake: ReturnType<typeof fakeFetch>): Promise<File> {
  const [call] = fake.to(UPLOAD);
  assert.ok(call, "an upload call was made");
  assert.equal(call.url.searchParams.get("type"), "image");
  assert.match(call.request.headers.get("content-type") ?? "", /^multipart\/form-data; boundary=/);
  const form = await call.request.clone().formData();
  const part = form.get("media");
  assert.ok(part instanceof File, "part named media is a file");
  return part;
}

test('uploadTempMedia: PowerWeChat\'s manual form ("", { name, value })', async () => {
  const { fake, mp } = setup(uploadOk);
  const result = await mp.customerServiceMessage.uploadTempMedia("image", "", { name: "cloud.jpg", value: JPEG });
  assert.deepEqual(result, { type: "image", media_id: "MEDIA_1", created_at: 1714037059 });
  const part = await mediaPart(fake);
  assert.equal(part.name, "cloud.jpg");
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), JPEG);
});

test("uploadTempMedia: Blob, File, ArrayBuffer and stream, with extension inferred when missing", async () => {
  const inputs: Array<
    [string, () => Parameters<MiniProgram["customerServiceMessage"]["uploadTempMedia"]>, string, Uint8Array]
  > = [
    [
      "typed Blob without name",
      () => ["image", new Blob([PNG], { type: "image/png" }), { filename: "photo" }],
      "photo.png",
      PNG,
    ],
    [
      "File keeps its own name",
      () => ["image", new File([JPEG], "cloud.jpeg", { type: "image/jpeg" })],
      "cloud.jpeg",
      JPEG,
    ],
    ["ArrayBuffer, type sniffed", () => ["image", JPEG.slice().buffer, { filename: "x" }], "x.jpg", JPEG],
    ["bytes, no name at all", () => ["image", PNG], "media.png", PNG],
    [
      "ReadableStream in chunks",
      () => ["image", streamOf([JPEG.slice(0, 3), JPEG.slice(3)]), { filename: "s.jpg" }],
      "s.jpg",
      JPEG,
    ],
  ];
  for (const [label, args, expectedName, bytes] of inputs) {
    const { fake, mp } = setup(uploadOk);
    await mp.customerServiceMessage.uploadTempMedia(...args());
    const part = await mediaPart(fake);
    assert.equal(part.name, expectedName, label);
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), bytes, label);
  }
});

test("uploadTempMedia never reads a Blob whole: at most its first bytes, to sniff the type", async () => {
  const reads: string[] = [];
  // Records every read of its own bytes; slice() hands out a plain Blob of the range asked for.
  class Watched extends File {
    override arrayBuffer() {
      reads.push("arrayBuffer");
      return super.arrayBuffer();
    }
    override text() {
      reads.push("text");
      return super.text();
    }
    override stream() {
      reads.push("stream");
      return super.stream();
    }
    override slice(start?: number, end?: number, type?: string) {
      reads.push(`slice ${start}-${end}`);
      return super.slice(start, end, type);
    }
  }
  const sent: unknown[] = [];
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => {
    if (String(input).includes("/cgi-bin/stable_token")) {
      return Promise.resolve(json({ access_token: "T", expires_in: 7200 }));
    }
    sent.push((init?.body as FormData).get("media"));
    return Promise.resolve(json({ type: "image", media_id: "MEDIA_1", created_at: 1 }));
  }) as typeof fetch;
  const mp = new MiniProgram({ ...APP, fetch: fetchFn });
  const big = new Uint8Array(64 * 1024);
  big.set(JPEG);

  const named = new Watched([big], "cloud.jpg", { type: "image/jpeg" });
  await mp.customerServiceMessage.uploadTempMedia("image", named, { filename: "cloud.jpg" });
  assert.deepEqual(reads, []);
  assert.equal((sent[0] as File).name, "cloud.jpg");
  assert.equal((sent[0] as File).type, "image/jpeg");

  // Nothing says what it is: only the first bytes are read, to sniff the type.
  const anonymous = new Watched([big], "");
  await mp.customerServiceMessage.uploadTempMedia("image", anonymous);
  assert.deepEqual(reads, ["slice 0-4"]);
  const part = sent[1] as File;
  assert.equal(part.name, "media.jpg");
  assert.equal(part.type, "image/jpeg");
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), big);
});

test("uploadTempMedia from a file path reads the file and names the part after it", async () => {
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const dir = await mkdtemp(join(tmpdir(), "kefu-edge-"));
  try {
    const path = join(dir, "cloud.jpg");
    await writeFile(path, JPEG);
    const { fake, mp } = setup(uploadOk);
    await mp.customerServiceMessage.uploadTempMedia("image", path);
    const part = await mediaPart(fake);
    assert.equal(part.name, "cloud.jpg");
    assert.equal(part.type, "image/jpeg");
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), JPEG);
    await assert.rejects(
      mp.customerServiceMessage.uploadTempMedia("image", join(dir, "missing.jpg")),
      (err: unknown) => err instanceof ValidationError && err.field === "media" && err.message.includes("missing.jpg"),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      controller.close();
    },
  });
}

test("uploadTempMedia refuses empty, over-limit and non-image uploads before any call", async () => {
  const { fake, mp } = setup(uploadOk, { maxUploadBytes: 8 });
  const cs = mp.customerServiceMessage;
  await assert.rejects(
    cs.uploadTempMedia("image", new Uint8Array(0)),
    (e: unknown) => e instanceof ValidationError && /empty/.test(e.message),
  );
  await assert.rejects(
    cs.uploadTempMedia("image", JPEG),
    (e: unknown) => e instanceof MediaTooLargeError && e.limit === 8,
  );
  await assert.rejects(cs.uploadTempMedia("image", new Blob([JPEG])), (e: unknown) => e instanceof MediaTooLargeError);
  await assert.rejects(
    cs.uploadTempMedia("image", streamOf([JPEG, JPEG])),
    (e: unknown) => e instanceof MediaTooLargeError,
  );
  await assert.rejects(
    cs.uploadTempMedia("voice" as never, PNG.slice(0, 4)),
    (e: unknown) => e instanceof ValidationError && e.field === "type",
  );
  await assert.rejects(
    cs.uploadTempMedia("image", ""),
    (e: unknown) => e instanceof ValidationError && e.field === "media",
  );
  assert.equal(fake.calls.length, 0);
});

test("uploadTempMedia accepts created_at as a number", async () => {
  const { mp } = setup(() => json({ type: "image", media_id: "M2", created_at: 1714037060 }));
  assert.deepEqual(await mp.customerServiceMessage.uploadTempMedia("image", PNG), {
    type: "image",
    media_id: "M2",
    created_at: 1714037060,
  });
});

// --- getTempMedia --------------------------------------------------------------

test("getTempMedia resolves with headers before a slow body finishes, then streams it", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { fake, mp } = setup(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(JPEG.slice(0, 4));
          await gate;
          controller.enqueue(JPEG.slice(4));
          controller.close();
        },
      }),
      { headers: { "content-type": "image/jpeg", "content-disposition": 'attachment; filename="MEDIA_ID.jpg"' } },
    )
  );
  const res = await mp.customerServiceMessage.getTempMedia("MEDIA_ID");
  assert.equal(res.headers.get("content-type"), "image/jpeg");
  assert.equal(filenameFromContentDisposition(res.headers.get("content-disposition")), "MEDIA_ID.jpg");
  assert.equal(fake.to(GET)[0]?.url.searchParams.get("media_id"), "MEDIA_ID");
  release();
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), JPEG);
});

test("getTempMedia streams a body without Content-Type when it is not JSON", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { mp } = setup(() => {
    const res = new Response(
      new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(PNG.slice(0, 2));
          await gate;
          controller.enqueue(PNG.slice(2));
          controller.close();
        },
      }),
    );
    res.headers.delete("content-type");
    return res;
  });
  const res = await mp.customerServiceMessage.getTempMedia("MEDIA_ID");
  release();
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), PNG);
});

for (
  const [label, contentType] of [
    ["application/json", "application/json; encoding=utf-8"],
    ["text/plain", "text/plain"],
    ["no content type", null],
  ] as const
) {
  test(`getTempMedia detects an error body sent as ${label}`, async () => {
    const { mp } = setup(() => {
      const res = new Response(`{"errcode":40007,"errmsg":"invalid media_id rid: 1-2-3"}`);
      if (contentType === null) res.headers.delete("content-type");
      else res.headers.set("content-type", contentType);
      return res;
    });
    await assert.rejects(mp.customerServiceMessage.getTempMedia("BAD_ID"), (err: unknown) => {
      assert.ok(isInvalidMediaId(err), String(err));
      assert.equal(err.endpoint, GET);
      return true;
    });
  });
}

test("getTempMedia refuses a malformed media_id without a call", async () => {
  const { fake, mp } = setup();
  await assert.rejects(
    mp.customerServiceMessage.getTempMedia("../etc/passwd"),
    (e: unknown) => e instanceof ValidationError && e.field === "media_id",
  );
  assert.equal(fake.calls.length, 0);
});

test("filenameFromContentDisposition handles quotes, RFC 5987 and path tricks", () => {
  assert.equal(filenameFromContentDisposition('attachment; filename="MEDIA_ID.jpg"'), "MEDIA_ID.jpg");
  assert.equal(filenameFromContentDisposition("attachment; filename=plain.png"), "plain.png");
  assert.equal(
    filenameFromContentDisposition("attachment; filename*=UTF-8''%E4%BA%91.jpg; filename=\"x.jpg\""),
    "云.jpg",
  );
  assert.equal(filenameFromContentDisposition('attachment; filename="../../etc/passwd"'), "passwd");
  assert.equal(filenameFromContentDisposition('attachment; filename=".."'), undefined);
  assert.equal(filenameFromContentDisposition("inline"), undefined);
  assert.equal(filenameFromContentDisposition(null), undefined);
});

test("a slow media body is not cut by the call timeout once headers have arrived", async () => {
  const fake = fakeFetch(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(JPEG);
          await delay(80);
          controller.enqueue(JPEG);
          controller.close();
        },
      }),
      { headers: { "content-type": "image/jpeg" } },
    )
  );
  const mp = new MiniProgram({ ...APP, fetch: fake.fetch, timeoutMs: 30 });
  const res = await mp.customerServiceMessage.getTempMedia("MEDIA_ID");
  assert.equal((await res.arrayBuffer()).byteLength, JPEG.length * 2);
});
