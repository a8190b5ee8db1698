// A loopback HTTP server that answers like WeChat, for benchmarks. Run as a child
// process so its memory is not counted with the client's. Prints its port on stdout.
import { createServer } from "node:http";

const MEDIA_BYTES = Number(process.env.MEDIA_BYTES ?? 20 * 1024 * 1024);
const CHUNK = Buffer.alloc(64 * 1024, 0xab);
const TOKEN_DELAY_MS = Number(process.env.TOKEN_DELAY_MS ?? 20);
const stats = { tokenCalls: 0, sends: 0 };

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const body: Buffer[] = [];
  req.on("data", (c: Buffer) => body.push(c));
  req.on("end", () => {
    const json = (value: unknown) => {
      res.writeHead(200, { "content-type": "application/json; encoding=utf-8" });
      res.end(JSON.stringify(value));
    };
    switch (url.pathname) {
      case "/cgi-bin/stable_token":
      case "/cgi-bin/token":
        stats.tokenCalls++;
        setTimeout(() => json({ access_token: `BENCH_TOKEN_${stats.tokenCalls}`, expires_in: 7200 }), TOKEN_DELAY_MS);
        return;
      case "/cgi-bin/message/custom/send":
        stats.sends++;
        return json({ errcode: 0, errmsg: "ok" });
      case "/cgi-bin/media/get": {
        res.writeHead(200, {
          "content-type": "image/jpeg",
          "content-disposition": `attachment; filename="${url.searchParams.get("media_id")}.jpg"`,
          "content-length": String(MEDIA_BYTES),
        });
        let sent = 0;
        const pump = () => {
          while (sent < MEDIA_BYTES) {
            const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, MEDIA_BYTES - sent));
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      case "/_stats":
        return json(stats);
      case "/_reset":
        stats.tokenCalls = 0;
        stats.sends = 0;
        return json(stats);
      default:
        res.writeHead(404).end();
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") console.log(String(address.port));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
