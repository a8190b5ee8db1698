/**
 * Private to the inbox: agents' passwords, as PBKDF2-SHA256 hashes (WebCrypto, so the same code
 * runs in Workers, Deno, Bun, Node and the `inbox:agent` script), and the `INBOX_AGENTS` list.
 *
 * @module
 */
import { timingSafeEqual } from "../auth.ts";
import { ConfigError } from "../env.ts";
import { fromBase64Url, toBase64Url } from "./base64url.ts";

/** Iterations of a new hash: the most Workers' PBKDF2 allows. */
export const PBKDF2_ITERATIONS = 100_000;
/** The fewest iterations a hash in `INBOX_AGENTS` may have. */
const MIN_ITERATIONS = 1_000;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const PREFIX = "pbkdf2-sha256";
const encoder = new TextEncoder();

/**
 * A hash no password has (its key is all zeros): an unknown name is checked against it, so a
 * refused login takes the same time whether or not the name exists.
 */
const DUMMY_HASH = `${PREFIX}$${PBKDF2_ITERATIONS}$${"A".repeat(22)}$${"A".repeat(43)}`;

/** A hash's parts, read from its text. */
interface ParsedHash {
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
  key: string;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split("$");
  if (parts.length !== 4 || parts[0] !== PREFIX || !/^[1-9]\d{0,8}$/.test(parts[1]!)) return undefined;
  const iterations = Number(parts[1]);
  const salt = fromBase64Url(parts[2]!);
  const key = fromBase64Url(parts[3]!);
  if (iterations < MIN_ITERATIONS || iterations > PBKDF2_ITERATIONS) return undefined;
  if (salt === undefined || salt.length < 8 || salt.length > 64 || key?.length !== KEY_BYTES) return undefined;
  return { iterations, salt, key: parts[3]! };
}

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<string> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    KEY_BYTES * 8,
  );
  return toBase64Url(new Uint8Array(bits));
}

/**
 * Hashes a password for `INBOX_AGENTS`: `pbkdf2-sha256$<iterations>$<salt>$<key>`, salt and key
 * base64url (16 random bytes, 32 bytes of PBKDF2-SHA256).
 *
 * @param password the password
 * @param options `iterations` (1000 to 100000, default 100000) and `salt` (default 16 random bytes)
 * @returns the hash
 * @throws {RangeError} for iterations or a salt {@link verifyPassword} would not accept
 * @example
 * ```ts
 * import { hashPassword } from "./passwords.ts";
 * const hash = await hashPassword("correct horse", { iterations: 1000, salt: new Uint8Array(16) });
 * console.log(hash.slice(0, 42)); // "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA$"
 * ```
 */
export async function hashPassword(
  password: string,
  options: { iterations?: number; salt?: Uint8Array<ArrayBuffer> } = {},
): Promise<string> {
  const iterations = options.iterations ?? PBKDF2_ITERATIONS;
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > PBKDF2_ITERATIONS) {
    throw new RangeError(`iterations must be a whole number from ${MIN_ITERATIONS} to ${PBKDF2_ITERATIONS}`);
  }
  if (salt.length < 8 || salt.length > 64) throw new RangeError("salt must be 8 to 64 bytes");
  return `${PREFIX}$${iterations}$${toBase64Url(salt)}$${await derive(password, salt, iterations)}`;
}

/**
 * Whether `password` is the one `hash` was made from. The derived keys are compared in constant
 * time; a malformed hash accepts no password.
 *
 * @param password the password given
 * @param hash a hash from {@link hashPassword}
 * @returns whether it matches
 * @example
 * ```ts
 * import { hashPassword, verifyPassword } from "./passwords.ts";
 * const hash = await hashPassword("correct horse", { iterations: 1000 });
 * console.log(await verifyPassword("correct horse", hash), await verifyPassword("wrong horse", hash)); // true false
 * ```
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (parsed === undefined) return false;
  return await timingSafeEqual(await derive(password, parsed.salt, parsed.iterations), parsed.key);
}

/**
 * Checks a login against the agents: the password of a known name, or, for a name not in the
 * list, a PBKDF2 run against a hash no password has, so both refusals take the same time.
 *
 * @param agents the agents, from {@link parseInboxAgents}
 * @param name the name given
 * @param password the password given
 * @returns whether the name is an agent's and the password is theirs
 * @example
 * ```ts
 * import { checkLogin, hashPassword } from "./passwords.ts";
 * const agents = new Map([["alice", await hashPassword("correct horse", { iterations: 1000 })]]);
 * console.log(await checkLogin(agents, "alice", "correct horse"), await checkLogin(agents, "bob", "x")); // true false
 * ```
 */
