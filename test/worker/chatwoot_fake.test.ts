// The contract fake of Chatwoot holds the bridge to the documented API: these check that it
// refuses what Chatwoot's swagger does not describe, so a passing bridge test means something.
import { describe, expect, it } from "vitest";
import { ChatwootFake } from "./_chatwoot_fake.ts";

const BASE = "https://chatwoot.test";
const TOKEN = "cw-token-0123456789abcdef";

function fake() {
  return new ChatwootFake({ baseUrl: BASE, token: TOKEN, accountId: 3, inboxId: 7, webhookSecret: "whsec-1234567890" });
}

function post(cw: ChatwootFake, path: string, body: unknown, token = TOKEN) {
  return cw.fetch(`${BASE}/api/v1/accounts/3${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", api_access_token: token },
    body: JSON.stringify(body),
  });
}

describe("the Chatwoot contract fake", () => {
  it("refuses a request without the api_access_token, or with another one", async () => {
    const cw = fake();
    expect((await post(cw, "/contacts", { inbox_id: 7 }, "wrong")).status).toBe(401);
    const bare = await cw.fetch(`${BASE}/api/v1/accounts/3/contacts/search?q=x`);
    expect(bare.status).toBe(401);
    expect(cw.refusals).toHaveLength(2);
    expect(cw.contacts).toHaveLength(0);
  });

  it("refuses bodies that do not match the documented schemas: missing, undocumented, mistyped, out of enum", async () => {
    const cw = fake();
    expect((await post(cw, "/contacts", { name: "no inbox" })).status).toBe(400); // inbox_id required
    expect((await post(cw, "/contacts", { inbox_id: 7, source_id: "x" })).status).toBe(400); // not documented
    expect((await post(cw, "/contacts", { inbox_id: "7" })).status).toBe(400); // a string
    const created = await post(cw, "/contacts", { inbox_id: 7, name: "u", identifier: "wechat:wx1:o1" });
    expect(created.status).toBe(200);
    const { payload } = await created.json() as { payload: { contact: { id: number } } };
    const inbox = await post(cw, `/contacts/${payload.contact.id}/contact_inboxes`, { inbox_id: 7, source_id: "o1" });
    expect(await inbox.json()).toMatchObject({ source_id: "o1", inbox: { id: 7 } });
    expect((await post(cw, "/conversations", { inbox_id: 7 })).status).toBe(400); // source_id required
    expect((await post(cw, "/conversations", { source_id: "o1", status: "snoozed" })).status).toBe(400); // enum
    const conversation = await post(cw, "/conversations", { source_id: "o1", inbox_id: 7, status: "pending" });
    const { id } = await conversation.json() as { id: number };
    expect((await post(cw, `/conversations/${id}/messages`, { message_type: "incoming" })).status).toBe(400);
    expect((await post(cw, `/conversations/${id}/messages`, { content: "x", message_type: "activity" })).status)
      .toBe(400);
    expect((await post(cw, `/conversations/${id}/toggle_status`, { status: "closed" })).status).toBe(422);
    const message = await post(cw, `/conversations/${id}/messages`, { content: "hi", message_type: "incoming" });
    expect(await message.json()).toMatchObject({ content: "hi", message_type: 0, sender_type: "Contact" });
    expect(cw.refusals).toHaveLength(8);
  });

  it("fails on demand (429 with Retry-After, 5xx), goes down and comes back", async () => {
    const cw = fake();
    cw.failNext(1, 429, "1");
    cw.failNext(1, 503);
    const first = await post(cw, "/contacts", { inbox_id: 7 });
    expect([first.status, first.headers.get("retry-after")]).toEqual([429, "1"]);
    expect((await post(cw, "/contacts", { inbox_id: 7 })).status).toBe(503);
    cw.down();
    await expect(post(cw, "/contacts", { inbox_id: 7 })).rejects.toThrow(TypeError);
    cw.up();
    expect((await post(cw, "/contacts", { inbox_id: 7 })).status).toBe(200);
    expect(cw.contacts).toHaveLength(1);
    expect(cw.faulted.map((r) => r.status)).toEqual([429, 503]);
  });

  it("signs its webhooks, echoes API-made messages, and can deliver each twice", async () => {
    const received: Request[] = [];
    const cw = new ChatwootFake({
      baseUrl: BASE,
      token: TOKEN,
      accountId: 3,
      inboxId: 7,
      webhookSecret: "whsec-1234567890",
      deliver: (request) => Promise.resolve(void received.push(request)).then(() => new Response("ok")),
    });
    cw.duplicate = true;
    const { payload } = await (await post(cw, "/contacts", { inbox_id: 7, identifier: "i" })).json() as {
      payload: { contact: { id: number }; contact_inbox: { source_id: string } };
    };
    const { id } = await (await post(cw, "/conversations", { source_id: payload.contact_inbox.source_id })).json() as {
      id: number;
    };
    await post(cw, `/conversations/${id}/messages`, { content: "from the API" });
    expect(received).toHaveLength(2);
    const [a, b] = received;
    expect(a!.headers.get("x-chatwoot-delivery")).toBe(b!.headers.get("x-chatwoot-delivery"));
    expect(a!.headers.get("x-chatwoot-signature")).toMatch(/^sha256=[0-9a-f]{64}$/);
    const body = await a!.text();
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode("whsec-1234567890"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const hex = a!.headers.get("x-chatwoot-signature")!.slice(7);
    const mac = new Uint8Array(hex.match(/../g)!.map((byte) => parseInt(byte, 16)));
    const signed = new TextEncoder().encode(`${a!.headers.get("x-chatwoot-timestamp")}.${body}`);
    expect(await crypto.subtle.verify("HMAC", key, mac, signed)).toBe(true);
    expect(JSON.parse(body)).toMatchObject({
      event: "message_created",
      message_type: "outgoing",
      content: "from the API",
      sender: { type: "user" },
      conversation: { id, contact_inbox: { source_id: payload.contact_inbox.source_id } },
    });
  });
});
