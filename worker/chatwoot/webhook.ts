/**
 * Chatwoot → WeChat: `POST /chatwoot/webhook`. Chatwoot signs each delivery (`X-Chatwoot-Signature:
 * sha256=<hex HMAC-SHA256 of "<X-Chatwoot-Timestamp>.<body>">` with the inbox's webhook secret);
 * unsigned, forged and stale deliveries (more than 5 minutes from now) are refused and logged.
 * An agent's reply (outgoing, not private, by an agent) is sent to the user once (a second
 * delivery of it, and the echoes of what the bridge itself wrote, are not), after the send
 * window was checked; what WeChat refused is marked failed in Chatwoot with the reason in words,
 * and a reply the window refused is replaced by a subscribe message when a fallback is configured.
 * Typing shows as typing; an agent's reply or assignment takes the conversation over, Chatwoot's
 * `pending` hands it back to the bot and `resolved` closes it.
 *
 * @module
 */
import {
  type ConversationRef,
  type ConversationStore,
  isOutOfWindow,
  isQuotaExceeded,
  MediaTooLargeError,
  type MiniProgram,
  OutOfWindowError,
  type SendWindow,
  WeChatApiError,
  WeChatNetworkError,
  WeChatTimeoutError,
} from "../../mod.ts";
// Private helpers (a documented exception, see src/internal/README.md): the one HMAC and the
// one constant-time comparison every signature check of kefu-edge uses.
import { hmacSha256Hex } from "../../src/internal/hmac.ts";
import { constantTimeEqual } from "../../src/internal/constant_time.ts";
import type { AppLogger } from "../types.ts";
import { type ChatwootClient, ChatwootError } from "./client.ts";
import { FROM_CHATWOOT } from "./mirror.ts";
import { type ChatwootSubscribeFallback, subscribeFailureReason } from "../subscribe_fallback.ts";
import type { BridgeState } from "./state.ts";

/** The header Chatwoot puts the signature in: `sha256=<hex>`. */
export const CHATWOOT_SIGNATURE_HEADER = "x-chatwoot-signature";
/** The header with the delivery's time, seconds since the epoch; it is signed with the body. */
export const CHATWOOT_TIMESTAMP_HEADER = "x-chatwoot-timestamp";
/** The header with the delivery's id, the same on Chatwoot's retries of it. */
export const CHATWOOT_DELIVERY_HEADER = "x-chatwoot-delivery";
/** Deliveries further than this from now are refused (replays of a captured delivery), in seconds. */
export const CHATWOOT_MAX_SKEW_SECONDS = 300;

/** What {@link verifyChatwootWebhook} found. */
export type ChatwootWebhookCheck =
  | { ok: true; deliveryId: string | undefined }
  | { ok: false; reason: "unsigned" | "stale_timestamp" | "bad_signature" };

/**
 * Checks a Chatwoot webhook delivery: its signature (HMAC-SHA256 of `<timestamp>.<raw body>`
 * with the webhook secret, compared in constant time) and its timestamp (within 5 minutes of
 * now).
 *
 * @param secret the webhook secret (`CHATWOOT_WEBHOOK_SECRET`)
 * @param headers the delivery's headers
 * @param body the raw body, exactly as received
 * @param nowMs the clock, ms; default `Date.now()`
 * @returns `{ ok: true, deliveryId }`, or why it is refused
 * @example
 * ```ts
 * import { verifyChatwootWebhook } from "@kefu/edge/worker";
 * const body = '{"event":"message_created"}';
 * const headers = new Headers({ "x-chatwoot-timestamp": "1700000000", "x-chatwoot-signature": "sha256=00" });
 * const check = await verifyChatwootWebhook("whsec", headers, body, 1_700_000_000_000);
 * console.log(check); // { ok: false, reason: "bad_signature" }
 * ```
 */