export async function checkLogin(
  agents: ReadonlyMap<string, string>,
  name: string,
  password: string,
): Promise<boolean> {
  const hash = agents.get(name);
  // An unknown name costs what an agent's sign-in costs: the dummy takes the first agent's iterations.
  const first = agents.values().next().value;
  const dummy = first === undefined
    ? DUMMY_HASH
    : DUMMY_HASH.replace(`$${PBKDF2_ITERATIONS}$`, `$${first.split("$")[1]}$`);
  const matches = await verifyPassword(password, hash ?? dummy);
  return hash !== undefined && matches;
}

/**
 * What is wrong with an agent's name, or `undefined` when it can be one: 1 to 64 characters,
 * no `:` (it ends the name in `INBOX_AGENTS`), no control characters, no blank at either end.
 *
 * @param name the name
 * @returns the problem, as words that follow "name", or `undefined`
 * @example
 * ```ts
 * import { agentNameProblem } from "./passwords.ts";
 * console.log(agentNameProblem("alice"), agentNameProblem("a:b")); // undefined "must not contain ':'"
 * ```
 */
export function agentNameProblem(name: string): string | undefined {
  const length = [...name].length;
  if (length < 1 || length > 64) return "must be 1 to 64 characters";
  if (name.includes(":")) return "must not contain ':'";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return "must not contain control characters";
  if (name.trim() !== name) return "must not start or end with a blank";
  return undefined;
}

let lastText: string | undefined;
let lastAgents: ReadonlyMap<string, string> | undefined;

/**
 * Reads `INBOX_AGENTS`: one `name:hash` per line; blank lines and lines starting with `#` are
 * skipped. The last list read is kept, so each request does not read it again.
 *
 * @param text the variable's value
 * @returns each agent's hash, by name
 * @throws {ConfigError} `INBOX_AGENTS` invalid, naming the line (never showing it)
 * @example
 * ```ts
 * import { hashPassword, parseInboxAgents } from "./passwords.ts";
 * const hash = await hashPassword("correct horse", { iterations: 1000 });
 * console.log([...parseInboxAgents(`# the team\nalice:${hash}\n\nbob:${hash}\n`).keys()]); // ["alice", "bob"]
 * try {
 *   parseInboxAgents("alice:correct horse");
 * } catch (err) {
 *   console.log((err as Error).message); // "Invalid configuration: INBOX_AGENTS line 1 must be name:pbkdf2-sha256$<iterations>$<salt>$<key>, as npm run inbox:agent -- <name> prints it"
 * }
 * ```
 */
export function parseInboxAgents(text: string): ReadonlyMap<string, string> {
  if (text === lastText && lastAgents !== undefined) return lastAgents;
  const agents = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    const name = line.slice(0, Math.max(colon, 0));
    const hash = line.slice(colon + 1);
    if (colon < 0 || agentNameProblem(name) !== undefined || parseHash(hash) === undefined) {
      throw new ConfigError(
        "INBOX_AGENTS",
        "invalid",
        `line ${
          index + 1
        } must be name:${PREFIX}$<iterations>$<salt>$<key>, as npm run inbox:agent -- <name> prints it`,
      );
    }
    if (agents.has(name)) {
      throw new ConfigError("INBOX_AGENTS", "invalid", `line ${index + 1} repeats the name of an earlier line`);
    }
    agents.set(name, hash);
  });
  if (agents.size === 0) throw new ConfigError("INBOX_AGENTS", "invalid", "holds no name:hash line");
  lastText = text;
  lastAgents = agents;
  return agents;
}
