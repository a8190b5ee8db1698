// @ts-check
// The agent inbox: plain browser JavaScript, no build step. It talks only to /inbox/api and the
// live socket /inbox/live. Every element is built with `textContent`, never as HTML, so what a
// user wrote shows as text; the page's policy allows only its own scripts, styles and requests.

/**
 * @typedef {{ kind: "message" | "session", remaining: number, expiresAt: number }} SendWindow
 * @typedef {{ state: string, since: number, agent?: string, reason?: string }} Handoff
 * @typedef {{ seq: number, at: number, sender: string, msgType?: string, text: string }} Preview
 * @typedef {{ openId: string, lastMessage: Preview | null, unread: number, window: SendWindow | null,
 *   handoff: Handoff, lastActivityAt: number }} Summary
 * @typedef {{ seq: number, at: number, sender: string, type: string, msgType?: string, text?: string,
 *   mediaId?: string, mediaExpiresAt?: number, mediaKey?: string, title?: string, pagePath?: string,
 *   url?: string, outcome?: "ok" | "unknown" | number, from?: string, to?: string, agent?: string,
 *   reason?: string }} Entry
 * @typedef {{ agent: string, via: "access" | "password", csrfToken: string, expiresAt: number | null,
 *   subscribeFallback: boolean, appId: string }} Session
 * @typedef {{ status: number, body: any }} Result
 */

/** The most UTF-8 bytes of one text message; longer texts go as several. */
const MAX_TEXT_BYTES = 2048;
/** Messages a window allows, by what opened it (see src/customer_service/send_window.ts). */
const WINDOW_LIMITS = { message: 5, session: 2 };
/** WeChat's media_id lives 3 days. */
const MEDIA_ID_LIFE_MS = 3 * 24 * 3600 * 1000;
/** At most one "Typing" per user this often. */
const TYPING_EVERY_MS = 15_000;
const PAGE_SIZE = 50;
const LIST_SIZE = 50;
const MAX_BACKOFF_MS = 15_000;
const PING_EVERY_MS = 30_000;
const CLOSED_TEXT = "closed — a subscribe message still reaches users who accepted its template";

/** Plain-language hints for WeChat's refusals. */
const ERRCODE_HINTS = /** @type {Record<number, string>} */ ({
  45015: "the user last wrote more than 48 hours ago",
  45047: "the replies allowed since the user's last message are used up",
  40003: "not a user of this mini program (openid)",
  43101: "the user has not accepted this subscribe template",
});

const state = {
  /** @type {Session | null} */
  session: null,
  filter: "all",
  /** @type {Summary[]} */
  list: [],
  /** @type {string | null} */
  nextCursor: null,
  /** @type {string | null} */
  current: null,
  /** @type {Map<number, Entry>} */
  entries: new Map(),
  /** @type {Map<number, HTMLLIElement>} */
  items: new Map(),
  /** The `before` of the next older page; `null` once the first entry is shown. */
  /** @type {number | null} */
  nextBefore: null,
  /** The highest seq shown. */
  lastSeq: 0,
  /** @type {Handoff | null} */
  handoff: null,
  /** @type {SendWindow | null} */
  window: null,
  lastTypingAt: 0,
  loadingEarlier: false,
  /** Requests for the open conversation's newest entries, run one at a time. */
  /** @type {Promise<void>} */
  newest: Promise.resolve(),
  /** @type {WebSocket | null} */
  socket: null,
  attempts: 0,
  dropped: false,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  listTimer: undefined,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  partsTimer: undefined,
  leaving: false,
};

/**
 * @param {string} id
 * @returns {any}
 */
function $(id) {
  const node = document.getElementById(id);
  if (node === null) throw new Error("The page has no #" + id);
  return node;
}

/**
 * @param {string} tag
 * @param {string} className
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElement}
 */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** @param {string} openId */
function userPath(openId) {
  return "/inbox/api/users/" + encodeURIComponent(openId);
}

