// The shipped queue settings (wrangler.toml) against the consumer's retry delays: a backend
// down for a whole day must lose nothing, within the limits Cloudflare Queues allow.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "vitest";
import { QUEUE_MAX_RETRIES, retryDelaySeconds, retryHorizonSeconds } from "../../worker/push_route.ts";

const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");

/** The `[[queues.consumers]]` blocks of wrangler.toml, as name → settings. */
function consumers(): Map<string, Record<string, string>> {
  const found = new Map<string, Record<string, string>>();
  for (const block of toml.split("[[queues.consumers]]").slice(1)) {
    const body = block.split(/^\[/m)[0]!;
    const settings: Record<string, string> = {};
    for (const [, key, value] of body.matchAll(/^(\w+)\s*=\s*"?([^"\n]*)"?\s*$/gm)) settings[key!] = value!;
    found.set(settings.queue!, settings);
  }
  return found;
}

test("the push queue retries for more than a day (Queues allow at most 100 retries and 12 h delays)", () => {
  const pushes = consumers().get("kefu-edge-pushes");
  assert.ok(pushes, "a consumer of kefu-edge-pushes");
  const retries = Number(pushes.max_retries);
  assert.equal(retries, QUEUE_MAX_RETRIES);
  assert.ok(retries <= 100);
  assert.ok(retryHorizonSeconds(retries) > 24 * 3600, `${retryHorizonSeconds(retries)} s`);
  for (let attempt = 1; attempt <= retries; attempt++) assert.ok(retryDelaySeconds(attempt) <= 12 * 3600);
  assert.equal(pushes.dead_letter_queue, "kefu-edge-pushes-dlq");
});

test("the dead-letter queue has a consumer with retries of its own", () => {
  const dlq = consumers().get("kefu-edge-pushes-dlq");
  assert.ok(dlq, "a consumer of the dead-letter queue");
  assert.ok(Number(dlq.max_retries) >= 10);
});