export async function verifyChatwootWebhook(
  secret: string,
  headers: Headers,
  body: string,
  nowMs: number = Date.now(),
): Promise<ChatwootWebhookCheck> {
  const timestamp = headers.get(CHATWOOT_TIMESTAMP_HEADER)?.trim() ?? "";
  const signature = headers.get(CHATWOOT_SIGNATURE_HEADER)?.trim() ?? "";
  if (!/^\d{1,12}$/.test(timestamp) || !/^sha256=[0-9a-fA-F]{64}$/.test(signature)) {
    return { ok: false, reason: signature === "" && timestamp === "" ? "unsigned" : "bad_signature" };
  }
  const expected = `sha256=${await hmacSha256Hex(secret, `${timestamp}.${body}`)}`;
  if (!constantTimeEqual(signature.toLowerCase(), expected)) return { ok: false, reason: "bad_signature" };
  // Checked after the signature, so the clock is only compared for deliveries Chatwoot signed.
  if (!(Math.abs(nowMs / 1000 - Number(timestamp)) <= CHATWOOT_MAX_SKEW_SECONDS)) {
    return { ok: false, reason: "stale_timestamp" };
  }
  const delivery = headers.get(CHATWOOT_DELIVERY_HEADER)?.trim();
  return {
    ok: true,
    deliveryId: delivery !== undefined && /^[A-Za-z0-9_-]{1,64}$/.test(delivery) ? delivery : undefined,
  };
}

/** What an agent's message to a user could not do, in words an agent acts on. */
const WINDOW_CLOSED = "45015: outside the 48-hour window — the user has to write first";
const WINDOW_SPENT =
  "45047: the replies allowed since the user's last message are used up — the user has to write first";

/**
 * Why a send to WeChat failed, in words for the agent who wrote the message.
 *
 * @param err what the send threw
 * @returns a short sentence, starting with WeChat's errcode when there is one
 * @example
 * ```ts
 * import { WeChatApiError } from "@kefu/edge";
 * import { failureReason } from "./webhook.ts";
 * const err = new WeChatApiError({ errcode: 45015, errmsg: "out of time limit", endpoint: "/cgi-bin/message/custom/send" });
 * console.log(failureReason(err)); // "45015: outside the 48-hour window — the user has to write first"
 * ```
 */
export function failureReason(err: unknown): string {
  if (err instanceof OutOfWindowError) return err.window?.remaining === 0 ? WINDOW_SPENT : WINDOW_CLOSED;
  if (err instanceof WeChatApiError) {
    switch (err.errcode) {
      case 45015:
        return WINDOW_CLOSED;
      case 45047:
        return WINDOW_SPENT;
      case 40003:
        return "40003: WeChat does not know this user in this mini program";
      case 40007:
        return "40007: WeChat refused the image (expired or not an image)";
      case 45002:
        return "45002: the message is too long for WeChat";
      case -1:
        return "-1: WeChat is busy — send it again in a moment";
      default:
        return `${err.errcode}: WeChat refused the message`;
    }
  }
  if (err instanceof MediaTooLargeError) return "The image is larger than WeChat takes";
  if (err instanceof WeChatTimeoutError) return "WeChat did not answer in time — the message may not have arrived";
  if (err instanceof WeChatNetworkError) return "WeChat could not be reached — send it again";
  if (err instanceof ChatwootError) return "The attachment could not be read from Chatwoot";
  return "The message could not be sent to WeChat";
}

/** What the webhook handling needs. */
export interface WebhookSettings {
  /** The API inbox (`CHATWOOT_INBOX_ID`): events of other inboxes are ignored. */
  inboxId: number;
  /** The mini program the users belong to. */
  appId: string;
  client: ChatwootClient;
  conversations: ConversationStore;
  state: BridgeState;
  /** The mini program to send with (needs `WECHAT_SECRET`). */
  miniProgram: MiniProgram;
  /** The largest attachment sent on to WeChat, in bytes. */
  maxMediaBytes: number;
  /** Clock, ms. */
  now(): number;
  /** Whether typing may be shown to the user now (the isolate's throttle). */
  typingAllowed(openId: string, on: boolean): boolean;
  /** The subscribe message sent instead of a reply the send window refused; none when `undefined`. */
  subscribeFallback?: ChatwootSubscribeFallback | undefined;
  logger: AppLogger;
}

/** What was done with a webhook, for the answer and the tests; never content. */
export type WebhookOutcome =
  | "sent"
  | "failed"
  | "typing"
  | "handoff"
  | `ignored:${string}`;

type Payload = Record<string, unknown>;

