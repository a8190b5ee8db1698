// Private: the emulator's text check (`POST /wxa/msg_sec_check`, version 2) — word lists stand
// in for WeChat's model, and the rule that the user must have used the mini program lately.
import { HOUR } from "./_clock.ts";
import { parseJsonObject } from "./_messages.ts";
import { randomRid } from "./_random.ts";
import { ApiFailure } from "./_responses.ts";
import type { ContentCheckOptions } from "./types.ts";
import type { UserState } from "./_user_state.ts";

/** The user must have used the mini program this recently ("用户需在近两小时访问过小程序"). */
export const VISIT_WINDOW: number = 2 * HOUR;

/**
 * Words the emulator finds risky unless told otherwise: a stand-in word, and the sample text
 * WeChat's version-1 page gave for testing an integration.
 */
export const DEFAULT_RISKY_WORDS: readonly string[] = ["emulator-risky", "特3456书yuuo莞6543李zxcz蒜7782法fgnv级"];
/** Words the emulator sends to review unless told otherwise. */
export const DEFAULT_REVIEW_WORDS: readonly string[] = ["emulator-review"];
/** The label a word-list hit carries unless told otherwise: 21000, "其他". */
const DEFAULT_LABEL = 21000;
const MAX_CHARS = 2500;

/** The emulator's settings, with defaults filled in. */
export interface ContentCheck {
  readonly risky: readonly string[];
  readonly review: readonly string[];
  readonly label: number;
}

/** Fills in the defaults of {@link ContentCheckOptions}. */
export function contentCheckOf(options: ContentCheckOptions | undefined): ContentCheck {
  const words = (list: readonly string[] | undefined, name: string, fallback: readonly string[]) => {
    if (list === undefined) return fallback;
    if (!Array.isArray(list) || list.some((w) => typeof w !== "string" || w === "")) {
      throw new TypeError(`contentCheck.${name} must be a list of non-empty words`);
    }
    return [...list];
  };
  const label = options?.label ?? DEFAULT_LABEL;
  if (!Number.isInteger(label) || label === 100) {
    throw new TypeError("contentCheck.label must be a label other than 100");
  }
  return {
    risky: words(options?.risky, "risky", DEFAULT_RISKY_WORDS),
    review: words(options?.review, "review", DEFAULT_REVIEW_WORDS),
    label,
  };
}

/**
 * Answers one check, or throws: 47001 (malformed, not version 2, content missing or over 2,500
 * characters), 40129 (scene not 1–4), 40003 (unknown openid), 61010 (no visit in 2 hours).
 *
 * [UNCERTAIN] which code WeChat gives a malformed body or an oversized text is not documented:
 * 47001, its general "data format error", here. The emulator checks version 2 only (version 1,
 * without openid, stopped being updated in 2021).
 */
export function checkText(
  text: string,
  settings: ContentCheck,
  userState: (openId: unknown) => UserState | undefined,
  now: number,
): Record<string, unknown> {
  const body = parseJsonObject(text);
  if (Number(body.version) !== 2) throw new ApiFailure(47001);
  const content = body.content;
  if (typeof content !== "string" || content === "" || content.length > MAX_CHARS) throw new ApiFailure(47001);
  for (const field of ["nickname", "title", "signature"]) {
    if (body[field] !== undefined && typeof body[field] !== "string") throw new ApiFailure(47001);
  }
  if (![1, 2, 3, 4].includes(Number(body.scene))) throw new ApiFailure(40129);
  const user = userState(body.openid);
  if (user === undefined) throw new ApiFailure(40003);
  // As WeChat documents it (community reports say a few calls slip through; the emulator is strict).
  if (!(now - user.lastVisitAt < VISIT_WINDOW)) throw new ApiFailure(61010);
  const checked = [content, body.nickname, body.title, body.signature].filter((s) => typeof s === "string").join("\n");
  const risky = settings.risky.find((word) => checked.includes(word));
  const review = risky === undefined ? settings.review.find((word) => checked.includes(word)) : undefined;
  const hit = risky ?? review;
  const suggest = risky !== undefined ? "risky" : review !== undefined ? "review" : "pass";
  const label = hit === undefined ? 100 : settings.label;
  // The word lists play WeChat's keyword strategy; its model always passes here.
  const detail: Record<string, unknown>[] = [
    { strategy: "content_model", errcode: 0, suggest: "pass", label: 100, prob: 90 },
  ];
  if (hit !== undefined) detail.push({ strategy: "keyword", errcode: 0, suggest, label, keyword: hit });
  return { errcode: 0, errmsg: "ok", trace_id: randomRid(), result: { suggest, label }, detail };
}
