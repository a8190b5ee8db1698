// A clone must pass its tests with nothing beside it: no tracked file may reach outside the
// repository for test data or code (copy what a test needs under test/fixtures instead).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { ROOT } from "../../scripts/_dev_server.ts";

// Built from parts so this file does not match itself.
const OUTSIDE = new RegExp(["\\.\\./", "shared", "(/|\\b)"].join(""));

test("no tracked file refers to a folder beside the repository", () => {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  expect(files.length).toBeGreaterThan(50);
  const offenders = files
    .filter((file) => file !== "package-lock.json")
    .filter((file) => {
      try {
        return OUTSIDE.test(readFileSync(join(ROOT, file), "utf8"));
      } catch {
        return false; // deleted in the work tree but still in the index
      }
    });
  expect(offenders).toEqual([]);
});
