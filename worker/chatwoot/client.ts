/**
 * The calls the Chatwoot bridge makes to Chatwoot's application API
 * (`/api/v1/accounts/{account_id}/…`, as its `swagger/` folder describes it): each with the
 * `api_access_token` header, a time limit, and retries of 429 and 5xx answers with backoff.
 * Errors name the call and the status, never the token or what was sent.
 *
 * @module
 */
// Private helper (a documented exception, see src/internal/README.md): the core's one sleep.
import { sleep } from "../../src/internal/deadline.ts";

/** Settings of {@link ChatwootClient}. */
export interface ChatwootClientOptions {
  /** Chatwoot's address (`CHATWOOT_URL`); a path is kept. */
  url: string;
  /** The account (`CHATWOOT_ACCOUNT_ID`). */
  accountId: number;
  /** A user's access token (`CHATWOOT_API_TOKEN`). */
  token: string;
  /** Transport; default `globalThis.fetch`. */
  fetch?: typeof fetch | undefined;
  /** Time limit of each attempt, in ms; default 10,000. */
  timeoutMs?: number | undefined;
  /** Attempts of a call Chatwoot answers 429 or 5xx (or does not answer, when it is safe to repeat); default 3. */
  attempts?: number | undefined;
  /** The first backoff, in ms, doubled each attempt (a `Retry-After` up to 10 s wins); default 500. */
  retryBaseMs?: number | undefined;
}

/** A contact, as Chatwoot lists it (`contact_list_item`). */
export interface ChatwootContact {
  id: number;
  identifier?: string | null | undefined;
  contact_inboxes?: { source_id?: string | undefined; inbox?: { id?: number | undefined } | undefined }[] | undefined;
}

/** A conversation, as Chatwoot lists a contact's (`conversation`). */
export interface ChatwootConversation {
  id: number;
  inbox_id?: number | undefined;
  status?: string | undefined;
  contact_inbox?: { source_id?: string | undefined } | null | undefined;
}

/** A message, as Chatwoot answers one (`message`). */
export interface ChatwootMessage {
  id: number;
  content_attributes?: Record<string, unknown> | null | undefined;
}

/** The body of a new message (`conversation_message_create_payload`). */
export interface NewMessage {
  content: string;
  message_type: "incoming" | "outgoing";
  private: boolean;
  content_attributes?: Record<string, unknown> | undefined;
}

/**
 * A call to Chatwoot failed: it answered an error status, or did not answer. The message names
 * the call and the status; never the token, and never what was sent.
 *
 * @example
 * ```ts
 * import { ChatwootError } from "./client.ts";
 * const err = new ChatwootError("create message", 503);
 * console.log(err.message, err.retryable); // "Chatwoot answered create message with HTTP 503" true
 * ```
 */
export class ChatwootError extends Error {
  /** The call, in words. */
  readonly operation: string;
  /** Chatwoot's status; `undefined` when no answer came (network error, time limit). */
  readonly status: number | undefined;

  /**
   * @param operation the call, in words
   * @param status Chatwoot's status, or `undefined` when it did not answer
   * @param cause why it did not answer
   */
  constructor(operation: string, status: number | undefined, cause?: unknown) {
    super(
      status === undefined
        ? `Chatwoot did not answer ${operation}`
        : `Chatwoot answered ${operation} with HTTP ${status}`,
      cause === undefined ? undefined : { cause: cause instanceof Error ? cause.name : "error" },
    );
    this.name = "ChatwootError";
    this.operation = operation;
    this.status = status;
  }