/** Signed out or expired: the login page (password), or a link to sign in again. */
function sessionExpired() {
  if (state.leaving) return;
  state.leaving = true;
  state.socket?.close();
  if (state.session === null || state.session.via === "password") {
    location.assign("/inbox/login");
    return;
  }
  const notice = $("notice");
  notice.replaceChildren("Your sign-in has expired. ", linkTo("/inbox/", "Sign in again"));
  notice.hidden = false;
}

/**
 * @param {string} href
 * @param {string} text
 */
function linkTo(href, text) {
  const a = /** @type {HTMLAnchorElement} */ (el("a", "", text));
  a.href = href;
  return a;
}

/**
 * Calls the inbox API. Writes carry the session's CSRF token; a 401 ends the session.
 *
 * @param {string} path
 * @param {{ method?: string, json?: unknown, form?: FormData }} [options]
 * @returns {Promise<Result>}
 */
async function api(path, options = {}) {
  const method = options.method ?? "GET";
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (method !== "GET" && state.session !== null) headers["x-csrf-token"] = state.session.csrfToken;
  /** @type {BodyInit | undefined} */
  let body;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) body = options.form;
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (response.status === 401) {
    sessionExpired();
    throw new Error("signed out");
  }
  const type = response.headers.get("content-type") || "";
  const parsed = type.includes("json") ? await response.json() : await response.text();
  return { status: response.status, body: parsed };
}

/** @param {Result} result */
function errorText(result) {
  const error = result.body && result.body.error;
  if (!error) return "HTTP " + result.status;
  if (typeof error.errcode === "number") return refusal(error.errcode);
  return String(error.message);
}

/** @param {number} errcode */
function refusal(errcode) {
  const hint = ERRCODE_HINTS[errcode];
  return hint === undefined ? "WeChat refused it (errcode " + errcode + ")" : hint + " (errcode " + errcode + ")";
}

/**
 * @param {string} text
 * @param {boolean} [isError]
 */
function setStatus(text, isError) {
  const status = $("chat-status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

// ---- time and window ----

/** @param {number} ms */
function stamp(ms) {
  const date = new Date(ms);
  const today = date.toDateString() === new Date().toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })
    : date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false });
}

/** @param {number} ms */
function timeLeft(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min";
  return Math.floor(seconds / 3600) + " h";
}

/**
 * Whether a reply can go out now, as far as the page knows: `open`, `used` (none left) or `closed`.
 *
 * @param {SendWindow | null} w
 */
function windowState(w) {
  if (w === null || w.expiresAt <= Date.now()) return "closed";
  return w.remaining > 0 ? "open" : "used";
}

/** @param {SendWindow | null} w */
function windowText(w) {
  if (w === null || windowState(w) === "closed") return CLOSED_TEXT;
  return w.remaining + " of " + WINDOW_LIMITS[w.kind] + " left · " + timeLeft(w.expiresAt - Date.now());
}

/** @param {SendWindow | null} w */
function windowBadge(w) {
  const badge = el("span", "badge window " + windowState(w), windowText(w));
  badge.title = w === null
    ? "No reply window is open"
    : "Replies allowed until " + new Date(w.expiresAt).toLocaleString();
  return badge;
}

/** @param {string} sender */
function who(sender) {
  if (sender === "user") return "User";
  if (sender === "bot") return "Bot";
  if (sender === "api") return "API";
  if (sender === "system") return "kefu-edge";
  return sender.startsWith("agent:") ? sender.slice("agent:".length) : sender;
}

// ---- the list ----

/** @param {Summary[]} list */
function ordered(list) {
  // Waiting conversations first; otherwise the server's order (most recent activity first).
  const waiting = list.filter((c) => c.handoff.state === "waiting");
  return [...waiting, ...list.filter((c) => c.handoff.state !== "waiting")];
}

