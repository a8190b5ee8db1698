/**
 * Content security (内容安全): `security.msgSecCheck` version 2, the check WeChat asks a mini
 * program to run on text it shows to users. Reached as `mp.security`.
 *
 * @module
 */
import * as z from "../internal/zod.ts";
import { validate } from "../internal/validate.ts";
import type { HttpClient } from "../http/client.ts";
import { openIdSchema } from "../internal/field_schemas.ts";

/**
 * Where the text is shown: `1` profile (资料), `2` comment (评论), `3` forum (论坛), `4` social
 * log (社交日志). WeChat has no scene for a customer-service reply; the AI bot uses `2`.
 */
export type MsgSecCheckScene = 1 | 2 | 3 | 4;

/** The verdict: `pass` (show it), `review` (a person should look), `risky` (do not show it). */
export type MsgSecCheckSuggest = "pass" | "review" | "risky";

/** What {@link Security.msgSecCheck} checks, in WeChat's field names. */
export interface MsgSecCheckInput {
  /** The user who will see the text (or wrote it); they must have used the mini program in the last 2 hours (61010 otherwise). */
  openid: string;
  /** Where the text is shown. */
  scene: MsgSecCheckScene;
  /** The text, at most 2,500 characters. */
  content: string;
  /** The user's nickname, checked with it. */
  nickname?: string | undefined;
  /** A title, checked with it. */
  title?: string | undefined;
  /** A personal signature, checked with it (profile scene only). */
  signature?: string | undefined;
}

/** One strategy's part of the verdict. */
export interface MsgSecCheckDetail {
  /** `content_model` (WeChat's model) or `keyword` (a keyword list, yours or WeChat's). */
  strategy: string;
  /** 0 when this strategy ran. */
  errcode: number;
  /** Its verdict, when it ran. */
  suggest?: MsgSecCheckSuggest | undefined;
  /** Its label (see {@link MSG_SEC_CHECK_LABELS}), when it ran. */
  label?: number | undefined;
  /** The keyword that matched (`keyword` strategy). */
  keyword?: string | undefined;
  /** The model's confidence, 0–100 (`content_model` strategy). */
  prob?: number | undefined;
}

/** WeChat's answer to {@link Security.msgSecCheck}. */
export interface MsgSecCheckResult {
  /** 0: the check ran (the verdict is in `result`). */
  errcode: number;
  /** `ok`. */
  errmsg: string;
  /** The request's id, for WeChat's support. */
  trace_id: string;
  /** The overall verdict. */
  result: { suggest: MsgSecCheckSuggest; label: number };
  /** Each strategy's verdict. */
  detail: MsgSecCheckDetail[];
}

/**
 * The labels of a verdict, with WeChat's names: `100` is normal; the others name what was found.
 *
 * @example
 * ```ts
 * import { MSG_SEC_CHECK_LABELS } from "@kefu/edge";
 * console.log(MSG_SEC_CHECK_LABELS[100], MSG_SEC_CHECK_LABELS[21000]); // "正常" "其他"
 * ```
 */
export const MSG_SEC_CHECK_LABELS: Readonly<Record<number, string>> = {
  100: "正常",
  10001: "广告",
  20001: "时政",
  20002: "色情",
  20003: "辱骂",
  20006: "违法犯罪",
  20008: "欺诈",
  20012: "低俗",
  20013: "版权",
  21000: "其他",
};

/** The longest `content` WeChat checks ("文本字数的上限为 2500 字"). */
export const MSG_SEC_CHECK_MAX_CHARS = 2500;

const optionalText = z.optional(z.string().check(z.maxLength(MSG_SEC_CHECK_MAX_CHARS, "is too long")));

/** Schema of {@link MsgSecCheckInput}. */
const inputSchema: z.ZodMiniType<MsgSecCheckInput> = z.strictObject({
  openid: openIdSchema,
  scene: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)], {
    error: "must be 1 (profile), 2 (comment), 3 (forum) or 4 (social log)",
  }),
  // [UNCERTAIN] WeChat counts "字" without saying how; UTF-16 units are never fewer than
  // characters, so counting them is the stricter reading: a text this lets through fits.
  content: z.string().check(
    z.refine((s) => s.trim() !== "", "must not be empty"),
    z.maxLength(MSG_SEC_CHECK_MAX_CHARS, `is over ${MSG_SEC_CHECK_MAX_CHARS} characters`),
  ),
  nickname: optionalText,
  title: optionalText,
  signature: optionalText,
}) as unknown as z.ZodMiniType<MsgSecCheckInput>;

const SUGGESTS: readonly string[] = ["pass", "review", "risky"];

