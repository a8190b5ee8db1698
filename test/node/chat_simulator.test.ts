// The chat simulator page (/_emulator/) end to end in headless Chromium against `npm start`'s
// command: add a user, enter the session and see the welcome text, write as the user, reply
// through /api/messages (from the page and from outside), show typing, send an image, read the
// raw exchanges, and save a screenshot to test/artifacts/. Needs Debian's chromium, which .ci/run
// installs; without it, and only then, this file is skipped with a message saying so.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Browser, chromium, type Page } from "playwright-core";
import { DEV_VARS, ROOT } from "../../scripts/_dev_server.ts";
import { type DevServer, startDevServer } from "./_dev_server.ts";

const CHROMIUM = "/usr/bin/chromium";
// Without the background-networking flags Chromium's own requests fail on a closed network.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = join(ROOT, "test", "artifacts", "chat-simulator.png");
const OPENID = "o_browser_test_user";
const WAIT = { timeout: 10_000 };
const PNG_SIZE = 64;
const PNG = gradientPng(PNG_SIZE);

const available = existsSync(CHROMIUM);
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

  beforeAll(async () => {
    server = await startDevServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("pageerror", (err) => void problems.push(`page error: ${err.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
    });
    page.on("dialog", (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 20_000);

  const conversation = () => page.locator("#conversation");
  const fromService = (text: string) => conversation().locator(".msg.service", { hasText: text });
  const fromUser = (text: string) => conversation().locator(".msg.user", { hasText: text });

  it("adds a user, who enters the session and gets the welcome text", async () => {
    const response = await page.goto(`${server.url}/_emulator/`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe("kefu-edge · WeChat emulator");
    await expect(page.locator("#config-summary").textContent()).resolves.toContain(DEV_VARS.WECHAT_APPID);

    await page.getByLabel("OpenID").fill(OPENID);
    await page.getByRole("button", { name: "Add user" }).click();
    await page.getByRole("heading", { name: `Conversation with ${OPENID}` }).waitFor(WAIT);

    await page.getByRole("button", { name: "Enter session" }).click();
    await fromService(DEV_VARS.WELCOME_TEXT).waitFor(WAIT);
    await conversation().locator(".event", { hasText: "User entered the session" }).waitFor(WAIT);
  });

  it("types as the user: the push is delivered and answered with transfer_customer_service", async () => {
    const text = "Hi, I would like to change my delivery address";
    await page.getByLabel("Message", { exact: true }).fill(text);
    await page.getByRole("button", { name: "Send as user" }).click();
    await fromUser(text).waitFor(WAIT);
    await expect(page.getByRole("status").textContent()).resolves.toContain("transfer_customer_service");
    await expect(page.locator("#window-status").textContent()).resolves.toContain("5 message(s)");
  });

  it("replies through /api/messages from the page and from outside; shows typing", async () => {
    const reply = "Sure. What is the new address?";
    await page.getByLabel("Reply").fill(reply);
    await page.getByRole("button", { name: "Send reply" }).click();
    await fromService(reply).waitFor(WAIT);

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
  });

  it("sends an image as the user and shows it, fetched through the media proxy", async () => {
    await page.getByLabel("Image").setInputFiles({ name: "photo.png", mimeType: "image/png", buffer: PNG });
    await page.getByRole("button", { name: "Send image" }).click();
    const image = conversation().locator(".msg.user img");
    await image.waitFor(WAIT);
    await page.waitForFunction(
      (size) => {
        const img = document.querySelector<HTMLImageElement>("#conversation .msg.user img");
        return img !== null && img.complete && img.naturalWidth === size && img.src.startsWith("blob:");
      },
      PNG_SIZE,
      WAIT,
    );
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

  it("lists the raw pushes and API calls, with the token and secret redacted, and saves a screenshot", async () => {
    const log = page.locator("#exchanges");
    await log.locator("summary", { hasText: "push: event user_enter_tempsession" }).first().waitFor(WAIT);
    await log.locator("summary", { hasText: "push: text" }).first().waitFor(WAIT);
    await log.locator("summary", { hasText: "POST /cgi-bin/message/custom/send" }).first().waitFor(WAIT);
    const text = (await log.textContent()) ?? "";
    expect(text).toContain("access_token=[redacted]");
    expect(text).not.toContain(DEV_VARS.WECHAT_SECRET);

    // Open the latest push so the screenshot shows a raw exchange.
    await log.locator("summary", { hasText: "push: text" }).first().click();
    await mkdir(join(ROOT, "test", "artifacts"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(problems).toEqual([]);
  });
});

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