/**
 * Handles one verified webhook payload.
 *
 * @param payload the delivery's JSON
 * @param deliveryId Chatwoot's delivery id, when it sent one
 * @param settings the bridge's parts
 * @returns what was done
 */
export async function handleWebhook(
  payload: Payload,
  deliveryId: string | undefined,
  settings: WebhookSettings,
): Promise<WebhookOutcome> {
  const event = typeof payload.event === "string" ? payload.event : "";
  if (deliveryId !== undefined && !await settings.state.claim("delivery", deliveryId)) return "ignored:duplicate";
  try {
    const outcome = await dispatch(event, payload, settings);
    if (deliveryId !== undefined) await settings.state.finish("delivery", deliveryId);
    return outcome;
  } catch (err) {
    if (deliveryId !== undefined) await settings.state.release("delivery", deliveryId).catch(() => {});
    throw err;
  }
}

async function dispatch(event: string, payload: Payload, settings: WebhookSettings): Promise<WebhookOutcome> {
  switch (event) {
    case "message_created":
      return await agentMessage(payload, settings);
    case "conversation_typing_on":
    case "conversation_typing_off":
      return await typing(payload, event === "conversation_typing_on", settings);
    case "conversation_status_changed":
    case "conversation_updated":
      return await conversationChanged(payload, event, settings);
    default:
      return "ignored:event";
  }
}

/** The user of a Chatwoot conversation of the bridge's inbox, or `undefined`. */
async function userOf(conversation: unknown, settings: WebhookSettings): Promise<ConversationRef | undefined> {
  if (typeof conversation !== "object" || conversation === null) return undefined;
  const fields = conversation as { id?: unknown; inbox_id?: unknown; contact_inbox?: { source_id?: unknown } | null };
  if (fields.inbox_id !== settings.inboxId || typeof fields.id !== "number") return undefined;
  const linked = await settings.state.conversationUser(fields.id);
  const sourceId = fields.contact_inbox?.source_id;
  const openId = linked ?? (typeof sourceId === "string" ? sourceId : undefined);
  return openId !== undefined && /^[A-Za-z0-9_-]{1,64}$/.test(openId) ? { appId: settings.appId, openId } : undefined;
}

/** An agent's name as kefu-edge records it (`agent:<name>`: 1–64 characters, no control characters). */
function agentOf(sender: unknown): `agent:${string}` {
  const fields = (typeof sender === "object" && sender !== null ? sender : {}) as { id?: unknown; name?: unknown };
  // deno-lint-ignore no-control-regex
  const name = typeof fields.name === "string" ? fields.name.replace(/[\x00-\x1f\x7f]/g, "").trim().slice(0, 64) : "";
  return `agent:${name !== "" ? name : `chatwoot-${String(fields.id ?? "agent")}`.slice(0, 64)}`;
}

function windowProblem(window: SendWindow | undefined, now: number): string | undefined {
  if (window === undefined || window.expiresAt <= now) return WINDOW_CLOSED;
  if (window.remaining <= 0) return WINDOW_SPENT;
  return undefined;
}

async function agentMessage(payload: Payload, settings: WebhookSettings): Promise<WebhookOutcome> {
  if (payload.private === true) return "ignored:private";
  if (payload.message_type !== "outgoing") return "ignored:not_outgoing";
  const attributes = payload.content_attributes as Record<string, unknown> | null | undefined;
  if (attributes?.kefu_edge_sender !== undefined) return "ignored:echo";
  const sender = payload.sender as { type?: unknown } | null | undefined;
  if (sender?.type !== "user") return "ignored:not_an_agent"; // an agent bot's, or the contact's
  const messageId = payload.id;
  const conversation = payload.conversation as { id?: unknown } | undefined;
  if (typeof messageId !== "number" || typeof conversation?.id !== "number") return "ignored:malformed";
  if (await settings.state.created(messageId)) return "ignored:echo";
  const ref = await userOf(conversation, settings);
  if (ref === undefined) return "ignored:unknown_conversation";
  // One send per Chatwoot message, however many deliveries (an inbox and an account webhook both).
  if (!await settings.state.claim("message", messageId)) return "ignored:duplicate";
  try {
    const outcome = await sendToUser(ref, payload, conversation.id, messageId, settings);
    await settings.state.finish("message", messageId);
    return outcome;
  } catch (err) {
    await settings.state.release("message", messageId).catch(() => {});
    throw err;
  }
}