function renderList() {
  const ul = $("conversations");
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.openId : undefined;
  ul.replaceChildren(...ordered(state.list).map(listItem));
  if (focused !== undefined) {
    for (const button of ul.querySelectorAll("button")) if (button.dataset.openId === focused) button.focus();
  }
  $("list-status").textContent = state.list.length === 0 ? "No conversations here yet." : "";
  $("more").hidden = state.nextCursor === null;
}

/** @param {Summary} c */
function listItem(c) {
  const button = /** @type {HTMLButtonElement} */ (el("button", "conv"));
  button.type = "button";
  button.dataset.openId = c.openId;
  if (c.openId === state.current) button.setAttribute("aria-current", "true");
  const head = el(
    "span",
    "conv-head",
    el("span", "openid", c.openId),
    el("span", "badge state " + c.handoff.state, stateLabel(c.handoff)),
    c.unread > 0 ? el("span", "badge unread", String(c.unread)) : null,
  );
  const last = c.lastMessage;
  const preview = el(
    "span",
    "preview",
    last === null ? "No messages yet" : (last.sender === "user" ? "" : who(last.sender) + ": ") + last.text,
  );
  const foot = el("span", "conv-foot", windowBadge(c.window), el("time", "muted", stamp(c.lastActivityAt)));
  button.append(head, preview, foot);
  button.addEventListener("click", () => void openConversation(c.openId));
  const li = el("li", c.handoff.state === "waiting" ? "waiting" : "", button);
  li.dataset.state = c.handoff.state;
  return li;
}

/** @param {Handoff} h */
function stateLabel(h) {
  return h.state === "human" && h.agent ? "human · " + h.agent : h.state;
}

/** Reads the first page of the list again (after a change), keeping the filter. */
async function refreshList() {
  const result = await api("/inbox/api/conversations?state=" + state.filter + "&limit=" + LIST_SIZE);
  if (result.status !== 200) {
    $("list-status").textContent = "The list could not be read: " + errorText(result);
    return;
  }
  // Pages already loaded beyond the first stay, without the conversations the first page now has.
  const fresh = /** @type {Summary[]} */ (result.body.conversations);
  const seen = new Set(fresh.map((c) => c.openId));
  const rest = state.nextCursor === null && state.list.length <= LIST_SIZE
    ? []
    : state.list.slice(LIST_SIZE).filter((c) => !seen.has(c.openId));
  state.list = [...fresh, ...rest];
  if (rest.length === 0) state.nextCursor = result.body.nextCursor;
  renderList();
}

function scheduleListRefresh() {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(() => void refreshList().catch(() => {}), 150);
}

async function loadMore() {
  if (state.nextCursor === null) return;
  const result = await api(
    "/inbox/api/conversations?state=" + state.filter + "&limit=" + LIST_SIZE + "&cursor=" +
      encodeURIComponent(state.nextCursor),
  );
  if (result.status !== 200) {
    $("list-status").textContent = "More could not be read: " + errorText(result);
    return;
  }
  const seen = new Set(state.list.map((c) => c.openId));
  state.list.push(.../** @type {Summary[]} */ (result.body.conversations).filter((c) => !seen.has(c.openId)));
  state.nextCursor = result.body.nextCursor;
  renderList();
}

/** @param {string} filter */
function setFilter(filter) {
  state.filter = filter;
  state.nextCursor = null;
  state.list = [];
  for (const button of $("filters").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.filter === filter));
  }
  void refreshList();
}

// ---- the conversation ----

/** @param {string} openId */
async function openConversation(openId) {
  state.current = openId;
  state.entries = new Map();
  state.items = new Map();
  state.nextBefore = null;
  state.lastSeq = 0;
  state.handoff = null;
  state.window = null;
  state.lastTypingAt = 0;
  $("entries").replaceChildren();
  $("chat-title").textContent = openId;
  $("layout").classList.add("open");
  for (const id of ["history", "handoff", "composer"]) $(id).hidden = false;
  setStatus("");
  renderList();
  history.replaceState(null, "", "#user=" + encodeURIComponent(openId));
  await Promise.all([fetchNewest(true), refreshMeta()]);
  $("back").focus({ preventScroll: true });
}

