// The chat page (/_emulator/) end to end in headless Chromium against `npm start`'s command: add a
// user, see the code a send would get before they write (40003), enter the session and see the
// welcome text, use up the session's window (45047, shown in the page and the exchange log), write
// as the user (the demo bot answers), reply through /api/messages (from the page and from outside), show typing, send an
// image and a mini-program card as the user and a picture, a link and a mini-program page as the
// service, read the raw exchanges, open on the one user there is, keep the reply form and the full
// exchange list on a 1400×900 screen, reload without media traffic and land on the newest message,
// and save screenshots at desktop and phone width to test/artifacts/. Needs
// Debian's chromium, which .ci/run installs; without it, and only then, this file is skipped with a
// message saying so.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { DEV_VARS, ROOT } from "../../scripts/_dev_server.ts";
import { DEMO_TEXTS } from "../../dev/demo_bot.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";
import { CHROMIUM, chromiumAvailable, launchChromium, watchPage } from "./_browser.ts";

const ARTIFACTS = join(ROOT, "test", "artifacts");
const OPENID = "o_browser_test_user";
const WAIT = { timeout: 10_000 };
const PNG_SIZE = 64;
const PNG = gradientPng(PNG_SIZE);
const DESKTOP = { width: 1400, height: 1000 };
const PHONE = { width: 390, height: 844 };

const available = chromiumAvailable;
if (!available) {
  console.warn(
    `SKIPPED chat simulator browser test: ${CHROMIUM} is not installed (.ci/run installs it with apt-get install chromium)`,
  );
}