async function sendToUser(
  ref: ConversationRef,
  payload: Payload,
  conversationId: number,
  messageId: number,
  settings: WebhookSettings,
): Promise<WebhookOutcome> {
  const by = agentOf(payload.sender);
  const { conversations, miniProgram } = settings;
  // The agent answers now: the bot stops (an agent who holds it already keeps it). A user
  // kefu-edge never met gets no conversation from this: there is nothing to hand over.
  if (await conversations.handoff(ref) !== null) {
    await conversations.setHandoff(ref, {
      state: "human",
      by,
      reason: `${FROM_CHATWOOT}${by.slice("agent:".length)} replied`,
      from: ["bot", "waiting", "closed"],
    });
  }
  const content = typeof payload.content === "string" ? payload.content.trim() : "";
  const attachments = Array.isArray(payload.attachments) ? payload.attachments as Payload[] : [];
  const text = content !== "" || attachments.length === 0 ? content : "[图片]";
  const closed = windowProblem(await conversations.window(ref), settings.now());
  if (closed !== undefined) {
    const reason = await subscribeInstead(closed, ref.openId, by, text, messageId, settings);
    return await markFailed(conversationId, messageId, reason, settings);
  }
  const options = { sender: by, checkWindow: true } as const;
  const problems: string[] = [];
  let delivered = 0;
  try {
    if (content !== "") {
      await miniProgram.customerServiceMessage.sendText(ref.openId, content, options);
      delivered++;
    }
    for (const attachment of attachments) {
      if (attachment.file_type !== "image" || typeof attachment.data_url !== "string") {
        problems.push(
          `Only text and images reach WeChat users: a ${String(attachment.file_type ?? "file")} was not sent`,
        );
        continue;
      }
      const bytes = await settings.client.download(attachment.data_url, settings.maxMediaBytes);
      const extension = typeof attachment.extension === "string" && /^[a-z0-9]{1,8}$/i.test(attachment.extension)
        ? attachment.extension
        : "jpg";
      const media = await miniProgram.customerServiceMessage.uploadTempMedia("image", bytes, {
        filename: `image.${extension}`,
      });
      await miniProgram.customerServiceMessage.send(ref.openId, "image", { media_id: media.media_id }, options);
      delivered++;
    }
  } catch (err) {
    // Whatever came after the failure was not sent either: the message is marked failed.
    settings.logger.warn(JSON.stringify({
      event: "kefu-edge.chatwoot_send_failed",
      messageId,
      error: err instanceof Error ? err.name : typeof err,
      errcode: err instanceof WeChatApiError ? err.errcode : undefined,
    }));
    const reason = failureReason(err);
    // WeChat (or the SDK's own check) refused for the window before any of the reply went out:
    // the subscribe fallback. A reply the user got part of spends no subscription on it.
    const window = err instanceof OutOfWindowError || isOutOfWindow(err) || isQuotaExceeded(err);
    problems.unshift(
      window && delivered === 0 ? await subscribeInstead(reason, ref.openId, by, text, messageId, settings) : reason,
    );
  }
  if (problems.length > 0) return await markFailed(conversationId, messageId, problems.join("; "), settings);
  return "sent";
}

/**
 * The send window refused an agent's reply: with a fallback configured, the subscribe message is
 * sent instead. Never throws; returns `reason` with what became of the subscribe message.
 */
async function subscribeInstead(
  reason: string,
  openId: string,
  by: `agent:${string}`,
  text: string,
  messageId: number,
  settings: WebhookSettings,
): Promise<string> {
  const build = settings.subscribeFallback;
  if (build === undefined) return reason;
  const log = (fields: Record<string, unknown>) =>
    settings.logger.warn(JSON.stringify({ event: "kefu-edge.chatwoot_subscribe_fallback", messageId, ...fields }));
  try {
    const message = build(openId, text);
    if (message === undefined) return reason;
    await settings.miniProgram.subscribeMessage.send(openId, message, { sender: by });
  } catch (err) {
    log({
      sent: false,
      error: err instanceof Error ? err.name : typeof err,
      errcode: err instanceof WeChatApiError ? err.errcode : undefined,
    });
    return `${reason}; the subscribe message failed too: ${subscribeFailureReason(err, failureReason)}`;
  }
  log({ sent: true });
  return `${reason}; a subscribe message was sent instead`;
}