function closeConversation() {
  $("layout").classList.remove("open");
  const button = [...$("conversations").querySelectorAll("button")].find((b) => b.dataset.openId === state.current);
  if (button) button.focus();
}

/** The open conversation's handoff and window. */
async function refreshMeta() {
  const openId = state.current;
  if (openId === null) return;
  const [handoff, win] = await Promise.all([api(userPath(openId) + "/handoff"), api(userPath(openId) + "/window")]);
  if (openId !== state.current) return;
  if (handoff.status === 200) state.handoff = handoff.body.handoff ?? handoff.body;
  if (win.status === 200) state.window = win.body.window ?? null;
  renderMeta();
}

function renderMeta() {
  const h = state.handoff;
  const badge = $("chat-state");
  badge.hidden = h === null;
  if (h !== null) {
    badge.textContent = stateLabel(h);
    badge.className = "badge state " + h.state;
  }
  const win = $("chat-window");
  win.hidden = false;
  win.replaceWith(Object.assign(windowBadge(state.window), { id: "chat-window" }));
  const me = state.session === null ? "" : state.session.agent;
  $("take").disabled = h !== null && h.state === "human" && h.agent === me;
  $("give-back").disabled = h !== null && h.state === "bot";
  $("close").disabled = h !== null && h.state === "closed";
  renderComposer();
}

/** The reply box: usable only while the window is open. */
function renderComposer() {
  const open = windowState(state.window);
  const note = $("window-note");
  note.hidden = open === "open";
  note.textContent = open === "used"
    ? "No replies left: " + ERRCODE_HINTS[45047] + ". The user's next message opens the window again."
    : "The reply window is closed: the user has not written in the last 48 hours. Replies are refused until they write again.";
  for (const id of ["reply-text", "send", "image-file", "card-title", "card-path", "card-thumb"]) {
    $(id).disabled = open !== "open";
  }
  for (const button of $("card").querySelectorAll("button")) button.disabled = open !== "open";
  $("subscribe").hidden = open === "open" || state.session === null || !state.session.subscribeFallback;
}

/**
 * Reads the newest entries, paging back until the last entry shown: nothing missed, nothing twice.
 *
 * @param {boolean} [first] the first page of a conversation just opened
 */
function fetchNewest(first = false) {
  state.newest = state.newest.then(() => readNewest(first)).catch(() => {});
  return state.newest;
}

/** @param {boolean} first */
async function readNewest(first) {
  const openId = state.current;
  if (openId === null) return;
  const known = state.lastSeq;
  /** @type {number | null} */
  let before = null;
  for (;;) {
    const query = "?limit=" + PAGE_SIZE + (before === null ? "" : "&before=" + before);
    const result = await api(userPath(openId) + "/messages" + query);
    if (openId !== state.current) return;
    if (result.status === 404) {
      setStatus("This conversation no longer exists (deleted).", true);
      return;
    }
    if (result.status !== 200) {
      setStatus("The history could not be read: " + errorText(result), true);
      return;
    }
    const entries = /** @type {Entry[]} */ (result.body.entries);
    const next = nextBeforeOf(result.body);
    merge(entries);
    if (first) {
      state.nextBefore = next;
      $("earlier").hidden = next === null;
      return;
    }
    const oldest = entries.length === 0 ? 0 : Math.min(...entries.map((e) => e.seq));
    if (next === null || oldest <= known + 1) return;
    before = next;
  }
}

/** @param {any} body */
function nextBeforeOf(body) {
  const next = body.nextBefore !== undefined ? body.nextBefore : body.before;
  return typeof next === "number" ? next : null;
}

