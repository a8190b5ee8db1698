// @ts-check
// The chat page of the WeChat emulator (`withEmulator` in kefu-edge/testing): plain browser
// JavaScript, no build step. Every element is built with `textContent`, never as HTML, and the
// page's policy allows only its own scripts, styles and requests. It reads its configuration
// from /_emulator/config and waits for changes on /_emulator/updates (a long poll: one request
// per change, or one every 25 s when nothing happens).
"use strict";

/**
 * @typedef {{ label: string, text?: string, title?: string, lines?: string[], image?: string }} MessageView
 * @typedef {{
 *   appId: string | null, apiKey: string | null, pushMode: string, pushFormat: string,
 *   welcomeText: string | null, transfer: boolean,
 *   messageTypes: Record<string, MessageView>, windowLimits: Record<string, number>
 * }} Config
 * @typedef {{ kind: "message" | "session", remaining: number, expiresAt: number }} SendWindow
 * @typedef {{ openId: string, window: SendWindow | null, typing: boolean }} UserSummary
 * @typedef {{ from: string, kind: string, at: number } & Record<string, any>} Entry
 * @typedef {UserSummary & { known: boolean, entries: Entry[] }} Conversation
 * @typedef {{ line: string, contentType?: string, body: string, errcode?: number }} Part
 * @typedef {{
 *   id: number, rev: number, at: number, kind: string, openId?: string, title: string,
 *   request: Part, response?: Part, notes: string[]
 * }} Exchange
 * @typedef {{ version: number, now: number, users: UserSummary[], conversation: Conversation | null,
 *   exchanges: Exchange[] }} Updates
 * @typedef {{ status: number, body: any }} Result
 */

