/**
 * Private to the dev entry: the chat simulator page at `/_emulator/` — plain HTML, one
 * stylesheet and one small vanilla script, no build step. The script builds every
 * element with `textContent`, never `innerHTML`, and the page's Content-Security-Policy
 * allows only its own script and style.
 *
 * @module
 */

/** What the page is told about the running configuration (dev values only). */
export interface PageConfig {
  /** `WECHAT_APPID`. */
  appId: string | null;
  /**
   * `API_KEY`, prefilled in the page's API key field for its `/api` calls (replies, typing,
   * images). Shown on purpose: this page exists only in emulator mode, on the dev server.
   */
  apiKey: string | null;
  /** `safe` with `WECHAT_AES_KEY`, else `plain`. */
  pushMode: "safe" | "plain";
  /** The format the emulated WeChat pushes in. */
  pushFormat: "xml" | "json";
  /** `WELCOME_TEXT`. */
  welcomeText: string | null;
  /** `TRANSFER_TO_KF=on`. */
  transfer: boolean;
}

/**
 * Response headers of the page and its assets: no caching, no sniffing, no framing, and
 * a policy that allows only same-origin scripts, styles and requests.
 *
 * @param contentType the Content-Type; default HTML
 * @returns the headers
 */
export function pageHeaders(contentType = "text/html; charset=utf-8"): Record<string, string> {
  return {
    "content-type": contentType,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
      "img-src 'self' blob: data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  };
}

/**
 * The page. The configuration travels as JSON in a non-executed script element,
 * with `<` escaped so no value can end the element.
 *
 * @param config the running configuration
 * @returns the HTML document
 */
export function pageHtml(config: PageConfig): string {
  const data = JSON.stringify(config).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kefu-edge · WeChat emulator</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/_emulator/page.css">
<script type="application/json" id="kefu-config">${data}</script>
<script src="/_emulator/page.js" defer></script>
</head>
<body>
<header class="top">
  <h1>kefu-edge <span class="muted">· WeChat emulator</span></h1>
  <p id="config-summary" class="muted"></p>
</header>
<main class="layout">
  <section class="panel users" aria-labelledby="users-title">
    <h2 id="users-title">Users</h2>
    <ul id="user-list" class="user-list"></ul>
    <form id="new-user" class="stack">
      <label for="new-openid">OpenID</label>
      <input id="new-openid" name="openid" required maxlength="256" pattern="[A-Za-z0-9_\\-]+" autocomplete="off">
      <button type="submit">Add user</button>
    </form>
  </section>

  <section class="panel chat" aria-labelledby="chat-title">
    <h2 id="chat-title">Conversation</h2>
    <p id="window-status" class="muted">Pick or add a user.</p>
    <ol id="conversation" class="conversation" aria-live="polite" aria-label="Messages"></ol>
    <p id="typing" class="typing" hidden>The service is typing…</p>
    <p id="status" class="status" role="status"></p>

    <fieldset id="as-user" disabled>
      <legend>As the user (WeChat pushes to <code>/wechat/callback</code>)</legend>
      <form id="say" class="row">
        <label for="say-text">Message</label>
        <input id="say-text" name="text" required maxlength="2048" autocomplete="off" placeholder="Type as the user">
        <button type="submit">Send as user</button>
      </form>
      <form id="image" class="row">
        <label for="image-file">Image</label>
        <input id="image-file" name="media" type="file" accept="image/jpeg,image/png,image/gif" required>
        <button type="submit">Send image</button>
      </form>
      <form id="session" class="row">
        <label for="session-from">session-from</label>
        <input id="session-from" name="sessionFrom" maxlength="1024" autocomplete="off" placeholder="optional">
        <button type="submit">Enter session</button>
      </form>
    </fieldset>

    <fieldset id="as-service" disabled>
      <legend>As the service (<code>/api</code>)</legend>
      <div class="row">
        <label for="api-key">API key</label>
        <input id="api-key" name="apiKey" autocomplete="off" spellcheck="false">
      </div>
      <form id="reply" class="row">
        <label for="reply-text">Reply</label>
        <input id="reply-text" name="content" required autocomplete="off" placeholder="Reply to the user">
        <button type="submit">Send reply</button>
      </form>
      <div class="row">
        <button type="button" id="typing-on">Show typing</button>
        <button type="button" id="typing-off">Cancel typing</button>
      </div>
    </fieldset>
  </section>

  <section class="panel log" aria-labelledby="log-title">
    <h2 id="log-title">Raw exchanges</h2>
    <p class="muted">Pushes WeChat sent to the app, and API calls the app made to WeChat. Newest first.</p>
    <ol id="exchanges" class="exchanges"></ol>
  </section>
</main>
</body>
</html>
`;
}

/** The page's stylesheet. */
export const PAGE_STYLE = `
:root { color-scheme: light; --green: #95ec69; --line: #d9d9d9; --text: #1a1a1a; --muted: #5f6368; --accent: #07c160; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); background: #f5f5f5; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.top { padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
.top p { margin: .25rem 0 0; font-size: .875rem; }
.layout { display: grid; grid-template-columns: 220px minmax(320px, 1fr) minmax(320px, 1fr); gap: 1rem; padding: 1rem; }
@media (max-width: 1000px) { .layout { grid-template-columns: 1fr; } }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .75rem; min-width: 0; }
.stack { display: grid; gap: .35rem; margin-top: .75rem; }
.stack input { width: 100%; min-width: 0; }
.row { display: flex; gap: .5rem; align-items: center; margin: .4rem 0; flex-wrap: wrap; }
.row label { min-width: 6.5rem; font-size: .875rem; }
.row input { flex: 1 1 10rem; min-width: 0; }
input, button { font: inherit; padding: .35rem .5rem; border: 1px solid #b3b3b3; border-radius: 6px; }
button { background: #fff; cursor: pointer; }
button[type="submit"] { background: var(--accent); border-color: #06ad56; color: #fff; }
button:focus-visible, input:focus-visible, summary:focus-visible { outline: 3px solid #1a73e8; outline-offset: 1px; }
fieldset { border: 1px solid var(--line); border-radius: 8px; margin: .75rem 0 0; }
fieldset:disabled { opacity: .6; }
legend { font-size: .875rem; padding: 0 .25rem; }
.user-list { list-style: none; margin: 0; padding: 0; display: grid; gap: .25rem; }
.user-list button { width: 100%; text-align: left; overflow-wrap: anywhere; }
.user-list button[aria-current="true"] { border-color: var(--accent); background: #e8f8ef; font-weight: 600; }
.user-list small { display: block; color: var(--muted); font-weight: normal; }
.conversation { list-style: none; margin: 0; padding: .75rem; background: #ededed; border-radius: 8px; min-height: 14rem;
  max-height: 55vh; overflow-y: auto; display: flex; flex-direction: column; gap: .5rem; }
.msg { max-width: 80%; padding: .45rem .65rem; border-radius: 6px; overflow-wrap: anywhere; white-space: pre-wrap; }
.msg.user { align-self: flex-end; background: var(--green); }
.msg.service { align-self: flex-start; background: #fff; }
.msg .meta { display: block; font-size: .7rem; color: var(--muted); }
.msg img { display: block; max-width: 200px; max-height: 200px; margin-top: .25rem; border-radius: 4px; }
.event { align-self: center; font-size: .8rem; color: var(--muted); background: #dcdcdc; border-radius: 4px; padding: .1rem .5rem; }
.event.notice { color: #8a1c1c; background: #f8dede; }
.card { border-left: 3px solid var(--accent); padding-left: .5rem; }
.typing { color: var(--accent); font-style: italic; margin: .4rem 0 0; }
.status { min-height: 1.4em; margin: .4rem 0 0; font-size: .875rem; }
.status.error { color: #b00020; }
.exchanges { list-style: none; margin: 0; padding: 0; display: grid; gap: .35rem; max-height: 80vh; overflow-y: auto; }
.exchanges details { border: 1px solid var(--line); border-radius: 6px; padding: .25rem .5rem; }
.exchanges summary { cursor: pointer; font-size: .85rem; overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: .7rem; padding: 0 .35rem; border-radius: 4px; margin-right: .35rem; color: #fff; }
.badge.push { background: #1a73e8; }
.badge.api { background: #7b3fb3; }
.exchanges pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f7f7f7; padding: .4rem; margin: .3rem 0; }
`;

/**
 * The page's script. Plain ES2020 for current browsers; it never writes HTML: text goes
 * through `textContent`, images through blob URLs of `/api/media/:id`.
 */
export const PAGE_SCRIPT = String.raw`"use strict";
(() => {
  const config = JSON.parse(document.getElementById("kefu-config").textContent);
  const $ = (id) => document.getElementById(id);
  const OPENID = /^[A-Za-z0-9_-]{1,256}$/;
  const state = {
    current: null,
    known: [],
    lastExchange: 0,
    conversationKey: "",
    usersKey: "",
    media: new Map(),
    refreshing: false,
    again: false,
  };

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function time(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  async function request(path, options) {
    const response = await fetch(path, options);
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    return { status: response.status, body };
  }

  function errorText(result) {
    const error = result.body && result.body.error;
    if (!error) return "HTTP " + result.status;
    return error.message + (error.errcode !== undefined ? " (errcode " + error.errcode + ")" : "");
  }

  function apiKey() {
    return $("api-key").value.trim();
  }

  function api(path, body) {
    return request(path, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + apiKey() },
      body: JSON.stringify(body),
    });
  }

  function userPath(openId, rest) {
    return "/_emulator/users/" + encodeURIComponent(openId) + "/" + rest;
  }

  // Images need the API key, so they are fetched and shown through blob URLs.
  function mediaImage(mediaId, alt) {
    const img = el("img");
    img.alt = alt;
    let url = state.media.get(mediaId);
    if (url) {
      img.src = url;
      return img;
    }
    fetch("/api/media/" + encodeURIComponent(mediaId), { headers: { authorization: "Bearer " + apiKey() } })
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error("HTTP " + response.status))))
      .then((blob) => {
        url = URL.createObjectURL(blob);
        state.media.set(mediaId, url);
        img.src = url;
      })
      .catch(() => {
        img.replaceWith(el("span", "meta", "[image " + mediaId.slice(0, 12) + "… unavailable]"));
      });
    return img;
  }

  function renderSummary() {
    const parts = [
      "AppID " + (config.appId || "(not set)"),
      config.pushMode + " mode, " + config.pushFormat.toUpperCase() + " pushes",
      "TRANSFER_TO_KF " + (config.transfer ? "on" : "off"),
      config.welcomeText ? "WELCOME_TEXT “" + config.welcomeText + "”" : "no WELCOME_TEXT",
    ];
    if (!config.apiKey) parts.push("API_KEY is not set: /api answers 503");
    $("config-summary").textContent = parts.join(" · ");
  }

  function randomOpenId() {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return "o_sim_" + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
  }

  function renderUsers(users) {
    const all = users.slice();
    for (const openId of state.known) {
      if (!all.some((u) => u.openId === openId)) all.push({ openId, window: null, typing: false });
    }
    const key = JSON.stringify([state.current, all]);
    if (key === state.usersKey) return;
    state.usersKey = key;
    const list = $("user-list");
    list.replaceChildren();
    if (all.length === 0) list.append(el("li", "muted", "No users yet."));
    for (const user of all) {
      const button = el("button", "", user.openId, el("small", "", user.window ? user.window.remaining + " left in window" : "no window"));
      button.type = "button";
      button.setAttribute("aria-current", String(user.openId === state.current));
      button.addEventListener("click", () => select(user.openId));
      list.append(el("li", "", button));
    }
  }

  function describeWindow(data) {
    if (!data.window) return "No send window: the user has not written (or it closed). Sends answer 45015.";
    const kind = data.window.kind === "session" ? "entered the session" : "wrote";
    return "Send window open (the user " + kind + "): " + data.window.remaining + " message(s) until " + time(data.window.expiresAt) + ".";
  }

  function renderEntry(entry) {
    const stamp = el("span", "meta", time(entry.at));
    if (entry.from === "user") {
      if (entry.kind === "text") return el("li", "msg user", entry.text, stamp);
      if (entry.kind === "image") return el("li", "msg user", mediaImage(entry.mediaId, "Image sent by the user"), stamp);
      return el("li", "event", "User entered the session" + (entry.sessionFrom ? " (session-from: " + entry.sessionFrom + ")" : "") + " · " + time(entry.at));
    }
    if (entry.from === "wechat") return el("li", "event notice", "WeChat to the user: " + entry.text + " · " + time(entry.at));
    if (entry.kind === "typing") {
      return el("li", "event", (entry.command === "Typing" ? "Service started typing" : "Service cancelled typing") + " · " + time(entry.at));
    }
    const m = entry.message;
    if (entry.msgtype === "text") return el("li", "msg service", m.content, stamp);
    if (entry.msgtype === "image") return el("li", "msg service", mediaImage(m.media_id, "Image sent by the service"), stamp);
    if (entry.msgtype === "link") {
      return el("li", "msg service card", el("strong", "", m.title), el("span", "meta", m.description), el("span", "meta", m.url), stamp);
    }
    return el("li", "msg service card", el("strong", "", "Mini program: " + m.title), el("span", "meta", m.pagepath), mediaImage(m.thumb_media_id, "Card cover"), stamp);
  }

  function renderConversation(data) {
    $("window-status").textContent = describeWindow(data);
    $("typing").hidden = !data.typing;
    const key = JSON.stringify(data.entries);
    if (key === state.conversationKey) return;
    state.conversationKey = key;
    const list = $("conversation");
    list.replaceChildren(...data.entries.map(renderEntry));
    if (data.entries.length === 0) list.append(el("li", "event", "Nothing yet: enter the session or send a message as the user."));
    list.scrollTop = list.scrollHeight;
  }

  function part(title, p) {
    const lines = [p.line];
    if (p.contentType) lines.push("content-type: " + p.contentType);
    if (p.body) lines.push("", p.body);
    return [el("strong", "", title), el("pre", "", lines.join("\n"))];
  }

  function renderExchanges(exchanges) {
    const list = $("exchanges");
    for (const x of exchanges) {
      state.lastExchange = Math.max(state.lastExchange, x.id);
      const summary = el(
        "summary",
        "",
        el("span", "badge " + x.kind, x.kind),
        time(x.at) + " " + x.title + (x.response ? " → " + x.response.line : "") + (x.openId ? " · " + x.openId : ""),
      );
      const details = el("details", "", summary, ...part("Request", x.request));
      if (x.response) details.append(...part("Response", x.response));
      for (const note of x.notes) details.append(el("pre", "", note));
      list.prepend(el("li", "", details));
    }
    while (list.children.length > 200) list.lastElementChild.remove();
  }

  // One refresh at a time: a poll that lands while one runs schedules one more.
  async function refresh() {
    if (state.refreshing) {
      state.again = true;
      return;
    }
    state.refreshing = true;
    try {
      await refreshOnce();
    } finally {
      state.refreshing = false;
    }
    if (state.again) {
      state.again = false;
      refresh();
    }
  }

  async function refreshOnce() {
    try {
      const users = await request("/_emulator/users");
      if (users.status === 200) renderUsers(users.body.users);
      if (state.current) {
        const conversation = await request(userPath(state.current, "conversation"));
        if (conversation.status === 200) renderConversation(conversation.body);
      }
      const exchanges = await request("/_emulator/exchanges?after=" + state.lastExchange);
      if (exchanges.status === 200) renderExchanges(exchanges.body.exchanges);
      else setStatus("Cannot read the emulator: " + errorText(exchanges), true);
    } catch (err) {
      setStatus("The dev server does not answer: " + err.message, true);
    }
  }

  function select(openId) {
    state.current = openId;
    if (!state.known.includes(openId)) state.known.push(openId);
    state.conversationKey = "";
    history.replaceState(null, "", "#user=" + encodeURIComponent(openId));
    $("chat-title").textContent = "Conversation with " + openId;
    $("as-user").disabled = false;
    $("as-service").disabled = false;
    setStatus("");
    refresh();
  }

  function stepStatus(what, result) {
    if (result.status !== 200) return setStatus(what + " failed: " + errorText(result), true);
    const d = result.body.delivery;
    const reply = d.reply === null ? "success" : d.reply.includes("transfer_customer_service") ? "transfer_customer_service" : "a reply";
    const got = result.body.received.length;
    setStatus(
      what + ": " + (d.ok ? "the app answered " + reply : "WeChat gave up after " + d.attempts + " attempts") +
        (got ? "; the user received " + got + " message(s)" : "") + ".",
      !d.ok,
    );
  }

  function onSubmit(id, handler) {
    $(id).addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        await handler(form);
      } catch (err) {
        setStatus("Request failed: " + err.message, true);
      } finally {
        buttons.forEach((b) => (b.disabled = false));
        refresh();
      }
    });
  }

  onSubmit("new-user", (form) => {
    const openId = form.openid.value.trim();
    if (!OPENID.test(openId)) return setStatus("An OpenID is 1 to 256 letters, digits, - or _.", true);
    form.openid.value = randomOpenId();
    select(openId);
  });

  onSubmit("say", async (form) => {
    const text = form.text.value;
    const result = await request(userPath(state.current, "messages"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text }),
    });
    if (result.status === 200) form.text.value = "";
    stepStatus("Message", result);
  });

  onSubmit("image", async (form) => {
    const file = form.media.files[0];
    if (!file) return setStatus("Choose an image first.", true);
    const body = new FormData();
    body.append("media", file);
    const result = await request(userPath(state.current, "images"), { method: "POST", body });
    if (result.status === 200) form.reset();
    stepStatus("Image", result);
  });

  onSubmit("session", async (form) => {
    const result = await request(userPath(state.current, "session"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sessionFrom: form.sessionFrom.value }),
    });
    stepStatus("Session entry", result);
  });

  onSubmit("reply", async (form) => {
    const content = form.content.value;
    const result = await api("/api/messages", { touser: state.current, msgtype: "text", text: { content } });
    if (result.status === 200) {
      form.content.value = "";
      setStatus("Reply sent through POST /api/messages.");
    } else {
      setStatus("Reply failed: " + errorText(result), true);
    }
  });

  for (const [id, command] of [["typing-on", "Typing"], ["typing-off", "CancelTyping"]]) {
    $(id).addEventListener("click", async () => {
      const result = await api("/api/typing", { touser: state.current, command });
      setStatus(result.status === 200 ? command + " sent through POST /api/typing." : command + " failed: " + errorText(result), result.status !== 200);
      refresh();
    });
  }

  renderSummary();
  $("api-key").value = config.apiKey || "";
  $("new-openid").value = randomOpenId();
  const fromHash = /^#user=(.+)$/.exec(location.hash);
  const initial = fromHash ? decodeURIComponent(fromHash[1]) : null;
  if (initial && OPENID.test(initial)) select(initial);
  else refresh();
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, 1000);
})();
`;
