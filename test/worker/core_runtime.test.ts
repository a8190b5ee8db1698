// The portable core inside workerd: what differs from Deno, Bun and Node.
import { describe, expect, it } from "vitest";
import { MessageCrypto, MiniProgram, ValidationError } from "../../mod.ts";
import { availableCryptoPaths, currentCryptoPath } from "../../src/runtime/crypto.ts";
import { fakeFetch } from "../cases/_fake.ts";
import officialVectors from "../fixtures/official_push.json" with { type: "json" };

describe("core on Workers", () => {
  it("uploading from a file path says to pass bytes instead, with no upstream call", async () => {
    const fake = fakeFetch();
    const mp = new MiniProgram({ appId: "wx1234567890abcdef", appSecret: "secret-value", fetch: fake.fetch });
    const err = await mp.customerServiceMessage.uploadTempMedia("image", "./resource/cloud.jpg").catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.field).toBe("media");
    expect(err.message).toMatch(/pass the bytes, a Blob or a File with \{ filename \}/);
    expect(fake.calls).toHaveLength(0);
  });

  it("push crypto runs on WebCrypto here, whether or not node:crypto is reachable, and reads the official vector", async () => {
    // The test pool runs with nodejs_compat, so node:crypto is there; on Workers it is a
    // slower layer over the same engine, and not used.
    const runtime = globalThis as { process?: { getBuiltinModule?(id: string): { createDecipheriv?: unknown } } };
    expect(typeof runtime.process?.getBuiltinModule?.("node:crypto")?.createDecipheriv).toBe("function");
    expect(availableCryptoPaths()).toEqual(["webcrypto"]);
    expect(currentCryptoPath()).toBe("webcrypto");
    const s = officialVectors.safe_post;
    const crypto = new MessageCrypto({ token: s.token, encodingAESKey: s.encodingAESKey, appId: s.appId });
    expect(await crypto.decrypt((JSON.parse(s.body) as { Encrypt: string }).Encrypt)).toBe(s.decrypted);
    const r = officialVectors.encrypted_reply;
    const reply = new MessageCrypto({ token: r.token, encodingAESKey: r.encodingAESKey, appId: r.appId });
    expect(await reply.encrypt(r.plaintext, { random: r.random })).toBe(r.encrypt);
  });

  it("bytes upload and a text send work through workerd's fetch types", async () => {
    const fake = fakeFetch((_req, url) =>
      Response.json(
        url.pathname === "/cgi-bin/media/upload"
          ? { type: "image", media_id: "M1", created_at: 1 }
          : { errcode: 0, errmsg: "ok" },
      )
    );
    const mp = new MiniProgram({ appId: "wx1234567890abcdef", appSecret: "secret-value", fetch: fake.fetch });
    const up = await mp.customerServiceMessage.uploadTempMedia("image", new Uint8Array([0xff, 0xd8, 0xff, 1]));
    expect(up.media_id).toBe("M1");
    await mp.customerServiceMessage.send("OPENID", "text", { content: "你好 👋" });
    expect(fake.to("/cgi-bin/message/custom/send")[0]?.body).toBe(
      '{"touser":"OPENID","msgtype":"text","text":{"content":"你好 👋"}}',
    );
  });
});
