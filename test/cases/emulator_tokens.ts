// The emulator's access tokens against spec §1: stable_token modes, /cgi-bin/token rotation,
// credential errors, quotas, and the token check of every other endpoint.
import assert from "node:assert/strict";
import { createEmulator } from "../../src/testing/mod.ts";
import { test } from "./_registry.ts";
import {
  APP,
  CLASSIC,
  classicToken,
  clock,
  DAY,
  GET,
  getJson,
  HOUR,
  MINUTE,
  postJson,
  probe,
  raw,
  RID,
  SECOND,
  SEND,
  setup,
  STABLE,
  stableToken,
  START,
  token,
  TYPING,
  UPLOAD,
} from "./emulator_support.ts";

test("emulator stable_token: normal mode returns the same token, expires_in counting down", async () => {
  const { emulator, clock } = setup();
  const first = await stableToken(emulator);
  assert.equal(first.expires_in, 7200);
  assert.match(String(first.access_token), /^[A-Za-z0-9_-]{100,512}$/);
  clock.advance(1000 * SECOND);
  const again = await stableToken(emulator, false);
  assert.equal(again.access_token, first.access_token);
  assert.equal(again.expires_in, 6200);
  assert.equal(emulator.tokens.issued, 1);
});

test("emulator stable_token: renewed in the last 5 minutes, the old token valid until its expiry", async () => {
  const { emulator, clock } = setup();
  const old = await token(emulator);
  clock.advance(7200 * SECOND - 301 * SECOND);
  const before = await stableToken(emulator);
  assert.equal(before.access_token, old, "301 s left: still the same token");
  assert.equal(before.expires_in, 301);
  clock.advance(1 * SECOND);
  const renewed = await stableToken(emulator);
  assert.notEqual(renewed.access_token, old);
  assert.equal(renewed.expires_in, 7200);
  assert.equal(await stableToken(emulator).then((a) => a.access_token), renewed.access_token);
  clock.advance(300 * SECOND - 1);
  assert.equal(await probe(emulator, old), 40007, "old token accepted until its own expiry");
  clock.advance(1);
  assert.equal(await probe(emulator, old), 42001, "old token expired");
  assert.equal(await probe(emulator, String(renewed.access_token)), 40007);
});

test("emulator stable_token: a token left unused past its expiry is replaced and reports 42001", async () => {
  const { emulator, clock } = setup();
  const old = await token(emulator);
  clock.advance(3 * HOUR);
  assert.equal(await probe(emulator, old), 42001);
  const fresh = await stableToken(emulator);
  assert.notEqual(fresh.access_token, old);
  assert.equal(fresh.expires_in, 7200);
});

test("emulator stable_token: force_refresh rotates and invalidates the previous token at once", async () => {
  const { emulator, clock } = setup();
  const old = await token(emulator);
  clock.advance(MINUTE);
  const forced = await stableToken(emulator, true);
  assert.notEqual(forced.access_token, old);
  assert.equal(forced.expires_in, 7200);
  assert.equal(await probe(emulator, old), 40001);
  assert.equal(await probe(emulator, String(forced.access_token)), 40007);
  assert.equal(emulator.tokens.forceRefreshes, 1);
  assert.equal(emulator.tokens.status(old), "invalid");
  // Normal mode now returns the forced token.
  assert.equal((await stableToken(emulator)).access_token, forced.access_token);
});

test("emulator stable_token: force calls less than 30 s apart do not refresh", async () => {
  const { emulator, clock } = setup();
  const first = await stableToken(emulator, true);
  clock.advance(30 * SECOND - 1);
  const early = await stableToken(emulator, true);
  assert.equal(early.access_token, first.access_token);
  assert.equal(early.expires_in, 7170, "the current token, its remaining life");
  assert.equal(await probe(emulator, String(first.access_token)), 40007);
  clock.advance(1);
  const second = await stableToken(emulator, true);
  assert.notEqual(second.access_token, first.access_token);
  assert.equal(emulator.tokens.forceRefreshes, 2);
});