  /** Whether trying again later can succeed: no answer, 408, 429 or a 5xx (not a refusal of what was sent). */
  get retryable(): boolean {
    return this.status === undefined || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

// A call that creates something is tried again only when Chatwoot surely did not act on it
// (429, 502, 503): a 500, a dropped connection or a time limit may come after it did, and a second
// message would then show twice. Calls that are safe to repeat are tried again on any of those.
const RETRY_ONCE_DONE = new Set([429, 502, 503]);
const RETRY_SAFE = new Set([408, 429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 10_000;

/**
 * Chatwoot's application API, for one account.
 *
 * @example Creating a message in a conversation
 * ```ts
 * import { ChatwootClient } from "./client.ts";
 * const seen: Request[] = [];
 * const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
 *   seen.push(new Request(input, init));
 *   return Promise.resolve(Response.json({ id: 51 }));
 * };
 * const client = new ChatwootClient({ url: "https://chat.example.com", accountId: 3, token: "cw-token", fetch });
 * const message = await client.createMessage(12, { content: "你好", message_type: "incoming", private: false });
 * console.log(message.id, seen[0]?.url); // 51 "https://chat.example.com/api/v1/accounts/3/conversations/12/messages"
 * ```
 */
export class ChatwootClient {
  readonly #base: string;
  readonly #origin: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #retryBaseMs: number;

  /** @param options Chatwoot's address, the account, the token, transport and retry settings */
  constructor(options: ChatwootClientOptions) {
    const url = new URL(options.url);
    this.#origin = url.origin;
    this.#base = `${url.origin}${url.pathname.replace(/\/+$/, "")}/api/v1/accounts/${options.accountId}`;
    this.#token = options.token;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#attempts = Math.max(1, options.attempts ?? 3);
    this.#retryBaseMs = options.retryBaseMs ?? 500;
  }

  /** Contacts whose name, identifier, email or phone contains `q` (`GET /contacts/search`). */
  async searchContacts(q: string): Promise<ChatwootContact[]> {
    const answer = await this.#call("search contacts", "GET", `/contacts/search?q=${encodeURIComponent(q)}`);
    return listOf<ChatwootContact>(answer);
  }

  /** Creates a contact with its record in an inbox (`POST /contacts`). */
  async createContact(body: { inbox_id: number; name: string; identifier: string }): Promise<ChatwootContact> {
    const answer = await this.#call("create contact", "POST", "/contacts", body, false) as {
      payload?: { contact?: ChatwootContact };
    };
    const contact = answer?.payload?.contact;
    if (typeof contact?.id !== "number") throw new ChatwootError("create contact (no contact in the answer)", 200);
    return contact;
  }

  /** Gives a contact a record in an inbox with a source id (`POST /contacts/{id}/contact_inboxes`). */
  async addContactInbox(contactId: number, body: { inbox_id: number; source_id: string }): Promise<void> {
    await this.#call("create contact inbox", "POST", `/contacts/${contactId}/contact_inboxes`, body);
  }

  /** A contact's conversations (`GET /contacts/{id}/conversations`). */
  async contactConversations(contactId: number): Promise<ChatwootConversation[]> {
    return listOf<ChatwootConversation>(
      await this.#call("list contact conversations", "GET", `/contacts/${contactId}/conversations`),
    );
  }

  /** Starts a conversation (`POST /conversations`). */
  async createConversation(
    body: { source_id: string; inbox_id: number; contact_id: number; status: "open" | "pending" },
  ): Promise<number> {
    const answer = await this.#call("create conversation", "POST", "/conversations", body, false) as { id?: unknown };
    if (typeof answer?.id !== "number") throw new ChatwootError("create conversation (no id in the answer)", 200);
    return answer.id;
  }

  /** A conversation's messages, newest last (`GET /conversations/{id}/messages`). */
  async messages(conversationId: number): Promise<ChatwootMessage[]> {
    return listOf<ChatwootMessage>(
      await this.#call("list messages", "GET", `/conversations/${conversationId}/messages`),
    );
  }

  /** Creates a message (`POST /conversations/{id}/messages`, JSON). */
  async createMessage(conversationId: number, body: NewMessage): Promise<ChatwootMessage> {
    return messageOf(
      await this.#call("create message", "POST", `/conversations/${conversationId}/messages`, body, false),
    );
  }

  /** Creates a message with a file (`POST /conversations/{id}/messages`, multipart `attachments[]`). */
  async createMessageWithFile(conversationId: number, body: NewMessage, file: File): Promise<ChatwootMessage> {
    const form = new FormData();
    if (body.content !== "") form.set("content", body.content);
    form.set("message_type", body.message_type);
    form.set("private", String(body.private));
    if (body.content_attributes !== undefined) form.set("content_attributes", JSON.stringify(body.content_attributes));
    form.append("attachments[]", file, file.name);
    return messageOf(
      await this.#call("create message with a file", "POST", `/conversations/${conversationId}/messages`, form, false),
    );
  }

  /** Marks a message's delivery (`PATCH /conversations/{id}/messages/{id}`; API inboxes only). */
  async updateMessageStatus(
    conversationId: number,
    messageId: number,
    body: { status: "sent" | "delivered" | "read" | "failed"; external_error?: string },
  ): Promise<void> {
    await this.#call("update message status", "PATCH", `/conversations/${conversationId}/messages/${messageId}`, body);
  }

  /** Sets a conversation's status (`POST /conversations/{id}/toggle_status`). */
  async toggleStatus(conversationId: number, status: "open" | "resolved" | "pending"): Promise<void> {
    await this.#call("toggle status", "POST", `/conversations/${conversationId}/toggle_status`, { status });
  }

  /** Deletes a contact with their conversations (`DELETE /contacts/{id}`). */
  async deleteContact(contactId: number): Promise<void> {
    await this.#call("delete contact", "DELETE", `/contacts/${contactId}`);
  }

  /**
   * Downloads an attachment from the address Chatwoot gives it (`data_url`). The access token
   * goes only to Chatwoot's own origin, never to the storage service a `data_url` may name.
   *
   * @param url the attachment's address
   * @param maxBytes the largest file accepted
   * @returns its bytes and type
   */
  async download(url: string, maxBytes: number): Promise<Blob> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new ChatwootError("download attachment (not an address)", 400);
    }
    if (target.protocol !== "https:" && target.protocol !== "http:") {
      throw new ChatwootError("download attachment (not an http address)", 400);
    }
    const headers: Record<string, string> = target.origin === this.#origin ? { api_access_token: this.#token } : {};
    const response = await this.#send("download attachment", target.href, { method: "GET", headers }, true);
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new ChatwootError(`download attachment (larger than ${maxBytes} bytes)`, 413);
    }
    const blob = await response.blob();
    if (blob.size > maxBytes) throw new ChatwootError(`download attachment (larger than ${maxBytes} bytes)`, 413);
    return blob;
  }

