// `npm start` run twice on the same local storage: the access token the first run cached in
// local KV reaches the second run's emulator, which recognises it. The second run's first
// reply goes out without a 40001 from the emulator, a replay or a new token.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { DEV_VARS } from "../../scripts/_dev_server.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";

const USER = "o_restart_user";
let state: string | undefined;
let server: DevServer | undefined;

afterAll(async () => {
  await server?.stop();
  if (state !== undefined) await rm(state, { recursive: true, force: true });
}, 15_000);

/** The user writes, then the app replies through /api/messages; the reply's status. */
async function exchange(url: string, text: string): Promise<number> {
  const said = await fetch(`${url}/_emulator/users/${USER}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  expect(said.status).toBe(200);
  const reply = await fetch(`${url}/api/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${DEV_VARS.API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ touser: USER, msgtype: "text", text: { content: `re: ${text}` } }),
  });
  await reply.body?.cancel();
  return reply.status;
}

interface Exchange {
  kind: "push" | "api";
  /** E.g. `POST /cgi-bin/message/custom/send`. */
  title: string;
  response?: { errcode?: number };
}

/** The WeChat API calls the app made, as the chat page lists them: the call, and WeChat's errcode (0: ok). */
async function apiCalls(url: string): Promise<Array<[string, number | undefined]>> {
  const res = await fetch(`${url}/_emulator/exchanges?after=0`);
  const body = await res.json() as { exchanges: Exchange[] };
  return body.exchanges.filter((e) => e.kind === "api").map((e) => [e.title, e.response?.errcode]);
}

it("a restarted npm start recognises the token the first run cached: no 40001, no new token", async () => {
  state = await mkdtemp(join(tmpdir(), "kefu-restart-"));
  server = await startDevServer({ state });
  expect(await exchange(server.url, "first run")).toBe(200);
  // The first run fetched a token (cached in local KV) once, and sent: the demo bot's answer and the reply.
  const first = (await apiCalls(server.url)).map(([title]) => title);
  expect(first[0]).toBe("POST /cgi-bin/stable_token");
  expect(first.filter((t) => t === "POST /cgi-bin/stable_token")).toHaveLength(1);
  expect(first.filter((t) => t === "POST /cgi-bin/message/custom/send").length).toBeGreaterThanOrEqual(1);
  await server.stop();

  server = await startDevServer({ state });
  expect(await exchange(server.url, "second run")).toBe(200);
  // The second run sends with it at once: no token fetched, every send answered ok (no 40001).
  const second = await apiCalls(server.url);
  expect(second.length).toBeGreaterThanOrEqual(1);
  expect(second).toEqual(second.map(() => ["POST /cgi-bin/message/custom/send", 0]));
}, 120_000);
