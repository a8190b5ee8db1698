// docs/emulator.md's "Users" block, run as written (only the package names point at this
// repository's entries): every line it prints is the one its `// →` comment shows.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, test, vi } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";
import { readDoc } from "./_markdown.ts";

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test("the emulator's users do what docs/emulator.md says", async () => {
  const section = /<!-- emulator-users:start -->([\s\S]*?)<!-- emulator-users:end -->/.exec(readDoc("docs/emulator.md"))
    ?.[1];
  const source = /```ts\n([\s\S]*?)```/.exec(section ?? "")?.[1] ?? "";
  const shown = source.split("\n").filter((line) => line.includes("console.log(")).map((line) =>
    /\/\/ → (.*)$/.exec(line)?.[1]
  );
  expect(shown.length).toBeGreaterThan(5);
  expect(shown).not.toContain(undefined);

  dir = await mkdtemp(join(tmpdir(), "kefu-doc-users-"));
  const file = join(dir, "users.ts");
  await writeFile(
    file,
    source
      .replace('"kefu-edge/testing"', JSON.stringify(pathToFileURL(join(ROOT, "src", "testing", "mod.ts")).href))
      .replace('"kefu-edge"', JSON.stringify(pathToFileURL(join(ROOT, "mod.ts")).href)),
  );
  const logged: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...args) => void logged.push(args.join(" ")));
  try {
    await import(pathToFileURL(file).href);
  } finally {
    log.mockRestore();
  }
  expect(logged).toEqual(shown);
});