/**
 * WeChat's content-security checks. Reached as `mp.security`.
 *
 * @example Check a text before showing it
 * ```ts
 * import { MiniProgram } from "@kefu/edge";
 * import { createEmulator } from "@kefu/edge/testing";
 * const wechat = createEmulator({ appId: "wx123", appSecret: "secret", contentCheck: { risky: ["违禁"] } });
 * await wechat.user("OPENID").says("Hi"); // the user used the mini program just now
 * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
 *
 * const { result } = await mp.security.msgSecCheck({ openid: "OPENID", scene: 2, content: "这是违禁内容" });
 * console.log(result.suggest); // "risky"
 * ```
 */
export class Security {
  readonly #http: HttpClient;

  /**
   * Creates the module; `MiniProgram` does this for you.
   *
   * @param http the SDK's request pipeline
   */
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * Checks a text (POST /wxa/msg_sec_check, version 2). The verdict is in `result.suggest`:
   * `pass`, `review` or `risky`; the call itself succeeds either way. Errors users act on:
   * 61010 (the user has not used the mini program in the last 2 hours: see
   * `isUserVisitExpired`), 40003 (not a user of this mini program), 40129 (bad scene). A check
   * changes nothing, so it is retried after -1, a 5xx, a network error or a timeout.
   *
   * @param input `openid`, `scene`, `content` (≤ 2,500 characters), and optional `nickname`, `title`, `signature`
   * @returns the verdict, with each strategy's detail
   * @throws {ValidationError} naming the field, before any network call
   * @example A harmless text passes
   * ```ts
   * import { MiniProgram } from "@kefu/edge";
   * import { createEmulator } from "@kefu/edge/testing";
   * const wechat = createEmulator({ appId: "wx123", appSecret: "secret" });
   * await wechat.user("OPENID").says("Hi");
   * const mp = new MiniProgram({ appId: "wx123", appSecret: "secret", fetch: wechat.fetch });
   *
   * const verdict = await mp.security.msgSecCheck({ openid: "OPENID", scene: 2, content: "您的订单已发货" });
   * console.log(verdict.result); // { suggest: "pass", label: 100 }
   * ```
   */
  async msgSecCheck(input: MsgSecCheckInput): Promise<MsgSecCheckResult> {
    const body = validate(inputSchema, input, "");
    const answer = await this.#http.json<Record<string, unknown>>({
      method: "POST",
      path: "/wxa/msg_sec_check",
      // `version` goes as the number 2, as WeChat's own example writes it (a community report
      // says a string is taken too); the token goes in the query only (47001 in the body).
      json: { version: 2, ...withoutUndefined(body) },
      idempotent: true,
    });
    return resultOf(answer);
  }
}

function withoutUndefined(fields: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

// [UNCERTAIN] WeChat's page types `label` as a string while its answers carry numbers (a
// community report): both are read as numbers. A verdict missing or unknown is read as
// `review`, the reading that neither shows a text unchecked nor drops it unseen.
function resultOf(answer: Record<string, unknown>): MsgSecCheckResult {
  const result = record(answer.result);
  const detail = Array.isArray(answer.detail) ? answer.detail.map(record) : [];
  return {
    errcode: typeof answer.errcode === "number" ? answer.errcode : 0,
    errmsg: typeof answer.errmsg === "string" ? answer.errmsg : "ok",
    trace_id: typeof answer.trace_id === "string" ? answer.trace_id : "",
    result: { suggest: suggestOf(result.suggest) ?? "review", label: labelOf(result.label) ?? 0 },
    detail: detail.map((item) => {
      const entry: MsgSecCheckDetail = {
        strategy: typeof item.strategy === "string" ? item.strategy : "",
        errcode: typeof item.errcode === "number" ? item.errcode : Number(item.errcode ?? 0),
      };
      const suggest = suggestOf(item.suggest);
      if (suggest !== undefined) entry.suggest = suggest;
      const label = labelOf(item.label);
      if (label !== undefined) entry.label = label;
      if (typeof item.keyword === "string" && item.keyword !== "") entry.keyword = item.keyword;
      if (typeof item.prob === "number") entry.prob = item.prob;
      return entry;
    }),
  };
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? value as Record<string, unknown> : {};
}

function suggestOf(value: unknown): MsgSecCheckSuggest | undefined {
  return typeof value === "string" && SUGGESTS.includes(value) ? value as MsgSecCheckSuggest : undefined;
}

function labelOf(value: unknown): number | undefined {
  const label = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  return typeof label === "number" && Number.isFinite(label) ? label : undefined;
}