async function loadEarlier() {
  const openId = state.current;
  if (openId === null || state.nextBefore === null || state.loadingEarlier) return;
  state.loadingEarlier = true;
  try {
    const result = await api(userPath(openId) + "/messages?limit=" + PAGE_SIZE + "&before=" + state.nextBefore);
    if (openId !== state.current) return;
    if (result.status !== 200) {
      setStatus("Earlier messages could not be read: " + errorText(result), true);
      return;
    }
    const box = $("history");
    const fromBottom = box.scrollHeight - box.scrollTop;
    merge(result.body.entries);
    box.scrollTop = box.scrollHeight - fromBottom;
    state.nextBefore = nextBeforeOf(result.body);
    $("earlier").hidden = state.nextBefore === null;
  } finally {
    state.loadingEarlier = false;
  }
}

/**
 * Adds entries to the conversation by `seq` (an entry already shown is replaced, never repeated).
 *
 * @param {Entry[]} entries
 */
function merge(entries) {
  const box = $("history");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const list = $("entries");
  let grew = false;
  for (const entry of entries) {
    const had = state.entries.get(entry.seq);
    if (had !== undefined && JSON.stringify(had) === JSON.stringify(entry)) continue;
    state.entries.set(entry.seq, entry);
    const item = renderEntry(entry);
    const old = state.items.get(entry.seq);
    if (old !== undefined) old.replaceWith(item);
    else {
      const after = [...state.items.keys()].filter((seq) => seq > entry.seq).sort((a, b) => a - b)[0];
      list.insertBefore(item, after === undefined ? null : state.items.get(after) ?? null);
    }
    state.items.set(entry.seq, item);
    if (entry.seq > state.lastSeq) {
      state.lastSeq = entry.seq;
      grew = true;
    }
  }
  if (grew && atEnd) box.scrollTop = box.scrollHeight;
}

/** @param {Entry} e */
function mediaAlive(e) {
  if (e.mediaKey) return true;
  const expires = e.mediaExpiresAt ?? e.at + MEDIA_ID_LIFE_MS;
  return e.mediaId !== undefined && expires > Date.now();
}

/**
 * @param {Entry} e
 * @param {string} alt
 */
function mediaOf(e, alt) {
  if (!mediaAlive(e) || e.mediaId === undefined) return el("span", "expired", "image expired");
  const img = /** @type {HTMLImageElement} */ (el("img", ""));
  img.alt = alt;
  img.loading = "lazy";
  img.src = "/inbox/api/media/" + encodeURIComponent(e.mediaId);
  img.addEventListener("error", () => img.replaceWith(el("span", "expired", "image unavailable")));
  return img;
}

/** @param {string} url */
function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** @param {Entry} e */
function messageBody(e) {
  switch (e.msgType) {
    case "text":
      return el("p", "text", e.text ?? "");
    case "image":
      return mediaOf(e, "Image");
    case "miniprogrampage":
      return el(
        "div",
        "card",
        el("strong", "", e.title ?? "Mini program card"),
        el("span", "path", e.pagePath ?? ""),
        e.mediaId === undefined ? null : mediaOf(e, "Card thumbnail"),
      );
    case "link": {
      const href = safeUrl(e.url ?? "");
      const title = e.title ?? e.url ?? "Link";
      let head;
      if (href === null) head = el("strong", "", title);
      else {
        head = linkTo(href, title);
        head.target = "_blank";
        head.rel = "noopener noreferrer";
      }
      return el("div", "card link", head, e.text ? el("span", "", e.text) : null);
    }
    default:
      return el("p", "text muted", "[" + (e.msgType ?? "message") + "]");
  }
}

/** @param {Entry} e */
function outcomeLine(e) {
  if (typeof e.outcome === "number") return el("p", "outcome failed", "Not delivered: " + refusal(e.outcome));
  if (e.outcome === "unknown") return el("p", "outcome unknown", "Maybe not delivered: WeChat did not answer");
  return null;
}

