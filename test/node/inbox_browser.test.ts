// The agent inbox (/inbox/) end to end in headless Chromium against `npm start`'s command: sign in
// with the dev agent's password (a wrong one refused and said), see a user's first message arrive
// live, see a user who asked for a person waiting and first, take over so that the demo bot stays
// quiet, reply and have the emulated user receive it, read the window's count, have the reply box
// refuse once the window is used up (before any call), show hostile text as text, catch up after
// the live socket drops, and lay out in one column at 390 px. Screenshots at 1400 and 390 px go to
// test/artifacts/inbox-*.png. Needs Debian's chromium, like the chat simulator's test; without it,
// and only then, this file is skipped with a message saying so.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { DEV_INBOX_AGENT, DEV_VARS, ROOT } from "../../scripts/_dev_server.ts";
import { DEMO_TEXTS } from "../../dev/demo_bot.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";
import { CHROMIUM, chromiumAvailable, launchChromium, watchPage } from "./_browser.ts";

const ARTIFACTS = join(ROOT, "test", "artifacts");
const WAIT = { timeout: 10_000 };
const LIVE = { timeout: 5_000 };
const DESKTOP = { width: 1400, height: 900 };
const PHONE = { width: 390, height: 844 };
const ASKS = "o_inbox_asks_for_person";
const LATER = "o_inbox_writes_later";
const HOSTILE_USER = "o_inbox_hostile";
const HOSTILE = "<img src=x onerror=alert(1)>";
const COMPOSER = "o_inbox_composer";
const HELD = "o_inbox_held_by_bob";
// A 1×1 PNG, for the image and the card's thumbnail.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

const available = chromiumAvailable;
if (!available) {
  console.warn(
    `SKIPPED inbox browser test: ${CHROMIUM} is not installed (.ci/run installs it with apt-get install chromium)`,
  );
}

interface Received {
  kind: string;
  msgtype?: string;
  command?: string;
  message?: { content?: string; title?: string; pagepath?: string };
}

