// The Bun server (worker/bun.ts) does not wait forever for a request body: a push or an /api
// call whose body stops after 20 bytes is answered 408 `request_timeout` once the body deadline
// (`bodyTimeoutMs`, 300 ms here) has passed; a whole body is handled as usual.
import { expect, test } from "bun:test";
import { serveBun } from "../../worker/bun.ts";
import { DEADLINE_SERVER, stallPushAndApi } from "../cases/_stalled_request.ts";

test("Bun server: a push or /api body that stops after 20 bytes is answered 408 within the deadline", async () => {
  const logged: string[] = [];
  const server = serveBun({
    ...DEADLINE_SERVER,
    env: { ...DEADLINE_SERVER.env },
    port: 0,
    hostname: "127.0.0.1",
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
  });
  try {
    const { stalled, whole } = await stallPushAndApi(server.url);
    const deadline = DEADLINE_SERVER.bodyTimeoutMs;
    for (const outcome of stalled) {
      expect(outcome.status).toBe(408);
      expect(JSON.parse(outcome.body).error.code).toBe("request_timeout");
      expect(outcome.elapsedMs).toBeGreaterThanOrEqual(deadline - 50);
      expect(outcome.elapsedMs).toBeLessThan(deadline + 1500);
    }
    expect(logged.filter((line) => line.includes("kefu-edge.request_timeout"))).toHaveLength(2);
    expect([whole.status, await whole.text()]).toEqual([200, "success"]);
  } finally {
    await server.close();
  }
});
