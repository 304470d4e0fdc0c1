// @ts-check
/**
 * POST /__sim/jssdk/verify: checks a JS-SDK signature the way the page's wx.config (or WeCom's
 * wx.agentConfig, or a card's cardExt) would, against the tickets of that app that are valid now. A test
 * proves a broker's /jssdk/config output with it, end to end, without a browser.
 *
 *   {appid, url, timestamp, nonceStr, signature, type?: "jsapi"}        wx.config; appid may be a WeCom corpid
 *                                                                       (the corp ticket)
 *   {appid: corpid, agentid, url, timestamp, nonceStr, signature, type: "agent_config"}   wx.agentConfig
 *   {appid, timestamp, nonceStr, signature, type: "wx_card", card_id?, code?, openid?}    a card's cardExt
 *
 * url is the page's location.href; its #fragment is dropped as wx.config drops it, so a broker that signs
 * the fragment is caught. Answers {ok: true} or {ok: false, reason}; malformed input is {error} (HTTP 400).
 */
import { cardSignature, jsapiSignature, signedUrl } from "./jssdk-signature.js";
import { agentOwner, corpOwner, officialOwner } from "./ticket-store.js";

/**
 * @typedef {object} VerifyContext
 * @property {import("./apps.js").AppRegistry} apps
 * @property {import("./ticket-store.js").TicketStore} tickets
 * @property {(corpid: string) => boolean} isCorp        a registered WeCom corp
 * @property {(corpid: string, agentid: string) => boolean} isAgent  a registered agent of that corp
 * @property {number} nowMs
 */

/** @typedef {{ ok: true } | { ok: false, reason: string } | { error: string }} VerifyOutcome */

const VERIFY_TYPES = /** @type {const} */ (["jsapi", "wx_card", "agent_config"]);
const VERIFY_FIELDS = new Set(["appid", "url", "timestamp", "nonceStr", "signature", "type", "agentid", "card_id", "code", "openid"]);
// What wx.config reports in its error callback when the signature does not match.
const INVALID_SIGNATURE = "invalid signature";

/**
 * @param {VerifyContext} ctx
 * @param {Record<string, unknown>} json
 * @returns {VerifyOutcome}
 */
export function verifyJssdk(ctx, json) {
  const unknown = Object.keys(json).filter((k) => !VERIFY_FIELDS.has(k));
  if (unknown.length) return { error: `unknown field(s) ${unknown.join(", ")}; allowed: ${[...VERIFY_FIELDS].join(", ")}` };
  const { type = "jsapi" } = json;
  if (!VERIFY_TYPES.includes(/** @type {any} */ (type))) return { error: `type must be one of ${VERIFY_TYPES.join(", ")}, got ${JSON.stringify(type)}` };
  const needUrl = type !== "wx_card";
  for (const field of ["appid", "nonceStr", "signature", ...(needUrl ? ["url"] : []), ...(type === "agent_config" ? ["agentid"] : [])]) {
    const value = json[field];
    // agentid is an integer in WeCom's own APIs; accept it either way.
    const ok = typeof value === "string" ? value !== "" : field === "agentid" && Number.isSafeInteger(value);
    if (!ok) return { error: `${field} must be a non-empty string${field === "agentid" ? " or an integer" : ""}, got ${JSON.stringify(value)}` };
  }
  for (const field of ["card_id", "code", "openid"]) {
    if (json[field] !== undefined && typeof json[field] !== "string") return { error: `${field} must be a string when given` };
  }
  // wx.config takes the timestamp as a number of seconds; a string of digits is what a broker may relay.
  const { timestamp } = json;
  const ts = typeof timestamp === "number" && Number.isSafeInteger(timestamp) && timestamp >= 0 ? String(timestamp) : timestamp;
  if (typeof ts !== "string" || !/^\d+$/.test(ts)) return { error: `timestamp must be whole seconds (a number or a string of digits), got ${JSON.stringify(timestamp)}` };

  const appid = /** @type {string} */ (json.appid);
  const nonceStr = /** @type {string} */ (json.nonceStr);
  const signature = /** @type {string} */ (json.signature);
  const owner = ownerOf(ctx, appid, /** @type {typeof VERIFY_TYPES[number]} */ (type), json.agentid === undefined ? undefined : String(json.agentid));
  if ("reason" in owner) return { ok: false, reason: owner.reason };
  const tickets = ctx.tickets.valid(owner.key, owner.ticketType, ctx.nowMs);
  if (tickets.length === 0) return { ok: false, reason: `no ${owner.ticketType} ticket of ${appid} is valid now` };

  const matches = tickets.some((ticket) =>
    type === "wx_card"
      ? cardSignature([ticket, ts, /** @type {string|undefined} */ (json.card_id), /** @type {string|undefined} */ (json.code), /** @type {string|undefined} */ (json.openid), nonceStr]) === signature
      : jsapiSignature({ ticket, nonceStr, timestamp: ts, url: signedUrl(/** @type {string} */ (json.url)) }) === signature,
  );
  return matches ? { ok: true } : { ok: false, reason: INVALID_SIGNATURE };
}

/**
 * Whose tickets sign this: an official account's, a WeCom corp's, or one of its agents'.
 * @param {VerifyContext} ctx
 * @param {string} appid
 * @param {typeof VERIFY_TYPES[number]} type
 * @param {string | undefined} agentid
 * @returns {{ key: string, ticketType: string } | { reason: string }}
 */
function ownerOf(ctx, appid, type, agentid) {
  if (ctx.apps.get(appid)) {
    if (type === "agent_config") return { reason: `${appid} is an official account; agent_config is for WeCom agents` };
    return { key: officialOwner(appid), ticketType: type };
  }
  if (ctx.isCorp(appid)) {
    if (type === "wx_card") return { reason: `${appid} is a WeCom corp; wx_card is for official accounts` };
    if (type === "jsapi") return { key: corpOwner(appid), ticketType: "jsapi" };
    if (agentid === undefined || !ctx.isAgent(appid, agentid)) return { reason: `agent ${agentid} is not registered for corp ${appid}` };
    return { key: agentOwner(appid, agentid), ticketType: "agent_config" };
  }
  return { reason: `appid ${appid} is not registered` };
}