test("emulator stable_token: 20 force refreshes per Beijing day, then 45009 until midnight UTC+8", async () => {
  const { emulator, clock } = setup();
  for (let i = 0; i < 20; i++) {
    const answer = await stableToken(emulator, true);
    assert.equal(answer.expires_in, 7200, `force ${i + 1}`);
    clock.advance(31 * SECOND);
  }
  const refused = await stableToken(emulator, true);
  assert.equal(refused.errcode, 45009);
  assert.match(String(refused.errmsg), RID);
  assert.equal(emulator.tokens.forceRefreshes, 20);
  // Normal mode is not affected by the force limit.
  assert.equal((await stableToken(emulator)).errcode, undefined);
  // START is 12:00 in Beijing, so Beijing midnight is 12 h later; UTC midnight would be 20 h later.
  clock.set(START + 12 * HOUR - 1);
  assert.equal((await stableToken(emulator, true)).errcode, 45009);
  clock.set(START + 12 * HOUR);
  assert.equal((await stableToken(emulator, true)).expires_in, 7200);
});

test("emulator stable_token: 10,000 calls per minute, then 45011 until the next minute", async () => {
  const { emulator, clock } = setup();
  clock.set(Math.ceil(START / MINUTE) * MINUTE);
  for (let i = 0; i < 10_000; i++) {
    const answer = await stableToken(emulator);
    if (answer.errcode !== undefined) assert.fail(`call ${i + 1} answered ${JSON.stringify(answer)}`);
  }
  assert.equal((await stableToken(emulator)).errcode, 45011);
  clock.advance(MINUTE);
  assert.equal((await stableToken(emulator)).expires_in, 7200 - 60);
});

test("emulator stable_token: credential and format errors", async () => {
  const { emulator } = setup();
  const base = { grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret };
  const cases: [unknown, number][] = [
    [{ ...base, appid: "wx0000000000000000" }, 40013],
    [{ ...base, secret: "wrong" }, 40125],
    [{ grant_type: "client_credential", secret: APP.appSecret }, 41002],
    [{ grant_type: "client_credential", appid: APP.appId }, 41004],
    [{ ...base, grant_type: "password" }, 40002],
    [{ ...base, force_refresh: "true" }, 47001],
    ['{"grant_type":"client_credential",', 47001],
    ["[1,2]", 47001],
    ["", 44002],
  ];
  for (const [body, errcode] of cases) {
    const answer = await postJson(emulator, STABLE, body);
    assert.equal(answer.errcode, errcode, JSON.stringify(body));
    assert.match(String(answer.errmsg), RID);
  }
  // Query parameters are not read: stable_token takes a JSON body only.
  const query = new URLSearchParams(base);
  assert.equal((await postJson(emulator, `${STABLE}?${query}`, "")).errcode, 44002);
  assert.equal((await getJson(emulator, `${STABLE}?${query}`)).errcode, 43002);
  assert.equal(emulator.tokens.issued, 0);
});

test("emulator /cgi-bin/token: each call rotates; the previous token stays valid 5 minutes", async () => {
  const { emulator, clock } = setup();
  const first = await classicToken(emulator);
  assert.equal(first.expires_in, 7200);
  clock.advance(10 * MINUTE);
  const second = await classicToken(emulator);
  assert.notEqual(second.access_token, first.access_token);
  clock.advance(5 * MINUTE - 1);
  assert.equal(await probe(emulator, String(first.access_token)), 40007);
  clock.advance(1);
  assert.equal(await probe(emulator, String(first.access_token)), 40001, "replaced: not latest");
  assert.equal(await probe(emulator, String(second.access_token)), 40007);
  clock.advance(7200 * SECOND);
  assert.equal(await probe(emulator, String(second.access_token)), 42001, "latest token ran out");
  assert.equal(emulator.tokens.issued, 2);
});

test("emulator /cgi-bin/token: credential errors, GET only", async () => {
  const { emulator } = setup();
  const cases: [Record<string, string>, number][] = [
    [{ grant_type: "client_credential", appid: "wx0000000000000000", secret: APP.appSecret }, 40013],
    [{ grant_type: "client_credential", appid: APP.appId, secret: "wrong" }, 40125],
    [{ grant_type: "client_credential", secret: APP.appSecret }, 41002],
    [{ grant_type: "client_credential", appid: APP.appId }, 41004],
    [{ appid: APP.appId, secret: APP.appSecret }, 40002],
  ];
  for (const [query, errcode] of cases) {
    const answer = await getJson(emulator, `${CLASSIC}?${new URLSearchParams(query)}`);
    assert.equal(answer.errcode, errcode, JSON.stringify(query));
  }
  const good = new URLSearchParams({ grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret });
  assert.equal((await postJson(emulator, `${CLASSIC}?${good}`, "")).errcode, 43001);
  assert.equal(emulator.tokens.issued, 0);
});