(() => {
  const OPENID = /^[A-Za-z0-9_-]{1,256}$/;
  const MAX_EXCHANGES = 200;
  const state = {
    /** @type {Config | null} */
    config: null,
    /** @type {string | null} */
    current: null,
    /** @type {string[]} */
    known: [],
    /** @type {number | undefined} */
    version: undefined,
    exchangeRev: 0,
    /** @type {Map<number, HTMLLIElement>} */
    exchangeItems: new Map(),
    conversationKey: "",
    usersKey: "",
    /** Whether the conversation follows the newest message (the user has not scrolled up). */
    pinned: true,
    /** Where the page itself last scrolled the conversation to. */
    autoScrollTop: -1,
    /** @type {AbortController | null} */
    listening: null,
    /** The emulator's clock minus this browser's, so that times count down between updates. */
    clockOffset: 0,
    /** @type {Conversation | null} */
    shown: null,
    connectionError: false,
    /** Whether the page has picked a user for the reader yet (the only one there is, on open). */
    picked: false,
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

  /** @param {unknown} value */
  function str(value) {
    return typeof value === "string" ? value : JSON.stringify(value) ?? "";
  }

  /**
   * A time as the page shows it: the clock time for today, with the date otherwise.
   *
   * @param {number} ms
   * @param {number} now
   */
  function stamp(ms, now) {
    const date = new Date(ms);
    const sameDay = date.toDateString() === new Date(now).toDateString();
    return sameDay
      ? date.toLocaleTimeString([], { hour12: false })
      : date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false });
  }

  /**
   * How far `ms` is from `now`, e.g. "in 47 h 59 min" or "in 58 s".
   *
   * @param {number} ms
   * @param {number} now
   */
  function fromNow(ms, now) {
    const seconds = Math.max(0, Math.round((ms - now) / 1000));
    if (seconds < 60) return "in " + seconds + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return "in " + minutes + " min";
    return "in " + Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  /**
   * A `<time>` with the date and time of `ms`, and how far away it is.
   *
   * @param {number} ms
   * @param {number} now
   */
  function until(ms, now) {
    const node = el(
      "time",
      "",
      new Date(ms).toLocaleString([], {
        weekday: "short",
        day: "numeric",
        month: "short",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hour12: false,
      }),
    );
    node.setAttribute("datetime", new Date(ms).toISOString());
    return el("span", "", node, " (" + fromNow(ms, now) + ")");
  }

  /**
   * @param {string} text
   * @param {boolean} [isError]
   */
  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  /**
   * @param {string} path
   * @param {RequestInit} [options]
   * @returns {Promise<Result>}
   */
  async function request(path, options) {
    const response = await fetch(path, options);
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    return { status: response.status, body };
  }

  /** @param {Result} result */
  function errorText(result) {
    const error = result.body && result.body.error;
    if (!error) return "HTTP " + result.status;
    return error.message + (error.errcode !== undefined ? " (errcode " + error.errcode + ")" : "");
  }

  function apiKey() {
    return $("api-key").value.trim();
  }

  /**
   * @param {string} path
   * @param {unknown} body
   */
  function api(path, body) {
    return request(path, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + apiKey() },
      body: JSON.stringify(body),
    });
  }

  /**
   * Uploads an image as temporary media through the app (`POST /api/media`).
   *
   * @param {File} file
   * @returns {Promise<string>} its media_id
   */
  async function uploadMedia(file) {
    const body = new FormData();
    body.append("media", file);
    const result = await request("/api/media", {
      method: "POST",
      headers: { authorization: "Bearer " + apiKey() },
      body,
    });
    if (result.status !== 200) throw new Error("the upload (POST /api/media) failed: " + errorText(result));
    return String(result.body.media_id);
  }

  /**
   * Sends one message to the current user through the app (`POST /api/messages`) and says how it went.
   *
   * @param {string} what
   * @param {Record<string, unknown>} message `msgtype` and its payload
   * @returns {Promise<boolean>} whether it was sent
   */
  async function sendAsService(what, message) {
    const result = await api("/api/messages", { touser: state.current, ...message });
    const ok = result.status === 200;
    setStatus(ok ? what + " sent through POST /api/messages." : what + " failed: " + errorText(result), !ok);
    return ok;
  }

  /**
   * @param {string} openId
   * @param {string} rest
   */
  function userPath(openId, rest) {
    return "/_emulator/users/" + encodeURIComponent(openId) + "/" + rest;
  }

  /**
   * @param {string} path
   * @param {unknown} body
   */
  function postJson(path, body) {
    return request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // Images come straight from the emulated WeChat (what the user sees), not through the app.
  /**
   * @param {string} mediaId
   * @param {string} alt
   */
  function mediaImage(mediaId, alt) {
    const img = /** @type {HTMLImageElement} */ (el("img", ""));
    img.alt = alt;
    img.addEventListener("load", followNewest);
    img.addEventListener("error", () => {
      img.replaceWith(el("span", "meta", "[image " + mediaId.slice(0, 12) + "… unavailable]"));
    });
    img.src = "/_emulator/media/" + encodeURIComponent(mediaId);
    return img;
  }

  function followNewest() {
    if (!state.pinned) return;
    const list = $("conversation");
    list.scrollTop = list.scrollHeight;
    state.autoScrollTop = list.scrollTop;
  }

  function renderSummary() {
    const config = state.config;
    if (config === null) return;
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

  /** @param {SendWindow["kind"]} kind */
  function limitOf(kind) {
    return (state.config && state.config.windowLimits[kind]) || 0;
  }

  /**
   * One line per user in the list: what a send to them would get.
   *
   * @param {UserSummary & { known?: boolean }} user
   * @param {number} now
   */
  function userLine(user, now) {
    if (user.known === false) return "has not written: sends answer 40003";
    const w = user.window;
    if (!w) return "window closed: sends answer 45015";
    if (w.remaining <= 0) return "window used up: sends answer 45047";
    return w.remaining + " of " + limitOf(w.kind) + " left · until " + stamp(w.expiresAt, now);
  }

  /**
   * @param {UserSummary[]} users
   * @param {number} now
   */
  function renderUsers(users, now) {
    /** @type {(UserSummary & { known?: boolean })[]} */
    const all = users.slice();
    for (const openId of state.known) {
      if (!all.some((u) => u.openId === openId)) all.push({ openId, window: null, typing: false, known: false });
    }
    const lines = all.map((user) => userLine(user, now));
    const key = JSON.stringify([state.current, all.map((u) => u.openId), lines]);
    if (key === state.usersKey) return;
    state.usersKey = key;
    const list = $("user-list");
    list.replaceChildren();
    if (all.length === 0) list.append(el("li", "muted", "No users yet."));
    all.forEach((user, i) => {
      const button = /** @type {HTMLButtonElement} */ (el("button", "", user.openId, el("small", "", lines[i])));
      button.type = "button";
      button.setAttribute("aria-current", String(user.openId === state.current));
      button.addEventListener("click", () => select(user.openId));
      list.append(el("li", "", button));
    });
  }

  /**
   * What a send to the user gets now, naming the code WeChat answers when it cannot be sent.
   *
   * @param {Conversation} data
   * @param {number} now
   * @returns {{ nodes: (Node | string)[], closed: boolean }}
   */
  function describeWindow(data, now) {
    if (!data.known) {
      return {
        closed: true,
        nodes: [
          "This user has not written yet, so WeChat does not know the OpenID: sends answer 40003. Enter the session " +
          "or send a message as the user to open a send window.",
        ],
      };
    }
    const w = data.window;
    if (!w) {
      return {
        closed: true,
        nodes: [
          "No send window: it has closed. Sends answer 45015 until the user writes again (a message allows " +
          limitOf("message") + " sends within 48 h, entering the session " + limitOf("session") + " within 1 min).",
        ],
      };
    }
    const limit = limitOf(w.kind);
    const opened = w.kind === "session" ? "entering the session" : "a message from the user";
    if (w.remaining <= 0) {
      return {
        closed: true,
        nodes: [
          "Send window used up: 0 of " + limit + " messages left. Sends answer 45047 until the user writes again " +
          "(the window runs until ",
          until(w.expiresAt, now),
          ").",
        ],
      };
    }
    return {
      closed: false,
      nodes: [
        "Send window open (opened by " + opened + "): " + w.remaining + " of " + limit + " messages left, until ",
        until(w.expiresAt, now),
        ".",
      ],
    };
  }

  /**
   * A message from the service, shown as the emulator's table says; a type the table does not
   * list is shown as such, with its raw object.
   *
   * @param {Entry} entry
   * @param {Node} time
   */
  function serviceMessage(entry, time) {
    const view = state.config && state.config.messageTypes[entry.msgtype];
    const m = entry.message || {};
    if (!view) {
      return el(
        "li",
        "msg service unknown",
        el("strong", "", "Unknown message type “" + str(entry.msgtype) + "”"),
        el("pre", "", JSON.stringify(m, null, 2)),
        time,
      );
    }
    /** @type {(Node | string)[]} */
    const parts = [];
    const card = view.title !== undefined;
    if (card) parts.push(el("span", "label", view.label), el("strong", "", str(m[view.title ?? ""])));
    if (view.text !== undefined) parts.push(str(m[view.text]));
    for (const line of view.lines || []) parts.push(el("span", "meta", str(m[line])));
    if (view.image !== undefined) parts.push(mediaImage(str(m[view.image]), view.label + " from the service"));
    return el("li", "msg service" + (card ? " card" : ""), ...parts, time);
  }

  /**
   * @param {Entry} entry
   * @param {number} now
   */
  function renderEntry(entry, now) {
    const time = el("span", "meta", stamp(entry.at, now));
    const at = " · " + stamp(entry.at, now);
    if (entry.from === "user") {
      if (entry.kind === "text") return el("li", "msg user", entry.text, time);
      if (entry.kind === "image") {
        return el("li", "msg user", mediaImage(entry.mediaId, "Image sent by the user"), time);
      }
      if (entry.kind === "miniprogrampage") {
        return el(
          "li",
          "msg user card",
          el("span", "label", "Mini program"),
          el("strong", "", entry.title),
          el("span", "meta", entry.pagePath),
          mediaImage(entry.thumbMediaId, "Card cover"),
          time,
        );
      }
      if (entry.kind === "subscription") {
        const how = entry.status === "accept" ? "accepted" : "rejected";
        const term = entry.status === "accept" ? (entry.longTerm ? " (long-term)" : " (one-time)") : "";
        return el("li", "event", "User " + how + " subscribe template " + entry.templateId + term + at);
      }
      return el(
        "li",
        "event",
        "User entered the session" + (entry.sessionFrom ? " (session-from: " + entry.sessionFrom + ")" : "") + at,
      );
    }
    if (entry.from === "wechat") return el("li", "event notice", "WeChat to the user: " + entry.text + at);
    if (entry.kind === "typing") {
      return el(
        "li",
        "event",
        (entry.command === "Typing" ? "Service started typing" : "Service cancelled typing") + at,
      );
    }
    if (entry.kind === "subscribe") {
      /** @type {(Node | string)[]} */
      const fields = Object.entries(entry.data || {}).map(([key, field]) =>
        el("span", "meta", key + ": " + str(/** @type {{ value?: unknown }} */ (field).value))
      );
      return el(
        "li",
        "msg service card",
        el("span", "label", "Subscribe message"),
        el("strong", "", str(entry.templateId)),
        ...fields,
        ...(entry.page ? [el("span", "meta", "opens " + str(entry.page))] : []),
        time,
      );
    }
    return serviceMessage(entry, time);
  }

  /**
   * @param {Conversation} data
   * @param {number} now
   */
  function renderWindow(data, now) {
    const described = describeWindow(data, now);
    const status = $("window-status");
    status.replaceChildren(...described.nodes);
    status.classList.toggle("closed", described.closed);
    status.classList.remove("muted");
  }

  /**
   * @param {Conversation} data
   * @param {number} now
   */
  function renderConversation(data, now) {
    state.shown = data;
    renderWindow(data, now);
    $("typing").hidden = !data.typing;
    const key = JSON.stringify(data.entries);
    if (key === state.conversationKey) return;
    state.conversationKey = key;
    const list = $("conversation");
    list.replaceChildren(...data.entries.map((entry) => renderEntry(entry, now)));
    if (data.entries.length === 0) {
      list.append(el("li", "event", "Nothing yet: enter the session or send a message as the user."));
    }
    state.pinned = true;
    followNewest();
  }

  /**
   * @param {string} title
   * @param {Part} p
   */
  function part(title, p) {
    const lines = [p.line];
    if (p.contentType) lines.push("content-type: " + p.contentType);
    if (p.body) lines.push("", p.body);
    return [el("strong", "", title), el("pre", "", lines.join("\n"))];
  }

  // WeChat answers errors with HTTP 200 and an errcode; the errcode is what the log shows.
  /** @param {Exchange} x */
  function outcome(x) {
    if (!x.response) return { text: "no answer", failed: true };
    const errcode = x.response.errcode;
    if (errcode !== undefined) return { text: "errcode " + errcode, failed: errcode !== 0 };
    const status = Number(x.response.line.replace(/^HTTP /, ""));
    return { text: x.response.line, failed: !(status >= 200 && status < 300) };
  }

  /**
   * @param {Exchange} x
   * @param {number} now
   */
  function exchangeItem(x, now) {
    const result = outcome(x);
    const summary = el(
      "summary",
      "",
      el("span", "badge " + x.kind, x.kind),
      stamp(x.at, now) + " " + x.title + " → ",
      el("span", result.failed ? "failed" : "", result.text),
      x.openId ? " · " + x.openId : "",
    );
    const details = el("details", "", summary, ...part("Request", x.request));
    if (x.response) details.append(...part("Response", x.response));
    for (const note of x.notes) details.append(el("pre", "", note));
    return /** @type {HTMLLIElement} */ (el("li", "", details));
  }

  /**
   * @param {Exchange[]} exchanges
   * @param {number} now
   */
  function renderExchanges(exchanges, now) {
    const list = $("exchanges");
    for (const x of exchanges) {
      state.exchangeRev = Math.max(state.exchangeRev, x.rev);
      const item = exchangeItem(x, now);
      const shown = state.exchangeItems.get(x.id);
      if (shown) {
        // Changed (a note added): replace it where it is, keeping it open if it was.
        const open = shown.querySelector("details");
        if (open && open.open) item.querySelector("details")?.setAttribute("open", "");
        shown.replaceWith(item);
      } else {
        list.prepend(item);
      }
      state.exchangeItems.set(x.id, item);
    }
    while (list.children.length > MAX_EXCHANGES) {
      const last = /** @type {HTMLLIElement} */ (list.lastElementChild);
      for (const [id, node] of state.exchangeItems) if (node === last) state.exchangeItems.delete(id);
      last.remove();
    }
  }

  /** @param {Updates} updates */
  function render(updates) {
    state.clockOffset = updates.now - Date.now();
    // On open, with one user only, that user is the one to look at.
    if (!state.picked) {
      state.picked = true;
      const only = updates.users.length === 1 ? updates.users[0] : undefined;
      if (state.current === null && only !== undefined) select(only.openId);
    }
    renderUsers(updates.users, updates.now);
    if (updates.conversation && updates.conversation.openId === state.current) {
      renderConversation(updates.conversation, updates.now);
    }
    renderExchanges(updates.exchanges, updates.now);
  }

  /** @param {number} ms */
  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // The long poll: each answer carries the version it reflects; the next request waits until
  // the version moves on. `refreshNow` asks again at once (another user was picked).
  async function listen() {
    for (;;) {
      const controller = new AbortController();
      state.listening = controller;
      const query = new URLSearchParams({ after: String(state.exchangeRev) });
      if (state.version !== undefined) query.set("version", String(state.version));
      if (state.current) query.set("openId", state.current);
      try {
        const result = await request("/_emulator/updates?" + query, { signal: controller.signal });
        if (result.status !== 200) {
          setStatus("Cannot read the emulator: " + errorText(result), true);
          state.connectionError = true;
          await sleep(3000);
          continue;
        }
        if (state.connectionError) {
          state.connectionError = false;
          setStatus("");
        }
        // Before rendering: a user picked while rendering asks again at once (refreshNow).
        state.version = result.body.version;
        render(result.body);
      } catch (err) {
        if (controller.signal.aborted) continue;
        setStatus("The dev server does not answer: " + (err instanceof Error ? err.message : String(err)), true);
        state.connectionError = true;
        await sleep(2000);
      }
    }
  }

  function refreshNow() {
    state.version = undefined;
    if (state.listening) state.listening.abort();
  }

  /** @param {string} openId */
  function select(openId) {
    state.current = openId;
    state.shown = null;
    if (!state.known.includes(openId)) state.known.push(openId);
    state.conversationKey = "";
    state.usersKey = "";
    history.replaceState(null, "", "#user=" + encodeURIComponent(openId));
    $("chat-title").textContent = "Conversation with " + openId;
    $("as-user").disabled = false;
    $("as-service").disabled = false;
    setStatus("");
    refreshNow();
  }

  /**
   * @param {string} what
   * @param {Result} result
   */
  function stepStatus(what, result) {
    if (result.status !== 200) return setStatus(what + " failed: " + errorText(result), true);
    const d = result.body.delivery;
    const reply = d.reply === null
      ? "success"
      : d.reply.includes("transfer_customer_service")
      ? "transfer_customer_service"
      : "a reply";
    const got = result.body.received.length;
    setStatus(
      what + ": " + (d.ok ? "the app answered " + reply : "WeChat gave up after " + d.attempts + " attempts") +
        (got ? "; the user received " + got + (got === 1 ? " message" : " messages") : "") + ".",
      !d.ok,
    );
  }

  /**
   * @param {string} id
   * @param {(form: any) => Promise<void> | void} handler
   */
  function onSubmit(id, handler) {
    $(id).addEventListener("submit", /** @param {SubmitEvent} event */ async (event) => {
      event.preventDefault();
      const form = /** @type {HTMLFormElement} */ (event.currentTarget);
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        await handler(form);
      } catch (err) {
        setStatus("Request failed: " + (err instanceof Error ? err.message : String(err)), true);
      } finally {
        buttons.forEach((b) => (b.disabled = false));
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
    const result = await postJson(userPath(String(state.current), "messages"), { text: form.text.value });
    if (result.status === 200) form.text.value = "";
    stepStatus("Message", result);
  });

  onSubmit("image", async (form) => {
    const file = form.media.files[0];
    if (!file) return setStatus("Choose an image first.", true);
    const body = new FormData();
    body.append("media", file);
    const result = await request(userPath(String(state.current), "images"), { method: "POST", body });
    if (result.status === 200) form.reset();
    stepStatus("Image", result);
  });

  onSubmit("card", async (form) => {
    const result = await postJson(userPath(String(state.current), "miniprogrampages"), {
      title: form.title.value,
      pagePath: form.pagePath.value,
    });
    if (result.status === 200) form.title.value = "";
    stepStatus("Mini program card", result);
  });

  onSubmit("subscribe", async (form) => {
    const result = await postJson(userPath(String(state.current), "subscriptions"), {
      templateId: form.templateId.value.trim(),
      status: form.status.value,
      longTerm: form.longTerm.checked,
    });
    stepStatus("Subscription", result);
  });

  onSubmit("subscribe-message", async (form) => {
    const body = {
      touser: state.current,
      template_id: form.templateId.value.trim(),
      data: { thing1: { value: form.thing1.value } },
    };
    const result = await api("/api/subscribe-messages", body);
    if (result.status !== 200) return setStatus("Subscribe message failed: " + errorText(result), true);
    // WeChat then reports the send with subscribe_msg_sent_event: delivered to the app here.
    const events = await postJson(userPath(String(state.current), "subscribe-sent-events"), {});
    setStatus(
      "Subscribe message sent through POST /api/subscribe-messages (msgid " + result.body.msgid + ")" +
        (events.status === 200 ? "; subscribe_msg_sent_event pushed to the app." : "."),
    );
  });

  onSubmit("session", async (form) => {
    const result = await postJson(userPath(String(state.current), "session"), { sessionFrom: form.sessionFrom.value });
    stepStatus("Session entry", result);
  });

  onSubmit("reply", async (form) => {
    if (await sendAsService("Reply", { msgtype: "text", text: { content: form.content.value } })) {
      form.content.value = "";
    }
  });

  onSubmit("service-image", async (form) => {
    const file = form.media.files[0];
    if (!file) return setStatus("Choose a picture first.", true);
    const mediaId = await uploadMedia(file);
    if (await sendAsService("Picture", { msgtype: "image", image: { media_id: mediaId } })) form.reset();
  });

  onSubmit("service-link", async (form) => {
    const link = {
      title: form.title.value,
      description: form.description.value,
      url: form.url.value,
      thumb_url: form.thumbUrl.value,
    };
    if (await sendAsService("Link", { msgtype: "link", link })) form.title.value = "";
  });

  onSubmit("service-page", async (form) => {
    const file = form.cover.files[0];
    if (!file) return setStatus("Choose a cover image first.", true);
    const thumbMediaId = await uploadMedia(file);
    const page = { title: form.title.value, pagepath: form.pagepath.value, thumb_media_id: thumbMediaId };
    if (await sendAsService("Mini program page", { msgtype: "miniprogrampage", miniprogrampage: page })) {
      form.title.value = "";
    }
  });

  for (const [id, command] of [["typing-on", "Typing"], ["typing-off", "CancelTyping"]]) {
    $(id).addEventListener("click", async () => {
      const result = await api("/api/typing", { touser: state.current, command });
      const ok = result.status === 200;
      setStatus(ok ? command + " sent through POST /api/typing." : command + " failed: " + errorText(result), !ok);
    });
  }

  // Only the user's own scrolling decides whether the page follows the newest message: the
  // event of the page's own scroll may arrive after an image grew the list, and must not count.
  $("conversation").addEventListener("scroll", () => {
    const list = $("conversation");
    if (list.scrollTop === state.autoScrollTop) return;
    state.pinned = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  });

  async function start() {
    let result;
    try {
      result = await request("/_emulator/config");
    } catch {
      result = { status: 0, body: null };
    }
    if (result.status !== 200) {
      const summary = $("config-summary");
      summary.textContent = result.status === 404
        ? "The emulator is off: start the dev server with WECHAT_EMULATOR=on and open this page on localhost or " +
          "127.0.0.1."
        : "Cannot read the configuration: " +
          (result.status === 0 ? "the dev server does not answer" : errorText(result));
      summary.classList.add("error");
      return;
    }
    state.config = result.body;
    renderSummary();
    $("api-key").value = (state.config && state.config.apiKey) || "";
    $("new-openid").value = randomOpenId();
    const fromHash = /^#user=(.+)$/.exec(location.hash);
    const initial = fromHash ? decodeURIComponent(fromHash[1]) : null;
    if (initial && OPENID.test(initial)) select(initial);
    // The window's "in 58 s" counts down between updates; no request is made for it.
    setInterval(() => {
      if (state.shown !== null) renderWindow(state.shown, Date.now() + state.clockOffset);
    }, 1000);
    void listen();
  }

  void start();
})();
