// What the browser tests share: Debian's Chromium, launched headless on a closed network, and a
// watch on a page for what a user would see go wrong (script errors, console errors, dialogs).
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

/** Debian's chromium (.ci/run installs it); the browser tests are skipped without it. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether {@link CHROMIUM} is installed. */
export const chromiumAvailable: boolean = existsSync(CHROMIUM);

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

/** Launches {@link CHROMIUM} headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/**
 * Records in `problems` every page error, console error (but Chromium's line for a 4xx/5xx
 * answer, which tests check themselves) and dialog of `page`; dialogs are dismissed.
 */
export function watchPage(page: Page, problems: string[]): void {
  page.on("pageerror", (err) => void problems.push(`page error: ${err.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !/^Failed to load resource: the server responded/.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
}
