import assert from "node:assert/strict";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { MessageCrypto, type MessageCryptoOptions, PushVerificationError, ValidationError } from "../../mod.ts";
import { decryptStartingWith, pushSignature } from "../../src/push/crypto.ts";
import { constantTimeEqual } from "../../src/internal/constant_time.ts";
import { sha1Hex } from "../../src/internal/sha1.ts";
import {
  aesCbc,
  availableCryptoPaths,
  type CryptoPath,
  currentCryptoPath,
  decodeBase64,
  encodeBase64,
  forceCryptoPath,
  sha1Hex as pathSha1Hex,
} from "../../src/runtime/crypto.ts";
import {
  AES_KEY,
  APP_ID,
  decryptOracle,
  encryptOracle,
  encryptRaw,
  fullStr,
  loadVectors,
  OTHER_AES_KEY,
  sign,
  TOKEN,
} from "./push_fixtures.ts";
import { test } from "./_registry.ts";

function rejectsWith(reason: string): (err: unknown) => boolean {
  return (err) => err instanceof PushVerificationError && err.reason === reason;
}

/** Runs `fn` with `path` forced (the cipher is chosen when a MessageCrypto is made). */
function onPath<T>(path: CryptoPath, fn: () => T): T {
  forceCryptoPath(path);
  try {
    return fn();
  } finally {
    forceCryptoPath(undefined);
  }
}

/** node-webot's wechat-crypto (CommonJS over node:crypto), where the runtime can load it. */
interface WeChatCryptoPeer {
  getSignature(timestamp: string, nonce: string, encrypt: string): string;
  encrypt(text: string): string;
  decrypt(text: string): { message: string; id: string };
}
function loadWeChatCrypto(): (new (token: string, key: string, id: string) => WeChatCryptoPeer) | undefined {
  try {
    return createRequire(import.meta.url)("wechat-crypto");
  } catch {
    return undefined;
  }
}

/** Counts WebCrypto AES calls while `fn` runs. */
async function countSubtleCalls(fn: () => Promise<unknown>): Promise<number> {
  const subtle = globalThis.crypto.subtle;
  const original = { encrypt: subtle.encrypt, decrypt: subtle.decrypt };
  let calls = 0;
  const count = <A extends unknown[], R>(f: (...args: A) => R) =>
    function (this: SubtleCrypto, ...args: A): R {
      calls++;
      return f.apply(this, args);
    };
  subtle.encrypt = count(original.encrypt);
  subtle.decrypt = count(original.decrypt);
  try {
    await fn();
    return calls;
  } finally {
    subtle.encrypt = original.encrypt;
    subtle.decrypt = original.decrypt;
  }
}

/** A string of exactly `bytes` UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters. */
function textOfBytes(bytes: number, seed: number): string {
  const pieces = ["a", "é", "中", "😀"];
  let out = "";
  let left = bytes;
  let i = seed;
  while (left > 0) {
    const width = Math.min(left, (i++ % 4) + 1);
    out += pieces[width - 1];
    left -= width;
  }
  return out;
}

const JSON_START = '{"ToUserName":"';
const XML_START = "<xml><ToUserName>";

test("push crypto: node:crypto is the engine on Node, Deno and Bun unless told otherwise", () => {
  assert.deepEqual(availableCryptoPaths(), ["native", "webcrypto"]);
  assert.equal(currentCryptoPath(), "native");
  assert.equal(onPath("webcrypto", () => currentCryptoPath()), "webcrypto");
  assert.equal(currentCryptoPath(), "native");
}, ["node", "deno", "bun"]);