describe.skipIf(!available)("agent inbox in headless Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  /** Paths of the page's requests to the inbox's API, in order. */
  const calls: string[] = [];

  const watch = (target: Page) => {
    watchPage(target, problems);
    target.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith("/inbox/api/")) calls.push(`${request.method()} ${url.pathname}`);
    });
  };

  beforeAll(async () => {
    server = await startDevServer();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: DESKTOP });
    // The page's sockets, so that a test can drop one as a network would.
    await context.addInitScript(() => {
      const Native = WebSocket;
      const sockets: WebSocket[] = [];
      Object.assign(globalThis, { __sockets: sockets });
      globalThis.WebSocket = class extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(url, protocols);
          sockets.push(this);
        }
      };
    });
    page = await context.newPage();
    watch(page);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 20_000);

  const userWrites = async (openId: string, text: string) => {
    const res = await fetch(`${server.url}/_emulator/users/${openId}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text }),
    });
    expect(res.status).toBe(200);
  };
  const received = async (openId: string) =>
    (await (await fetch(`${server.url}/_emulator/users/${openId}/inbox`)).json()) as {
      inbox: Received[];
      window: { kind: string; remaining: number; expiresAt: number } | null;
    };
  const textsReceived = async (openId: string) =>
    (await received(openId)).inbox.filter((e) => e.kind === "message").map((e) => e.message?.content);
  const item = (openId: string, on: Page = page) => on.locator(`#conversations button[data-open-id="${openId}"]`);
  const entry = (text: string) => page.locator("#entries li", { hasText: text });
  const reply = async (text: string) => {
    await page.locator("#reply-text").fill(text);
    await page.locator("#reply-text").press("Enter");
  };

  it("refuses a wrong password and says so; the right one lands on the inbox", async () => {
    await page.goto(`${server.url}/inbox/`);
    expect(new URL(page.url()).pathname).toBe("/inbox/login");
    await page.getByLabel("Name").fill(DEV_INBOX_AGENT.name);
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/inbox\/login\?error=invalid$/, WAIT);
    await page.getByRole("alert").filter({ hasText: "Wrong name or password." }).waitFor(WAIT);

    await page.getByLabel("Name").fill(DEV_INBOX_AGENT.name);
    await page.getByLabel("Password").fill(DEV_INBOX_AGENT.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${server.url}/inbox/`, WAIT);
    await page.locator("#agent", { hasText: `Signed in as ${DEV_INBOX_AGENT.name}` }).waitFor(WAIT);
    await page.locator("#live", { hasText: /^live$/ }).waitFor(WAIT);
  });

  it("shows a user's first message within seconds, without a reload", async () => {
    await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
    await userWrites(ASKS, "Hello from the simulator");
    await item(ASKS).waitFor(LIVE);
    // The demo bot's answer is the conversation's last message now.
    await item(ASKS).locator(".preview", { hasText: DEMO_TEXTS.greeting.slice(0, 40) }).waitFor(LIVE);
    expect(await page.evaluate(() => (globalThis as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
  });

  it("a user who writes 转人工 waits for a person: highlighted and listed first", async () => {
    await userWrites(ASKS, "转人工");
    expect((await textsReceived(ASKS)).at(-1)).toBe(DEMO_TEXTS.handoff);
    // Another user writes after: the most recent, yet listed after the one waiting.
    await userWrites(LATER, "What time do you open?");
    await item(LATER).waitFor(LIVE);
    const first = page.locator("#conversations > li").first();
    await first.locator(`button[data-open-id="${ASKS}"]`).waitFor(LIVE);
    await expect(first.getAttribute("class")).resolves.toBe("waiting");
    await expect(first.locator(".badge.state").textContent()).resolves.toBe("waiting");
    const colours = await page.evaluate(([waiting, other]) => {
      const colour = (openId: string) =>
        getComputedStyle(document.querySelector(`button[data-open-id="${openId}"]`)!).backgroundColor;
      return [colour(waiting!), colour(other!)];
    }, [ASKS, LATER]);
    expect(colours[0]).not.toBe(colours[1]);
  });

  it("once the agent takes over, the user's next message gets no bot reply", async () => {
    await item(ASKS).click();
    await page.getByRole("heading", { name: ASKS }).waitFor(WAIT);
    await entry("Waiting for a person (user asked for a person)").waitFor(WAIT);
    await page.getByRole("button", { name: "Take over" }).click();
    await page.locator("#chat-state", { hasText: `human · ${DEV_INBOX_AGENT.name}` }).waitFor(WAIT);
    await entry(`${DEV_INBOX_AGENT.name} took over`).waitFor(WAIT);
    const before = (await textsReceived(ASKS)).length;
    await userWrites(ASKS, "Are you there?");
    await entry("Are you there?").waitFor(LIVE);
    expect((await textsReceived(ASKS)).length).toBe(before);
  });

  it("the agent's reply reaches the user, and the window badge counts it", async () => {
    await reply("Yes, I am here. How can I help?");
    await page.locator("#chat-status", { hasText: "Reply sent." }).waitFor(WAIT);
    expect((await textsReceived(ASKS)).at(-1)).toBe("Yes, I am here. How can I help?");
    await page.locator("#entries li.msg.out", { hasText: "Yes, I am here." }).locator(".who", {
      hasText: DEV_INBOX_AGENT.name,
    }).waitFor(WAIT);
    // The user's last message opened 5 in 48 h; the reply used one.
    const { window } = await received(ASKS);
    expect(window).toMatchObject({ kind: "message", remaining: 4 });
    await page.locator("#chat-window", { hasText: /^4 of 5 left · 4[78] h$/ }).waitFor(WAIT);
    await item(ASKS).locator(".badge.window", { hasText: /^4 of 5 left · 4[78] h$/ }).waitFor(WAIT);
  });

  it("once the window is used up, the reply box says so and refuses before any call", async () => {
    for (let i = 1; i <= 4; i++) {
      await reply(`Reply ${i} of 4`);
      await entry(`Reply ${i} of 4`).waitFor(WAIT);
    }
    expect((await received(ASKS)).window?.remaining).toBe(0);
    await page.locator("#chat-window", { hasText: /^0 of 5 left/ }).waitFor(WAIT);
    await page.locator("#window-note", { hasText: "the replies allowed since the user's last message are used up" })
      .waitFor(WAIT);
    await expect(page.locator("#reply-text").isDisabled()).resolves.toBe(true);
    const sends = calls.filter((c) => c === "POST /inbox/api/messages").length;
    // Submitted anyway, with a text (as a stale page would): nothing is sent.
    await page.evaluate(() => {
      (document.getElementById("reply-text") as HTMLTextAreaElement).value = "One more, past the limit";
      (document.getElementById("reply") as HTMLFormElement).requestSubmit();
    });
    await page.locator("#chat-status", { hasText: "Not sent: No replies left" }).waitFor(WAIT);
    expect(calls.filter((c) => c === "POST /inbox/api/messages").length).toBe(sends);
    expect((await received(ASKS)).window?.remaining).toBe(0);
  });

  it("with the window used up, offers the subscribe message, which a user who accepted the template receives", async () => {
    const accepted = await fetch(`${server.url}/_emulator/users/${ASKS}/subscriptions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ templateId: "dev_inbox_reply" }),
    });
    expect(accepted.status).toBe(200);
    await page.locator("#subscribe").waitFor({ state: "visible", ...WAIT });
    await page.locator("#subscribe-text").fill("您的退款已经处理好了");
    await page.getByRole("button", { name: "Send a subscribe message instead" }).click();
    await page.locator("#chat-status", { hasText: "Subscribe message sent." }).waitFor(WAIT);
    const delivered = (await received(ASKS)).inbox.filter((e) => e.kind === "subscribe") as unknown as {
      templateId: string;
      data: Record<string, { value: string }>;
    }[];
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({
      templateId: "dev_inbox_reply",
      data: { thing1: { value: "您的退款已经处理好了" } },
    });
    // Still no customer-service message past the window.
    expect((await received(ASKS)).window?.remaining ?? 0).toBe(0);
  });

  it("shows a user's markup as text: no image made of it, no script run", async () => {
    await userWrites(HOSTILE_USER, HOSTILE);
    await item(HOSTILE_USER).click();
    await entry(HOSTILE).first().waitFor(WAIT);
    await expect(page.locator("#entries li.msg.user .text").first().textContent()).resolves.toBe(HOSTILE);
    await expect(page.locator("#entries img").count()).resolves.toBe(0);
    await expect(page.locator("#conversations img").count()).resolves.toBe(0);
    expect(problems.filter((p) => p.startsWith("dialog"))).toEqual([]);
  });

  it("after the live socket drops, catches up: a message sent meanwhile shows once", async () => {
    const opened = await page.evaluate(() => (globalThis as unknown as { __sockets: WebSocket[] }).__sockets.length);
    await page.evaluate(() => (globalThis as unknown as { __sockets: WebSocket[] }).__sockets.at(-1)!.close());
    await page.locator("#live", { hasText: "reconnecting…" }).waitFor(WAIT);
    await userWrites(HOSTILE_USER, "Written while the inbox was offline");
    await page.locator("#live", { hasText: /^live$/ }).waitFor(WAIT);
    await entry("Written while the inbox was offline").waitFor(WAIT);
    // The demo bot's answer to it too, then nothing more comes.
    await entry(DEMO_TEXTS.fallback).nth(1).waitFor(WAIT);
    await page.waitForTimeout(1000);
    await expect(entry("Written while the inbox was offline").count()).resolves.toBe(1);
    const seqs = await page.locator("#entries li").evaluateAll((items) =>
      items.map((li) => Number((li as HTMLElement).dataset.seq))
    );
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(await page.evaluate(() => (globalThis as unknown as { __sockets: WebSocket[] }).__sockets.length))
      .toBe(opened + 1);
  });

  it("the reply box: a long text's bytes and parts, typing shown once, an image and a card the user receives", async () => {
    await userWrites(COMPOSER, "Can you send me the product page?");
    await item(COMPOSER).click();
    await page.getByRole("heading", { name: COMPOSER }).waitFor(WAIT);
    await page.getByRole("button", { name: "Take over" }).click();
    await page.locator("#chat-state", { hasText: `human · ${DEV_INBOX_AGENT.name}` }).waitFor(WAIT);
    const box = page.locator("#reply-text");
    // Typing key by key shows "typing…" to the user once (WeChat shows it 15 s).
    await box.pressSequentially("您好，", { delay: 50 });
    await expect.poll(async () => (await received(COMPOSER)).inbox.filter((e) => e.kind === "typing").length, WAIT)
      .toBe(1);
    await box.pressSequentially("马上发给您", { delay: 50 });
    // 700 Chinese characters: 2100 bytes, over one message's 2048, sent as two.
    await box.fill("好".repeat(700));
    await page.locator("#bytes", { hasText: "2100 / 2048 bytes" }).waitFor(WAIT);
    await page.locator("#parts", { hasText: /^Sent as 2 messages/ }).waitFor(WAIT);
    await expect(page.locator("#part-list li").count()).resolves.toBe(2);
    await box.fill("");
    await page.locator("#bytes", { hasText: "0 / 2048 bytes" }).waitFor(WAIT);
    expect((await received(COMPOSER)).inbox.filter((e) => e.kind === "typing" && e.command === "Typing").length)
      .toBe(1);

    await page.locator("#image-file").setInputFiles({ name: "photo.png", mimeType: "image/png", buffer: PNG });
    await expect.poll(async () => (await received(COMPOSER)).inbox.some((e) => e.msgtype === "image"), WAIT).toBe(true);
    await page.locator("#card-box summary").click();
    await page.locator("#card-title").fill("新品上市");
    await page.locator("#card-path").fill("pages/product/index?id=42");
    await page.locator("#card-thumb").setInputFiles({ name: "thumb.png", mimeType: "image/png", buffer: PNG });
    await page.getByRole("button", { name: "Send card" }).click();
    await expect.poll(
      async () => (await received(COMPOSER)).inbox.find((e) => e.msgtype === "miniprogrampage")?.message,
      WAIT,
    ).toMatchObject({ title: "新品上市", pagepath: "pages/product/index?id=42" });
    // Both are in the history as the agent's.
    await page.locator("#entries li.msg.out", { hasText: "新品上市" }).waitFor(WAIT);
  });

  it("taking over what another agent holds says who has it, and changes nothing", async () => {
    await userWrites(HELD, "Hello");
    const bob = await fetch(`${server.url}/api/users/${HELD}/handoff`, {
      method: "PUT",
      headers: { authorization: `Bearer ${DEV_VARS.API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ state: "human", agent: "bob" }),
    });
    expect(bob.status).toBe(200);
    await item(HELD).click();
    await page.getByRole("heading", { name: HELD }).waitFor(WAIT);
    await page.getByRole("button", { name: "Take over" }).click();
    await page.locator("#chat-status", { hasText: "bob has it." }).waitFor(WAIT);
    await page.locator("#chat-state", { hasText: "human · bob" }).waitFor(WAIT);
    const held = await fetch(`${server.url}/api/users/${HELD}/handoff`, {
      headers: { authorization: `Bearer ${DEV_VARS.API_KEY}` },
    });
    expect(await held.json()).toMatchObject({ state: "human", agent: "bob" });
  });

  it("lays out side by side at 1400 px and in one column at 390 px, with no sideways scroll", async () => {
    await item(ASKS).click();
    await entry("Reply 4 of 4").waitFor(WAIT);
    const desktop = await page.evaluate(() => {
      const list = document.querySelector(".list-pane")!.getBoundingClientRect();
      const chat = document.querySelector(".chat-pane")!.getBoundingClientRect();
      return { listRight: list.right, chatLeft: chat.left, top: Math.abs(list.top - chat.top) };
    });
    expect(desktop.chatLeft).toBeGreaterThan(desktop.listRight);
    expect(desktop.top).toBeLessThan(2);
    // The history scrolls; the reply box stays on the screen, and the page itself does not scroll.
    const box = await page.locator("#reply-text").boundingBox();
    expect(box!.y + box!.height).toBeLessThanOrEqual(DESKTOP.height);
    expect(await page.evaluate(() => document.scrollingElement!.scrollHeight)).toBeLessThanOrEqual(DESKTOP.height);
    const font = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
    expect(font).toMatch(/PingFang SC/);
    expect(font).toMatch(/Noto Sans CJK SC/);
    await page.screenshot({ path: join(ARTIFACTS, "inbox-desktop.png") });

    const phone = await page.context().newPage();
    watch(phone);
    try {
      await phone.setViewportSize(PHONE);
      await phone.goto(`${server.url}/inbox/`);
      await item(ASKS, phone).waitFor(WAIT);
      await expect(phone.locator(".chat-pane").isVisible()).resolves.toBe(false);
      const wide = () => phone.evaluate(() => document.scrollingElement!.scrollWidth);
      expect(await wide()).toBeLessThanOrEqual(PHONE.width);
      // Keyboard: the list's items are buttons.
      await item(ASKS, phone).focus();
      await phone.keyboard.press("Enter");
      await phone.locator("#entries li", { hasText: "Reply 4 of 4" }).waitFor(WAIT);
      await expect(phone.locator(".list-pane").isVisible()).resolves.toBe(false);
      expect(await wide()).toBeLessThanOrEqual(PHONE.width);
      await phone.screenshot({ path: join(ARTIFACTS, "inbox-phone.png") });
      await phone.getByRole("button", { name: "← Conversations" }).click();
      await item(ASKS, phone).waitFor({ state: "visible", ...WAIT });
    } finally {
      await phone.close();
    }
    expect(existsSync(join(ARTIFACTS, "inbox-desktop.png"))).toBe(true);
    expect(existsSync(join(ARTIFACTS, "inbox-phone.png"))).toBe(true);
  });

  it("met no page error, console error or dialog", () => {
    expect(problems).toEqual([]);
  });
});
