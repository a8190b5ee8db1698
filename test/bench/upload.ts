// Upload memory: what one 10 MiB `POST /api/media` costs the worker as deployed (the
// wrangler bundle) on workerd, against a worker that does nothing but pass the same upload
// through (`request.formData()` → `fetch`), both measured in this run.
//
// Each measured upload gets a fresh workerd process: two small uploads warm it up, then its
// peak resident memory is reset (Linux /proc/<pid>/clear_refs) and the growth of that peak
// (VmHWM) over what it held before is read after the 10 MiB upload. A reused process would
// keep the pages of earlier uploads and hide most of the growth. The row is the median of
// several processes per worker, taking turns. The upstream is a loopback server in this
// process that reads and drops the upload, so its memory is not counted.
//
// Run: `npm run bench`, or alone: `node --import tsx test/bench/upload.ts`.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare, type MiniflareOptions } from "miniflare";
import { median, printTable, type Row } from "./_lib.ts";
import { wranglerBuild } from "./worker.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MIB = 1024 * 1024;
const UPLOAD_BYTES = 10 * MIB;
const WARMUP_BYTES = 256 * 1024;
const TARGET_RATIO = 1.2;
const PROCESSES = 5;
const API_KEY = "bench-api-key";

// The least any worker can do with a multipart upload it forwards.
const passThrough = (upstream: string) =>
  `export default {
  async fetch(request) {
    const form = await request.formData();
    const out = new FormData();
    out.set("media", form.get("media"));
    const res = await fetch(${
    JSON.stringify(`${upstream}/cgi-bin/media/upload?type=image`)
  }, { method: "POST", body: out });
    return new Response(await res.text(), { headers: { "content-type": "application/json" } });
  },
};
`;

/** WeChat's two calls an upload needs; the media is named after the bytes received. */
function startUpstream(): Promise<{ base: string; server: Server }> {
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(
        req.url?.startsWith("/cgi-bin/stable_token")
          ? { access_token: "BENCH_TOKEN", expires_in: 7200 }
          : { type: "image", media_id: `MEDIA_${bytes}`, created_at: 1714112445 },
      ));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ base: `http://127.0.0.1:${port}`, server });
    })
  );
}

/** The workerd processes this process started. */
function workerdChildren(): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (stat.includes("(workerd)") && parent === process.pid) pids.add(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no ${field} for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** A JPEG-looking file of `size` bytes, multipart-encoded by fetch as a browser or curl -F would. */
function uploadBody(size: number): FormData {
  const bytes = new Uint8Array(size);
  bytes.set([0xff, 0xd8, 0xff, 0xe0]);
  const form = new FormData();
  form.set("media", new File([bytes], "photo.jpg", { type: "image/jpeg" }));
  form.set("type", "image");
  return form;
}

interface Worker {
  label: string;
  options: MiniflareOptions;
  path: string;
  headers: Record<string, string>;
}

/** One fresh workerd process for `worker`: the growth of its peak memory over one 10 MiB upload. */
async function peakGrowth(worker: Worker): Promise<number> {
  const before = workerdChildren();
  const mf = new Miniflare({ ...worker.options, host: "127.0.0.1", port: 0 } as MiniflareOptions);
  try {
    const base = await mf.ready;
    const pid = [...workerdChildren()].find((p) => !before.has(p));
    if (pid === undefined) throw new Error(`cannot find the workerd process of ${worker.label}`);
    const upload = async (size: number) => {
      const res = await fetch(new URL(worker.path, base), {
        method: "POST",
        body: uploadBody(size),
        headers: worker.headers,
      });
      const text = await res.text();
      // The upstream names the media after the bytes it received: the whole file went through.
      const received = Number(/"media_id":"MEDIA_(\d+)"/.exec(text)?.[1] ?? 0);
      if (res.status !== 200 || received < size) throw new Error(`${worker.label}: HTTP ${res.status} ${text}`);
    };
    await upload(WARMUP_BYTES);
    await upload(WARMUP_BYTES);
    const resident = statusBytes(pid, "VmRSS");
    writeFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
    await upload(UPLOAD_BYTES);
    return statusBytes(pid, "VmHWM") - resident;
  } finally {
    await mf.dispose().catch(() => {});
  }
}

/** Runs the upload memory benchmark and returns its row. */
export async function run(): Promise<Row[]> {
  if (process.platform !== "linux") {
    console.log("upload memory: skipped (it reads a process's peak memory from Linux /proc)");
    return [];
  }
  const tmp = await mkdtemp(join(tmpdir(), "kefu-bench-upload-"));
  const upstream = await startUpstream();
  try {
    const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
    const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)![1]!;
    const app = await wranglerBuild(ROOT, join(tmp, "app-out"));
    const workers: Worker[] = [
      {
        label: "pass-through",
        options: { modules: true, script: passThrough(upstream.base), compatibilityDate },
        path: "/",
        headers: {},
      },
      {
        label: "app",
        options: {
          modules: true,
          scriptPath: app.file,
          modulesRoot: dirname(app.file),
          compatibilityDate,
          bindings: {
            WECHAT_APPID: "wxbench0000000001",
            WECHAT_SECRET: "bench-secret",
            API_KEY,
            WECHAT_API_BASE: upstream.base,
          },
          kvNamespaces: ["WECHAT_KV"],
        },
        path: "/api/media",
        headers: { authorization: `Bearer ${API_KEY}` },
      },
    ];
    const growth: number[][] = workers.map(() => []);
    for (let i = 0; i < PROCESSES; i++) {
      for (const [k, worker] of workers.entries()) growth[k]!.push(await peakGrowth(worker));
    }
    const [bare, ours] = growth.map(median);
    const ratio = ours! / bare!;
    return [{
      bench: "upload",
      metric: "10 MiB POST /api/media, workerd: peak memory growth",
      value: ours! / MIB,
      unit: "MiB",
      baseline: `formData() → fetch pass-through ${(bare! / MIB).toFixed(1)} MiB`,
      ratio,
      target: `<= ${TARGET_RATIO}x`,
      met: ratio <= TARGET_RATIO,
    }];
  } finally {
    upstream.server.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printTable(await run());
}
