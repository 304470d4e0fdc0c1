// @ts-check
/**
 * The JS-SDK signatures a page's wx.config (and WeCom's wx.agentConfig) and a card's cardExt carry, exactly
 * as WECHAT-API.md gives them; the official vectors are in test/sim/jssdk-signature.test.js.
 */
import { createHash } from "node:crypto";

/**
 * wx.config / wx.agentConfig: keys jsapi_ticket, noncestr, timestamp, url in ASCII order, raw values (no
 * URL-encoding), joined as k=v&…, sha1, lower-case hex. `url` must already be without its #fragment.
 * @param {{ ticket: string, nonceStr: string, timestamp: string, url: string }} fields
 * @returns {string}
 */
export function jsapiSignature({ ticket, nonceStr, timestamp, url }) {
  return sha1(`jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${url}`);
}

/**
 * A card's cardExt (wx_card api_ticket): the values themselves, empty ones left out, sorted and
 * concatenated, sha1, lower-case hex.
 * @param {ReadonlyArray<string | undefined>} values  api_ticket, timestamp, card_id, code, openid, nonce_str
 * @returns {string}
 */
export function cardSignature(values) {
  const present = values.filter((v) => v !== undefined && v !== "").map(String);
  // Plain code-unit comparison: the sort WeChat's samples use, not a locale-aware one.
  present.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sha1(present.join(""));
}

/**
 * The URL a page's wx.config signs: location.href without the #fragment.
 * @param {string} url
 */
export function signedUrl(url) {
  const hash = url.indexOf("#");
  return hash === -1 ? url : url.slice(0, hash);
}

/** @param {string} text */
function sha1(text) {
  return createHash("sha1").update(text, "utf8").digest("hex");
}
