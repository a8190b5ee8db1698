/**
 * Private to the dev server (`withEmulator`): what an emulator session remembers for the
 * `/_emulator/` routes and the chat page — a bounded log of raw push and API exchanges, what
 * each emulated user sent, and a change counter the page waits on. Tokens and the AppSecret
 * never enter the log.
 *
 * @module
 */
import type { FetchLike } from "../types.ts";
import { redact } from "../../errors.ts";
import { jsonObject } from "../../internal/json.ts";

/** One side of an exchange, as the chat page shows it. */
export interface ExchangePart {
  /** `POST /cgi-bin/message/custom/send` for a request, `HTTP 200` for a response. */
  line: string;
  /** The Content-Type header, when there is one. */
  contentType?: string;
  /** The body as text (truncated), or a summary of a binary or multipart body. */
  body: string;
  /**
   * WeChat's `errcode`, when a JSON answer carries one. WeChat answers its errors with
   * HTTP 200, so this, not the status, says whether a call worked.
   */
  errcode?: number;
}

/** A push the emulated WeChat sent to the app, or an API call the app made to the emulated WeChat. */
export interface Exchange {
  /** Increases by one per exchange. */
  id: number;
  /**
   * Increases whenever an exchange is added or changed (a note added): `GET
   * /_emulator/exchanges?after=<rev>` returns what is newer than `rev`.
   */
  rev: number;
  /** When the request was made, ms. */
  at: number;
  /** `push`: WeChat → app (`/wechat/callback`); `api`: app → WeChat (`/cgi-bin/...`). */
  kind: "push" | "api";
  /** The user it concerns, when known. */
  openId?: string;
  /** One line, e.g. `push: text` or `POST /cgi-bin/message/custom/send`. */
  title: string;
  request: ExchangePart;
  /** Missing when no answer came (network error, timeout). */
  response?: ExchangePart;
  /** Extra detail: the decrypted push, the decrypted reply, or why there was no answer. */
  notes: string[];
}

/** Something an emulated user did, as shown in the conversation. */
export type SentEntry =
  | { kind: "text"; text: string; at: number }
  | { kind: "image"; mediaId: string; at: number }
  | { kind: "miniprogrampage"; title: string; pagePath: string; appId: string; thumbMediaId: string; at: number }
  | { kind: "session"; sessionFrom: string; at: number }
  | { kind: "subscription"; templateId: string; status: "accept" | "reject"; longTerm: boolean; at: number };

/** Longest body kept per exchange part, in characters. */
export const MAX_BODY_CHARS = 4096;
/** Exchanges kept; older ones are dropped. */
export const MAX_EXCHANGES = 200;
/** Users remembered, and entries kept per user. */
const MAX_USERS = 100;
const MAX_SENT_PER_USER = 200;

/**
 * Cuts `text` to {@link MAX_BODY_CHARS}, saying how much was left out.
 *
 * @param text the text
 * @returns the text, or its start and how many characters were cut
 */
export function truncate(text: string): string {
  if (text.length <= MAX_BODY_CHARS) return text;
  return `${text.slice(0, MAX_BODY_CHARS)}… (${text.length - MAX_BODY_CHARS} more characters)`;
}

/**
 * A counter that goes up on every change of a session, and lets a request wait for the next
 * one (the chat page's long poll).
 */
export class Changes {
  #version = 0;
  #waiters = new Set<() => void>();

  /** The current version. */
  get version(): number {
    return this.#version;
  }

  /** Records a change and wakes every waiter. */
  bump(): void {
    this.#version++;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  /**
   * Resolves once the version is past `seen`, or after `ms`, or when `signal` aborts.
   *
   * @param seen the version the caller has
   * @param ms the longest wait
   * @param signal ends the wait early (the page went away)
   */
  async after(seen: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#version !== seen || ms <= 0 || signal?.aborted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake: () => void = () => {};
    try {
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#waiters.add(resolve);
        timer = setTimeout(resolve, ms);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
    }
  }
}

/** A bounded list of exchanges, oldest first. */
export class ExchangeLog {
  readonly #entries: Exchange[] = [];
  readonly #limit: number;
  readonly #changes: Changes | undefined;
  #next = 1;
  #nextId = 1;

  /**
   * @param changes bumped on every change; optional
   * @param limit exchanges kept; default {@link MAX_EXCHANGES}
   */
  constructor(changes?: Changes, limit: number = MAX_EXCHANGES) {
    this.#changes = changes;
    this.#limit = limit;
  }

