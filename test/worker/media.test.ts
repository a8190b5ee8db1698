import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { contentDisposition } from "../../worker/media.ts";
import { fakeFetch, json as jsonResponse } from "../cases/_fake.ts";
import { AUTH, call, errorOf, testApp, testEnv } from "./_helpers.ts";

beforeEach(() => reset());

const UPLOAD = "/cgi-bin/media/upload";
const GET = "/cgi-bin/media/get";
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8]);

function form(fields: Record<string, string | Blob>, filename = "cloud.jpg"): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === "string") data.set(name, value);
    else data.set(name, value, filename);
  }
  return data;
}

function uploaded() {
  return fakeFetch((_request, url) =>
    url.pathname === UPLOAD
      ? jsonResponse({ type: "image", media_id: "MEDIA_NEW", created_at: 1714112445 })
      : jsonResponse({ errcode: 0, errmsg: "ok" })
  );
}

describe("POST /api/media", () => {
  it("uploads the file part as `media` with type=image by default", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media", {
      method: "POST",
      body: form({ media: new Blob([JPEG], { type: "image/jpeg" }) }),
      headers: AUTH,
    }, testEnv());
    expect(called.res.status).toBe(200);
    expect(JSON.parse(called.text)).toEqual({ type: "image", media_id: "MEDIA_NEW", created_at: 1714112445 });
    const [sent] = fake.to(UPLOAD);
    expect(sent?.url.searchParams.get("type")).toBe("image");
    const upstreamForm = await sent!.request.formData();
    const media = upstreamForm.get("media");
    expect(media).toBeInstanceOf(File);
    expect((media as File).name).toBe("cloud.jpg");
    expect(new Uint8Array(await (media as File).arrayBuffer())).toEqual(JPEG);
  });

  it("accepts an explicit type=image", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media", {
      method: "POST",
      body: form({ media: new Blob([JPEG]), type: "image" }),
      headers: AUTH,
    }, testEnv());
    expect(called.res.status).toBe(200);
  });

  for (
    const [what, data, field] of [
      ["no media part", form({ type: "image" }), "media"],
      ["media as a plain field", form({ media: "not a file" }), "media"],
      ["an empty file", form({ media: new Blob([]) }), "media"],
      ["an unsupported type", form({ media: new Blob([JPEG]), type: "voice" }), "type"],
    ] as const
  ) {
    it(`refuses ${what} with 400 naming ${field}`, async () => {
      const fake = uploaded();
      const app = testApp({ fetch: fake.fetch });
      const called = await call(app, "/api/media", { method: "POST", body: data, headers: AUTH }, testEnv());
      expect(called.res.status).toBe(400);
      expect(errorOf(called)).toMatchObject({ code: "validation_error", field });
      expect(fake.calls).toHaveLength(0);
    });
  }

  it("refuses a non-multipart body with 400", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media", {
      method: "POST",
      body: JSON.stringify({ media: "x" }),
      headers: { ...AUTH, "content-type": "application/json" },
    }, testEnv());
    expect(called.res.status).toBe(400);
    expect(errorOf(called).field).toBe("media");
    expect(fake.calls).toHaveLength(0);
  });

  it("a file over the limit answers 413 with no upstream call", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch, maxUploadBytes: 1000 });
    const called = await call(app, "/api/media", {
      method: "POST",
      body: form({ media: new Blob([new Uint8Array(1001)]) }),
      headers: AUTH,
    }, testEnv());
    expect(called.res.status).toBe(413);
    expect(errorOf(called)).toMatchObject({ code: "payload_too_large", field: "media" });
    expect(fake.calls).toHaveLength(0);
  });

  it("a body over the limit is refused from its Content-Length, before it is read", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch });
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    const request = new Request("http://127.0.0.1:8787/api/media", {
      method: "POST",
      body,
      headers: {
        ...AUTH,
        "content-type": "multipart/form-data; boundary=x",
        "content-length": String(200 * 1024 ** 2),
      },
      // @ts-expect-error: duplex is required for stream bodies in some runtimes
      duplex: "half",
    });
    const called = await call(app, request, undefined, testEnv());
    expect(called.res.status).toBe(413);
    expect(errorOf(called).code).toBe("payload_too_large");
    expect(pulled).toBeLessThanOrEqual(1);
    expect(fake.calls).toHaveLength(0);
  });

  it("a streamed body without Content-Length is cut off at the limit", async () => {
    const fake = uploaded();
    const app = testApp({ fetch: fake.fetch, maxUploadBytes: 4096 });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 10 * 1024 * 1024) return controller.close();
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const request = new Request("http://127.0.0.1:8787/api/media", {
      method: "POST",
      body,
      headers: { ...AUTH, "content-type": "multipart/form-data; boundary=x" },
      // @ts-expect-error: duplex is required for stream bodies in some runtimes
      duplex: "half",
    });
    expect(request.headers.get("content-length")).toBeNull();
    const called = await call(app, request, undefined, testEnv());
    expect(called.res.status).toBe(413);
    expect(sent).toBeLessThan(1024 * 1024);
    expect(fake.calls).toHaveLength(0);
  });

  it("a WeChat error answers 502 with its errcode", async () => {
    const fake = fakeFetch(() => jsonResponse({ errcode: 40004, errmsg: "invalid media type" }));
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media", {
      method: "POST",
      body: form({ media: new Blob([JPEG]) }),
      headers: AUTH,
    }, testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called)).toMatchObject({ code: "wechat_api_error", errcode: 40004 });
  });
});