/** @param {Entry} e */
function eventText(e) {
  switch (e.msgType) {
    case "user_enter_tempsession":
      return "The user entered the session";
    case "subscribe_msg_popup_event":
      return "The user answered a subscribe popup";
    case "subscribe_msg_change_event":
      return "The user changed a subscription";
    case "subscribe_msg_sent_event":
      return "A subscribe message was delivered";
    default:
      return "Event: " + (e.msgType ?? "unknown");
  }
}

/** @param {Entry} e */
function handoffText(e) {
  const by = e.agent ?? (e.sender.startsWith("agent:") ? who(e.sender) : null);
  const reason = e.reason ? " (" + e.reason + ")" : "";
  switch (e.to) {
    case "human":
      return (by ?? "A person") + " took over" + reason;
    case "bot":
      return (by === null ? "Handed back to the bot" : by + " handed back to the bot") + reason;
    case "waiting":
      return "Waiting for a person" + reason;
    case "closed":
      return (by === null ? "Closed" : by + " closed it") + reason;
    default:
      return "Handoff: " + (e.to ?? "?") + reason;
  }
}

/** @param {Entry} e */
function renderEntry(e) {
  const time = el("time", "muted", stamp(e.at));
  time.setAttribute("datetime", new Date(e.at).toISOString());
  let item;
  if (e.type === "message") {
    const mine = e.sender === "user" ? "user" : "out";
    const failed = typeof e.outcome === "number" ? " failed" : "";
    item = el(
      "li",
      "msg " + mine + failed + " " + (e.msgType ?? ""),
      el("span", "who", who(e.sender), " · ", time),
      messageBody(e),
      outcomeLine(e),
    );
  } else if (e.type === "event") item = el("li", "line event", eventText(e), " · ", time);
  else if (e.type === "handoff") item = el("li", "line handoff", handoffText(e), " · ", time);
  else if (e.type === "typing") {
    item = el("li", "line typing", who(e.sender) + (e.msgType === "CancelTyping" ? " stopped typing" : " is typing…"));
  } else if (e.type === "subscribe") {
    item = el(
      "li",
      "msg out subscribe" + (typeof e.outcome === "number" ? " failed" : ""),
      el("span", "who", who(e.sender), " · subscribe message · ", time),
      el("p", "text", e.text ?? e.title ?? ""),
      outcomeLine(e),
    );
  } else item = el("li", "line", e.type, " · ", time);
  const li = /** @type {HTMLLIElement} */ (item);
  li.dataset.seq = String(e.seq);
  return li;
}

// ---- writing ----

/** Refuses a send the window does not allow, before any call; says why. */
function windowAllows() {
  if (windowState(state.window) === "open") return true;
  renderComposer();
  setStatus("Not sent: " + $("window-note").textContent, true);
  return false;
}

/**
 * @param {Record<string, unknown>} message `msgtype` and its payload
 * @param {string} what
 */
async function send(message, what) {
  const openId = state.current;
  if (openId === null || !windowAllows()) return false;
  setStatus("Sending " + what + "…");
  const result = await api("/inbox/api/messages", { method: "POST", json: { touser: openId, ...message } });
  const ok = result.status === 200;
  setStatus(ok ? what[0].toUpperCase() + what.slice(1) + " sent." : "Not sent: " + errorText(result), !ok);
  void Promise.all([fetchNewest(), refreshMeta()]);
  return ok;
}

async function sendText() {
  const box = $("reply-text");
  const content = box.value;
  if (!windowAllows() || content.trim() === "") return;
  // Emptied once sent, unless the agent has started the next one meanwhile.
  if (await send({ msgtype: "text", text: { content } }, "reply") && box.value === content) {
    box.value = "";
    updateCounter();
  }
}

/** @param {File} file */
async function upload(file) {
  const form = new FormData();
  form.append("media", file);
  form.append("type", "image");
  const result = await api("/inbox/api/media", { method: "POST", form });
  if (result.status !== 200) throw new Error("the upload failed: " + errorText(result));
  return String(result.body.media_id);
}

