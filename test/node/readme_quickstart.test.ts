// The quick start (docs/quick-start.md), run verbatim: `npm start`'s command on a free loopback
// port, every `<!-- run: … -->` block through bash (in one shell, in order, in an empty
// directory), each answer compared with the one the page shows and checked on its own terms
// here. The README's "first five minutes" runs against the same server.
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { banner, DEFAULT_PORT, DEV_VARS, ROOT } from "../../scripts/_dev_server.ts";
import { DEMO_TEXTS } from "../../dev/demo_bot.ts";
import { type DevServer, START_COMMAND, startDevServer } from "./_dev_server.ts";
import { answerDifferences, docSection, quickStart, type RunBlock, runBlocks, runInOneShell } from "./_readme.ts";

const DEFAULT_URL = `http://127.0.0.1:${DEFAULT_PORT}`;
// What a shell needs to run the blocks; a fresh machine gets them from .ci/run.
const TOOLS = ["bash", "curl", "openssl", "base64", "sed", "cmp", "awk", "sort", "tr", "tee", "date"];

interface Ran {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** HTTP statuses of the block's curl calls, in order. */
  statuses: number[];
}

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** The test's own checks of each block: statuses and key fields, from the inputs, not the output. */
const CHECKS: Record<
  string,
  { statuses: number[]; check(ran: Ran, block: RunBlock, dir: string): Promise<void> | void }
> = {
  "health": { statuses: [200], check: ({ stdout }) => expect(JSON.parse(stdout)).toEqual({ status: "ok" }) },
  "verify-url": {
    statuses: [200],
    check: ({ stdout }, block) => expect(stdout).toBe(/echostr=([A-Za-z0-9-]+)/.exec(block.commands)?.[1]),
  },
  "verify-url-forged": {
    statuses: [401],
    check: ({ stdout }) => expect(json(stdout).error.code).toBe("bad_signature"),
  },
  "user-enters-session": {
    statuses: [200],
    check: ({ stdout }) => {
      const body = json(stdout);
      expect(body.push).toMatchObject({ MsgType: "event", Event: "user_enter_tempsession", SessionFrom: "readme" });
      expect(body.delivery).toMatchObject({ ok: true, attempts: 1, status: 200 });
      expect(body.received).toEqual([
        expect.objectContaining({ kind: "message", msgtype: "text", message: { content: DEV_VARS.WELCOME_TEXT } }),
      ]);
    },
  },
  "user-says": {
    statuses: [200],
    check: ({ stdout }, block) => {
      const body = json(stdout);
      expect(body.push.Content).toBe(/"text":"([^"]+)"/.exec(block.commands)?.[1]);
      expect(body.push.MsgId).toMatch(/^\d{19}$/);
      expect(body.delivery).toMatchObject({ ok: true, reply: null });
      // "Hello…": the demo bot's greeting.
      expect(body.received.map((entry: Json) => entry.message)).toEqual([{ content: DEMO_TEXTS.greeting }]);
    },
  },
  "api-without-key": { statuses: [401], check: ({ stdout }) => expect(json(stdout).error.code).toBe("unauthorized") },
  "typing": { statuses: [200], check: ({ stdout }) => expect(json(stdout)).toEqual({ errcode: 0, errmsg: "ok" }) },
  "send-text": { statuses: [200], check: ({ stdout }) => expect(json(stdout).errcode).toBe(0) },
  "upload-media": {
    statuses: [200],
    check: ({ stdout }) => {
      expect(json(stdout).type).toBe("image");
      expect(json(stdout).media_id).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    },
  },
  "send-image": { statuses: [200], check: ({ stdout }) => expect(json(stdout).errcode).toBe(0) },
  "send-link": { statuses: [200], check: ({ stdout }) => expect(json(stdout).errcode).toBe(0) },
  "send-miniprogrampage": { statuses: [200], check: ({ stdout }) => expect(json(stdout).errcode).toBe(0) },
  "user-sends-image": {
    statuses: [200],
    check: ({ stdout }) => {
      const body = json(stdout);
      expect(body.push.MsgType).toBe("image");
      expect(body.push.MediaId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      expect(body.delivery.ok).toBe(true);
    },
  },
  "download-media": {
    statuses: [200],
    check: async ({ stdout }, _block, dir) => {
      expect(stdout).toMatch(/^content-type: image\/png\r?$/im);
      expect(stdout).toMatch(/^cache-control: private\r?$/im);
      const sent = await readFile(join(dir, "cloud.png"));
      expect(sent.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(await readFile(join(dir, "photo.png"))).toEqual(sent);
    },
  },
  "user-inbox": {
    statuses: [200],
    check: ({ stdout }) => {
      const body = json(stdout);
      // The steps above, in order: welcome, the demo bot's greeting, typing, text, image, link, mini program card.
      expect(body.inbox.map((e: Json) => e.msgtype ?? e.kind)).toEqual([
        "text",
        "text",
        "typing",
        "text",
        "image",
        "link",
        "miniprogrampage",
      ]);
      expect(body.window).toMatchObject({ kind: "message", remaining: 5 });
    },
  },
  "send-to-unknown-user": {
    statuses: [502],
    check: ({ stdout }) => expect(json(stdout).error).toMatchObject({ code: "wechat_api_error", errcode: 40003 }),
  },
};

function json(text: string): Json {
  return JSON.parse(text) as Json;
}

const blocks = runBlocks();
let server: DevServer | undefined;
let work: string;
let results: Map<string, Ran>;
let firstMinutes: Ran[];

/** The README's first-five-minutes commands, one curl a line, each against npm start's address. */
function firstMinutesLines(): string[] {
  const block = /```sh\n([\s\S]*?)```/.exec(docSection("first-minutes"))?.[1] ?? "";
  return block.split("\n").filter((line) => line.trim() !== "");
}

/** The JSON a curl line sends with `-d '…'`. */
function sentBody(line: string): Json {
  return json(/ -d '([^']*)'/.exec(line)?.[1] ?? "null");
}

