/**
 * `createEmulator`: an offline WeChat that answers the API through `fetch`, keeps users,
 * tokens and media, injects faults and builds the pushes WeChat would send.
 *
 * @module
 */
import { FaultQueue, faultResponse } from "./_faults.ts";
import { MediaStore } from "./_media.ts";
import { msgIdSequence } from "./_random.ts";
import { cryptoFor } from "./push.ts";
import { readBody } from "./_request.ts";
import { ApiFailure, errorResponse } from "./_responses.ts";
import { type Route, routes } from "./_routes.ts";
import { contentCheckOf } from "./_sec_check.ts";
import { TokenAuthority } from "./_tokens.ts";
import { User, type UserContext } from "./_user.ts";
import { UserState } from "./_user_state.ts";
import type {
  EmulatedUser,
  Emulator,
  EmulatorFaults,
  EmulatorMedia,
  EmulatorOptions,
  EmulatorTokens,
  FetchLike,
  InboxEntry,
  RecordedCall,
} from "./types.ts";

/**
 * Creates an offline WeChat for one mini program. Its `fetch` answers the API as
 * WeChat does (tokens, customer-service messages, typing, media) at any origin;
 * its users send messages that open the send window and produce signed pushes.
 *
 * @param options appId, appSecret, push config and clock
 * @returns the emulator
 * @example Get a token from the emulator
 * ```ts
 * import { createEmulator } from "@kefu/edge/testing";
 * const emulator = createEmulator({ appId: "wx123", appSecret: "secret" });
 * const response = await emulator.fetch("https://api.weixin.qq.com/cgi-bin/stable_token", {
 *   method: "POST",
 *   body: JSON.stringify({ grant_type: "client_credential", appid: "wx123", secret: "secret" }),
 * });
 * console.log((await response.json()).expires_in); // 7200
 * ```
 */
export function createEmulator(options: EmulatorOptions): Emulator {
  return new WeChatEmulator(options);
}

class WeChatEmulator implements Emulator {
  readonly appId: string;
  readonly originalId: string;
  readonly fetch: FetchLike;
  readonly calls: RecordedCall[] = [];
  readonly tokens: EmulatorTokens;
  readonly media: EmulatorMedia;
  readonly faults: EmulatorFaults;
  readonly #faults: FaultQueue;
  readonly #now: () => number;
  readonly #maxRecorded: number;
  readonly #users = new Map<string, { state: UserState; user: User }>();
  readonly #routes: Map<string, Route>;
  readonly #userContext: UserContext;

  constructor(options: EmulatorOptions) {
    if (typeof options.appId !== "string" || options.appId === "") throw new TypeError("appId must not be empty");
    if (typeof options.appSecret !== "string" || options.appSecret === "") {
      throw new TypeError("appSecret must not be empty");
    }
    this.appId = options.appId;
    this.#maxRecorded = options.maxRecorded ?? 10_000;
    if (!Number.isInteger(this.#maxRecorded) || this.#maxRecorded < 1) {
      throw new TypeError("maxRecorded must be a whole number of at least 1");
    }
    this.originalId = options.originalId ?? originalIdFor(options.appId);
    this.#now = options.now ?? Date.now;
    const tokens = new TokenAuthority(options.appId, options.appSecret, this.#now);
    const media = new MediaStore(this.#now);
    this.tokens = tokens;
    this.media = media;
    this.faults = this.#faults = new FaultQueue();
    const nextMsgId = msgIdSequence();
    this.#routes = routes({
      tokens,
      media,
      templates: options.templates,
      contentCheck: contentCheckOf(options.contentCheck),
      now: this.#now,
      nextMsgId,
      userState: (openId) => this.#known(openId),
    });
    const target = options.push === undefined ? undefined : { ...options.push, appId: options.appId };
    // A bad push token or EncodingAESKey fails here, not at the first push.
    if (target !== undefined) cryptoFor(target);
    this.#userContext = {
      appId: this.appId,
      originalId: this.originalId,
      media,
      target,
      templates: options.templates,
      now: this.#now,
      nextMsgId,
    };
    this.fetch = (input, init) => this.#handle(input, init);
  }

  user(openId: string): EmulatedUser {
    if (typeof openId !== "string" || openId === "") throw new TypeError("openId must not be empty");
    let entry = this.#users.get(openId);
    if (entry === undefined) {
      const state = new UserState(openId, this.#now, this.#maxRecorded);
      entry = { state, user: new User(state, this.#userContext) };
      this.#users.set(openId, entry);
    }
    return entry.user;
  }

  inbox(openId: string): InboxEntry[] {
    return [...(this.#users.get(openId)?.state.entries ?? [])];
  }

  now(): number {
    return this.#now();
  }

  #known(openId: unknown): UserState | undefined {
    return typeof openId === "string" ? this.#users.get(openId)?.state : undefined;
  }

  async #handle(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    // A fetch whose signal already fired rejects before anything is sent.
    if (request.signal.aborted) throw request.signal.reason;
    const url = new URL(request.url);
    const body = await readBody(request);
    const call = this.#record(request, url, body.summary);
    const route = this.#routes.get(url.pathname);
    if (route === undefined) {
      call.status = 404;
      return new Response("Not Found", { status: 404, headers: { "content-type": "text/plain" } });
    }
    const fault = this.#faults.take(url.pathname);
    if (fault !== undefined) {
      call.fault = fault;
      return this.#finish(call, await faultResponse(fault, request.signal));
    }
    try {
      return this.#finish(call, await route({ request, url, body }));
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      return this.#finish(call, errorResponse(err.errcode), err.errcode);
    }
  }

  #record(request: Request, url: URL, body: unknown): RecordedCall {
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) if (key !== "access_token") query[key] = value;
    const call: RecordedCall = {
      method: request.method,
      path: url.pathname,
      query,
      withToken: url.searchParams.has("access_token"),
      body,
      at: this.#now(),
    };
    this.calls.push(call);
    if (this.calls.length > this.#maxRecorded) this.calls.splice(0, this.calls.length - this.#maxRecorded);
    return call;
  }

  #finish(call: RecordedCall, response: Response, errcode?: number): Response {
    call.status = response.status;
    if (errcode !== undefined) call.errcode = errcode;
    else if (call.fault === "system_busy") call.errcode = -1;
    else if (call.fault === "invalid_token") call.errcode = 40001;
    return response;
  }
}

// A stable stand-in for the original id (gh_ + 12 hex digits, like WeChat's): FNV-1a of the appId.
function originalIdFor(appId: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(appId)) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return `gh_${hash.toString(16).padStart(16, "0").slice(0, 12)}`;
}
