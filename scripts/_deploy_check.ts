// What `npm run deploy` checks in wrangler.toml before it runs `wrangler deploy`: the values a
// first deploy must replace (the KV namespace id that only local development can use, the
// AppID left empty), each refused with the step that fixes it.

/** The KV namespace id the shipped wrangler.toml carries: local development works with it, a deploy cannot. */
export const PLACEHOLDER_KV_ID = "00000000000000000000000000000000";

interface Table {
  /** The table's name, `[[kv_namespaces]]` → `kv_namespaces`. */
  name: string;
  /** Its `key = "string"` entries. */
  values: Map<string, string>;
}

/** The tables of a TOML text with their string values: enough of TOML for wrangler.toml's checks. */
function tables(toml: string): Table[] {
  const found: Table[] = [{ name: "", values: new Map() }];
  for (const raw of toml.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?(?:\s*#.*)?$/.exec(line);
    if (header) {
      found.push({ name: header[1]!, values: new Map() });
      continue;
    }
    const entry = /^([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"(?:\s*#.*)?$/.exec(line);
    if (entry) found.at(-1)!.values.set(entry[1]!, entry[2]!);
  }
  return found;
}

/**
 * Why a deploy with this wrangler.toml would not work, one line per problem, each naming the
 * fix; empty when nothing is in the way.
 */
export function deployRefusals(toml: string): string[] {
  const refusals: string[] = [];
  for (const table of tables(toml)) {
    if (table.name === "kv_namespaces") {
      const binding = table.values.get("binding") ?? "a KV namespace";
      const id = table.values.get("id") ?? "";
      if (id === "" || /^0+$/.test(id)) {
        refusals.push(
          `${binding}: the KV namespace id is the placeholder ${id || "(none)"}; run ` +
            `\`npx wrangler kv namespace create ${binding}\` and put the id it prints in wrangler.toml`,
        );
      }
    }
    if (table.name === "vars" && table.values.has("WECHAT_APPID") && table.values.get("WECHAT_APPID")!.trim() === "") {
      refusals.push(
        "WECHAT_APPID is empty in [vars]; put your mini program's AppID there (开发管理 → 开发设置)",
      );
    }
  }
  return refusals;
}

/** The wrangler config a `wrangler deploy` with these arguments reads (`--config`/`-c`, else wrangler.toml). */
export function configPath(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if ((arg === "--config" || arg === "-c") && args[i + 1] !== undefined) return args[i + 1]!;
    if (arg.startsWith("--config=")) return arg.slice("--config=".length);
  }
  return "wrangler.toml";
}
