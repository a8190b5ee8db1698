// `npm run openapi`: writes public/openapi.json, the OpenAPI document served at GET /openapi.json,
// from the routes' zod schemas (scripts/_openapi.ts). On Workers it is a static asset (wrangler.toml
// `[assets]`), so the worker's script does not carry it; the Deno, Bun and Node servers serve the same
// file (worker/openapi_file.ts). A test fails when the written file is not what the schemas give, so
// run this after changing a route or a schema.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildOpenApiDocument } from "./_openapi.ts";

const root = new URL("../", import.meta.url);
const { version } = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string };
const target = fileURLToPath(new URL("public/openapi.json", root));
writeFileSync(target, `${JSON.stringify(buildOpenApiDocument(version), null, 2)}\n`);
execFileSync(fileURLToPath(new URL("node_modules/.bin/deno", root)), ["fmt", "--quiet", target]);
console.log(`wrote ${target}`);
