// A contract fake of Chatwoot's application API and of the webhooks Chatwoot sends, for the
// bridge's tests. It runs as an injected `fetch` inside workerd (or behind any server), answers
// only what Chatwoot documents, and refuses a request that does not match the documented schema
// or lacks the `api_access_token` header, so a bridge that drifts from the contract fails here
// rather than against a real help desk.
//
// Written from chatwoot/chatwoot's `swagger/` folder, as stored at these commits:
//   commit 0193afb8b5280e19f79e6bf467b8c79eaea6a3a9
//     swagger/paths/application/contact_inboxes/create.yml        POST /contacts/{id}/contact_inboxes
//     swagger/paths/application/contacts/conversations.yml        GET  /contacts/{id}/conversations
//     swagger/paths/application/conversation/index.yml            POST /conversations
//     swagger/paths/application/conversation/toggle_status.yml    POST /conversations/{id}/toggle_status
//     swagger/paths/application/conversation/messages/update.yml  PATCH /conversations/{id}/messages/{id}
//   commit 256bcd96b2fcb2ba9b54b7ed55179294a00643ef
//     swagger/paths/application/contacts/list_create.yml          POST /contacts
//     swagger/definitions/request/contact/create_payload.yml
//     swagger/definitions/resource/contact_create_response.yml
//   commit 2d26a54682694b1a4eab91d76bcc7f2a374c30b4
//     swagger/paths/application/contacts/search.yml               GET  /contacts/search
//   commit 00b18497b170d282d281093128d3062604981a04
//     swagger/definitions/request/conversation/create_payload.yml
//   commit 14484755a5d8a304a510640336052a0cb8d8d0f3
//     swagger/definitions/request/conversation/create_message_payload.yml
//   commit 1bfc200deeae66649f7fcb5fc000447b99f21a73
//     swagger/paths/application/conversation/messages/create.yml  (JSON, and multipart `attachments[]`)
//   commit 0294df19a08208a6f53a42a9e752f274e6d2a806
//     swagger/index.yml   securityDefinitions.userApiKey: header `api_access_token`
//   resources: swagger/definitions/resource/{message (06748372), contact_list_item (06748372),
//     contact_inbox (2d24ed01), contacts_list_response (f771df85), contact_conversations_response
//     (bbda5866)}.yml
// The webhook payloads follow app/listeners/webhook_listener.rb (commit 199f6d0f52210a6e21c7094bd5825fcb8a0a0504:
// message_created, conversation_status_changed, conversation_updated, conversation_typing_on/off)
// and app/presenters/conversations/event_data_presenter.rb (commit 01ff5794). Signing: the
// snapshot's app/jobs/webhook_job.rb (commit 18fa67899365640c07d2e8d78b499ec846ec5db9) hands
// `secret:` and `delivery_id:` to Webhooks::Trigger, which sends `X-Chatwoot-Delivery`,
// `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw
// body>">`, as Chatwoot's webhook resource describes its `secret`. (The snapshot's own
// lib/webhooks/trigger.rb, commit 05a4bd24, is older and signs nothing.)

/** What a webhook delivery did: the status the worker answered. */
export interface Delivered {
  status: number;
  body: string;
}

/** Settings of the fake. */
export interface ChatwootFakeOptions {
  /** Where it listens, e.g. `https://chatwoot.test` (no trailing slash). */
  baseUrl: string;
  /** The API access token it accepts. */
  token: string;
  /** The account it holds. */
  accountId: number;
  /** The API inbox it holds. */
  inboxId: number;
  /** The secret it signs webhooks with (the API inbox's webhook secret). */
  webhookSecret: string;
  /** Delivers a webhook request to the worker (POST /chatwoot/webhook). */
  deliver?: ((request: Request) => Promise<Response>) | undefined;
  /** Clock in ms; default `Date.now`. */
  now?: (() => number) | undefined;
}

interface Contact {
  id: number;
  name: string;
  identifier: string | null;
  email: string | null;
  phone_number: string | null;
  additional_attributes: Record<string, unknown>;
  custom_attributes: Record<string, unknown>;
  created_at: number;
}

interface ContactInbox {
  id: number;
  contact_id: number;
  inbox_id: number;
  source_id: string;
}

interface Conversation {
  id: number;
  inbox_id: number;
  contact_id: number;
  contact_inbox_id: number;
  status: "open" | "resolved" | "pending" | "snoozed";
  assignee: Agent | null;
  created_at: number;
}

interface Attachment {
  id: number;
  file_type: string;
  extension: string | null;
  data_url: string;
  file_size: number;
  bytes: Uint8Array;
  content_type: string;
}

