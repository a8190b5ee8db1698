// Starts `npm start`'s command (scripts/start.ts), or another server command, on a free loopback
// port with its own KV directory, in its own process group, and stops the whole group (wrangler
// and workerd too).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../scripts/_dev_server.ts";

/** The command of the `start` script in package.json, which {@link startDevServer} runs. */
export const START_COMMAND = "node --import tsx scripts/start.ts";

export interface DevServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  /** Stops the process group: SIGTERM, then SIGKILL after 5 s. Safe to call twice. */
  stop(): Promise<void>;
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()));
    });
  });
}

const running = new Set<ChildProcess>();
// Last resort if the test process exits without stopping a server.
process.once("exit", () => {
  for (const child of running) killGroup(child, "SIGKILL");
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** What {@link startServer} runs. */
export interface ServerCommand {
  /** The program; `node` means this Node. */
  command: string;
  /**
   * Its arguments; the port, a fresh state folder and a free port for a debugger to listen on
   * (`wrangler dev --inspector-port`: its default, 9229, is taken by the first of two servers
   * started at once) are passed by the callback.
   */
  args: (port: number, state: string, inspectorPort: number) => string[];
  /** Where it runs; default the repository. */
  cwd?: string;
  /** Its environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Whether it is up, from everything it printed. */
  ready: (output: string, url: string) => boolean;
  /** A state folder to use and keep (to start the server again on it); default a fresh one, removed on stop. */
  state?: string;
}

/**
 * Runs a server on a free loopback port with its own state folder, in its own process group,
 * and resolves once `ready` says so. Rejects, after stopping it, when that takes longer than
 * `timeoutMs`.
 */
export async function startServer(server: ServerCommand, timeoutMs = 60_000): Promise<DevServer> {
  const [port, inspectorPort] = await Promise.all([freePort(), freePort()]);
  const state = server.state ?? await mkdtemp(join(tmpdir(), "kefu-dev-kv-"));
  const program = server.command === "node" ? process.execPath : server.command;
  const child = spawn(program, server.args(port, state, inspectorPort), {
    cwd: server.cwd ?? ROOT,
    env: server.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => void (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => void (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      // wrangler may leave workerd behind for a moment; the group goes in any case.
      killGroup(child, "SIGKILL");
      running.delete(child);
      if (server.state === undefined) await rm(state, { recursive: true, force: true });
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (!server.ready(output, url)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`The server did not start within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, port, output: () => output, stop };
}

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** How long it may take to answer; default 60 s. */
  timeoutMs?: number;
  /** Local storage lives here and outlives the server, as `.wrangler/state` does between two runs of `npm start`. */
  state?: string;
  /** More arguments for `npm start`, e.g. `--fake-model` or `--var NAME:value`. */
  flags?: string[];
}

/**
 * Runs {@link START_COMMAND} and resolves once it printed its banner (the server answered
 * /health).
 */
export function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const [command, ...args] = START_COMMAND.split(" ");
  return startServer({
    command: command!,
    args: (port, folder, inspector) => [
      ...args,
      ...(options.flags ?? []),
      "--port",
      String(port),
      "--persist-to",
      folder,
      "--inspector-port",
      String(inspector),
    ],
    ready: (output, url) => output.includes(`${url}/_emulator/`),
    ...(options.state === undefined ? {} : { state: options.state }),
  }, options.timeoutMs ?? 60_000);
}
