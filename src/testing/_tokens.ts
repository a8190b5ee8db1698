// Private: access tokens as WeChat issues them (spec §1) and the check every other call makes.
import { sha1Hex } from "../internal/sha1.ts";
import { beijingDay, BucketQuota, MINUTE, minuteOf, SECOND } from "./_clock.ts";
import { randomId } from "./_random.ts";
import { ApiFailure } from "./_responses.ts";
import type { EmulatorTokens, TokenInfo, TokenStatus } from "./types.ts";

const LIFETIME = 7200 * SECOND;
/** Old and new tokens overlap this long (classic rotation, stable renewal). */
const OVERLAP = 5 * MINUTE;
const FORCE_GAP = 30 * SECOND;

// A token carries its kind, number and issue time, and a seal over them made from the app's
// credentials, so an emulator started again with the same AppID and AppSecret (a restarted
// `npm start`, whose tokens are still cached in local KV) recognises the tokens an earlier
// one issued, as WeChat itself still would. The seal only tells the emulator's own tokens
// apart from others; it guards nothing real.
const SEALED = /^([SC])(\d+)_([0-9a-z]+)_[A-Za-z0-9_-]+_([0-9a-f]{40})$/;

interface TokenRecord {
  token: string;
  kind: "stable" | "classic";
  issuedAt: number;
  expiresAt: number;
  invalidAt: number | undefined;
  forced: boolean;
}

/** The fields both token endpoints take, already read from the body or the query. */
export interface TokenRequest {
  grant_type: unknown;
  appid: unknown;
  secret: unknown;
}

/** Issues and checks tokens for one app. */
export class TokenAuthority implements EmulatorTokens {
  readonly #appId: string;
  readonly #appSecret: string;
  readonly #now: () => number;
  readonly #records = new Map<string, TokenRecord>();
  #issued = 0;
  #stable: TokenRecord | undefined;
  #lastForceAt = Number.NEGATIVE_INFINITY;
  #forceRefreshes = 0;
  // Limits from the spec: §1a 2000/day [UNCERTAIN: varies per account]; §1b 10,000/min and
  // 500,000/day; force_refresh 20/day, over which a community report says 45009 [UNCERTAIN].
  readonly #classicDaily = new BucketQuota(2000, beijingDay);
  readonly #stableMinute = new BucketQuota(10_000, minuteOf);
  readonly #stableDaily = new BucketQuota(500_000, beijingDay);
  readonly #forceDaily = new BucketQuota(20, beijingDay);

  constructor(appId: string, appSecret: string, now: () => number) {
    this.#appId = appId;
    this.#appSecret = appSecret;
    this.#now = now;
  }

  get issued(): number {
    return this.#issued;
  }

  get forceRefreshes(): number {
    return this.#forceRefreshes;
  }