/** @param {File} file */
async function sendImage(file) {
  if (!windowAllows()) return;
  setStatus("Uploading the image…");
  try {
    await send({ msgtype: "image", image: { media_id: await upload(file) } }, "image");
  } catch (err) {
    setStatus("Not sent: " + (err instanceof Error ? err.message : String(err)), true);
  }
}

async function sendCard() {
  const file = $("card-thumb").files?.[0];
  if (!file || !windowAllows()) return;
  setStatus("Uploading the thumbnail…");
  try {
    const sent = await send({
      msgtype: "miniprogrampage",
      miniprogrampage: {
        title: $("card-title").value,
        pagepath: $("card-path").value,
        thumb_media_id: await upload(file),
      },
    }, "card");
    if (sent) $("card").reset();
  } catch (err) {
    setStatus("Not sent: " + (err instanceof Error ? err.message : String(err)), true);
  }
}

async function sendSubscribe() {
  const openId = state.current;
  if (openId === null) return;
  const text = $("subscribe-text").value;
  const result = await api(userPath(openId) + "/subscribe", { method: "POST", json: { text } });
  const ok = result.status === 200;
  setStatus(ok ? "Subscribe message sent." : "Subscribe message not sent: " + errorText(result), !ok);
  if (ok) $("subscribe-text").value = "";
  await fetchNewest();
}

/** @param {"human" | "bot" | "closed"} to */
async function changeHandoff(to) {
  const openId = state.current;
  if (openId === null) return;
  const result = await api(userPath(openId) + "/handoff", { method: "PUT", json: { state: to } });
  if (result.status === 409) {
    await refreshMeta();
    const holder = state.handoff && state.handoff.agent ? state.handoff.agent : "Another agent";
    setStatus(holder + " has it.", true);
    return;
  }
  if (result.status !== 200) setStatus("Not changed: " + errorText(result), true);
  else {
    setStatus(
      to === "human" ? "You have it: the bot stays quiet." : to === "bot" ? "The bot answers again." : "Closed.",
    );
  }
  await Promise.all([refreshMeta(), fetchNewest()]);
  scheduleListRefresh();
}

function updateCounter() {
  const content = $("reply-text").value;
  const bytes = new TextEncoder().encode(content).length;
  const counter = $("bytes");
  counter.textContent = bytes + " / " + MAX_TEXT_BYTES + " bytes";
  counter.classList.toggle("over", bytes > MAX_TEXT_BYTES);
  clearTimeout(state.partsTimer);
  if (bytes <= MAX_TEXT_BYTES) {
    $("parts").textContent = "";
    $("part-list").hidden = true;
    return;
  }
  state.partsTimer = setTimeout(() => void showParts(content), 400);
}

/** @param {string} content */
async function showParts(content) {
  const result = await api("/inbox/api/text-parts", { method: "POST", json: { content } });
  if (content !== $("reply-text").value) return;
  if (result.status !== 200) {
    $("parts").textContent = "Parts unknown: " + errorText(result);
    return;
  }
  const parts = /** @type {string[]} */ (result.body.parts);
  const room = state.window === null ? 0 : state.window.remaining;
  $("parts").textContent = "Sent as " + parts.length + " messages" +
    (parts.length > room ? " — more than the " + room + " the window allows" : "");
  const list = $("part-list");
  list.replaceChildren(
    ...parts.map((part, i) =>
      el("li", "", "Part " + (i + 1) + ": " + part.slice(0, 60) + (part.length > 60 ? "…" : ""))
    ),
  );
  list.hidden = false;
}

/** "Typing…" while the agent writes: at most once per 15 s, never while the window is closed. */
function typing() {
  const openId = state.current;
  const now = Date.now();
  if (openId === null || windowState(state.window) !== "open" || now - state.lastTypingAt < TYPING_EVERY_MS) return;
  state.lastTypingAt = now;
  void api("/inbox/api/typing", { method: "POST", json: { touser: openId, command: "Typing" } }).catch(() => {});
}

