// `npm run inbox:agent -- <name>`, as an operator runs it: the password on stdin, the
// INBOX_AGENTS line (and nothing else) on stdout, which the worker reads back and accepts the
// password with; refusals exit 2 with a message on stderr and nothing on stdout.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { checkLogin, parseInboxAgents, verifyPassword } from "../../worker/inbox/passwords.ts";

/** `npm run -s inbox:agent -- <args>` with `stdin` piped in; its exit code and output. */
function inboxAgent(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "-s", "inbox:agent", "--", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk);
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    child.once("error", reject).once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe("npm run inbox:agent", () => {
  it("prints one name:hash line that INBOX_AGENTS accepts, and whose hash takes the password only", async () => {
    const password = "correct horse battery";
    const { code, stdout, stderr } = await inboxAgent(["alice"], `${password}\nnext line is not read\n`);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^alice:pbkdf2-sha256\$100000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}\n$/);
    const agents = parseInboxAgents(stdout);
    expect([...agents.keys()]).toEqual(["alice"]);
    const hash = agents.get("alice")!;
    expect(await verifyPassword(password, hash)).toBe(true);
    expect(await verifyPassword(`${password}\n`, hash)).toBe(false);
    expect(await verifyPassword("correct horse batterx", hash)).toBe(false);
    expect(stdout).not.toContain(password);
  }, 60_000);

  it("makes a cheaper line with --iterations (for the Workers Free plan), which signs in the same way", async () => {
    const runs = [["carol", "--iterations", "20000"], ["--iterations=20000", "carol"]].map((args) =>
      inboxAgent(args, "carol's password\n")
    );
    for (const { code, stdout } of await Promise.all(runs)) {
      expect(code).toBe(0);
      expect(stdout).toMatch(/^carol:pbkdf2-sha256\$20000\$/);
      const agents = parseInboxAgents(stdout);
      expect(await checkLogin(agents, "carol", "carol's password")).toBe(true);
      expect(await checkLogin(agents, "carol", "carol's passwore")).toBe(false);
      expect(await checkLogin(agents, "dave", "carol's password")).toBe(false);
    }
  }, 60_000);

  it("takes the last line without a newline too, and the same password gives another salt each time", async () => {
    const [first, second] = await Promise.all([
      inboxAgent(["bob"], "bob's password"),
      inboxAgent(["bob"], "bob's password\r\n"),
    ]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(first.stdout).not.toBe(second.stdout);
    for (const { stdout } of [first, second]) {
      expect(await verifyPassword("bob's password", parseInboxAgents(stdout).get("bob")!)).toBe(true);
    }
  }, 60_000);

  it("refuses an empty or short password, a bad name and a missing one, exiting 2 with nothing on stdout", async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [["alice"], "", /password is empty/],
      [["alice"], "\nsecond line\n", /password is empty/],
      [["alice"], "seven77\n", /at least 8 characters/],
      [["al:ice"], "long enough\n", /name must not contain ':'/],
      [["x".repeat(65)], "long enough\n", /name must be 1 to 64 characters/],
      [[], "long enough\n", /usage: npm run inbox:agent -- <name>/],
      [["alice", "--iterations", "999"], "long enough\n", /--iterations must be a whole number from 1000/],
      [["alice", "--iterations=abc"], "long enough\n", /--iterations must be a whole number from 1000/],
    ];
    // Run together: each is its own process, and npm's start-up is most of its time.
    const runs = await Promise.all(cases.map(([args, stdin]) => inboxAgent(args, stdin)));
    for (const [i, [args, stdin, message]] of cases.entries()) {
      const { code, stdout, stderr } = runs[i]!;
      expect(code, `${args.join(" ")} ${JSON.stringify(stdin)}`).toBe(2);
      expect(stdout).toBe("");
      expect(stderr).toMatch(message);
      expect(stderr).not.toContain("seven77");
    }
  }, 60_000);
});
