// `npm run deploy` refuses what a first deploy must replace in wrangler.toml — the shipped
// placeholder KV id, an empty WECHAT_APPID — before wrangler runs, and runs `wrangler deploy`
// (here with --dry-run, which builds without any account or network) once they are replaced.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configPath, deployRefusals, PLACEHOLDER_KV_ID } from "../../scripts/_deploy_check.ts";
import { ROOT, wranglerEnv } from "../../scripts/_dev_server.ts";

const run = promisify(execFile);

/** `npm run deploy -- <args>` in the repository, as a reader runs it; its exit code and output. */
async function deploy(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("npm", ["run", "--silent", "deploy", "--", ...args], {
      cwd: ROOT,
      env: wranglerEnv(),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let dir: string;
let shipped: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kefu-deploy-"));
  shipped = await readFile(join(ROOT, "wrangler.toml"), "utf8");
});
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** The shipped wrangler.toml with its placeholders filled, its paths pointing into the repository (it is written elsewhere). */
function readyToml(): string {
  return shipped.replace(PLACEHOLDER_KV_ID, "0123456789abcdef0123456789abcdef")
    .replace('WECHAT_APPID = ""', 'WECHAT_APPID = "wx1234567890abcdef"')
    .replace('main = "worker/index.ts"', `main = ${JSON.stringify(join(ROOT, "worker", "index.ts"))}`)
    .replace('directory = "./public"', `directory = ${JSON.stringify(join(ROOT, "public"))}`);
}

describe("the deploy check", () => {
  it("refuses the shipped wrangler.toml: the placeholder KV id and the empty AppID, each with its fix", () => {
    expect(shipped).toContain(`id = "${PLACEHOLDER_KV_ID}"`);
    const refusals = deployRefusals(shipped);
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toContain("npx wrangler kv namespace create WECHAT_KV");
    expect(refusals[1]).toMatch(/^WECHAT_APPID is empty in \[vars\]/);
  });

  it("passes once the id and the AppID are set, and reads the config wrangler would", () => {
    const ready = shipped.replace(PLACEHOLDER_KV_ID, "0123456789abcdef0123456789abcdef")
      .replace('WECHAT_APPID = ""', 'WECHAT_APPID = "wx1234567890abcdef"');
    expect(deployRefusals(ready)).toEqual([]);
    expect(deployRefusals('[[kv_namespaces]]\nbinding = "OTHER_KV"\n')).toEqual([
      expect.stringContaining("OTHER_KV: the KV namespace id is the placeholder (none)"),
    ]);
    expect(configPath(["--dry-run"])).toBe("wrangler.toml");
    expect(configPath(["--config", "a.toml"])).toBe("a.toml");
    expect(configPath(["-c", "b.toml", "--dry-run"])).toBe("b.toml");
    expect(configPath(["--config=c.toml"])).toBe("c.toml");
  });

  it("npm run deploy stops before wrangler on the shipped wrangler.toml", async () => {
    const out = join(dir, "refused");
    const ran = await deploy(["--dry-run", "--outdir", out]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain("kefu-edge: not deploying");
    expect(ran.stderr).toContain("npx wrangler kv namespace create WECHAT_KV");
    // wrangler never ran: its build output does not exist.
    await expect(stat(out)).rejects.toThrow();
  });

  it("npm run deploy runs wrangler deploy once the config is ready", async () => {
    const config = join(dir, "wrangler.toml");
    await writeFile(
      config,
      readyToml(),
    );
    const out = join(dir, "built");
    const ran = await deploy(["--config", config, "--dry-run", "--outdir", out]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toContain("--dry-run: exiting now.");
    expect((await stat(join(out, "index.js"))).size).toBeGreaterThan(1000);
    // The inbox's page files go up as the worker's static assets.
    expect(ran.stdout).toMatch(/env\.ASSETS\s+Assets/);
    // The R2 bucket is optional and off as shipped: an account without R2 deploys.
    expect(ran.stdout).not.toContain("KEFU_MEDIA");
  }, 60_000);

  it("the shipped KEFU_MEDIA block, uncommented, binds the R2 bucket", async () => {
    const block = /^# \[\[r2_buckets\]\]\n# binding = "KEFU_MEDIA"\n# bucket_name = "kefu-edge-media"$/m;
    expect(shipped).toMatch(block);
    const config = join(dir, "wrangler-r2.toml");
    await writeFile(
      config,
      readyToml().replace(block, (text) => text.replace(/^# /gm, "")),
    );
    const ran = await deploy(["--config", config, "--dry-run", "--outdir", join(dir, "built-r2")]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/env\.KEFU_MEDIA \(kefu-edge-media\)\s+R2 Bucket/);
  }, 60_000);
});