  /**
   * Appends an exchange.
   *
   * @param entry the exchange without its id and revision
   * @returns the stored exchange; change it through {@link ExchangeLog.update}
   */
  add(entry: Omit<Exchange, "id" | "rev">): Exchange {
    const stored: Exchange = { id: this.#nextId++, rev: this.#next++, ...entry };
    this.#entries.push(stored);
    if (this.#entries.length > this.#limit) this.#entries.splice(0, this.#entries.length - this.#limit);
    this.#changes?.bump();
    return stored;
  }

  /**
   * Adds a note to a stored exchange, so that readers asking for changes see it again.
   *
   * @param entry an exchange {@link ExchangeLog.add} returned
   * @param note the note
   */
  note(entry: Exchange, note: string): void {
    entry.notes.push(note);
    entry.rev = this.#next++;
    this.#changes?.bump();
  }

  /**
   * The exchanges added or changed since revision `after`, in the order they were added.
   *
   * @param after the last revision the caller has seen; 0 for all
   * @returns the exchanges
   */
  since(after: number): Exchange[] {
    return this.#entries.filter((entry) => entry.rev > after);
  }
}

/** What each emulated user sent through the `/_emulator/` routes, for the conversation view. */
export class SentLog {
  readonly #users = new Map<string, SentEntry[]>();
  readonly #changes: Changes | undefined;

  /** @param changes bumped on every change; optional */
  constructor(changes?: Changes) {
    this.#changes = changes;
  }

  /**
   * Records an action of `openId`.
   *
   * @param openId the user
   * @param entry what they did
   */
  add(openId: string, entry: SentEntry): void {
    let entries = this.#users.get(openId);
    if (entries === undefined) {
      if (this.#users.size >= MAX_USERS) this.#users.delete(this.#users.keys().next().value!);
      this.#users.set(openId, entries = []);
    }
    entries.push(entry);
    if (entries.length > MAX_SENT_PER_USER) entries.shift();
    this.#changes?.bump();
  }

  /**
   * What `openId` sent, oldest first.
   *
   * @param openId the user
   * @returns the entries; empty for an unknown user
   */
  of(openId: string): SentEntry[] {
    return [...(this.#users.get(openId) ?? [])];
  }

  /**
   * The users that acted, in order of first appearance.
   *
   * @returns their OpenIDs
   */
  users(): string[] {
    return [...this.#users.keys()];
  }
}

/**
 * Wraps the emulator's `fetch` so every API call the app makes is logged, with the
 * access token, the AppSecret and issued tokens redacted. Media bodies are summarised,
 * never read, so downloads still stream.
 *
 * @param inner the emulator's fetch
 * @param log where exchanges go
 * @param now the clock, ms
 * @returns a fetch for the MiniProgram
 */
export function recordingFetch(inner: FetchLike, log: ExchangeLog, now: () => number): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const at = now();
    const describedRequest = await describeBody(request.clone());
    const openId = touserOf(describedRequest);
    const entry: Omit<Exchange, "id" | "rev"> = {
      at,
      kind: "api",
      ...(openId === undefined ? {} : { openId }),
      title: `${request.method} ${url.pathname}`,
      request: { line: `${request.method} ${redact(`${url.pathname}${url.search}`)}`, ...describedRequest },
      notes: [],
    };
    let response: Response;
    try {
      response = await inner(request);
    } catch (err) {
      log.add({ ...entry, notes: [`No answer: ${err instanceof Error ? err.name : "error"}`] });
      throw err;
    }
    const described = await describeBody(response);
    const errcode = errcodeOf(described);
    log.add({
      ...entry,
      response: { line: `HTTP ${response.status}`, ...described, ...(errcode === undefined ? {} : { errcode }) },
    });
    return response;
  };
}

// Reads textual bodies (of a clone, for responses: the app still reads the original);
// binary and multipart bodies are summarised.
async function describeBody(message: Request | Response): Promise<Omit<ExchangePart, "line">> {
  const contentType = message.headers.get("content-type") ?? undefined;
  const withType = contentType === undefined ? {} : { contentType };
  if (message.body === null) return { ...withType, body: "" };
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("multipart/form-data")) {
    return { ...withType, body: await describeForm(message.clone()) };
  }
  if (type === "" || type.includes("json") || type.startsWith("text/") || type.includes("xml")) {
    const source = message instanceof Response ? message.clone() : message;
    return { ...withType, body: truncate(redact(await source.text())) };
  }
  const length = message.headers.get("content-length");
  return { ...withType, body: `<${length === null ? "streamed" : `${length} bytes of`} ${contentType}>` };
}

async function describeForm(message: Request | Response): Promise<string> {
  try {
    const form = await message.formData();
    const parts: string[] = [];
    for (const [name, value] of form) {
      parts.push(
        typeof value === "string"
          ? `${name}=${truncate(value)}`
          : `${name}: file "${value.name}" (${value.type || "no type"}, ${value.size} bytes)`,
      );
    }
    return `<multipart> ${parts.join("; ")}`;
  } catch {
    return "<multipart body>";
  }
}

function errcodeOf(part: Omit<ExchangePart, "line">): number | undefined {
  const errcode = jsonObject(part.body)?.errcode;
  return typeof errcode === "number" ? errcode : undefined;
}

function touserOf(part: Omit<ExchangePart, "line">): string | undefined {
  const match = /"touser"\s*:\s*"([A-Za-z0-9_-]{1,256})"/.exec(part.body);
  return match?.[1];
}
