import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { MiniProgram } from "../../mod.ts";
const TOKEN = "benchToken123",
  AES_KEY = "kefuEdgeBenchKey0123456789abcdefghijklmnopq",
  APP_ID = "wxbench0000000001",
  NONCE = "415670741";
function encrypt(message: string): string {
  const key = Buffer.from(`${AES_KEY}=`, "base64");
  const text = Buffer.from(message, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(text.length);
  const full = Buffer.concat([randomBytes(16), length, text, Buffer.from(APP_ID)]);
  const pad = 32 - (full.length % 32);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([full, Buffer.alloc(pad, pad)])), cipher.final()]).toString(
    "base64",
  );
}
const sign = (...p: string[]) => createHash("sha1").update(p.sort().join("")).digest("hex");
const ts = String(Math.floor(Date.now() / 1000));
const N = 30000;
const deliveries = Array.from({ length: N }, (_, i) => {
  const inner = JSON.stringify({
    ToUserName: "gh_97417a04a28d",
    FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    CreateTime: Number(ts),
    MsgType: "text",
    Content: "你好，我想咨询一下订单 #20240425-0042 的发货时间，谢谢！",
  }).replace(/}$/, `,"MsgId":${7360000000000000000n + BigInt(i)}}`);
  const c = encrypt(inner);
  const q = new URLSearchParams({
    signature: sign(TOKEN, ts, NONCE),
    timestamp: ts,
    nonce: NONCE,
    openid: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    encrypt_type: "aes",
    msg_signature: sign(TOKEN, ts, NONCE, c),
  });
  return {
    url: `https://example.com/wechat/callback?${q}`,
    body: JSON.stringify({ ToUserName: "gh_97417a04a28d", Encrypt: c }),
  };
});
const mp = new MiniProgram({ appId: APP_ID, appSecret: "x", push: { token: TOKEN, encodingAESKey: AES_KEY } });
const handler = () => undefined;
for (let i = 0; i < 2000; i++) {
  await (await mp.push.handle(new Request(deliveries[i]!.url, { method: "POST", body: deliveries[i]!.body }), handler))
    .text();
}
const t0 = performance.now();
for (let i = 2000; i < N; i++) {
  await (await mp.push.handle(new Request(deliveries[i]!.url, { method: "POST", body: deliveries[i]!.body }), handler))
    .text();
}
console.log("us/msg", ((performance.now() - t0) * 1000 / (N - 2000)).toFixed(1));
