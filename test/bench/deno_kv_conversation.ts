// Conversations on Deno KV: does a long conversation slow a push down? `accept` (claim, window,
// append: one read and one atomic commit) into a conversation of 100,000 entries, against
// `accept` into an empty conversation (a user never seen); and the newest page of 50 entries of
// that conversation against the page of a conversation of 50. Both sides run on the same
// database, in alternating rounds, so the ratios compare like with like (a key lookup and a
// range read: ~1.0x; a scan would make it thousands).
//
// The database is in memory (`:memory:`, the same SQLite engine as a file): on a file each
// commit waits ~2 ms for the disk, which would hide what the conversation's size costs, and
// would make writing the 100,000 entries (through the store itself, one `accept` each, as
// pushes would) take minutes instead of under one.
//
// Run: `npm run bench` (it runs this file with Deno), or alone:
// `npx deno run -A --unstable-kv test/bench/deno_kv_conversation.ts` (`--json` prints the rows).
import { type AcceptInput, type DenoKvConversationLike, DenoKvConversationStore } from "../../mod.ts";
import { APP_ID, compare, printTable, type Row, sized, TEXT } from "./_lib.ts";

// Declared here, as worker/deno.ts does, so the bench folder type-checks with Node's types too.
const Deno = (globalThis as unknown as {
  Deno: { args: string[]; openKv(path: string): Promise<DenoKvConversationLike & { close(): void }> };
}).Deno;

const ENTRIES = 100_000;
/** Timed calls per side (after compare's 500 untimed ones), in 10 alternating rounds. */
const ITERATIONS = sized(5_000, 2_000);
const PAGE = 50;

function push(key: string): AcceptInput {
  return {
    key,
    claim: `lease:${key}`,
    ttlSeconds: 60,
    entry: { sender: "user", type: "message", msgType: "text", text: TEXT, deliveryId: key },
    action: { kind: "message", at: Date.now() },
  };
}

/** Runs the benchmark and returns its rows (ratio = the long conversation's time / the short one's). */
export async function run(): Promise<Row[]> {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new DenoKvConversationStore(kv);
    const long = { appId: APP_ID, openId: "o-bench-long" };
    const short = { appId: APP_ID, openId: "o-bench-short" };
    const started = performance.now();
    for (let i = 0; i < ENTRIES; i++) await store.accept(long, push(`fill-${i}`));
    const fillMs = performance.now() - started;
    for (let i = 0; i < PAGE; i++) await store.accept(short, push(`short-${i}`));
    const seq = (await store.history(long, { limit: 1 }))?.entries[0]?.seq;
    if (seq !== ENTRIES) throw new Error(`the long conversation has ${seq} entries, not ${ENTRIES}`);

    let n = 0;
    let m = 0;
    const accepts = await compare(
      async () => {
        if ((await store.accept(long, push(`long-${n++}`))).outcome !== "claimed") throw new Error("not claimed");
      },
      async () => {
        const fresh = { appId: APP_ID, openId: `o-bench-empty-${m++}` };
        if ((await store.accept(fresh, push("first"))).outcome !== "claimed") throw new Error("not claimed");
      },
      ITERATIONS,
    );
    const pages = await compare(
      async () => {
        if ((await store.history(long, { limit: PAGE }))?.entries.length !== PAGE) throw new Error("short page");
      },
      async () => {
        if ((await store.history(short, { limit: PAGE }))?.entries.length !== PAGE) throw new Error("short page");
      },
      ITERATIONS,
    );
    return [
      {
        bench: "conversation",
        metric: `Deno KV: accept into a conversation of ${ENTRIES.toLocaleString("en")} entries (filled in ${
          (fillMs / 1000).toFixed(0)
        } s)`,
        value: accepts.a,
        unit: "ms",
        baseline: `into an empty one ${accepts.b.toFixed(3)} ms`,
        ratio: accepts.ratio,
        // As fast as an empty one, within the noise of a shared machine (runs here have
        // ranged 0.9x to 1.15x); a scan of the conversation would make it hundreds.
        target: "<= 1.2x",
        met: accepts.ratio <= 1.2,
      },
      {
        bench: "conversation",
        metric: `Deno KV: newest ${PAGE} entries of a conversation of ${ENTRIES.toLocaleString("en")}`,
        value: pages.a,
        unit: "ms",
        baseline: `of one of ${PAGE} ${pages.b.toFixed(3)} ms`,
        ratio: pages.ratio,
      },
    ];
  } finally {
    kv.close();
  }
}

if ((import.meta as { main?: boolean }).main) {
  const rows = await run();
  // `--json`: machine-readable rows, for `npm run bench`.
  if (Deno.args.includes("--json")) console.log(JSON.stringify(rows));
  else printTable(rows);
}