/** A message as the fake keeps it. */
export interface FakeMessage {
  id: number;
  conversation_id: number;
  content: string | null;
  message_type: "incoming" | "outgoing" | "activity";
  private: boolean;
  content_type: string;
  content_attributes: Record<string, unknown>;
  status: "sent" | "delivered" | "read" | "failed";
  external_error: string | null;
  sender: { id: number; name: string; type: "user" | "contact" | "agent_bot" };
  attachments: Attachment[];
  created_at: number;
}

/** An agent of the account. */
export interface Agent {
  id: number;
  name: string;
  email: string;
}

/** One API request the fake saw (after authentication), for the tests' counts. */
export interface SeenRequest {
  method: string;
  path: string;
  status: number;
}

// ----------------------------------------------------------------------------- schemas

type FieldType =
  | "string"
  | "number"
  | "integer"
  | "boolean"
  | "object"
  | "integer[]"
  | readonly string[]; // an enum of strings

interface BodySchema {
  required: readonly string[];
  properties: Readonly<Record<string, FieldType>>;
}

// swagger/definitions/request/contact/create_payload.yml (avatar, a binary, only in multipart)
const CONTACT_CREATE: BodySchema = {
  required: ["inbox_id"],
  properties: {
    inbox_id: "number",
    name: "string",
    email: "string",
    blocked: "boolean",
    account_owner_id: "integer",
    phone_number: "string",
    avatar_url: "string",
    identifier: "string",
    additional_attributes: "object",
    custom_attributes: "object",
  },
};

// swagger/paths/application/contact_inboxes/create.yml
const CONTACT_INBOX_CREATE: BodySchema = {
  required: ["inbox_id"],
  properties: { inbox_id: "number", source_id: "string" },
};

// swagger/definitions/request/conversation/create_payload.yml
const CONVERSATION_CREATE: BodySchema = {
  required: ["source_id"],
  properties: {
    source_id: "string",
    inbox_id: "integer",
    contact_id: "integer",
    additional_attributes: "object",
    custom_attributes: "object",
    status: ["open", "resolved", "pending"],
    assignee_id: "integer",
    team_id: "integer",
    snoozed_until: "string",
    message: "object",
  },
};

const CONTENT_TYPES = ["text", "input_email", "cards", "input_select", "form", "article"] as const;

// swagger/definitions/request/conversation/create_message_payload.yml
const MESSAGE_CREATE: BodySchema = {
  required: ["content"],
  properties: {
    content: "string",
    message_type: ["outgoing", "incoming"],
    private: "boolean",
    content_type: CONTENT_TYPES,
    content_attributes: "object",
    campaign_id: "integer",
    attachment_ids: "integer[]",
    template_params: "object",
  },
};

// swagger/paths/application/conversation/messages/create.yml, multipart/form-data
const MESSAGE_FORM_FIELDS = new Set([
  "content",
  "message_type",
  "private",
  "content_type",
  "content_attributes",
  "attachments[]",
]);

// swagger/paths/application/conversation/messages/update.yml
const MESSAGE_UPDATE: BodySchema = {
  required: ["status"],
  properties: { status: ["sent", "delivered", "read", "failed"], external_error: "string" },
};

// swagger/paths/application/conversation/toggle_status.yml
const TOGGLE_STATUS: BodySchema = {
  required: ["status"],
  properties: { status: ["open", "resolved", "pending", "snoozed"], snoozed_until: "number" },
};

// swagger/paths/application/conversation/assignments.yml
const ASSIGNMENT: BodySchema = {
  required: [],
  properties: { assignee_id: "number", team_id: "number" },
};

/** Why a body does not match its schema, or `undefined` when it does. */
function schemaProblem(body: unknown, schema: BodySchema): string | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body must be a JSON object";
  const fields = body as Record<string, unknown>;
  for (const name of schema.required) if (fields[name] === undefined) return `${name} is required`;
  for (const [name, value] of Object.entries(fields)) {
    const type = schema.properties[name];
    // The contract is what is documented: a field Chatwoot does not describe is a drift.
    if (type === undefined) return `${name} is not a documented field`;
    if (!matches(value, type)) return `${name} must be ${typeof type === "string" ? type : type.join(" | ")}`;
  }
  return undefined;
}

function matches(value: unknown, type: FieldType): boolean {
  if (typeof type !== "string") return typeof value === "string" && type.includes(value);
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    case "integer[]":
      return Array.isArray(value) && value.every((item) => Number.isInteger(item));
  }
}

// ----------------------------------------------------------------------------- the fake

const encoder = new TextEncoder();

