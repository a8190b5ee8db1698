// `npm start`: `wrangler dev` on dev/worker.ts in emulator mode, with the agent inbox's and the chat
// page's files as assets, local KV, on loopback, offline, with no Cloudflare account. The dev variables live here, and only here: they
// reach wrangler as `--var` flags, so no deployment of wrangler.toml ever carries them.
// `npm start -- --fake-model` also starts an offline OpenAI-compatible model on loopback and
// points the AI bot at it (BOT_URL), so the bot's loop runs with no account anywhere.
import { type ChildProcess, spawn } from "node:child_process";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { createFakeChatModel } from "../src/testing/mod.ts";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Port of `npm start` unless `--port` says otherwise. */
export const DEFAULT_PORT = 8787;
/** The only address the dev server listens on. */
export const HOST = "127.0.0.1";

/** The agent inbox's dev login (printed in the banner): name `dev`, this password. */
export const DEV_INBOX_AGENT = { name: "dev", password: "dev-only-inbox-password" } as const;

/**
 * The `INBOX_AGENTS` line of {@link DEV_INBOX_AGENT}: PBKDF2-SHA-256, 100000 iterations, a 16-byte
 * salt and a 32-byte key, base64url without padding. To make it again (any salt will do):
 * `printf dev-only-inbox-password | npm run -s inbox:agent -- dev`.
 */
export const DEV_INBOX_AGENT_LINE =
  "dev:pbkdf2-sha256$100000$6k3zlCg7NBEg6hX5wCCGkw$Uo5l3KAbOnyYXQ7NfRO0G1s-rzLAfL83hJu4NQ-S5oQ";

/**
 * The dev server's variables. Every value is a placeholder that works only against the
 * in-process emulator: `WECHAT_EMULATOR=on` makes the emulator the upstream, so nothing
 * here can reach WeChat.
 */
export const DEV_VARS = {
  WECHAT_EMULATOR: "on",
  WECHAT_APPID: "wx_dev_emulator",
  WECHAT_SECRET: "dev-only-app-secret",
  WECHAT_TOKEN: "dev-only-push-token",
  WECHAT_AES_KEY: "DevOnlyEncodingAESKeyNotForProductionUse000",
  API_KEY: "dev-only-api-key",
  // The demo bot (dev/demo_bot.ts) answers users, and hands them to the inbox, not to WeChat's tool.
  TRANSFER_TO_KF: "off",
  WELCOME_TEXT: "Welcome! This is the kefu-edge dev server. Write anything; replies come from POST /api/messages.",
  INBOX_AGENTS: DEV_INBOX_AGENT_LINE,
  // Offered by the inbox once a user's window is closed; reaches users who accepted the template.
  INBOX_SUBSCRIBE_TEMPLATE:
    '{"template_id":"dev_inbox_reply","page":"pages/index/index","data":{"thing1":{"value":"{text}"}}}',
} as const;

/** The repository root. */
export const ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The dev entry: the app wrapped with `withEmulator`. */
export const DEV_ENTRY = "dev/worker.ts";
/** The chat page's files (published with `kefu-edge/testing`). */
export const PAGE_ASSETS = "src/testing/dev_server/assets";
/** The deployed worker's static files: the agent inbox's page (`wrangler.toml`'s `[assets]`). */
export const PUBLIC_ASSETS = "public";
/** Where {@link mergeAssets} puts both for `wrangler dev --assets`, one folder per port. */
export const MERGED_ASSETS = ".wrangler/dev-assets";

/**
 * Copies the files of `sources` (folders under `root`) into `target` (emptied first): `wrangler dev`
 * serves one assets folder. A path found in two sources is refused, naming it, rather than one
 * file silently hiding the other.
 *
 * @returns `target`
 * @throws {Error} naming the path both sources have
 */
export function mergeAssets(root: string, sources: readonly string[], target: string): string {
  const seen = new Map<string, string>();
  for (const source of sources) {
    for (const path of filesUnder(join(root, source))) {
      const other = seen.get(path);
      if (other !== undefined) throw new Error(`kefu-edge: ${path} is in both ${other}/ and ${source}/`);
      seen.set(path, source);
    }
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const source of sources) cpSync(join(root, source), target, { recursive: true });
  return target;
}

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1));
}

/** The flag that starts the local fake model and points the AI bot at it. */
export const FAKE_MODEL_FLAG = "--fake-model";
/** The model name the bot asks the fake model for. */
export const FAKE_MODEL_NAME = "kefu-fake-model";

/** What `npm start` was asked for: the port, the fake model, and flags passed through to `wrangler dev`. */
export interface StartOptions {
  port: number;
  /** `--fake-model`: run the AI bot against a local fake model. */
  fakeModel: boolean;
  /** E.g. `--persist-to <dir>` or `--var WELCOME_TEXT:Hi` (later `--var`s win). */
  wranglerFlags: string[];
}

/**
 * Reads `--port N` (or `--port=N`; default `PORT`, else 8787) and `--fake-model`; every other
 * argument is handed to `wrangler dev`.
 */
export function parseStartArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): StartOptions {
  let port = env.PORT === undefined || env.PORT === "" ? DEFAULT_PORT : Number(env.PORT);
  let fakeModel = false;
  const wranglerFlags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--port") port = Number(argv[++i]);
    else if (arg.startsWith("--port=")) port = Number(arg.slice("--port=".length));
    else if (arg === FAKE_MODEL_FLAG) fakeModel = true;
    else wranglerFlags.push(arg);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`Invalid port: ${port}`);
  return { port, fakeModel, wranglerFlags };
}