test("push crypto: sha1Hex matches node:crypto on every length up to 5 blocks, and random text", () => {
  for (let length = 0; length <= 320; length++) {
    const text = "a1中😀".repeat(length).slice(0, length);
    const expected = createHash("sha1").update(text, "utf8").digest("hex");
    assert.equal(sha1Hex(text), expected, `length ${length}`);
    for (const path of availableCryptoPaths()) assert.equal(pathSha1Hex(text, path), expected, `${path} ${length}`);
  }
  for (let i = 0; i < 200; i++) {
    const text = randomBytes(1 + (i * 37) % 3000).toString("latin1");
    assert.equal(sha1Hex(text), createHash("sha1").update(text, "utf8").digest("hex"));
  }
  // FIPS 180 examples.
  assert.equal(sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assert.equal(sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert.equal(
    sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
  );
});

test("push crypto: constantTimeEqual", () => {
  const digest = sign("a", "b", "c");
  assert.equal(constantTimeEqual(digest, digest.slice()), true);
  assert.equal(constantTimeEqual(digest, `${digest.slice(0, -1)}${digest.endsWith("0") ? "1" : "0"}`), false);
  assert.equal(constantTimeEqual(digest, digest.slice(1)), false);
  assert.equal(constantTimeEqual("", ""), true);
});

test("push crypto: constructor refuses a malformed EncodingAESKey", () => {
  for (
    const key of ["", "A".repeat(42), "A".repeat(44), `${"A".repeat(42)}+`, `${"A".repeat(42)}/`, `${"A".repeat(42)}=`]
  ) {
    assert.throws(
      () => new MessageCrypto({ token: TOKEN, encodingAESKey: key, appId: APP_ID }),
      (err: unknown) =>
        err instanceof ValidationError && err.field === "encodingAESKey" && !err.message.includes(key || "\0"),
      JSON.stringify(key),
    );
  }
  assert.throws(() => new MessageCrypto({ token: "", encodingAESKey: AES_KEY, appId: APP_ID }), ValidationError);
  assert.throws(() => new MessageCrypto({ token: TOKEN, encodingAESKey: AES_KEY, appId: "" }), ValidationError);
});

// Every case below runs on each engine this runtime has: node:crypto and WebCrypto.
for (const path of availableCryptoPaths()) {
  const make = (options: MessageCryptoOptions = { token: TOKEN, encodingAESKey: AES_KEY, appId: APP_ID }) =>
    onPath(path, () => new MessageCrypto(options));
  const name = (what: string) => `push crypto (${path}): ${what}`;

  test(name("AES-CBC gives every block of consecutive messages, the first included"), async () => {
    const key = new Uint8Array(randomBytes(32));
    const iv = key.slice(0, 16);
    const aes = aesCbc(key, iv, path);
    assert.equal(aes.path, path);
    for (let i = 0; i < 50; i++) {
      const plain = new Uint8Array(randomBytes(16 * (1 + (i * 7) % 40)));
      const oracle = createCipheriv("aes-256-cbc", key, iv).setAutoPadding(false);
      const cipher = new Uint8Array(Buffer.concat([oracle.update(plain), oracle.final()]));
      assert.deepEqual(new Uint8Array(await aes.decrypt(cipher)), plain, `message ${i} decrypted`);
      if (i % 3 === 0) {
        assert.deepEqual(new Uint8Array(await aes.encrypt(plain)), cipher, `message ${i} encrypted`);
      }
    }
  });

  test(name("base64 is read as atob reads it, and written with padding"), () => {
    const bytes = new Uint8Array(randomBytes(608));
    const canonical = Buffer.from(bytes).toString("base64");
    assert.equal(encodeBase64(bytes, path), canonical);
    assert.equal(encodeBase64(bytes.subarray(5, 9), path), Buffer.from(bytes.subarray(5, 9)).toString("base64"));
    const readable = [canonical, canonical.replace(/(.{76})/g, "$1\r\n"), ` ${canonical}\t`, "QQ", "QR==", "QUI=", ""];
    for (const text of readable) {
      const expected = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
      assert.deepEqual(decodeBase64(text, path), expected, JSON.stringify(text.slice(0, 20)));
    }
    // What atob refuses is refused, though node:buffer would read URL-safe letters and skip junk.
    for (const text of ["QQ-_", "QQ!=", "Q", "QQ=A", "QQ==QQ==", `${canonical}%`]) {
      assert.throws(() => atob(text), JSON.stringify(text));
      assert.throws(() => decodeBase64(text, path), JSON.stringify(text));
    }
  });

  test(name("official URL-verification and plain signatures"), async () => {
    const v = await loadVectors();
    const crypto = make({ token: v.url_verification.token, encodingAESKey: "A".repeat(43), appId: "wx1" });
    const u = v.url_verification;
    assert.equal(await crypto.signature(u.timestamp, u.nonce), u.signature);
    const p = v.plain_post;
    assert.equal(await crypto.signature(p.timestamp, p.nonce), p.signature);
    assert.equal(onPath(path, () => pushSignature(p.token, p.timestamp, p.nonce)), p.signature);
    assert.equal(await crypto.verifySignature(u.signature.toUpperCase(), u.timestamp, u.nonce), true);
    assert.equal(await crypto.verifySignature(p.signature, u.timestamp, u.nonce), false);
  });

  test(name("official safe-mode message decrypts, msg_signature matches"), async () => {
    const { safe_post: s } = await loadVectors();
    const crypto = make({ token: s.token, encodingAESKey: s.encodingAESKey, appId: s.appId });
    const encrypt = (JSON.parse(s.body) as { Encrypt: string }).Encrypt;
    const query = new URLSearchParams(s.query);
    assert.equal(await crypto.decrypt(encrypt), s.decrypted);
    assert.equal(await decryptStartingWith(crypto, encrypt, JSON_START), s.decrypted);
    assert.equal(
      await crypto.signature(query.get("timestamp")!, query.get("nonce")!, encrypt),
      query.get("msg_signature"),
    );
    assert.equal(await crypto.signature(query.get("timestamp")!, query.get("nonce")!), query.get("signature"));
    // The vector's documented pad byte is 19: beyond what WebCrypto's own unpadding accepts.
    assert.equal(decryptOracle(encrypt, s.encodingAESKey).pad, 19);
  });

  test(name("official encrypted reply reproduced from its random"), async () => {
    const { encrypted_reply: r } = await loadVectors();
    const crypto = make({ token: r.token, encodingAESKey: r.encodingAESKey, appId: r.appId });
    const encrypt = await crypto.encrypt(r.plaintext, { random: r.random });
    assert.equal(encrypt, r.encrypt);
    assert.equal(await crypto.signature(r.timestamp, r.nonce, encrypt), r.msg_signature);
    assert.equal(await crypto.decrypt(r.encrypt), r.plaintext);
    // The same random given as bytes gives the same ciphertext.
    assert.equal(await crypto.encrypt(r.plaintext, { random: new TextEncoder().encode(r.random) }), r.encrypt);
  });

  test(name("round trips for every length 0..5000, every pad value 1..32"), async () => {
    const crypto = make();
    const pads = new Set<number>();
    for (let length = 0; length <= 5000; length++) {
      const text = textOfBytes(length, length);
      assert.equal(new TextEncoder().encode(text).length, length);
      const encrypt = await crypto.encrypt(text);
      // Ours → independent decryption.
      const opened = decryptOracle(encrypt);
      assert.equal(opened.message, text, `length ${length}`);
      assert.equal(opened.appId, APP_ID);
      pads.add(opened.pad);
      // Independent encryption → ours.
      assert.equal(await crypto.decrypt(encryptOracle(text)), text, `length ${length}`);
    }
    assert.deepEqual([...pads].sort((a, b) => a - b), Array.from({ length: 32 }, (_, i) => i + 1));
  });

  const WeChatCrypto = loadWeChatCrypto();
  if (WeChatCrypto !== undefined) {
    test(name("interoperates with wechat-crypto both ways, every pad value"), async () => {
      const crypto = make();
      const peer = new WeChatCrypto(TOKEN, AES_KEY, APP_ID);
      for (let length = 0; length <= 600; length++) {
        const text = textOfBytes(length, 3 * length);
        const ours = await crypto.encrypt(text);
        assert.deepEqual(peer.decrypt(ours), { message: text, id: APP_ID }, `ours → peer, length ${length}`);
        const theirs = peer.encrypt(text);
        assert.equal(await crypto.decrypt(theirs), text, `peer → ours, length ${length}`);
        assert.equal(
          await crypto.signature("1714112445", "415670741", theirs),
          peer.getSignature("1714112445", "415670741", theirs),
        );
      }
    });
  }

  test(name("encrypt uses a fresh random each time"), async () => {
    const crypto = make();
    const a = await crypto.encrypt("same");
    const b = await crypto.encrypt("same");
    assert.notEqual(a, b);
    assert.notDeepEqual(decryptOracle(a).random, decryptOracle(b).random);
  });

  test(name("encrypt refuses a random that is not 16 bytes"), async () => {
    for (const random of ["short", "x".repeat(17), "中".repeat(16), new Uint8Array(15)]) {
      await assert.rejects(
        make().encrypt("x", { random }),
        (err: unknown) => err instanceof ValidationError && err.field === "random",
      );
    }
  });

  test(name("wrong appId is bad_appid"), async () => {
    const crypto = make();
    await assert.rejects(
      crypto.decrypt(encryptOracle("hello", { appId: "wx0000000000000000" })),
      rejectsWith("bad_appid"),
    );
    // A prefix or an extension of the right appId is still wrong.
    await assert.rejects(
      crypto.decrypt(encryptOracle("hello", { appId: APP_ID.slice(0, -1) })),
      rejectsWith("bad_appid"),
    );
    await assert.rejects(crypto.decrypt(encryptOracle("hello", { appId: `${APP_ID}x` })), rejectsWith("bad_appid"));
  });

  test(name("wrong key, bad base64, bad lengths are undecryptable"), async () => {
    const crypto = make();
    const wrongKey = encryptOracle("hello", { key: OTHER_AES_KEY });
    await assert.rejects(crypto.decrypt(wrongKey), (err: unknown) => err instanceof PushVerificationError);
    for (const encrypt of ["", "!!!!", "abc", btoa("0123456789abcde"), btoa("x".repeat(33))]) {
      await assert.rejects(crypto.decrypt(encrypt), rejectsWith("undecryptable"), JSON.stringify(encrypt));
    }
  });

  test(name("bad padding and bad length prefix are undecryptable"), async () => {
    const crypto = make();
    const good = fullStr(new TextEncoder().encode("hello"));
    const cases: [string, Uint8Array][] = [];
    // Pad byte 0 and 33 are outside 1..32.
    for (const last of [0, 33, 255]) {
      const bytes = good.slice();
      bytes[bytes.length - 1] = last;
      cases.push([`pad ${last}`, bytes]);
    }
    // Inconsistent padding: the last byte says 5 but the one before is not 5.
    const mixed = new Uint8Array(64);
    mixed.set(randomBytes(16));
    mixed.fill(5, 59);
    mixed[59] = 4;
    cases.push(["mixed pad", mixed]);
    // Length prefix larger than what is left.
    const long = good.slice();
    new DataView(long.buffer).setUint32(16, 10_000);
    cases.push(["length prefix", long]);
    // Only padding: no room for random and length.
    cases.push(["all padding", new Uint8Array(32).fill(32)]);
    for (const [what, bytes] of cases) {
      await assert.rejects(crypto.decrypt(encryptRaw(bytes)), rejectsWith("undecryptable"), what);
    }
  });

  test(name("tampered ciphertext never decrypts to the right message"), async () => {
    const crypto = make();
    const encrypt = encryptOracle('{"Content":"hello"}');
    const bytes = Uint8Array.from(atob(encrypt), (c) => c.charCodeAt(0));
    // Flipping a bit in the last block garbles the appId or the padding.
    for (let i = bytes.length - 16; i < bytes.length; i++) {
      const tampered = bytes.slice();
      tampered[i]! ^= 0x01;
      await assert.rejects(
        crypto.decrypt(btoa(String.fromCharCode(...tampered))),
        (err: unknown) => err instanceof PushVerificationError && ["undecryptable", "bad_appid"].includes(err.reason),
        `byte ${i}`,
      );
    }
  });

  test(name("a message that is not UTF-8 is undecryptable"), async () => {
    await assert.rejects(
      make().decrypt(encryptOracle(new Uint8Array([0xff, 0xfe, 0x41]))),
      rejectsWith("undecryptable"),
    );
  });

  test(name("the receiver's start-of-message hint never changes the result"), async () => {
    const crypto = make();
    for (let length = 0; length <= 400; length++) {
      const text = `${JSON_START}gh_97417a04a28d","Content":"${"中a".repeat(length)}"}`.slice(0, length);
      const encrypt = encryptOracle(text);
      assert.equal(await crypto.decrypt(encrypt), text, `length ${length}, no hint`);
      for (const startsWith of [JSON_START, XML_START, "short", ""]) {
        assert.equal(await decryptStartingWith(crypto, encrypt, startsWith), text, `length ${length}, ${startsWith}`);
      }
    }
    // Checks still apply on the fast path.
    const foreign = encryptOracle(`${JSON_START}x"}`, { appId: "wx0000000000000000" });
    await assert.rejects(decryptStartingWith(crypto, foreign, JSON_START), rejectsWith("bad_appid"));
    const badPad = fullStr(new TextEncoder().encode(`${JSON_START}x"}`));
    badPad[badPad.length - 1] = 0;
    await assert.rejects(decryptStartingWith(crypto, encryptRaw(badPad), JSON_START), rejectsWith("undecryptable"));
  });
}

test("push crypto (webcrypto): a right start-of-message hint takes one WebCrypto call, a wrong one falls back", async () => {
  const crypto = onPath("webcrypto", () => new MessageCrypto({ token: TOKEN, encodingAESKey: AES_KEY, appId: APP_ID }));
  const xml = `${XML_START}<![CDATA[gh_1]]></ToUserName></xml>`;
  await crypto.decrypt(encryptOracle(xml)); // imports the key outside the count
  const calls = (text: string, startsWith?: string) =>
    countSubtleCalls(async () => {
      const encrypt = encryptOracle(text);
      const plain = startsWith === undefined
        ? await crypto.decrypt(encrypt)
        : await decryptStartingWith(crypto, encrypt, startsWith);
      assert.equal(plain, text);
    });
  assert.equal(await calls(xml, XML_START), 1);
  assert.equal(await calls(`${JSON_START}gh_1"}`, JSON_START), 1);
  assert.equal(await calls(xml), 2);
  assert.equal(await calls(xml, JSON_START), 3);
  assert.equal(await countSubtleCalls(() => crypto.encrypt(xml)), 1);
});

if (availableCryptoPaths().includes("native")) {
  test("push crypto (native): encrypting and decrypting make no WebCrypto call", async () => {
    const crypto = onPath("native", () => new MessageCrypto({ token: TOKEN, encodingAESKey: AES_KEY, appId: APP_ID }));
    const text = `${XML_START}<![CDATA[gh_1]]></ToUserName></xml>`;
    const calls = await countSubtleCalls(async () => {
      assert.equal(await crypto.decrypt(await crypto.encrypt(text)), text);
      assert.equal(await decryptStartingWith(crypto, encryptOracle(text), XML_START), text);
    });
    assert.equal(calls, 0);
  });
}
