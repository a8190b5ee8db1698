// Upload memory: what one 10 MiB `POST /api/media` keeps alive in the worker app, against a
// handler that does nothing but pass the same upload through (`request.formData()` → `fetch`),
// both measured in this run on Node. The request body is generated chunk by chunk, so the
// client side holds no copy; the upstream is a loopback server in a child process that reads
// and drops the upload. Live memory is V8's heap plus array buffers after a full GC, sampled
// every millisecond and at the moment the upload leaves for WeChat (the app's fetch is
// wrapped for that), where every copy the handler made is still referenced. The row is the
// median of several uploads, app and pass-through taking turns. Needs `--expose-gc`.
//
// Run: `npm run bench`, or alone: `node --expose-gc --import tsx test/bench/upload.ts`.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createApp } from "../../worker/app.ts";
import { median, printTable, type Row } from "./_lib.ts";

const MIB = 1024 * 1024;
const UPLOAD_BYTES = 10 * MIB;
const CHUNK_BYTES = 64 * 1024;
const TARGET_RATIO = 1.2;
const WARMUP = 2;
const UPLOADS = 7;
const API_KEY = "bench-api-key";
const BOUNDARY = "----kefu-edge-bench";

// WeChat's two calls an upload needs; the media is named after the bytes received.
const UPSTREAM = `
const server = require("node:http").createServer((req, res) => {
  let bytes = 0;
  req.on("data", (chunk) => (bytes += chunk.length));
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(req.url.startsWith("/cgi-bin/stable_token")
      ? { access_token: "BENCH_TOKEN", expires_in: 7200 }
      : { type: "image", media_id: "MEDIA_" + bytes, created_at: 1714112445 }));
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

async function startUpstream(): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["-e", UPSTREAM], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
    child.once("exit", (code) => reject(new Error(`upload upstream exited with ${code}`)));
  });
  return { base: `http://127.0.0.1:${port}`, child };
}

/** A multipart upload of a JPEG-looking 10 MiB file, produced as it is read. */
function uploadRequest(path: string): Request {
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="media"; filename="photo.jpg"\r\n` +
      "Content-Type: image/jpeg\r\n\r\n",
  );
  const tail = encoder.encode(
    `\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="type"\r\n\r\nimage\r\n--${BOUNDARY}--\r\n`,
  );
  let sent = -1;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent < 0) {
        controller.enqueue(head);
        sent = 0;
      } else if (sent < UPLOAD_BYTES) {
        const chunk = new Uint8Array(Math.min(CHUNK_BYTES, UPLOAD_BYTES - sent));
        if (sent === 0) chunk.set([0xff, 0xd8, 0xff, 0xe0]);
        sent += chunk.length;
        controller.enqueue(chunk);
      } else {
        controller.enqueue(tail);
        controller.close();
      }
    },
  });
  return new Request(`http://kefu.test${path}`, {
    method: "POST",
    body,
    duplex: "half",
    headers: {
      "content-type": `multipart/form-data; boundary=${BOUNDARY}`,
      "content-length": String(head.length + UPLOAD_BYTES + tail.length),
      authorization: `Bearer ${API_KEY}`,
    },
  } as RequestInit);
}

/** Peak live memory while `handle` answers one upload, above what was live before. */
class LiveMemory {
  readonly #gc: () => void;
  #peak = 0;

  constructor() {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error("the upload benchmark needs node --expose-gc");
    this.#gc = gc;
  }

  sample(): void {
    this.#gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    this.#peak = Math.max(this.#peak, heapUsed + arrayBuffers);
  }

  async during(handle: () => Promise<Response>): Promise<number> {
    this.#gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    const start = heapUsed + arrayBuffers;
    this.#peak = start;
    const timer = setInterval(() => this.sample(), 1);
    try {
      const response = await handle();
      const text = await response.text();
      const received = Number(/"media_id":"MEDIA_(\d+)"/.exec(text)?.[1] ?? 0);
      if (response.status !== 200 || received < UPLOAD_BYTES) {
        throw new Error(`upload failed: HTTP ${response.status} ${text.slice(0, 300)}`);
      }
    } finally {
      clearInterval(timer);
    }
    this.sample();
    return this.#peak - start;
  }
}

/** Runs the upload memory benchmark and returns its row. */
export async function run(): Promise<Row[]> {
  const memory = new LiveMemory();
  const upstream = await startUpstream();
  try {
    // Every upstream call made while an upload is handled is a moment to sample.
    const sampledFetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      memory.sample();
      return fetch(input, init);
    }) as typeof fetch;
    const app = createApp({ fetch: sampledFetch });
    const env = {
      WECHAT_APPID: "wxbench0000000001",
      WECHAT_SECRET: "bench-secret",
      API_KEY,
      WECHAT_API_BASE: upstream.base,
    };
    const passThrough = async (request: Request): Promise<Response> => {
      const form = await request.formData();
      const out = new FormData();
      out.set("media", form.get("media")!);
      const res = await sampledFetch(`${upstream.base}/cgi-bin/media/upload?type=image`, { method: "POST", body: out });
      return new Response(await res.text(), { headers: { "content-type": "application/json" } });
    };
    const targets = [
      { handle: () => passThrough(uploadRequest("/")), growth: [] as number[] },
      { handle: () => Promise.resolve(app.fetch(uploadRequest("/api/media"), env)), growth: [] as number[] },
    ];
    for (const target of targets) for (let i = 0; i < WARMUP; i++) await memory.during(target.handle);
    for (let i = 0; i < UPLOADS; i++) {
      for (const target of i % 2 === 0 ? targets : [...targets].reverse()) {
        target.growth.push(await memory.during(target.handle));
      }
    }
    const [bare, ours] = targets.map((t) => median(t.growth));
    const ratio = ours! / bare!;
    return [{
      bench: "upload",
      metric: "10 MiB POST /api/media: peak live memory (heap + buffers)",
      value: ours! / MIB,
      unit: "MiB",
      baseline: `formData() → fetch pass-through ${(bare! / MIB).toFixed(1)} MiB`,
      ratio,
      target: `<= ${TARGET_RATIO}x`,
      met: ratio <= TARGET_RATIO,
    }];
  } finally {
    upstream.child.kill("SIGTERM");
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printTable(await run());
}