async function markFailed(
  conversationId: number,
  messageId: number,
  reason: string,
  settings: WebhookSettings,
): Promise<WebhookOutcome> {
  try {
    await settings.client.updateMessageStatus(conversationId, messageId, { status: "failed", external_error: reason });
  } catch (err) {
    settings.logger.warn(JSON.stringify({
      event: "kefu-edge.chatwoot_mark_failed_failed",
      messageId,
      error: err instanceof Error ? err.message : typeof err,
    }));
  }
  return "failed";
}

async function typing(payload: Payload, on: boolean, settings: WebhookSettings): Promise<WebhookOutcome> {
  const user = payload.user as { type?: unknown } | undefined;
  if (payload.is_private === true || user?.type !== "user") return "ignored:not_an_agent";
  const ref = await userOf(payload.conversation, settings);
  if (ref === undefined) return "ignored:unknown_conversation";
  if (!settings.typingAllowed(ref.openId, on)) return "ignored:throttled";
  if (windowProblem(await settings.conversations.window(ref), settings.now()) !== undefined) {
    return "ignored:window_closed";
  }
  try {
    await settings.miniProgram.customerServiceMessage.setTyping(ref.openId, on ? "Typing" : "CancelTyping", {
      sender: agentOf(payload.user),
    });
  } catch (err) {
    // Typing is a courtesy: a refusal (45072...) is logged and changes nothing.
    settings.logger.warn(JSON.stringify({
      event: "kefu-edge.chatwoot_typing_failed",
      error: err instanceof Error ? err.name : typeof err,
      errcode: err instanceof WeChatApiError ? err.errcode : undefined,
    }));
  }
  return "typing";
}

/** Names of the attributes a `conversation_updated` or `conversation_status_changed` changed. */
function changedNames(changed: unknown): Set<string> {
  const names = new Set<string>();
  const items = Array.isArray(changed) ? changed : typeof changed === "object" && changed !== null ? [changed] : [];
  for (const item of items) {
    if (typeof item === "object" && item !== null) { for (const key of Object.keys(item)) names.add(key); }
  }
  return names;
}

async function conversationChanged(
  payload: Payload,
  event: string,
  settings: WebhookSettings,
): Promise<WebhookOutcome> {
  const ref = await userOf(payload, settings);
  if (ref === undefined) return "ignored:unknown_conversation";
  const changed = changedNames(payload.changed_attributes);
  const meta = payload.meta as { assignee?: { name?: unknown; id?: unknown; type?: unknown } | null } | undefined;
  const assignee = meta?.assignee ?? undefined;
  const by = assignee === undefined || assignee === null ? "api" as const : agentOf(assignee);
  let acted = false;
  if (event === "conversation_status_changed" || changed.has("status")) {
    const status = payload.status;
    if (status === "pending" || status === "resolved") {
      const state = status === "pending" ? "bot" : "closed";
      await settings.conversations.setHandoff(ref, { state, by, reason: `${FROM_CHATWOOT}conversation ${status}` });
      if (status === "resolved") await resolved(ref.openId, payload.id, settings);
      acted = true;
    }
  }
  // Assigned to a person (an agent bot's assignment is not a takeover).
  const person = assignee !== undefined && assignee !== null && (assignee.type ?? "user") === "user";
  if (changed.has("assignee_id") && person && by !== "api") {
    const name = by.slice("agent:".length);
    await settings.conversations.setHandoff(ref, { state: "human", by, reason: `${FROM_CHATWOOT}assigned to ${name}` });
    acted = true;
  }
  return acted ? "handoff" : "ignored:no_change";
}

/** Remembers that the user's conversation was resolved: their next message opens a new one. */
async function resolved(openId: string, conversationId: unknown, settings: WebhookSettings): Promise<void> {
  const link = await settings.state.link(openId);
  if (link === null || link.conversationId !== conversationId) return;
  await settings.state.saveLink(openId, { ...link, resolved: true }, link);
}