describe("GET /api/media/:mediaId", () => {
  it("streams the bytes with Content-Type, a rebuilt Content-Disposition and private caching", async () => {
    const bytes = new Uint8Array(3000).map((_, i) => i % 251);
    const fake = fakeFetch(() =>
      new Response(bytes, {
        headers: {
          "content-type": "image/jpeg",
          "content-disposition": 'attachment; filename="MEDIA_ID.jpg"',
          "cache-control": "no-cache, must-revalidate",
          "set-cookie": "upstream=1",
        },
      })
    );
    const app = testApp({ fetch: fake.fetch });
    const res = await app.fetch(
      new Request("http://127.0.0.1:8787/api/media/MEDIA_ID", { headers: AUTH }),
      testEnv(),
      { waitUntil() {}, passThroughOnException() {}, props: {} },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    expect(res.headers.get("content-disposition")).toBe(
      `attachment; filename="MEDIA_ID.jpg"; filename*=UTF-8''MEDIA_ID.jpg`,
    );
    expect(res.headers.get("cache-control")).toBe("private");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect(fake.to(GET)[0]?.url.searchParams.get("media_id")).toBe("MEDIA_ID");
  });

  it("passes a multi-MiB body through while upstream is still producing it", async () => {
    const CHUNK = 256 * 1024;
    const CHUNKS = 32; // 8 MiB
    let produced = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const upstreamBody = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (produced === 1) await gate; // hold the rest back until the client has the headers
        if (produced === CHUNKS) return controller.close();
        controller.enqueue(new Uint8Array(CHUNK).fill(produced % 256));
        produced++;
      },
    }, { highWaterMark: 0 });
    const fake = fakeFetch(() =>
      new Response(upstreamBody, {
        headers: { "content-type": "image/png", "content-disposition": 'attachment; filename="big.png"' },
      })
    );
    const app = testApp({ fetch: fake.fetch });
    const res = await app.fetch(
      new Request("http://127.0.0.1:8787/api/media/BIG", { headers: AUTH }),
      testEnv(),
      { waitUntil() {}, passThroughOnException() {}, props: {} },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(produced).toBeLessThanOrEqual(1);
    release();
    const reader = res.body!.getReader();
    let total = 0;
    let chunks = 0;
    let ok = true;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // every byte carries the index of the upstream chunk it came from
      const first = Math.floor(total / CHUNK) % 256;
      const last = Math.floor((total + value.byteLength - 1) / CHUNK) % 256;
      if (value[0] !== first || value[value.byteLength - 1] !== last) ok = false;
      total += value.byteLength;
      chunks++;
    }
    expect(ok).toBe(true);
    expect(total).toBe(CHUNK * CHUNKS);
    expect(chunks).toBeGreaterThan(1);
  });

  it("rebuilds an unsafe or non-ASCII file name safely", async () => {
    const fake = fakeFetch(() =>
      new Response(new Uint8Array([1]), {
        headers: {
          "content-type": "image/jpeg",
          "content-disposition": `attachment; filename*=UTF-8''..%2F..%2F%E5%9B%BE%22%3B%20x.jpg`,
        },
      })
    );
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media/M1", { headers: AUTH }, testEnv());
    const header = called.res.headers.get("content-disposition")!;
    expect(header).toBe(`attachment; filename="__ x.jpg"; filename*=UTF-8''%E5%9B%BE%3B%20x.jpg`);
    expect(header).not.toContain("..");
  });

  it("names the file after the media_id when WeChat gives no name", async () => {
    const fake = fakeFetch(() => new Response(new Uint8Array([1]), { headers: { "content-type": "image/png" } }));
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media/M_2-x", { headers: AUTH }, testEnv());
    expect(called.res.headers.get("content-disposition")).toBe(
      `attachment; filename="M_2-x.png"; filename*=UTF-8''M_2-x.png`,
    );
  });

  it("turns a JSON error from WeChat into a JSON error with its errcode", async () => {
    const fake = fakeFetch(() => jsonResponse({ errcode: 40007, errmsg: "invalid media_id rid: 1-2-3" }));
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media/EXPIRED", { headers: AUTH }, testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called)).toMatchObject({ code: "wechat_api_error", errcode: 40007 });
    expect(called.res.headers.get("content-disposition")).toBeNull();
  });

  it("a JSON error served as text/plain is still an error", async () => {
    const fake = fakeFetch(() =>
      new Response(JSON.stringify({ errcode: 40007, errmsg: "invalid media_id" }), {
        headers: { "content-type": "text/plain" },
      })
    );
    const app = testApp({ fetch: fake.fetch });
    const called = await call(app, "/api/media/EXPIRED", { headers: AUTH }, testEnv());
    expect(called.res.status).toBe(502);
    expect(errorOf(called).errcode).toBe(40007);
  });

  for (const mediaId of ["bad.id", "a%2Fb", "x".repeat(257), "%20"]) {
    it(`refuses the media id ${JSON.stringify(mediaId.slice(0, 20))} with 400 and no upstream call`, async () => {
      const fake = fakeFetch();
      const app = testApp({ fetch: fake.fetch });
      const called = await call(app, `/api/media/${mediaId}`, { headers: AUTH }, testEnv());
      expect(called.res.status).toBe(400);
      expect(errorOf(called)).toMatchObject({ code: "validation_error", field: "mediaId" });
      expect(fake.calls).toHaveLength(0);
    });
  }

  for (
    const [upstreamType, served] of [
      ["text/html; charset=utf-8", "application/octet-stream"],
      ["image/svg+xml", "application/octet-stream"],
      ["application/javascript", "application/octet-stream"],
      ["application/octet-stream", "application/octet-stream"],
      ["IMAGE/PNG; q=1", "image/png"],
      ["audio/amr", "audio/amr"],
      ["video/mp4", "video/mp4"],
    ] as const
  ) {
    it(`serves an upstream ${upstreamType} as ${served}, never sniffed`, async () => {
      const fake = fakeFetch(() =>
        new Response("<script>alert(1)</script>", {
          headers: { "content-type": upstreamType, "content-disposition": 'attachment; filename="x.html"' },
        })
      );
      const called = await call(testApp({ fetch: fake.fetch }), "/api/media/M1", { headers: AUTH }, testEnv());
      expect(called.res.status).toBe(200);
      expect(called.res.headers.get("content-type")).toBe(served);
      expect(called.res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(called.res.headers.get("content-disposition")).toMatch(/^attachment;/);
    });
  }

  it("caps the file name at 200 bytes on a character boundary, keeping the extension", async () => {
    const long = `${"图".repeat(150)}.jpg`; // 454 bytes of UTF-8
    const fake = fakeFetch(() =>
      new Response(new Uint8Array([1]), {
        headers: {
          "content-type": "image/jpeg",
          "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(long)}`,
        },
      })
    );
    const called = await call(testApp({ fetch: fake.fetch }), "/api/media/M1", { headers: AUTH }, testEnv());
    const header = called.res.headers.get("content-disposition")!;
    const name = decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(header)![1]!);
    expect(new TextEncoder().encode(name).length).toBeLessThanOrEqual(200);
    expect(name).toBe(`${"图".repeat(65)}.jpg`); // 195 + 4 bytes: the next 图 would pass 200
    expect(header.length).toBeLessThan(1500);
  });

  it("cuts a download that stalls after the headers instead of hanging the client", async () => {
    let cancelled = false;
    const stalling = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([0xff, 0xd8, 0xff]));
      },
      cancel() {
        cancelled = true;
      },
    });
    const fake = fakeFetch(() => new Response(stalling, { headers: { "content-type": "image/jpeg" } }));
    const app = testApp({ fetch: fake.fetch, mediaIdleTimeoutMs: 200 });
    const res = await app.fetch(
      new Request("http://127.0.0.1:8787/api/media/SLOW", { headers: AUTH }),
      testEnv(),
      { waitUntil() {}, passThroughOnException() {}, props: {} },
    );
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array([0xff, 0xd8, 0xff]));
    const err = await reader.read().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/no bytes for 200 ms/);
    expect(cancelled).toBe(true);
  });

  it("contentDisposition keeps ASCII names and encodes the rest", () => {
    expect(contentDisposition("a b.jpg")).toBe(`attachment; filename="a b.jpg"; filename*=UTF-8''a%20b.jpg`);
    expect(contentDisposition("100%.jpg")).toBe(`attachment; filename="100_.jpg"; filename*=UTF-8''100%25.jpg`);
  });
});