  async #call(
    operation: string,
    method: string,
    path: string,
    body?: unknown,
    safeToRepeat = method !== "POST",
  ): Promise<unknown> {
    const headers: Record<string, string> = { api_access_token: this.#token, accept: "application/json" };
    let payload: BodyInit | null = null;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await this.#send(
      operation,
      `${this.#base}${path}`,
      { method, headers, body: payload },
      safeToRepeat,
    );
    const text = await response.text();
    if (text === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }

  async #send(operation: string, url: string, init: RequestInit, safeToRepeat: boolean): Promise<Response> {
    for (let attempt = 1;; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(url, { ...init, signal: AbortSignal.timeout(this.#timeoutMs) });
      } catch (err) {
        // No answer: Chatwoot may have acted before the connection dropped or the time ran out, so
        // only a call that is safe to repeat is tried again here (a creation is looked up first, by
        // the next run).
        if (attempt >= this.#attempts || !safeToRepeat) throw new ChatwootError(operation, undefined, err);
        await sleep(this.#backoff(attempt, null));
        continue;
      }
      if (response.ok) return response;
      await response.body?.cancel();
      const retry = (safeToRepeat ? RETRY_SAFE : RETRY_ONCE_DONE).has(response.status);
      if (!retry || attempt >= this.#attempts) throw new ChatwootError(operation, response.status);
      await sleep(this.#backoff(attempt, response.headers.get("retry-after")));
    }
  }

  #backoff(attempt: number, retryAfter: string | null): number {
    if (retryAfter !== null && /^\d{1,6}$/.test(retryAfter.trim())) {
      return Math.min(MAX_RETRY_AFTER_MS, Number(retryAfter.trim()) * 1000);
    }
    return this.#retryBaseMs * 2 ** (attempt - 1);
  }
}

function listOf<T>(answer: unknown): T[] {
  const payload = (answer as { payload?: unknown } | undefined)?.payload;
  return Array.isArray(payload) ? payload as T[] : [];
}

function messageOf(answer: unknown): ChatwootMessage {
  const id = (answer as { id?: unknown } | undefined)?.id;
  if (typeof id !== "number") throw new ChatwootError("create message (no id in the answer)", 200);
  return answer as ChatwootMessage;
}
