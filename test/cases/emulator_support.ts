// Shared helpers of the emulator's own suite: a movable clock, raw API calls, and probes.
import assert from "node:assert/strict";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/testing/mod.ts";

export const APP = { appId: "wx1234567890abcdef", appSecret: "APP_SECRET_VALUE_0123456789" };
export const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
export const BASE = "https://api.weixin.qq.com";

export const SECOND = 1000;
export const MINUTE: number = 60 * SECOND;
export const HOUR: number = 60 * MINUTE;
export const DAY: number = 24 * HOUR;

/** 2025-01-15 12:00 in Beijing (04:00 UTC): far from any day boundary. */
export const START: number = Date.UTC(2025, 0, 15, 4, 0, 0);

export interface Clock {
  now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function clock(start = START): Clock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}

export interface Setup {
  emulator: Emulator;
  clock: Clock;
}

export function setup(options: Partial<EmulatorOptions> = {}): Setup {
  const c = clock();
  const emulator = createEmulator({ ...APP, now: c.now, ...options });
  return { emulator, clock: c };
}

/** Sends a raw request to the emulator and returns the response. */
export function raw(emulator: Emulator, path: string, init: RequestInit = {}): Promise<Response> {
  return emulator.fetch(new URL(path, BASE), init);
}

/** POSTs JSON text (or a value, stringified) and returns the parsed JSON answer. */
export async function postJson(emulator: Emulator, path: string, body: unknown): Promise<Record<string, unknown>> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const response = await raw(emulator, path, {
    method: "POST",
    body: text,
    headers: { "content-type": "application/json" },
  });
  assert.equal(response.status, 200);
  return await response.json() as Record<string, unknown>;
}

export async function getJson(emulator: Emulator, path: string): Promise<Record<string, unknown>> {
  const response = await raw(emulator, path);
  assert.equal(response.status, 200);
  return await response.json() as Record<string, unknown>;
}

export const STABLE = "/cgi-bin/stable_token";
export const CLASSIC = "/cgi-bin/token";
export const SEND = "/cgi-bin/message/custom/send";
export const TYPING = "/cgi-bin/message/custom/typing";
export const UPLOAD = "/cgi-bin/media/upload";
export const GET = "/cgi-bin/media/get";

/** A stable_token call with the right credentials, in normal mode unless `force`. */
export function stableToken(emulator: Emulator, force?: boolean): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret };
  if (force !== undefined) body.force_refresh = force;
  return postJson(emulator, STABLE, body);
}

/** A /cgi-bin/token call with the right credentials. */
export function classicToken(emulator: Emulator): Promise<Record<string, unknown>> {
  const query = new URLSearchParams({ grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret });
  return getJson(emulator, `${CLASSIC}?${query}`);
}

/** A fresh stable token string. */
export async function token(emulator: Emulator): Promise<string> {
  const answer = await stableToken(emulator);
  assert.equal(typeof answer.access_token, "string");
  return answer.access_token as string;
}

/**
 * What the API makes of `accessToken`: 40007 (token accepted, media unknown), or the
 * token error (41001, 40001, 42001).
 */
export async function probe(emulator: Emulator, accessToken: string): Promise<unknown> {
  const answer = await getJson(emulator, `${GET}?access_token=${encodeURIComponent(accessToken)}&media_id=none`);
  return answer.errcode;
}

/** Sends `body` to custom/send with `accessToken`; returns the errcode. */
export async function send(emulator: Emulator, accessToken: string, body: unknown): Promise<unknown> {
  return (await postJson(emulator, `${SEND}?access_token=${accessToken}`, body)).errcode;
}

/** Sends a typing command; returns the errcode. */
export async function typing(emulator: Emulator, accessToken: string, command: string, touser = OPENID) {
  return (await postJson(emulator, `${TYPING}?access_token=${accessToken}`, { touser, command })).errcode;
}

export const text = (content: string, touser = OPENID): Record<string, unknown> => ({
  touser,
  msgtype: "text",
  text: { content },
});

/** Uploads `bytes` as `filename` through the raw API; returns the parsed answer. */
export async function upload(
  emulator: Emulator,
  accessToken: string,
  bytes: Uint8Array,
  filename: string,
  { field = "media", type = "image" }: { field?: string; type?: string } = {},
): Promise<Record<string, unknown>> {
  const form = new FormData();
  form.set(field, new Blob([new Uint8Array(bytes)]), filename);
  const query = type === "" ? "" : `&type=${type}`;
  const response = await raw(emulator, `${UPLOAD}?access_token=${accessToken}${query}`, { method: "POST", body: form });
  return await response.json() as Record<string, unknown>;
}

export const JPEG: Uint8Array = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3]);
export const PNG: Uint8Array = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9, 8, 7]);

/** The official push vectors (test/fixtures/official_push.json). */
export type { Vectors } from "./push_fixtures.ts";
export { loadVectors as vectors } from "./push_fixtures.ts";

export const RID = / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;
