// The Deno server (worker/deno.ts) does not wait forever for a request body: a push or an /api
// call whose body stops after 20 bytes is answered 408 `request_timeout` once the body deadline
// (`bodyTimeoutMs`, 300 ms here) has passed; a whole body is handled as usual.
import { serveDeno } from "../../worker/deno.ts";
import { DEADLINE_SERVER, stallPushAndApi } from "../cases/_stalled_request.ts";

function assert(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

Deno.test("Deno server: a push or /api body that stops after 20 bytes is answered 408 within the deadline", async () => {
  const logged: string[] = [];
  const server = await serveDeno({
    ...DEADLINE_SERVER,
    env: { ...DEADLINE_SERVER.env },
    port: 0,
    hostname: "127.0.0.1",
    kvPath: ":memory:",
    queue: false,
    app: { logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) } },
  });
  try {
    const { stalled, whole } = await stallPushAndApi(server.url);
    const deadline = DEADLINE_SERVER.bodyTimeoutMs;
    for (const outcome of stalled) {
      const answer = JSON.stringify(outcome);
      assert(outcome.status === 408, `answered 408: ${answer}`);
      assert(JSON.parse(outcome.body).error.code === "request_timeout", `request_timeout: ${answer}`);
      assert(outcome.elapsedMs >= deadline - 50 && outcome.elapsedMs < deadline + 1500, `in time: ${answer}`);
    }
    assert(logged.filter((line) => line.includes("kefu-edge.request_timeout")).length === 2, "each refusal logged");
    assert(whole.status === 200 && await whole.text() === "success", "a whole push is answered success");
  } finally {
    await server.close();
  }
});
