// Shared setup of the workerd tests: an env over the real KV binding, a call helper
// that passes an ExecutionContext, and checks that no answer leaks a credential.
import { env as workerEnv } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import type { Hono } from "hono";
import { type AppEnv, type AppOptions, createApp, type KefuApp } from "../../worker/mod.ts";
import type { Env } from "../../worker/env.ts";
import type { ErrorBody } from "../../worker/errors.ts";
import type { PushJob } from "../../mod.ts";

export const APP_ID = "wx1234567890abcdef";
export const SECRET = "APP_SECRET_VALUE_0123456789";
export const API_KEY = "api-key-0123456789abcdef0123456789";
export const PUSH_TOKEN = "PushToken0123456789";
export const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
export const OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY";
export const AUTH = { authorization: `Bearer ${API_KEY}` };

let msgIds = 7350000000000000001n;

/** A text message from {@link OPENID}, sent now, with a fresh (odd, 64-bit) MsgId each call. */
export function textMessage(content = "hello", msgId = String(msgIds += 2n)): Record<string, string | number> {
  return {
    ToUserName: "gh_97417a04a28d",
    FromUserName: OPENID,
    CreateTime: Math.floor(Date.now() / 1000),
    MsgType: "text",
    Content: content,
    MsgId: msgId,
  };
}

/** Strings that must never appear in a response body or a log line. */
export const CREDENTIALS = [SECRET, API_KEY, PUSH_TOKEN, AES_KEY, "ACCESS_TOKEN_"];

/** A complete env over the test KV namespace, with `overrides` applied (`undefined` removes a variable). */
export function testEnv(overrides: Partial<Record<keyof Env, unknown>> = {}): Env {
  const env: Record<string, unknown> = {
    WECHAT_KV: workerEnv.WECHAT_KV,
    WECHAT_APPID: APP_ID,
    WECHAT_SECRET: SECRET,
    WECHAT_TOKEN: PUSH_TOKEN,
    API_KEY,
    ...overrides,
  };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  return env as Env;
}

export interface Called {
  res: Response;
  /** The body text (read once here, for JSON and text answers). */
  text: string;
  /** Resolves when every `waitUntil` task has settled. */
  settled(): Promise<void>;
}

/**
 * Sends a request through `app` with an ExecutionContext, reads the body and checks that
 * it carries no credential. `text` is the body decoded as UTF-8, binary bodies included
 * (the check scans every byte).
 */
export async function call(
  app: Hono<AppEnv>,
  input: string | Request,
  init: RequestInit | undefined,
  env: Env,
): Promise<Called> {
  const ctx = createExecutionContext();
  const request = typeof input === "string" ? new Request(new URL(input, "http://127.0.0.1:8787"), init) : input;
  const res = await app.fetch(request, env, ctx);
  const text = new TextDecoder().decode(await res.arrayBuffer());
  expectNoCredentials(text);
  return { res, text, settled: () => waitOnExecutionContext(ctx) };
}

/** JSON helper around {@link call}. */
export function json(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } };
}

export function expectNoCredentials(text: string): void {
  for (const credential of CREDENTIALS) expect(text).not.toContain(credential);
}

/** The `{ error }` object of an error answer. */
export function errorOf(called: Called): ErrorBody["error"] {
  expect(called.res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = JSON.parse(called.text) as {
    error: { code: string; message: string; errcode?: number; field?: string };
  };
  expect(typeof body.error.code).toBe("string");
  expect(typeof body.error.message).toBe("string");
  expect(called.text).not.toMatch(/\n\s+at /); // no stack trace
  return body.error;
}

const logged: string[] = [];

/** `createApp` with a logger whose lines the setup file checks for credentials after each test. */
export function testApp(options: AppOptions = {}): KefuApp {
  return createApp({ logger: { warn: (m) => void logged.push(m), error: (m) => void logged.push(m) }, ...options });
}

/** The lines logged by {@link testApp} apps since the last call. */
export function takeLogs(): string[] {
  return logged.splice(0);
}

/** A logger that records every line and checks it for credentials at the end. */
export function recordingLogger(): { warn(m: string): void; error(m: string): void; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (m) => void lines.push(m),
    error: (m) => void lines.push(m),
  };
}

export function expectCleanLogs(lines: readonly string[]): void {
  for (const line of lines) {
    expectNoCredentials(line);
    expect(line).not.toMatch(/\n\s+at /);
  }
}

/** A KV namespace whose every method throws, as an unavailable binding would. */
export const brokenKv = {
  get: () => Promise.reject(new Error("KV GET failed: 503")),
  put: () => Promise.reject(new Error("KV PUT failed: 503")),
  delete: () => Promise.reject(new Error("KV DELETE failed: 503")),
};

export { waitOnExecutionContext };

/**
 * A Durable Object namespace that counts what is asked of it: each stub made (`get`) and each
 * method called on a stub (`fetch`, or a Workers RPC method), in order, by name.
 */
export function countingNamespace(ns: DurableObjectNamespace = workerEnv.KEFU_STORE): {
  namespace: DurableObjectNamespace;
  calls: string[];
  stubs(): number;
} {
  const calls: string[] = [];
  let stubs = 0;
  const counting = {
    idFromName: (name: string) => ns.idFromName(name),
    get(id: DurableObjectId) {
      stubs++;
      const stub = ns.get(id) as unknown as Record<string, (...args: unknown[]) => unknown>;
      // Every method called on the stub is counted, then called as it was asked for (a stub's
      // methods are RPC stubs themselves: called, never `.apply`-ed). A stub is not a thenable.
      return new Proxy(stub, {
        get(target, method: string) {
          if (method === "then") return undefined;
          return (...args: unknown[]) => {
            calls.push(method);
            return target[method]!(...args);
          };
        },
      });
    },
  };
  return { namespace: counting as unknown as DurableObjectNamespace, calls, stubs: () => stubs };
}

/** A queue that records what the app enqueues, for the consumer to be fed by hand. */
export function recordingQueue(): { sent: PushJob[]; queue: () => { send(body: unknown): Promise<void> } } {
  const sent: PushJob[] = [];
  return { sent, queue: () => ({ send: (body: unknown) => Promise.resolve(void sent.push(body as PushJob)) }) };
}

/** Feeds `job` to the app's consumer in a real MessageBatch; returns its ack/retry result and the retry delays asked. */
export async function consume(app: KefuApp, env: Env, job: PushJob, attempts: number, queue?: string) {
  const batch = createMessageBatch(queue ?? "kefu-edge-pushes", [
    { id: `m-${attempts}`, timestamp: new Date(), attempts, body: job },
  ]);
  const delays: Array<number | undefined> = [];
  // getQueueResult does not report delays: observe them on the way through.
  const observed = {
    queue: batch.queue,
    messages: batch.messages.map((m) => ({
      id: m.id,
      body: m.body,
      attempts: m.attempts,
      ack: () => m.ack(),
      retry: (options?: { delaySeconds?: number }) => (delays.push(options?.delaySeconds), m.retry(options)),
    })),
  };
  const ctx = createExecutionContext();
  await app.queue(observed, env, ctx);
  return { ...(await getQueueResult(batch, ctx)), delays };
}
