// @ts-check
/**
 * Official-account JS-SDK tickets: GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card.
 * wechat-sim.js has already judged the access_token (40001 / 40014 / 42001 / 41001 mean the *token* is bad,
 * not the ticket); this module applies the type check, the daily quota and the refetch rule.
 * Success carries errcode 0 and errmsg "ok", unlike the token endpoints (WECHAT-API.md).
 */
import { wechatDay } from "./clock.js";
import { ERR } from "./errcodes.js";
import { officialOwner } from "./ticket-store.js";
import { WindowCounter } from "./window-counter.js";
import { wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./apps.js").AppConfig} AppConfig */
/** @typedef {import("./wire.js").SimResponse} SimResponse */

export const OFFICIAL_TICKET_TYPES = /** @type {const} */ (["jsapi", "wx_card"]);
/** @typedef {typeof OFFICIAL_TICKET_TYPES[number]} OfficialTicketType */

/**
 * @param {string | null} type
 * @returns {type is OfficialTicketType}
 */
export function isOfficialTicketType(type) {
  return OFFICIAL_TICKET_TYPES.includes(/** @type {any} */ (type));
}

export class OfficialTickets {
  /** @type {import("./ticket-store.js").TicketStore} */
  #store;
  // One quota for the path, whatever the type: WeChat counts quotas per cgi_path (openapi/quota/get).
  #daily = new WindowCounter(wechatDay);

  /** @param {import("./ticket-store.js").TicketStore} store shared with WeCom's tickets */
  constructor(store) {
    this.#store = store;
  }

  /**
   * @param {AppConfig} app    the app whose valid token made the call
   * @param {string | null} type
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  getticket(app, type, nowMs) {
    if (!isOfficialTicketType(type)) return wechatError(ERR.INVALID_ARGS);
    if (this.#daily.count(app.appid, nowMs) >= app.ticket_daily_quota) return wechatError(ERR.DAILY_QUOTA);
    this.#daily.increment(app.appid, nowMs);
    const grant = this.#store.issue(officialOwner(app.appid), type, { refetch: app.ticket_refetch, lifetimeS: app.ticket_lifetime_s }, nowMs);
    return wechatJson({ errcode: 0, errmsg: "ok", ...grant });
  }

  clear() {
    this.#daily.clear();
  }
}