test("emulator /cgi-bin/token: 2000 per day, then 45009", async () => {
  const { emulator, clock } = setup();
  for (let i = 0; i < 2000; i++) {
    const answer = await classicToken(emulator);
    if (answer.errcode !== undefined) assert.fail(`call ${i + 1} answered ${JSON.stringify(answer)}`);
  }
  assert.equal((await classicToken(emulator)).errcode, 45009);
  clock.advance(DAY);
  assert.equal((await classicToken(emulator)).expires_in, 7200);
});

test("emulator tokens: stable_token and /cgi-bin/token are isolated from each other", async () => {
  const { emulator, clock } = setup();
  const stable = await token(emulator);
  const classic = String((await classicToken(emulator)).access_token);
  await classicToken(emulator);
  clock.advance(10 * MINUTE);
  assert.equal(await probe(emulator, stable), 40007, "classic rotation leaves the stable token alone");
  assert.equal(await probe(emulator, classic), 40001);
  const newest = String((await classicToken(emulator)).access_token);
  await stableToken(emulator, true);
  assert.equal(await probe(emulator, newest), 40007, "force refresh leaves classic tokens alone");
  assert.equal(await probe(emulator, stable), 40001);
  assert.deepEqual(emulator.tokens.list().map((t) => t.kind), ["stable", "classic", "classic", "classic", "stable"]);
});

test("emulator tokens: every other endpoint answers 41001, 40001 and 42001", async () => {
  const { emulator, clock } = setup();
  const valid = await token(emulator);
  const endpoints: [string, string][] = [[SEND, "POST"], [TYPING, "POST"], [UPLOAD, "POST"], [GET, "GET"]];
  const errcode = async (path: string, method: string, query: string) => {
    const init: RequestInit = method === "POST" ? { method, body: "{}" } : { method };
    const response = await raw(emulator, `${path}?${query}`, init);
    return (await response.json() as { errcode: number }).errcode;
  };
  for (const [path, method] of endpoints) {
    assert.equal(await errcode(path, method, "type=image"), 41001, `${path} without a token`);
    assert.equal(await errcode(path, method, "access_token=&type=image"), 41001, `${path} empty token`);
    assert.equal(await errcode(path, method, "access_token=NOT_A_TOKEN"), 40001, `${path} unknown token`);
  }
  emulator.tokens.invalidate(valid);
  assert.equal(emulator.tokens.status(valid), "invalid");
  for (const [path, method] of endpoints) {
    assert.equal(await errcode(path, method, `access_token=${valid}`), 40001, `${path} invalidated token`);
  }
  const other = await token(emulator);
  clock.advance(7200 * SECOND);
  for (const [path, method] of endpoints) {
    assert.equal(await errcode(path, method, `access_token=${other}`), 42001, `${path} expired token`);
  }
  assert.equal(emulator.tokens.status("NOT_A_TOKEN"), "unknown");
});

test("emulator tokens: an emulator started again with the same credentials knows the tokens the earlier one issued", async () => {
  const c = clock();
  const before = createEmulator({ ...APP, now: c.now });
  const stable = await token(before);
  const classic = String((await classicToken(before)).access_token);
  c.advance(10 * MINUTE);
  const again = createEmulator({ ...APP, now: c.now });
  // Both still work, as they would at WeChat: accepted (40007 is the media check after the token check).
  assert.equal(await probe(again, stable), 40007);
  assert.equal(await probe(again, classic), 40007);
  assert.equal(again.tokens.status(stable), "valid");
  assert.equal(again.tokens.issued, 0);
  // The stable token is current again: normal mode hands it out with the life it has left.
  const renewed = await stableToken(again);
  assert.equal(renewed.access_token, stable);
  assert.equal(renewed.expires_in, 7200 - 600);
  assert.equal(again.tokens.issued, 0);

  // Another AppSecret, or a changed character, and the token is unknown.
  const other = createEmulator({ ...APP, appSecret: "ANOTHER_SECRET_VALUE_012345", now: c.now });
  assert.equal(await probe(other, stable), 40001);
  assert.equal(other.tokens.status(stable), "unknown");
  const middle = stable.length >> 1;
  const tampered = stable.slice(0, middle) + (stable[middle] === "A" ? "B" : "A") + stable.slice(middle + 1);
  assert.equal(await probe(createEmulator({ ...APP, now: c.now }), tampered), 40001);

  // Past its 2 hours, a later emulator answers 42001 for it, as for its own.
  c.advance(2 * HOUR);
  assert.equal(await probe(createEmulator({ ...APP, now: c.now }), stable), 42001);
});
