import { expect, test } from "vitest";
import { casesFor } from "../cases/_registry.ts";
import "../cases/all.ts";

for (const c of casesFor("node")) test(c.name, c.fn, 30_000);

// `npm run test:node-versions` runs this file again on Node 22 and 24 (scripts/toolchain.mjs).
const major = process.env.KEFU_NODE_MAJOR;
if (major !== undefined) test(`runs on Node ${major}`, () => expect(process.versions.node.split(".")[0]).toBe(major));
