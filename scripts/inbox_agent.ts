// `npm run inbox:agent -- <name>`: reads a password (one line of stdin, without its newline;
// typed at a terminal it is not shown) and prints the `name:hash` line INBOX_AGENTS takes for
// the agent, and nothing else, so that `npm run -s inbox:agent -- alice` can be piped on:
//   printf '%s\n' "$PASSWORD" | npm run -s inbox:agent -- alice
import { agentNameProblem, hashPassword } from "../worker/inbox/mod.ts";

const MIN_PASSWORD = 8;

function refuse(message: string): never {
  console.error(`inbox:agent: ${message}`);
  process.exit(2);
}

/** The first line of piped stdin, without its line ending. */
function pipedLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = () => {
      process.stdin.off("data", onData);
      process.stdin.pause();
      resolve(text.replace(/\r?\n[\s\S]*$/, ""));
    };
    const onData = (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) done();
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData).once("end", done).once("error", reject);
  });
}

/** A line typed at the terminal, not echoed. */
function typedLine(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    process.stderr.write(prompt);
    process.stdin.setEncoding("utf8");
    process.stdin.setRawMode(true);
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === "\u0003") {
          process.stdin.setRawMode(false);
          process.stderr.write("\n");
          process.exit(130);
        } else if (char === "\r" || char === "\n" || char === "\u0004") {
          process.stdin.setRawMode(false);
          process.stdin.off("data", onData);
          process.stdin.pause();
          process.stderr.write("\n");
          resolve(text);
          return;
        } else if (char === "\u007f" || char === "\b") {
          text = [...text].slice(0, -1).join("");
        } else {
          text += char;
        }
      }
    };
    process.stdin.on("data", onData);
  });
}

// `--iterations N` (1000 to 100000): fewer PBKDF2 rounds make a sign-in cheaper, for the Workers
// Free plan's 10 ms of CPU per request (100000 take about 25 ms), and a stolen line cheaper to crack.
const args = process.argv.slice(2);
let iterations: number | undefined;
const flag = args.findIndex((a) => a === "--iterations" || a.startsWith("--iterations="));
if (flag >= 0) {
  const [given] = args.splice(flag, args[flag]!.includes("=") ? 1 : 2).slice(-1);
  iterations = Number(given?.replace(/^--iterations=/, ""));
  if (!Number.isInteger(iterations) || iterations < 1000 || iterations > 100_000) {
    refuse("--iterations must be a whole number from 1000 to 100000");
  }
}
if (args.length !== 1) {
  refuse("usage: npm run inbox:agent -- <name> [--iterations N]   (the password is read from stdin)");
}
const name = args[0]!;
const problem = agentNameProblem(name);
if (problem !== undefined) refuse(`the name ${problem}`);

const password = process.stdin.isTTY ? await typedLine(`Password for ${name}: `) : await pipedLine();
if (password === "") refuse("the password is empty: give it on stdin, one line");
if ([...password].length < MIN_PASSWORD) refuse(`the password must be at least ${MIN_PASSWORD} characters`);
process.stdout.write(`${name}:${await hashPassword(password, iterations === undefined ? {} : { iterations })}\n`);