/** A running fake model: its base URL (`http://127.0.0.1:<port>/v1`). */
export interface RunningFakeModel {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the fake OpenAI-compatible model (`createFakeChatModel`'s demo: it echoes the user and
 * hands complaints and refunds to a person) on a free loopback port.
 */
export async function startFakeModel(): Promise<RunningFakeModel> {
  const model = createFakeChatModel();
  const server = serve({ fetch: (request: Request) => model.fetch(request), hostname: HOST, port: 0 });
  await new Promise<void>((resolveListen, reject) => {
    server.once("listening", () => resolveListen());
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${HOST}:${port}/v1`,
    close: () =>
      new Promise<void>((resolveClose) => {
        (server as unknown as { closeAllConnections(): void }).closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

/**
 * The variables that point the AI bot at the fake model. `TRANSFER_TO_KF` goes off: with the bot
 * it would hand keyword messages to WeChat's own tool, which the emulator does not have.
 */
export function fakeModelVars(url: string): string[] {
  return ["--var", `BOT_URL:${url}`, "--var", `BOT_MODEL:${FAKE_MODEL_NAME}`, "--var", "TRANSFER_TO_KF:off"];
}

/** The assets folder `npm start` serves on `port` (see {@link mergeAssets}). */
export function assetsFolder(port: number): string {
  return `${MERGED_ASSETS}/${port}`;
}

/** The `wrangler dev` arguments for `options`. */
export function wranglerArgs(options: StartOptions): string[] {
  return [
    "dev",
    DEV_ENTRY,
    "--assets",
    assetsFolder(options.port),
    "--local",
    "--ip",
    HOST,
    "--port",
    String(options.port),
    "--show-interactive-dev-session=false",
    ...Object.entries(DEV_VARS).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ...options.wranglerFlags,
  ];
}

// Cloudflare credentials in the caller's environment are not passed on: local dev needs
// none, and wrangler must not try to use them. Telemetry, error reports, the update check
// (printed with the banner) and the `Request.cf` download are off, so nothing leaves the machine.
const DROPPED = [
  "CLOUDFLARE_API_TOKEN",
  "CLOUDFLARE_API_KEY",
  "CLOUDFLARE_EMAIL",
  "CLOUDFLARE_ACCOUNT_ID",
  "CF_API_TOKEN",
];
const OFFLINE = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/** The environment wrangler runs with. */
export function wranglerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, ...OFFLINE };
  for (const name of DROPPED) delete out[name];
  return out;
}

/** Whether `port` can be bound on the loopback address right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resolvePort(true)));
  });
}

/**
 * Polls `${url}/health` until it answers 200, the child exits, or `timeoutMs` passes.
 *
 * @returns `true` when the server is up
 */
export async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** What `npm start` prints once the server answers (and where the fake model runs, with `--fake-model`). */
export function banner(url: string, fakeModelUrl?: string): string {
  return [
    "",
    "kefu-edge dev server — WeChat emulator mode, local KV, no WeChat account needed",
    "",
    `  Local URL        ${url}`,
    `  Chat simulator   ${url}/_emulator/`,
    `  Agent inbox      ${url}/inbox/   (dev login: ${DEV_INBOX_AGENT.name} / ${DEV_INBOX_AGENT.password})`,
    `  Dev API key      ${DEV_VARS.API_KEY}   (dev only: never use these values in production)`,
    ...(fakeModelUrl === undefined ? [] : [`  AI bot           answers from a local fake model at ${fakeModelUrl}`]),
    "",
    "Next: open the chat simulator, or try the quick start (docs/quick-start.md):",
    `  curl -s ${url}/health`,
    "",
  ].join("\n");
}

/**
 * Starts `wrangler dev`, prints the banner when the server answers, forwards SIGINT and
 * SIGTERM, and resolves with wrangler's exit code.
 */
export async function start(argv: readonly string[]): Promise<number> {
  const options = parseStartArgs(argv);
  const url = `http://${HOST}:${options.port}`;
  if (!(await portIsFree(options.port))) {
    console.error(
      `kefu-edge: port ${options.port} is in use; stop the other server or run: npm start -- --port <free port>`,
    );
    return 1;
  }
  const assets = resolve(ROOT, assetsFolder(options.port));
  try {
    mergeAssets(ROOT, [PUBLIC_ASSETS, PAGE_ASSETS], assets);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  // The fake model's variables go first: a --var given on the command line still wins.
  const model = options.fakeModel ? await startFakeModel() : undefined;
  const flags = model === undefined
    ? options
    : { ...options, wranglerFlags: [...fakeModelVars(model.url), ...options.wranglerFlags] };
  const cli = createRequire(import.meta.url).resolve("wrangler");
  // The same Node flags wrangler's own bin script passes.
  const child = spawn(process.execPath, ["--no-warnings", "--experimental-vm-modules", cli, ...wranglerArgs(flags)], {
    cwd: ROOT,
    env: wranglerEnv(),
    stdio: "inherit",
  });
  const exited = new Promise<number>((resolveExit) =>
    child.once("exit", (code, signal) => resolveExit(code ?? (signal === null ? 0 : 1)))
  );
  const forward = (signal: NodeJS.Signals) => () => void child.kill(signal);
  process.on("SIGINT", forward("SIGINT"));
  process.on("SIGTERM", forward("SIGTERM"));
  if (await waitForHealth(url, child, 60_000)) console.log(banner(url, model?.url));
  else if (child.exitCode === null) console.error(`kefu-edge: ${url}/health did not answer within 60 s`);
  const code = await exited;
  await model?.close();
  rmSync(assets, { recursive: true, force: true });
  return code;
}
