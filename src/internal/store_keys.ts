import { sha1Hex } from "./sha1.ts";

/**
 * The user part of kefu-edge's store keys (`kefu-edge:<area>:<appId>:<user>:…`): the OpenID
 * when it looks like one (`u.<openid>`), else its hash (`h.<sha1>`), so keys stay short and
 * plain, and `DurableObjectStore` can keep each user's keys in that user's object. Private to
 * kefu-edge (see README.md beside this file).
 *
 * @param openId the user's OpenID
 * @returns `u.<openid>` or `h.<40 hex digits>`
 * @example
 * ```ts
 * import { userPart } from "./store_keys.ts";
 * console.log(userPart("o9AgO5Kd5ggOC-bXrbNODIiE3bGY")); // "u.o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
 * ```
 */
export function userPart(openId: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(openId) ? `u.${openId}` : `h.${sha1Hex(openId)}`;
}
