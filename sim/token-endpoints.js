// @ts-check
/**
 * The two official-account token endpoints: request parsing, credential checks in upstream's order, faults
 * and quotas. Which token a call gets (classic rotation, stable reuse, force refresh) is issuer.js's job.
 *
 *   GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=     2000/day → 45009
 *   POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh?}  10,000/min → 45011, 500,000/day → 45009
 */
import { wechatDay, wechatMinute } from "./clock.js";
import { ERR } from "./errcodes.js";
import { withFault } from "./faults.js";
import { WindowCounter } from "./window-counter.js";
import { parseJsonObject, wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("./apps.js").AppConfig} AppConfig */

// The only grant_type both token endpoints accept.
const CLIENT_CREDENTIAL = "client_credential";

export class TokenEndpoints {
  #apps;
  #issuer;
  #faults;
  #stats;
  #classicDaily = new WindowCounter(wechatDay);
  #stableDaily = new WindowCounter(wechatDay);
  #stableMinute = new WindowCounter(wechatMinute);

  /**
   * @param {object} deps
   * @param {import("./apps.js").AppRegistry} deps.apps
   * @param {import("./issuer.js").TokenIssuer} deps.issuer
   * @param {import("./faults.js").FaultQueue} deps.faults
   * @param {import("./stats.js").EndpointStats<typeof import("./stats.js").APP_STAT_NAMES[number]>} deps.stats
   */
  constructor({ apps, issuer, faults, stats }) {
    this.#apps = apps;
    this.#issuer = issuer;
    this.#faults = faults;
    this.#stats = stats;
  }

  /**
   * @param {Required<SimRequest>} req
   * @param {number} now
   * @returns {SimResult}
   */
  classic({ method, query }, now) {
    const appid = query.get("appid") ?? "";
    if (this.#apps.get(appid)) this.#stats.record(appid, "token");
    if (method !== "GET") return wechatError(ERR.REQUIRE_GET);
    const checked = this.#checkCredentials(query.get("grant_type"), appid, query.get("secret"));
    if (typeof checked === "number") return wechatError(checked);
    const app = checked;

    // Faults apply after validation and before quota, so a failed call neither mints nor spends quota.
    return withFault(this.#faults, app.appid, "token", () => {
      if (this.#classicDaily.count(app.appid, now) >= app.daily_quota) return wechatError(ERR.DAILY_QUOTA);
      this.#classicDaily.increment(app.appid, now);
      return wechatJson(this.#issuer.issueClassic(app, now));
    }, wechatError);
  }

  /**
   * @param {Required<SimRequest>} req
   * @param {number} now
   * @returns {SimResult}
   */
  stable({ method, body }, now) {
    // Method is checked before the body is read, as upstream does.
    if (method !== "POST") {
      return wechatError(ERR.REQUIRE_POST);
    }
    const json = parseJsonObject(body);
    if (!json) return wechatError(ERR.DATA_FORMAT);
    const { grant_type, appid, secret, force_refresh } = json;
    if (typeof appid === "string" && this.#apps.get(appid)) {
      this.#stats.record(appid, "stable_token");
      if (force_refresh === true) this.#stats.record(appid, "stable_token_force");
    }
    // Fields of the wrong JSON type are a format error, not "missing": catches brokers that send
    // force_refresh as the string "true" (which upstream would not honour as a force).
    const wrongType =
      [grant_type, appid, secret].some((v) => v !== undefined && typeof v !== "string") ||
      (force_refresh !== undefined && typeof force_refresh !== "boolean");
    if (wrongType) return wechatError(ERR.DATA_FORMAT);

    const checked = this.#checkCredentials(
      /** @type {string | undefined} */ (grant_type),
      /** @type {string | undefined} */ (appid),
      /** @type {string | undefined} */ (secret),
    );
    if (typeof checked === "number") return wechatError(checked);
    const app = checked;

    return withFault(this.#faults, app.appid, "stable_token", () => {
      if (this.#stableMinute.count(app.appid, now) >= app.stable_minute_quota) return wechatError(ERR.MINUTE_QUOTA);
      if (this.#stableDaily.count(app.appid, now) >= app.stable_daily_quota) return wechatError(ERR.DAILY_QUOTA);
      this.#stableMinute.increment(app.appid, now);
      this.#stableDaily.increment(app.appid, now);
      const result = this.#issuer.issueStable(app, now, force_refresh === true);
      return "errcode" in result ? wechatError(result.errcode) : wechatJson(result);
    }, wechatError);
  }

  /**
   * Upstream's validation order: grant_type, appid present, secret present, appid known, secret right.
   * @param {string | null | undefined} grantType
   * @param {string | null | undefined} appid
   * @param {string | null | undefined} secret
   * @returns {AppConfig | number} the app, or the errcode to answer
   */
  #checkCredentials(grantType, appid, secret) {
    if (grantType !== CLIENT_CREDENTIAL) return ERR.INVALID_GRANT_TYPE;
    if (!appid) return ERR.APPID_MISSING;
    if (!secret) return ERR.APPSECRET_MISSING;
    const app = this.#apps.get(appid);
    if (!app) return ERR.INVALID_APPID;
    if (app.secret !== secret) return ERR.INVALID_APPSECRET;
    return app;
  }

  clear() {
    this.#classicDaily.clear();
    this.#stableDaily.clear();
    this.#stableMinute.clear();
  }
}