// ---- live ----

/** @param {boolean} live */
function setLive(live) {
  const indicator = $("live");
  indicator.textContent = live ? "live" : "reconnecting…";
  indicator.classList.toggle("up", live);
}

function connect() {
  if (state.leaving) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + location.host + "/inbox/live");
  state.socket = socket;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let ping;
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string" || event.data === "pong") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "ready") {
      setLive(true);
      state.attempts = 0;
      ping = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send("ping"), PING_EVERY_MS);
      if (state.dropped) {
        // Whatever changed while the socket was down.
        state.dropped = false;
        scheduleListRefresh();
        if (state.current !== null) void Promise.all([fetchNewest(), refreshMeta()]);
      }
    } else if (message.type === "changed") changed(message);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(ping);
    if (state.socket !== socket) return;
    if (event.code === 4001) {
      sessionExpired();
      return;
    }
    setLive(false);
    state.dropped = true;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** state.attempts);
    state.attempts++;
    setTimeout(connect, delay);
  });
}

/** @param {{ openId: string, purged?: boolean }} message */
function changed(message) {
  scheduleListRefresh();
  if (message.openId !== state.current) return;
  if (message.purged) {
    setStatus("This conversation was deleted.", true);
    $("entries").replaceChildren();
    state.entries = new Map();
    state.items = new Map();
    return;
  }
  void Promise.all([fetchNewest(), refreshMeta()]);
}

// ---- start ----

function wire() {
  for (const button of $("filters").querySelectorAll("button")) {
    button.addEventListener("click", () => setFilter(String(button.dataset.filter)));
  }
  $("more").addEventListener("click", () => void loadMore());
  $("back").addEventListener("click", closeConversation);
  $("earlier").addEventListener("click", () => void loadEarlier());
  $("history").addEventListener("scroll", () => {
    if ($("history").scrollTop < 40) void loadEarlier();
  });
  $("take").addEventListener("click", () => void changeHandoff("human"));
  $("give-back").addEventListener("click", () => void changeHandoff("bot"));
  $("close").addEventListener("click", () => void changeHandoff("closed"));
  $("reply").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    void sendText();
  });
  const box = $("reply-text");
  box.addEventListener("keydown", (/** @type {KeyboardEvent} */ event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void sendText();
    }
  });
  box.addEventListener("input", () => {
    updateCounter();
    typing();
  });
  $("image-file").addEventListener("change", () => {
    const input = $("image-file");
    const file = input.files?.[0];
    if (file) void sendImage(file).finally(() => (input.value = ""));
  });
  $("card").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    void sendCard();
  });
  $("subscribe").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    void sendSubscribe();
  });
  $("logout").addEventListener("click", async () => {
    await api("/inbox/logout", { method: "POST" }).catch(() => {});
    state.leaving = true;
    location.assign("/inbox/login");
  });
  // The window badges count down.
  setInterval(() => {
    renderList();
    if (state.current !== null) renderMeta();
  }, 30_000);
}

async function main() {
  wire();
  const result = await api("/inbox/api/session");
  if (result.status !== 200) {
    $("notice").textContent = "The inbox could not start: " + errorText(result);
    $("notice").hidden = false;
    return;
  }
  state.session = result.body;
  $("agent").textContent = "Signed in as " + result.body.agent;
  $("logout").hidden = result.body.via !== "password";
  connect();
  await refreshList();
  const match = /^#user=(.+)$/.exec(location.hash);
  if (match) await openConversation(decodeURIComponent(match[1]));
}

void main().catch((err) => {
  if (state.leaving) return;
  $("notice").textContent = "The inbox could not start: " + (err instanceof Error ? err.message : String(err));
  $("notice").hidden = false;
});

// An ES module (loaded with type="module"): its names stay its own.
export {};
