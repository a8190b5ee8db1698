// `npm run fuzz [-- --rounds N]`: the shared property cases (push XML reader and its
// differential against @rgrove/parse-xml, the push fuzz, text splitting) from N fresh random
// seeds, on Node. `npm test` runs them from one fixed seed; this looks further. A failure
// prints the case, the seed and fast-check's counterexample: add it as a fixed case.
import process from "node:process";
import { cases } from "./cases/_registry.ts";
import { seedProperties } from "./cases/_properties.ts";
import "./cases/push_xml.ts";
import "./cases/push_xml_differential.ts";
import "./cases/push_fuzz.ts";
import "./cases/core_text.ts";

const at = process.argv.indexOf("--rounds");
const rounds = at === -1 ? 10 : Number(process.argv[at + 1]);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes a positive integer");

let failures = 0;
for (let round = 1; round <= rounds; round++) {
  const seed = Math.floor(Math.random() * 2 ** 31);
  seedProperties(seed);
  for (const c of cases) {
    if (c.runtimes !== undefined && !c.runtimes.includes("node")) continue;
    try {
      await c.fn();
    } catch (err) {
      failures++;
      console.log(`FAIL round ${round}, seed ${seed}: ${c.name}\n${String(err).slice(0, 2000)}\n`);
    }
  }
  console.log(`round ${round}/${rounds} (seed ${seed}): ${failures === 0 ? "clean" : `${failures} failure(s) so far`}`);
}
process.exitCode = failures === 0 ? 0 : 1;
