// @ts-check
/**
 * WeChat errcodes the simulator emits, with the errmsg text api.weixin.qq.com uses.
 * Clients must compare errcode, never errmsg (WECHAT-API.md), so the texts only need to look right.
 */

export const ERR = Object.freeze({
  SYSTEM_ERROR: -1,
  INVALID_CREDENTIAL: 40001,
  INVALID_GRANT_TYPE: 40002,
  INVALID_APPID: 40013,
  INVALID_ACCESS_TOKEN: 40014,
  INVALID_APPSECRET: 40125,
  ACCESS_TOKEN_MISSING: 41001,
  APPID_MISSING: 41002,
  APPSECRET_MISSING: 41004,
  ACCESS_TOKEN_EXPIRED: 42001,
  REQUIRE_GET: 43001,
  REQUIRE_POST: 43002,
  DAILY_QUOTA: 45009,
  MINUTE_QUOTA: 45011,
  DATA_FORMAT: 47001,
  INVALID_ARGS: 40097,
  // The open platform (OPEN-PLATFORM.md §4-7).
  COMPONENT_NOT_AUTHORIZED: 61003,
  CLIENT_IP_NOT_REGISTERED: 61004,
  COMPONENT_TICKET_EXPIRED: 61005,
  COMPONENT_TICKET_INVALID: 61006,
  INVALID_AUTH_CODE: 61009,
  AUTH_CODE_EXPIRED: 61010,
  INVALID_COMPONENT: 61011,
  INVALID_REFRESH_TOKEN: 61023,
});

/** @type {ReadonlyMap<number, string>} */
const ERRMSG = new Map([
  [ERR.SYSTEM_ERROR, "system error"],
  [ERR.INVALID_CREDENTIAL, "invalid credential, access_token is invalid or not latest"],
  [ERR.INVALID_GRANT_TYPE, "invalid grant_type"],
  [ERR.INVALID_APPID, "invalid appid"],
  [ERR.INVALID_ACCESS_TOKEN, "invalid access_token"],
  [ERR.INVALID_APPSECRET, "invalid appsecret"],
  [ERR.ACCESS_TOKEN_MISSING, "access_token missing"],
  [ERR.APPID_MISSING, "appid missing"],
  [ERR.APPSECRET_MISSING, "appsecret missing"],
  [ERR.ACCESS_TOKEN_EXPIRED, "access_token expired"],
  [ERR.REQUIRE_GET, "require GET method"],
  [ERR.REQUIRE_POST, "require POST method"],
  [ERR.DAILY_QUOTA, "reach max api daily quota limit"],
  [ERR.MINUTE_QUOTA, "api minute-quota reach limit mustslower retry next minute"],
  [ERR.DATA_FORMAT, "data format error"],
  [ERR.INVALID_ARGS, "invalid args"],
  [ERR.COMPONENT_NOT_AUTHORIZED, "access denied, component is not authorized by this account"],
  [ERR.COMPONENT_TICKET_EXPIRED, "component ticket is expired"],
  [ERR.COMPONENT_TICKET_INVALID, "component ticket is invalid"],
  [ERR.INVALID_AUTH_CODE, "code is invalid"],
  [ERR.AUTH_CODE_EXPIRED, "code is expired"],
  [ERR.INVALID_COMPONENT, "invalid component"],
  [ERR.INVALID_REFRESH_TOKEN, "refresh_token is invalid"],
  // Codes nobody emits on their own here but that tests inject as faults (WECHAT-API.md lists them).
  [40164, "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist"],
  [40243, "AppSecret is frozen"],
  [61004, "access clientip is not registered"],
  [50004, "api is forbidden"],
  [50007, "account freezed"],
]);

/**
 * @param {number} errcode
 * @returns {string}
 */
export function errmsgFor(errcode) {
  return ERRMSG.get(errcode) ?? "injected error";
}