  list(): TokenInfo[] {
    return [...this.#records.values()].map((r) => ({ ...r }));
  }

  status(token: string): TokenStatus {
    const record = this.#records.get(token) ?? this.#recognise(token);
    if (record === undefined) return "unknown";
    const now = this.#now();
    // A token replaced before its natural end is "not latest" (40001); one that ran out is 42001.
    if (record.invalidAt !== undefined && record.invalidAt < record.expiresAt && now >= record.invalidAt) {
      return "invalid";
    }
    return now >= record.expiresAt ? "expired" : "valid";
  }

  invalidate(token: string): void {
    const record = this.#records.get(token);
    if (record !== undefined) record.invalidAt = Math.min(record.invalidAt ?? Infinity, this.#now());
  }

  /** Throws the errcode a call carrying `token` gets: 41001 missing, 40001 unknown or invalid, 42001 expired. */
  authorize(token: string | null): void {
    if (token === null || token === "") throw new ApiFailure(41001);
    const status = this.status(token);
    if (status === "expired") throw new ApiFailure(42001);
    if (status !== "valid") throw new ApiFailure(40001);
  }

  /** GET /cgi-bin/token: every call issues a new token; the previous ones stay valid 5 more minutes. */
  classic(request: TokenRequest): { access_token: string; expires_in: number } {
    this.#checkCredentials(request);
    const now = this.#now();
    if (!this.#classicDaily.take(now)) throw new ApiFailure(45009);
    for (const record of this.#records.values()) {
      if (record.kind === "classic") record.invalidAt = Math.min(record.invalidAt ?? Infinity, now + OVERLAP);
    }
    const record = this.#issue("classic", false);
    return { access_token: record.token, expires_in: LIFETIME / SECOND };
  }

  /** POST /cgi-bin/stable_token in normal or force mode (spec §1b). */
  stable(request: TokenRequest & { force_refresh: unknown }): { access_token: string; expires_in: number } {
    this.#checkCredentials(request);
    const force = request.force_refresh ?? false;
    if (typeof force !== "boolean") throw new ApiFailure(47001);
    const now = this.#now();
    if (!this.#stableMinute.allows(now)) throw new ApiFailure(45011);
    if (!this.#stableDaily.allows(now)) throw new ApiFailure(45009);
    this.#stableMinute.take(now);
    this.#stableDaily.take(now);
    const record = force ? this.#forceStable(now) : this.#normalStable(now);
    return { access_token: record.token, expires_in: Math.floor((record.expiresAt - now) / SECOND) };
  }

  // Normal mode: the same token while it has more than 5 minutes left; in its last
  // 5 minutes a new one, while the old one stays valid until its own expiry.
  #normalStable(now: number): TokenRecord {
    const current = this.#stable;
    if (current !== undefined && this.status(current.token) === "valid" && current.expiresAt - now > OVERLAP) {
      return current;
    }
    return this.#stable = this.#issue("stable", false);
  }

  // Force mode: a new token that invalidates every earlier stable token at once. Within
  // 30 s of the last forced rotation nothing is refreshed ("否则不会刷新") and the
  // caller gets the current token, as in normal mode.
  // [UNCERTAIN] the doc also says two force calls 30 s apart are needed to kill a leaked
  // token, which hints that one call may leave the old token alive a little; we follow its
  // plainer statement that a force call invalidates the previous token.
  #forceStable(now: number): TokenRecord {
    if (now - this.#lastForceAt < FORCE_GAP) return this.#normalStable(now);
    if (!this.#forceDaily.take(now)) throw new ApiFailure(45009);
    this.#lastForceAt = now;
    this.#forceRefreshes++;
    for (const record of this.#records.values()) {
      if (record.kind === "stable") record.invalidAt = Math.min(record.invalidAt ?? Infinity, now);
    }
    return this.#stable = this.#issue("stable", true);
  }

  // Order of checks: what is missing, then the grant type, then what is wrong.
  #checkCredentials({ grant_type, appid, secret }: TokenRequest): void {
    if (appid === undefined || appid === null || appid === "") throw new ApiFailure(41002);
    if (secret === undefined || secret === null || secret === "") throw new ApiFailure(41004);
    if (grant_type !== "client_credential") throw new ApiFailure(40002);
    if (appid !== this.#appId) throw new ApiFailure(40013);
    if (secret !== this.#appSecret) throw new ApiFailure(40125);
  }

  #issue(kind: "stable" | "classic", forced: boolean): TokenRecord {
    const issuedAt = this.#now();
    // Real tokens are ~136 characters of [A-Za-z0-9_-]; the kind prefix helps reading test failures.
    const body = `${kind === "stable" ? "S" : "C"}${++this.#issued}_${issuedAt.toString(36)}_${randomId(80)}`;
    const token = `${body}_${this.#seal(body)}`;
    const record: TokenRecord = { token, kind, issuedAt, expiresAt: issuedAt + LIFETIME, invalidAt: undefined, forced };
    this.#records.set(token, record);
    return record;
  }

  #seal(body: string): string {
    return sha1Hex(`kefu-edge emulator token\n${this.#appId}\n${this.#appSecret}\n${body}\n${this.#appSecret}`);
  }

  // A token an earlier emulator with these credentials issued: known from now on, with the
  // life it was issued with; a stable one still current becomes the stable token again.
  #recognise(token: string): TokenRecord | undefined {
    const parts = SEALED.exec(token);
    if (parts === null || this.#seal(token.slice(0, -41)) !== parts[4]) return undefined;
    const issuedAt = parseInt(parts[3]!, 36);
    if (!Number.isSafeInteger(issuedAt) || issuedAt > this.#now()) return undefined;
    const kind = parts[1] === "S" ? "stable" : "classic";
    const record: TokenRecord = {
      token,
      kind,
      issuedAt,
      expiresAt: issuedAt + LIFETIME,
      invalidAt: undefined,
      forced: false,
    };
    this.#records.set(token, record);
    if (kind === "stable" && (this.#stable === undefined || this.#stable.issuedAt < issuedAt)) this.#stable = record;
    return record;
  }
}