describe.skipIf(!available)("chat simulator page in headless Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  // Answers the test provokes on purpose (sends WeChat refuses): [status, path].
  const refused: string[] = [];

  const watch = (target: Page) => {
    // Chromium reports every 4xx/5xx fetch on the console; those are checked as `refused` below.
    watchPage(target, problems);
    target.on("response", (response) => {
      if (response.status() >= 400) refused.push(`${response.status()} ${new URL(response.url()).pathname}`);
    });
  };

  beforeAll(async () => {
    server = await startDevServer();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: DESKTOP });
    watch(page);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 20_000);

  const conversation = (on: Page = page) => on.locator("#conversation");
  const fromService = (text: string) => conversation().locator(".msg.service", { hasText: text });
  const fromUser = (text: string) => conversation().locator(".msg.user", { hasText: text });
  const windowStatus = () => page.locator("#window-status");
  const status = () => page.getByRole("status");
  const exchange = (text: string) => page.locator("#exchanges summary", { hasText: text }).first();
  // The less frequent actions sit behind "More as the user" and "More as the service".
  const openMore = async (who: "user" | "service", on: Page = page) => {
    const more = on.locator(`#more-${who}`);
    if (!(await more.evaluate((details) => (details as HTMLDetailsElement).open))) {
      await more.locator("summary").click();
    }
  };
  const sendReply = async (text: string) => {
    await page.getByLabel("Reply").fill(text);
    await page.getByRole("button", { name: "Send reply" }).click();
  };
  const inbox = async () =>
    (await (await fetch(`${server.url}/_emulator/users/${OPENID}/inbox`)).json()) as {
      window: { kind: string; remaining: number; expiresAt: number } | null;
    };
  const mediaCalls = async () => {
    const { exchanges } = (await (await fetch(`${server.url}/_emulator/exchanges`)).json()) as {
      exchanges: { title: string }[];
    };
    return exchanges.filter((x) => x.title === "GET /cgi-bin/media/get").length;
  };

  it("serves the page as static files with a strict policy, and reads the configuration", async () => {
    const response = await page.goto(`${server.url}/_emulator/`);
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    expect(headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(headers["cache-control"]).toBe("no-store");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["content-security-policy"]).toContain("default-src 'none'; script-src 'self'");
    expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    await expect(page.title()).resolves.toBe("kefu-edge · WeChat emulator");
    await page.locator("#config-summary", { hasText: DEV_VARS.WECHAT_APPID }).waitFor(WAIT);
    await expect(page.getByLabel("API key").inputValue()).resolves.toBe(DEV_VARS.API_KEY);
  });

  it("before the user writes, says that a send answers 40003, and the log shows WeChat's errcode", async () => {
    await page.getByLabel("OpenID").fill(OPENID);
    await page.getByRole("button", { name: "Add user" }).click();
    await page.getByRole("heading", { name: `Conversation with ${OPENID}` }).waitFor(WAIT);
    await windowStatus().filter({ hasText: "sends answer 40003" }).waitFor(WAIT);
    await sendReply("Hello?");
    await status().filter({ hasText: "errcode 40003" }).waitFor(WAIT);
    await exchange("POST /cgi-bin/message/custom/send").locator(".failed", { hasText: "errcode 40003" }).waitFor(WAIT);
  });

  it("the user enters the session, gets the welcome text; the session's window shows its count and end", async () => {
    await openMore("user");
    await page.getByRole("button", { name: "Enter session" }).click();
    await fromService(DEV_VARS.WELCOME_TEXT).waitFor(WAIT);
    await conversation().locator(".event", { hasText: "User entered the session" }).waitFor(WAIT);
    // Entering the session allows 2 messages within a minute; the welcome text used one.
    await windowStatus().filter({ hasText: "1 of 2 messages left, until" }).waitFor(WAIT);
    const shown = await windowStatus().locator("time").getAttribute("datetime");
    expect(shown).toBe(new Date((await inbox()).window!.expiresAt).toISOString());
    await expect(windowStatus().textContent()).resolves.toMatch(/\(in (\d{1,2} s|1 min)\)\.$/);
  });

  it("a used-up window says that sends answer 45047, and the refused send shows errcode 45047", async () => {
    await sendReply("One more thing");
    await fromService("One more thing").waitFor(WAIT);
    await windowStatus().filter({ hasText: "0 of 2 messages left. Sends answer 45047" }).waitFor(WAIT);
    await page.locator("#user-list", { hasText: "window used up: sends answer 45047" }).waitFor(WAIT);
    await sendReply("And another");
    await status().filter({ hasText: "errcode 45047" }).waitFor(WAIT);
    await exchange("POST /cgi-bin/message/custom/send").locator(".failed", { hasText: "errcode 45047" }).waitFor(WAIT);
  });

  it("types as the user: the message opens 5 in 48 h, and the demo bot's answer uses one", async () => {
    const text = "Hi, I would like to change my delivery address";
    await page.getByLabel("Message", { exact: true }).fill(text);
    await page.getByRole("button", { name: "Send as user" }).click();
    await fromUser(text).waitFor(WAIT);
    await status().filter({ hasText: "the app answered success; the user received 1 message" }).waitFor(WAIT);
    await fromService(DEMO_TEXTS.fallback).waitFor(WAIT);
    await windowStatus().filter({ hasText: "4 of 5 messages left, until" }).waitFor(WAIT);
    // The date and time of the window's end, and how far away it is.
    const shown = await windowStatus().locator("time").getAttribute("datetime");
    expect(shown).toBe(new Date((await inbox()).window!.expiresAt).toISOString());
    await expect(windowStatus().textContent()).resolves.toMatch(/\(in 4[78] h \d+ min\)\.$/);
  });

  it("replies through /api/messages from the page and from outside; shows typing", async () => {
    const reply = "Sure. What is the new address?";
    await sendReply(reply);
    await fromService(reply).waitFor(WAIT);

    await openMore("service");
    await page.getByRole("button", { name: "Show typing" }).click();
    await page.locator("#typing").waitFor({ state: "visible", ...WAIT });

    const outside = "Thanks! The order will go to the new address.";
    const sent = await fetch(`${server.url}/api/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_VARS.API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ touser: OPENID, msgtype: "text", text: { content: outside } }),
    });
    expect(sent.status).toBe(200);
    await fromService(outside).waitFor(WAIT);
    // A message ends the typing state.
    await page.locator("#typing").waitFor({ state: "hidden", ...WAIT });
    await windowStatus().filter({ hasText: "2 of 5 messages left" }).waitFor(WAIT);
  });

  it("sends an image as the user and shows it, read from the emulator rather than through the app", async () => {
    const before = await mediaCalls();
    await openMore("user");
    await page.getByLabel("Image").setInputFiles({ name: "photo.png", mimeType: "image/png", buffer: PNG });
    await page.getByRole("button", { name: "Send image" }).click();
    await conversation().locator(".msg.user img").waitFor(WAIT);
    await page.waitForFunction(
      (size) => {
        const img = document.querySelector<HTMLImageElement>("#conversation .msg.user img");
        return img !== null && img.complete && img.naturalWidth === size &&
          new URL(img.src).pathname.startsWith("/_emulator/media/");
      },
      PNG_SIZE,
      WAIT,
    );
    expect(await mediaCalls()).toBe(before);
  });

  it("sends a mini-program card as the user", async () => {
    await openMore("user");
    await page.getByLabel("Mini program card").fill("Order 1024");
    await page.getByLabel("Card page path").fill("pages/order/index?id=1024");
    await page.getByRole("button", { name: "Send card" }).click();
    const card = conversation().locator(".msg.user.card", { hasText: "Order 1024" });
    await card.waitFor(WAIT);
    await expect(card.textContent()).resolves.toContain("pages/order/index?id=1024");
    await status().filter({ hasText: "Mini program card: the app answered success" }).waitFor(WAIT);
    await exchange("push: miniprogrampage").waitFor(WAIT);
  });

  it("the service sends a picture, a link and a mini-program page, each through /api/messages", async () => {
    await openMore("service");
    const upload = async (label: string, name: string) =>
      await page.getByLabel(label).setInputFiles({ name, mimeType: "image/png", buffer: PNG });

    await upload("Picture", "reply.png");
    await page.getByRole("button", { name: "Reply with picture" }).click();
    await status().filter({ hasText: "Picture sent through POST /api/messages." }).waitFor(WAIT);
    await page.waitForFunction(
      (size) =>
        [...document.querySelectorAll<HTMLImageElement>("#conversation .msg.service img")].some((img) =>
          img.complete && img.naturalWidth === size
        ),
      PNG_SIZE,
      WAIT,
    );

    await page.getByLabel("Link", { exact: true }).fill("Track order 1024");
    await page.getByLabel("Link description").fill("Live status");
    await page.getByLabel("Link URL", { exact: true }).fill("https://example.com/orders/1024");
    await page.getByLabel("Link cover URL").fill("https://example.com/cover.png");
    await page.getByRole("button", { name: "Reply with link" }).click();
    await fromService("Track order 1024").waitFor(WAIT);
    await status().filter({ hasText: "Link sent through POST /api/messages." }).waitFor(WAIT);

    await page.getByLabel("Mini program page").fill("Order 1024 details");
    await page.getByLabel("Page path", { exact: true }).fill("pages/order/index?id=1024");
    await upload("Page cover", "cover.png");
    await page.getByRole("button", { name: "Reply with page" }).click();
    await fromService("Order 1024 details").waitFor(WAIT);
    await status().filter({ hasText: "Mini program page sent through POST /api/messages." }).waitFor(WAIT);

    // What the emulated WeChat delivered: the three, in order, with the uploaded media.
    const { inbox: received } = (await (await fetch(`${server.url}/_emulator/users/${OPENID}/inbox`)).json()) as {
      inbox: { kind: string; msgtype?: string; message?: Record<string, string> }[];
    };
    const last = received.filter((e) => e.kind === "message").slice(-3);
    expect(last.map((e) => e.msgtype)).toEqual(["image", "link", "miniprogrampage"]);
    expect(last[0]!.message!.media_id).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(last[1]!.message).toEqual({
      title: "Track order 1024",
      description: "Live status",
      url: "https://example.com/orders/1024",
      thumb_url: "https://example.com/cover.png",
    });
    expect(last[2]!.message).toMatchObject({ title: "Order 1024 details", pagepath: "pages/order/index?id=1024" });
    await exchange("POST /cgi-bin/media/upload").waitFor(WAIT);
  });

  it("lets the user accept a subscribe template, and the service send a subscribe message", async () => {
    await openMore("user");
    await openMore("service");
    await page.getByRole("button", { name: "Answer popup" }).click();
    await conversation().locator(".event", { hasText: "User accepted subscribe template order-shipped (one-time)" })
      .waitFor(WAIT);
    await exchange("push: event subscribe_msg_popup_event").waitFor(WAIT);
    await page.getByLabel("thing1").fill("Order 1024 shipped");
    await page.getByRole("button", { name: "Send subscribe message" }).click();
    const card = conversation().locator(".msg.service.card", { hasText: "Subscribe message" });
    await card.waitFor(WAIT);
    await expect(card.textContent()).resolves.toContain("thing1: Order 1024 shipped");
    await status().filter({ hasText: "subscribe_msg_sent_event pushed to the app" }).waitFor(WAIT);
    await exchange("push: event subscribe_msg_sent_event").waitFor(WAIT);
  });

  it("shows user text as text, never as markup", async () => {
    const hostile = `<img src=x onerror="document.title='pwned'"> & <b>bold</b>`;
    await page.getByLabel("Message", { exact: true }).fill(hostile);
    await page.getByRole("button", { name: "Send as user" }).click();
    await fromUser("onerror").waitFor(WAIT);
    await expect(fromUser("onerror").first().textContent()).resolves.toContain(hostile);
    await expect(page.locator("#conversation b").count()).resolves.toBe(0);
    await expect(page.title()).resolves.toBe("kefu-edge · WeChat emulator");
  });

  it("lists the raw pushes and API calls, with the token and secret redacted", async () => {
    const log = page.locator("#exchanges");
    await exchange("push: event user_enter_tempsession").waitFor(WAIT);
    await exchange("push: text").waitFor(WAIT);
    const text = (await log.textContent()) ?? "";
    expect(text).toContain("access_token=[redacted]");
    expect(text).not.toContain(DEV_VARS.WECHAT_SECRET);
    // An entry opens on the push as it went out and the app's answer.
    await exchange("push: text").click();
    await log.locator("details[open] pre", { hasText: "success" }).first().waitFor(WAIT);
  });

  it("opened with one user, shows that user's conversation", async () => {
    const fresh = await browser.newPage({ viewport: DESKTOP });
    watch(fresh);
    try {
      await fresh.goto(`${server.url}/_emulator/`);
      await fresh.getByRole("heading", { name: `Conversation with ${OPENID}` }).waitFor(WAIT);
      await conversation(fresh).locator(".msg.user", { hasText: "change my delivery address" }).waitFor(WAIT);
      await expect(fresh.locator(`#user-list button[aria-current="true"]`).textContent()).resolves.toContain(OPENID);
    } finally {
      await fresh.close();
    }
  });

  it("on a 1400×900 screen, shows the reply form without scrolling, and the raw exchanges fill their panel", async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    try {
      const reply = await page.getByLabel("Reply").boundingBox();
      expect(reply).not.toBeNull();
      expect(reply!.y + reply!.height).toBeLessThanOrEqual(900);
      expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeLessThanOrEqual(900);
      const boxes = await page.evaluate(() => {
        const panel = document.querySelector(".panel.log")!.getBoundingClientRect();
        const list = document.querySelector("#exchanges")!.getBoundingClientRect();
        return { panelBottom: panel.bottom, listBottom: list.bottom, listHeight: list.height };
      });
      // The list runs to the bottom of a panel as tall as the window allows (no 80vh cap).
      expect(boxes.panelBottom).toBeGreaterThan(900 - 40);
      expect(boxes.panelBottom - boxes.listBottom).toBeLessThan(20);
      expect(boxes.listHeight).toBeGreaterThan(0.8 * 900 - 150);
      // A Chinese face in the font stack.
      const font = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
      expect(font).toMatch(/PingFang SC/);
      expect(font).toMatch(/Noto Sans CJK SC/);
    } finally {
      await page.setViewportSize(DESKTOP);
    }
  });

  it("keeps one request open while nothing happens, instead of polling", async () => {
    await page.waitForTimeout(1000); // the end of the last step's changes
    const asked: string[] = [];
    const onRequest = (request: { url(): string }) => void asked.push(new URL(request.url()).pathname);
    page.on("request", onRequest);
    await page.waitForTimeout(3000);
    page.off("request", onRequest);
    expect(asked).toEqual([]);
  });

  it("reloads without a media call per image, and lands on the newest message once images load", async () => {
    // Enough messages that the conversation scrolls.
    for (let i = 1; i <= 6; i++) {
      const res = await fetch(`${server.url}/_emulator/users/${OPENID}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: `Line ${i} of a long conversation` }),
      });
      expect(res.status).toBe(200);
    }
    // The newest message is an image: it gets its height only once it has loaded.
    const image = await fetch(`${server.url}/_emulator/users/${OPENID}/images`, {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: new Uint8Array(PNG),
    });
    expect(image.status).toBe(200);
    await fromUser("Line 6 of a long conversation").waitFor(WAIT);
    await page.waitForFunction(
      () => document.querySelectorAll("#conversation .msg.user img").length === 3,
      undefined,
      WAIT,
    );
    const before = await mediaCalls();
    const mediaRequests: string[] = [];
    page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/api/media")) mediaRequests.push(request.url());
    });
    await page.reload();
    await fromUser("Line 6 of a long conversation").waitFor(WAIT);
    expect(await scrolledOnceImagesLoad(page)).toEqual({ overflows: true, atEnd: true });
    expect(mediaRequests).toEqual([]);
    expect(await mediaCalls()).toBe(before);
  });

  it("saves screenshots at desktop and phone width; at 390 px nothing scrolls sideways", async () => {
    await exchange("push: text").click();
    await page.screenshot({ path: join(ARTIFACTS, "chat-simulator-desktop.png"), fullPage: true });
    const phone = await browser.newPage({ viewport: PHONE });
    watch(phone);
    try {
      await phone.goto(`${server.url}/_emulator/#user=${OPENID}`);
      await conversation(phone).locator(".msg.user", { hasText: "Line 6 of a long conversation" }).waitFor(WAIT);
      // A fresh browser has no image cached: they load after the conversation is drawn.
      expect(await scrolledOnceImagesLoad(phone)).toEqual({ overflows: true, atEnd: true });
      const width = await phone.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        view: document.documentElement.clientWidth,
      }));
      expect(width.view).toBe(PHONE.width);
      expect(width.page).toBeLessThanOrEqual(width.view);
      await phone.screenshot({ path: join(ARTIFACTS, "chat-simulator-phone.png"), fullPage: true });
    } finally {
      await phone.close();
    }
    expect(existsSync(join(ARTIFACTS, "chat-simulator-desktop.png"))).toBe(true);
    expect(existsSync(join(ARTIFACTS, "chat-simulator-phone.png"))).toBe(true);
  });

  it("shows a message type it does not know as such, and a closed window as 45015", async () => {
    const other = await browser.newPage({ viewport: DESKTOP });
    watch(other);
    try {
      // The dev server answers as usual; the page is handed a type from a newer emulator, and a
      // window that has closed.
      await other.route("**/_emulator/updates?*", async (route) => {
        const response = await route.fetch().catch(() => undefined);
        if (response === undefined) return; // the page closed while it waited
        const body = await response.json();
        if (body.conversation !== null) {
          body.conversation.window = null;
          body.conversation.entries.push({
            from: "service",
            kind: "message",
            msgtype: "music",
            message: { title: "A song" },
            at: body.now,
          });
        }
        await route.fulfill({ response, json: body });
      });
      await other.goto(`${server.url}/_emulator/#user=${OPENID}`);
      const unknown = conversation(other).locator(".msg.service.unknown", { hasText: "Unknown message type “music”" });
      await unknown.waitFor(WAIT);
      await expect(unknown.textContent()).resolves.toContain('"title": "A song"');
      await other.locator("#window-status", { hasText: "Sends answer 45015" }).waitFor(WAIT);
    } finally {
      await other.close();
    }
  });

  it("met no page error, and no failed request but the two refused sends", () => {
    expect(problems).toEqual([]);
    expect(refused).toEqual(["502 /api/messages", "502 /api/messages"]);
  });
});

// Waits until every image of the conversation has loaded, then says whether the conversation
// overflows its box and is scrolled to its end (the newest message).
async function scrolledOnceImagesLoad(on: Page): Promise<{ overflows: boolean; atEnd: boolean }> {
  await on.waitForFunction(
    () => {
      const images = [...document.querySelectorAll<HTMLImageElement>("#conversation img")];
      return images.length >= 3 && images.every((img) => img.complete && img.naturalWidth > 0);
    },
    undefined,
    WAIT,
  );
  return await on.locator("#conversation").evaluate((list) => ({
    overflows: list.scrollHeight > list.clientHeight,
    atEnd: list.scrollHeight - list.scrollTop - list.clientHeight <= 2,
  }));
}

// A square RGB PNG with a gradient, so the screenshot shows the image the user sent.
function gradientPng(size: number): Buffer {
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3); // each row starts with filter type 0
    for (let x = 0; x < size; x++) rows.set([40 + 3 * x, 120 + y, 200], row + 1 + x * 3);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