describe("README's first five minutes", () => {
  it("is three curls against npm start's address", () => {
    const lines = firstMinutesLines();
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(new RegExp(`^curl -s ${DEFAULT_URL}/`));
  });
});

describe("quick start", () => {
  it("has a check here for every run block, and every sh block is a run block", () => {
    expect(blocks.map((b) => b.name)).toEqual(Object.keys(CHECKS));
    const section = quickStart();
    expect(section.match(/```sh\n/g)?.length).toBe(blocks.length);
    for (const block of blocks) {
      expect(block.commands, block.name).not.toMatch(/(^|\s)(-w|--write-out)\b/);
      // Every curl targets the address in BASE, which only the first block sets, to npm start's default.
      const targets = [...block.commands.matchAll(/curl [^\n]*?"(\$BASE|https?:\/\/[^/\s"']+)/g)].map((m) => m[1]);
      expect(targets.length, block.name).toBeGreaterThan(0);
      for (const target of targets) expect(target, block.name).toBe("$BASE");
      expect(block.commands, block.name).not.toMatch(/curl [^\n]*https?:\/\//);
    }
    expect(blocks[0]!.commands.split("\n")[0]).toBe(`BASE=\${BASE:-${DEFAULT_URL}}`);
    for (const block of blocks.slice(1)) expect(block.commands, block.name).not.toMatch(/BASE=|127\.0\.0\.1|8787/);
  });

  it("shows the banner and the dev values npm start uses", () => {
    const section = quickStart();
    const shown = /```text\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const lines = banner(DEFAULT_URL).split("\n");
    for (const line of shown.split("\n").filter((l) => l.trim() !== "")) expect(lines).toContain(line);
    for (const [name, value] of Object.entries(DEV_VARS)) {
      expect(section, name).toContain(`| \`${name}\``);
      expect(section, name).toContain(value);
    }
  });

  describe("against a started dev server", () => {
    beforeAll(async () => {
      const missing = TOOLS.filter((tool) => {
        try {
          execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
          return false;
        } catch {
          return true;
        }
      });
      if (missing.length > 0) {
        throw new Error(`The README commands need: ${missing.join(", ")} (.ci/run installs them)`);
      }
      const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
      expect(pkg.scripts.start).toBe(START_COMMAND);
      work = await mkdtemp(join(tmpdir(), "kefu-readme-"));
      server = await startDevServer();
      results = await runAll(blocks, server.port, work);
      // The first five minutes, line by line, with only the address changed to this server's.
      const lines = firstMinutesLines().map((line, i) => ({
        name: `first-minutes-${i}`,
        commands: line.replaceAll(DEFAULT_URL, server!.url),
        expected: { lang: "text" as const, text: "" },
      }));
      const minutes = await runAll(lines, server.port, join(work, "first-minutes"));
      firstMinutes = lines.map((line) => minutes.get(line.name)!);
    }, 90_000);

    afterAll(async () => {
      await server?.stop();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    }, 15_000);

    it("npm start printed the URL, the dev API key and the next step", () => {
      const out = server!.output();
      expect(out).toContain(`Local URL        ${server!.url}`);
      expect(out).toContain(DEV_VARS.API_KEY);
      expect(out).toContain(`Next: open the chat simulator`);
      expect(out).not.toMatch(/Unable to fetch|ENOTFOUND|update available/);
    });

    it("the README's first five minutes: the user writes, the reply goes out, the user has it", () => {
      const lines = firstMinutesLines();
      expect(firstMinutes.map((ran) => [ran.exitCode, ran.statuses])).toEqual([[0, [200]], [0, [200]], [0, [200]]]);
      const [said, sent, inbox] = firstMinutes.map((ran) => json(ran.stdout));
      const user = /\/users\/([^/]+)\//.exec(lines[0]!)?.[1];
      expect(said!.push).toMatchObject({ FromUserName: user, MsgType: "text", Content: sentBody(lines[0]!).text });
      expect(said!.delivery).toMatchObject({ ok: true });
      // The dev server's demo bot greets the user back.
      expect(said!.received.map((entry: Json) => entry.message)).toEqual([{ content: DEMO_TEXTS.greeting }]);
      const reply = sentBody(lines[1]!);
      expect(reply.touser).toBe(user);
      expect(sent).toEqual({ errcode: 0, errmsg: "ok" });
      expect(lines[2]).toContain(`/users/${user}/inbox`);
      expect(inbox!.inbox.map((entry: Json) => entry.message)).toEqual([{ content: DEMO_TEXTS.greeting }, reply.text]);
      // Two messages of the five the user's message allows are spent: the demo bot's and the reply.
      expect(inbox!.window).toMatchObject({ kind: "message", remaining: 3 });
    });

    for (const block of blocks) {
      it(`${block.name}: answers as the page shows`, async () => {
        const ran = results.get(block.name)!;
        const context = `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`;
        expect(ran.exitCode, context).toBe(0);
        expect(ran.statuses, context).toEqual(CHECKS[block.name]!.statuses);
        expect(answerDifferences(block.expected, ran.stdout), context).toEqual([]);
        await CHECKS[block.name]!.check(ran, block, work);
      });
    }
  });
});

// One bash runs every block in order (runInOneShell). A `curl` on PATH in front of the real
// one reports each HTTP status on stderr (`%{stderr}`), leaving stdout exactly as the reader
// sees it.
async function runAll(all: RunBlock[], port: number, dir: string): Promise<Map<string, Ran>> {
  const shim = join(dir, ".bin");
  await mkdir(shim, { recursive: true });
  const curl = execFileSync("sh", ["-c", "command -v curl"], { encoding: "utf8" }).trim();
  await writeFile(
    join(shim, "curl"),
    `#!/bin/sh\nexec '${curl}' --write-out '%{stderr}KEFU-HTTP %{http_code}\\n' "$@"\n`,
  );
  await chmod(join(shim, "curl"), 0o755);
  const ran = await runInOneShell(all, {
    cwd: dir,
    // The server's own port, through the variable the README's first block reads.
    env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ""}`, BASE: `http://127.0.0.1:${port}` },
    outputs: join(dir, ".out"),
    timeoutMs: 30_000,
  });
  return new Map(
    [...ran].map(([name, { stdout, stderr, exitCode }]) => [name, {
      stdout,
      stderr: stderr.replace(/^KEFU-HTTP \d+\n/gm, ""),
      exitCode,
      statuses: [...stderr.matchAll(/^KEFU-HTTP (\d+)$/gm)].map((m) => Number(m[1])),
    }]),
  );
}