/** HMAC-SHA256 hex, written here on its own so the fake does not share the worker's code. */
async function hmacHex(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(data)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

// swagger/definitions/error/bad_request.yml
function refused(status: number, description: string): Response {
  return json(status, { description, errors: [{ message: description }] });
}

const MESSAGE_TYPE_NUMBER = { incoming: 0, outgoing: 1, activity: 2 } as const;

/** A fault the next requests meet. */
type Fault =
  | { kind: "status"; status: number; retryAfter?: string | undefined }
  | { kind: "hang" }
  | { kind: "lose-answer" };

/**
 * The fake Chatwoot: `fetch` is its API (pass it, or a router over it, as the worker's
 * transport), the other members drive it as an agent would and break it as an outage would.
 */
export class ChatwootFake {
  readonly #options: ChatwootFakeOptions;
  readonly #now: () => number;
  readonly contacts: Contact[] = [];
  readonly contactInboxes: ContactInbox[] = [];
  readonly conversations: Conversation[] = [];
  readonly messages: FakeMessage[] = [];
  /** Every authenticated API request, in order. */
  readonly requests: SeenRequest[] = [];
  /** Requests answered by an injected fault (429, 5xx), in order. */
  readonly faulted: SeenRequest[] = [];
  /** Requests refused for their schema or authentication: what went wrong, for the test's message. */
  readonly refusals: string[] = [];
  /** Every webhook delivery and what the worker answered. */
  readonly deliveries: Delivered[] = [];
  /** The account's agents. */
  readonly agents: Agent[] = [
    { id: 1, name: "Alice Wang", email: "alice@example.com" },
    { id: 2, name: "Bob Li", email: "bob@example.com" },
  ];
  /** The user the API token belongs to: Chatwoot records API-created outgoing messages as theirs. */
  readonly tokenOwner: Agent = { id: 9, name: "Integration", email: "integration@example.com" };
  /** Echo messages created through the API back as `message_created` webhooks, as Chatwoot does. */
  echo = true;
  /** Deliver every webhook twice, with the same delivery id, as a retried job does. */
  duplicate = false;
  #faults: Fault[] = [];
  #down = false;
  // Ids start somewhere new for each fake: the worker's store outlives a test, Chatwoot's ids never repeat.
  #ids = 1000 + Math.floor(Math.random() * 1e9);
  readonly #pending: Promise<unknown>[] = [];

  constructor(options: ChatwootFakeOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The fake's API, as a `fetch`. Requests for other origins are refused with a network error. */
  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    if (!request.url.startsWith(`${this.#options.baseUrl}/`)) {
      throw new TypeError(`fetch failed: the fake Chatwoot does not serve ${new URL(request.url).origin}`);
    }
    if (this.#down) throw new TypeError("fetch failed: connect ECONNREFUSED (Chatwoot is down)");
    const fault = this.#faults.shift();
    if (fault?.kind === "hang") {
      return await new Promise<Response>((_, reject) => {
        request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
      });
    }
    const path = new URL(request.url).pathname.slice(new URL(this.#options.baseUrl).pathname.replace(/\/$/, "").length);
    if (fault?.kind === "status") {
      this.faulted.push({ method: request.method, path, status: fault.status });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
      return new Response(JSON.stringify({ error: `HTTP ${fault.status}` }), { status: fault.status, headers });
    }
    if (fault?.kind === "lose-answer") {
      // Chatwoot acts, then the connection drops before the answer arrives.
      await this.#route(request, path);
      throw new TypeError("fetch failed: connection reset (after Chatwoot acted)");
    }
    // Stored files are served by their (signed) storage URL, without the API token.
    if (request.method === "GET" && path.startsWith("/rails/active_storage/")) {
      return this.attachmentResponse(request.url) ?? new Response("Not Found", { status: 404 });
    }
    return await this.#route(request, path);
  };

  // ------------------------------------------------------------------- faults

  /** The next `count` API requests are answered `status` (429 with `Retry-After: retryAfter`). */
  failNext(count: number, status: number, retryAfter?: string): void {
    for (let i = 0; i < count; i++) this.#faults.push({ kind: "status", status, retryAfter });
  }

  /** The next request never answers (until the caller gives up). */
  hangNext(): void {
    this.#faults.push({ kind: "hang" });
  }

  /** The next request is carried out and its answer lost (the connection drops): the caller cannot know it worked. */
  loseNextAnswer(): void {
    this.#faults.push({ kind: "lose-answer" });
  }

  /** Chatwoot goes down: every request fails to connect until {@link up}. */
  down(): void {
    this.#down = true;
  }

  /** Chatwoot is back. */
  up(): void {
    this.#down = false;
  }

  // ------------------------------------------------------------------- what tests read

  /** The conversation of the contact whose source id (in the fake's inbox) is `sourceId`, newest first. */
  conversationsOf(sourceId: string): Conversation[] {
    const inbox = this.contactInboxes.find((ci) => ci.source_id === sourceId && ci.inbox_id === this.#options.inboxId);
    if (inbox === undefined) return [];
    return this.conversations.filter((c) => c.contact_inbox_id === inbox.id).reverse();
  }

  /** The messages of a conversation, oldest first. */
  messagesOf(conversationId: number): FakeMessage[] {
    return this.messages.filter((m) => m.conversation_id === conversationId);
  }

  /** Waits for the webhooks the fake sent on its own (echoes) to be answered. */
  async settled(): Promise<void> {
    while (this.#pending.length > 0) await Promise.allSettled(this.#pending.splice(0));
  }

  // ------------------------------------------------------------------- an agent at work

  /** An agent replies in a conversation (optionally with image attachments): Chatwoot sends `message_created`. */
  async agentReplies(
    conversationId: number,
    content: string,
    options: { agent?: Agent; private?: boolean; images?: Uint8Array[] } = {},
  ): Promise<{ message: FakeMessage; delivered: Delivered[] }> {
    const agent = options.agent ?? this.agents[0]!;
    const message = this.#addMessage(conversationId, {
      content,
      message_type: "outgoing",
      private: options.private ?? false,
      sender: { id: agent.id, name: agent.name, type: "user" },
      attachments: (options.images ?? []).map((bytes) => this.#attachment(bytes, "image/png", "png")),
    });
    return { message, delivered: await this.#webhook(this.#messageEvent("message_created", message)) };
  }

  /** An agent starts or stops typing in a conversation. */
  async agentTypes(conversationId: number, on: boolean, agent: Agent = this.agents[0]!): Promise<Delivered[]> {
    const conversation = this.#conversation(conversationId)!;
    return await this.#webhook({
      event: on ? "conversation_typing_on" : "conversation_typing_off",
      user: { id: agent.id, name: agent.name, email: agent.email, type: "user" },
      conversation: this.#conversationData(conversation),
      is_private: false,
    });
  }

  /** An agent sets a conversation's status in Chatwoot's UI. */
  async agentSetsStatus(conversationId: number, status: Conversation["status"]): Promise<Delivered[]> {
    const conversation = this.#conversation(conversationId)!;
    const previous = conversation.status;
    conversation.status = status;
    return await this.#webhook({
      ...this.#conversationData(conversation),
      event: "conversation_status_changed",
      changed_attributes: [{ status: { previous_value: previous, current_value: status } }],
    });
  }

  /** An agent assigns a conversation (to themselves, or `null` to unassign). */
  async agentAssigns(conversationId: number, assignee: Agent | null): Promise<Delivered[]> {
    const conversation = this.#conversation(conversationId)!;
    const previous = conversation.assignee?.id ?? null;
    conversation.assignee = assignee;
    return await this.#webhook({
      ...this.#conversationData(conversation),
      event: "conversation_updated",
      changed_attributes: [{ assignee_id: { previous_value: previous, current_value: assignee?.id ?? null } }],
    });
  }

  /**
   * Sends a webhook delivery as Chatwoot would: signed with the secret and timestamped now, or
   * with what `tamper` changes (a forged signature, an old timestamp, another body).
   */
  async sendWebhook(
    payload: Record<string, unknown>,
    tamper: { secret?: string; timestamp?: number; signature?: string; body?: string; deliveryId?: string } = {},
  ): Promise<Delivered> {
    const deliver = this.#options.deliver;
    if (deliver === undefined) throw new Error("the fake has no webhook target: pass `deliver`");
    const body = JSON.stringify(payload);
    const timestamp = String(tamper.timestamp ?? Math.floor(this.#now() / 1000));
    const signature = tamper.signature ??
      `sha256=${await hmacHex(tamper.secret ?? this.#options.webhookSecret, `${timestamp}.${body}`)}`;
    const request = new Request("https://kefu.test/chatwoot/webhook", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        "x-chatwoot-delivery": tamper.deliveryId ?? crypto.randomUUID(),
        "x-chatwoot-timestamp": timestamp,
        "x-chatwoot-signature": signature,
      },
      body: tamper.body ?? body,
    });
    const response = await deliver(request);
    const delivered = { status: response.status, body: await response.text() };
    this.deliveries.push(delivered);
    return delivered;
  }

  /** The `message_created` payload of a stored message (for tests that replay or alter it). */
  messageCreatedPayload(message: FakeMessage): Record<string, unknown> {
    return this.#messageEvent("message_created", message);
  }

  async #webhook(payload: Record<string, unknown>): Promise<Delivered[]> {
    const deliveryId = crypto.randomUUID();
    const delivered = [await this.sendWebhook(payload, { deliveryId })];
    if (this.duplicate) delivered.push(await this.sendWebhook(payload, { deliveryId }));
    return delivered;
  }

  // ------------------------------------------------------------------- the API

  async #route(request: Request, path: string): Promise<Response> {
    // swagger/index.yml: userApiKey, header `api_access_token`.
    if (request.headers.get("api_access_token") !== this.#options.token) {
      this.refusals.push(`${request.method} ${path}: missing or wrong api_access_token`);
      return refused(401, "Invalid Access Token");
    }
    const prefix = `/api/v1/accounts/${this.#options.accountId}`;
    if (!path.startsWith(`${prefix}/`)) return this.#seen(request, path, refused(404, "Account not found"));
    const rest = path.slice(prefix.length);
    const answer = await this.#api(request, rest).catch((err: unknown) =>
      refused(400, err instanceof Error ? err.message : String(err))
    );
    if (answer.status === 400 || answer.status === 422) {
      const { description } = await answer.clone().json() as { description: string };
      this.refusals.push(`${request.method} ${rest}: ${description}`);
    }
    return this.#seen(request, rest, answer);
  }

  #seen(request: Request, path: string, response: Response): Response {
    this.requests.push({ method: request.method, path, status: response.status });
    return response;
  }

  async #api(request: Request, path: string): Promise<Response> {
    const method = request.method;
    let match: RegExpExecArray | null;
    if (method === "GET" && path === "/contacts/search") return this.#searchContacts(new URL(request.url));
    if (method === "POST" && path === "/contacts") return this.#createContact(await this.#jsonBody(request));
    if ((match = /^\/contacts\/(\d+)\/contact_inboxes$/.exec(path)) && method === "POST") {
      return this.#createContactInbox(Number(match[1]), await this.#jsonBody(request));
    }
    if ((match = /^\/contacts\/(\d+)\/conversations$/.exec(path)) && method === "GET") {
      return this.#contactConversations(Number(match[1]));
    }
    if ((match = /^\/contacts\/(\d+)$/.exec(path)) && method === "DELETE") return this.#deleteContact(Number(match[1]));
    if (method === "POST" && path === "/conversations") return this.#createConversation(await this.#jsonBody(request));
    if ((match = /^\/conversations\/(\d+)\/messages$/.exec(path))) {
      const conversation = this.#conversation(Number(match[1]));
      if (conversation === undefined) return refused(404, "Conversation not found");
      if (method === "GET") {
        return json(200, { meta: {}, payload: this.messagesOf(conversation.id).map(messageResource) });
      }
      if (method === "POST") return await this.#createMessage(conversation, request);
    }
    if ((match = /^\/conversations\/(\d+)\/messages\/(\d+)$/.exec(path)) && method === "PATCH") {
      return this.#updateMessage(Number(match[1]), Number(match[2]), await this.#jsonBody(request));
    }
    if ((match = /^\/conversations\/(\d+)\/toggle_status$/.exec(path)) && method === "POST") {
      return this.#toggleStatus(Number(match[1]), await this.#jsonBody(request));
    }
    if ((match = /^\/conversations\/(\d+)\/assignments$/.exec(path)) && method === "POST") {
      return this.#assign(Number(match[1]), await this.#jsonBody(request));
    }
    return refused(404, `No documented route: ${method} ${path}`);
  }

  async #jsonBody(request: Request): Promise<unknown> {
    if (!/^application\/json\b/.test(request.headers.get("content-type") ?? "")) {
      throw new Error("the body must be application/json");
    }
    try {
      return await request.json();
    } catch {
      throw new Error("the body is not JSON");
    }
  }

  #searchContacts(url: URL): Response {
    const q = url.searchParams.get("q") ?? "";
    const found = this.contacts.filter((contact) =>
      // "Resolved contacts are the ones with a value for identifier, email or phone number"
      (contact.identifier !== null || contact.email !== null || contact.phone_number !== null) &&
      [contact.name, contact.identifier, contact.email, contact.phone_number].some((v) => v !== null && v.includes(q))
    );
    return json(200, {
      meta: { count: found.length, current_page: 1 },
      payload: found.slice(0, 15).map((contact) => this.#contactListItem(contact)),
    });
  }

  #createContact(body: unknown): Response {
    const problem = schemaProblem(body, CONTACT_CREATE);
    if (problem !== undefined) return refused(400, problem);
    const fields = body as { inbox_id: number; name?: string; identifier?: string; email?: string };
    if (fields.inbox_id !== this.#options.inboxId) return refused(422, "Inbox not found");
    if (fields.identifier !== undefined && this.contacts.some((c) => c.identifier === fields.identifier)) {
      return refused(422, "Identifier has already been taken");
    }
    const contact: Contact = {
      id: ++this.#ids,
      name: fields.name ?? "",
      identifier: fields.identifier ?? null,
      email: fields.email ?? null,
      phone_number: null,
      additional_attributes: {},
      custom_attributes: {},
      created_at: Math.floor(this.#now() / 1000),
    };
    this.contacts.push(contact);
    // With an inbox, Chatwoot makes the contact's inbox record with a source id of its own.
    const contactInbox = this.#addContactInbox(contact.id, fields.inbox_id, crypto.randomUUID());
    return json(200, {
      payload: { contact: this.#contactListItem(contact), contact_inbox: this.#contactInboxResource(contactInbox) },
    });
  }

  #createContactInbox(contactId: number, body: unknown): Response {
    const problem = schemaProblem(body, CONTACT_INBOX_CREATE);
    if (problem !== undefined) return refused(422, problem);
    if (!this.contacts.some((c) => c.id === contactId)) return refused(404, "Contact not found");
    const fields = body as { inbox_id: number; source_id?: string };
    if (fields.inbox_id !== this.#options.inboxId) return refused(422, "Inbox not found");
    const sourceId = fields.source_id ?? crypto.randomUUID();
    const existing = this.contactInboxes.find((ci) => ci.inbox_id === fields.inbox_id && ci.source_id === sourceId);
    if (existing !== undefined && existing.contact_id !== contactId) {
      return refused(422, "Source has already been taken");
    }
    const contactInbox = existing ?? this.#addContactInbox(contactId, fields.inbox_id, sourceId);
    return json(200, this.#contactInboxResource(contactInbox));
  }

  #contactConversations(contactId: number): Response {
    if (!this.contacts.some((c) => c.id === contactId)) return refused(404, "Contact not found");
    const payload = this.conversations.filter((c) => c.contact_id === contactId).map((c) => this.#conversationData(c));
    return json(200, { payload });
  }

  #deleteContact(contactId: number): Response {
    const at = this.contacts.findIndex((c) => c.id === contactId);
    if (at === -1) return refused(404, "Contact not found");
    this.contacts.splice(at, 1);
    for (const conversation of this.conversations.filter((c) => c.contact_id === contactId)) {
      for (let i = this.messages.length - 1; i >= 0; i--) {
        if (this.messages[i]!.conversation_id === conversation.id) this.messages.splice(i, 1);
      }
      this.conversations.splice(this.conversations.indexOf(conversation), 1);
    }
    for (let i = this.contactInboxes.length - 1; i >= 0; i--) {
      if (this.contactInboxes[i]!.contact_id === contactId) this.contactInboxes.splice(i, 1);
    }
    return new Response(null, { status: 200 });
  }

  #createConversation(body: unknown): Response {
    const problem = schemaProblem(body, CONVERSATION_CREATE);
    if (problem !== undefined) return refused(400, problem);
    const fields = body as {
      source_id: string;
      inbox_id?: number;
      contact_id?: number;
      status?: Conversation["status"];
    };
    const inboxId = fields.inbox_id ?? this.#options.inboxId;
    const contactInbox = this.contactInboxes.find((ci) => ci.inbox_id === inboxId && ci.source_id === fields.source_id);
    if (contactInbox === undefined) return refused(422, "Contact inbox not found for source_id");
    if (fields.contact_id !== undefined && fields.contact_id !== contactInbox.contact_id) {
      return refused(422, "The contact does not own this source_id");
    }
    const conversation: Conversation = {
      id: ++this.#ids,
      inbox_id: inboxId,
      contact_id: contactInbox.contact_id,
      contact_inbox_id: contactInbox.id,
      status: fields.status ?? "open",
      assignee: null,
      created_at: Math.floor(this.#now() / 1000),
    };
    this.conversations.push(conversation);
    return json(200, { id: conversation.id, account_id: this.#options.accountId, inbox_id: inboxId });
  }

  async #createMessage(conversation: Conversation, request: Request): Promise<Response> {
    const type = request.headers.get("content-type") ?? "";
    let fields: Record<string, unknown>;
    let files: File[] = [];
    if (/^multipart\/form-data\b/.test(type)) {
      const form = await request.formData().catch(() => {
        throw new Error("the body is not multipart/form-data");
      });
      fields = {};
      for (const [name, value] of form.entries()) {
        if (!MESSAGE_FORM_FIELDS.has(name)) return refused(400, `${name} is not a documented field`);
        if (name === "attachments[]") {
          if (typeof value === "string") return refused(400, "attachments[] must be files");
          files.push(value);
        } else if (typeof value !== "string") {
          return refused(400, `${name} must be a text field`);
        } else {
          fields[name] = name === "private" ? value === "true" : value;
        }
      }
      if (fields.message_type !== undefined && !["outgoing", "incoming"].includes(String(fields.message_type))) {
        return refused(400, "message_type must be outgoing | incoming");
      }
      if (typeof fields.content_attributes === "string") {
        try {
          fields.content_attributes = JSON.parse(fields.content_attributes);
        } catch {
          return refused(400, "content_attributes must be an object");
        }
      }
      if (files.length === 0 && fields.content === undefined) return refused(400, "content or attachments[] required");
    } else {
      const body = await this.#jsonBody(request);
      const problem = schemaProblem(body, MESSAGE_CREATE);
      if (problem !== undefined) return refused(400, problem);
      fields = body as Record<string, unknown>;
      files = [];
    }
    const attachments: Attachment[] = [];
    for (const file of files) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const extension = /\.([a-z0-9]+)$/i.exec(file.name)?.[1] ?? null;
      attachments.push(this.#attachment(bytes, file.type || "application/octet-stream", extension));
    }
    const messageType = (fields.message_type as FakeMessage["message_type"] | undefined) ?? "outgoing";
    const contact = this.contacts.find((c) => c.id === conversation.contact_id)!;
    const message = this.#addMessage(conversation.id, {
      content: typeof fields.content === "string" ? fields.content : null,
      message_type: messageType,
      private: fields.private === true,
      content_type: (fields.content_type as string | undefined) ?? "text",
      content_attributes: (fields.content_attributes as Record<string, unknown> | undefined) ?? {},
      // The API token's owner writes outgoing messages; incoming ones are the contact's.
      sender: messageType === "incoming"
        ? { id: contact.id, name: contact.name, type: "contact" }
        : { id: this.tokenOwner.id, name: this.tokenOwner.name, type: "user" },
      attachments,
    });
    // Chatwoot's listener sends every message it makes to the inbox's webhook, API-made ones too.
    if (this.echo && this.#options.deliver !== undefined) {
      const echoed = this.#webhook(this.#messageEvent("message_created", message));
      this.#pending.push(echoed);
      await echoed;
    }
    return json(200, messageResource(message));
  }

  #updateMessage(conversationId: number, messageId: number, body: unknown): Response {
    const problem = schemaProblem(body, MESSAGE_UPDATE);
    if (problem !== undefined) return refused(422, problem);
    const message = this.messages.find((m) => m.id === messageId && m.conversation_id === conversationId);
    if (message === undefined) return refused(404, "The message or conversation does not exist in the account");
    const fields = body as { status: FakeMessage["status"]; external_error?: string };
    if (message.status === "read" && fields.status === "delivered") {
      return refused(422, "A read message cannot be moved back to delivered");
    }
    message.status = fields.status;
    message.external_error = fields.status === "failed" ? fields.external_error ?? null : null;
    return json(200, messageResource(message));
  }

  #toggleStatus(conversationId: number, body: unknown): Response {
    const problem = schemaProblem(body, TOGGLE_STATUS);
    if (problem !== undefined) return refused(422, problem);
    const conversation = this.#conversation(conversationId);
    if (conversation === undefined) return refused(404, "Conversation not found");
    conversation.status = (body as { status: Conversation["status"] }).status;
    return json(200, {
      meta: {},
      payload: { success: true, current_status: conversation.status, conversation_id: conversation.id },
    });
  }

  #assign(conversationId: number, body: unknown): Response {
    const problem = schemaProblem(body, ASSIGNMENT);
    if (problem !== undefined) return refused(422, problem);
    const conversation = this.#conversation(conversationId);
    if (conversation === undefined) return refused(404, "Conversation not found");
    const assignee = this.agents.find((a) => a.id === (body as { assignee_id?: number }).assignee_id) ?? null;
    conversation.assignee = assignee;
    return json(200, assignee ?? {});
  }

  // ------------------------------------------------------------------- records

  #conversation(id: number): Conversation | undefined {
    return this.conversations.find((c) => c.id === id);
  }

  #addContactInbox(contactId: number, inboxId: number, sourceId: string): ContactInbox {
    const contactInbox = { id: ++this.#ids, contact_id: contactId, inbox_id: inboxId, source_id: sourceId };
    this.contactInboxes.push(contactInbox);
    return contactInbox;
  }

  #attachment(bytes: Uint8Array, contentType: string, extension: string | null): Attachment {
    const id = ++this.#ids;
    const fileType = contentType.startsWith("image/") ? "image" : contentType.startsWith("audio/") ? "audio" : "file";
    return {
      id,
      file_type: fileType,
      extension,
      data_url: `${this.#options.baseUrl}/rails/active_storage/blobs/${id}/file${extension ? `.${extension}` : ""}`,
      file_size: bytes.byteLength,
      bytes,
      content_type: contentType,
    };
  }

  #addMessage(
    conversationId: number,
    fields:
      & Pick<FakeMessage, "content" | "message_type" | "private" | "sender" | "attachments">
      & Partial<Pick<FakeMessage, "content_type" | "content_attributes">>,
  ): FakeMessage {
    const message: FakeMessage = {
      id: ++this.#ids,
      conversation_id: conversationId,
      content_type: "text",
      content_attributes: {},
      status: "sent",
      external_error: null,
      created_at: Math.floor(this.#now() / 1000),
      ...fields,
    };
    this.messages.push(message);
    return message;
  }

  /** An attachment's bytes, as Chatwoot's storage serves `data_url`. */
  attachmentResponse(url: string): Response | undefined {
    for (const message of this.messages) {
      const found = message.attachments.find((a) => a.data_url === url);
      if (found !== undefined) {
        return new Response(found.bytes.slice(), { headers: { "content-type": found.content_type } });
      }
    }
    return undefined;
  }

  #contactInboxResource(contactInbox: ContactInbox) {
    return {
      source_id: contactInbox.source_id,
      inbox: { id: contactInbox.inbox_id, name: "WeChat Mini Program", channel_type: "Channel::Api", provider: null },
    };
  }

  #contactListItem(contact: Contact) {
    return {
      additional_attributes: contact.additional_attributes,
      availability_status: "offline",
      email: contact.email,
      id: contact.id,
      name: contact.name,
      phone_number: contact.phone_number,
      blocked: false,
      identifier: contact.identifier,
      thumbnail: "",
      custom_attributes: contact.custom_attributes,
      last_activity_at: null,
      created_at: contact.created_at,
      contact_inboxes: this.contactInboxes.filter((ci) => ci.contact_id === contact.id).map((ci) =>
        this.#contactInboxResource(ci)
      ),
    };
  }

  // Conversations::EventDataPresenter#push_data, with `id` the display id.
  #conversationData(conversation: Conversation): Record<string, unknown> {
    const contact = this.contacts.find((c) => c.id === conversation.contact_id);
    const contactInbox = this.contactInboxes.find((ci) => ci.id === conversation.contact_inbox_id);
    return {
      additional_attributes: {},
      can_reply: true,
      channel: "Channel::Api",
      contact_inbox: contactInbox === undefined ? null : {
        id: contactInbox.id,
        contact_id: contactInbox.contact_id,
        inbox_id: contactInbox.inbox_id,
        source_id: contactInbox.source_id,
        hmac_verified: false,
      },
      id: conversation.id,
      inbox_id: conversation.inbox_id,
      messages: [],
      labels: [],
      meta: {
        sender: contact === undefined ? null : { id: contact.id, name: contact.name, type: "contact" },
        assignee: conversation.assignee === null
          ? null
          : { id: conversation.assignee.id, name: conversation.assignee.name, type: "user" },
        team: null,
        hmac_verified: false,
      },
      status: conversation.status,
      custom_attributes: {},
      snoozed_until: null,
      unread_count: 0,
      agent_last_seen_at: 0,
      contact_last_seen_at: 0,
      last_activity_at: Math.floor(this.#now() / 1000),
      timestamp: Math.floor(this.#now() / 1000),
      created_at: conversation.created_at,
    };
  }

  // Message#webhook_data, merged with the event's name.
  #messageEvent(event: string, message: FakeMessage): Record<string, unknown> {
    const conversation = this.#conversation(message.conversation_id)!;
    const payload: Record<string, unknown> = {
      event,
      account: { id: this.#options.accountId, name: "Acme" },
      additional_attributes: {},
      content_attributes: message.content_attributes,
      content_type: message.content_type,
      content: message.content,
      conversation: this.#conversationData(conversation),
      created_at: new Date(message.created_at * 1000).toISOString(),
      id: message.id,
      inbox: { id: conversation.inbox_id, name: "WeChat Mini Program" },
      message_type: message.message_type,
      private: message.private,
      sender: message.sender.type === "user"
        ? { ...message.sender, email: this.agents.find((a) => a.id === message.sender.id)?.email ?? null }
        : message.sender,
      source_id: null,
    };
    if (message.attachments.length > 0) {
      payload.attachments = message.attachments.map((a) => ({
        id: a.id,
        message_id: message.id,
        file_type: a.file_type,
        account_id: this.#options.accountId,
        extension: a.extension,
        data_url: a.data_url,
        thumb_url: a.data_url,
        file_size: a.file_size,
      }));
    }
    return payload;
  }
}

// swagger/definitions/resource/message.yml (message_type as the documented integer)
function messageResource(message: FakeMessage): Record<string, unknown> {
  return {
    id: message.id,
    content: message.content,
    conversation_id: message.conversation_id,
    message_type: MESSAGE_TYPE_NUMBER[message.message_type],
    created_at: message.created_at,
    private: message.private,
    status: message.status,
    source_id: null,
    content_type: message.content_type,
    content_attributes: message.content_attributes,
    sender_type: message.sender.type === "contact" ? "Contact" : message.sender.type === "user" ? "User" : "AgentBot",
    sender_id: message.sender.id,
    sender: message.sender,
    attachments: message.attachments.map((a) => ({ id: a.id, file_type: a.file_type, data_url: a.data_url })),
  };
}
