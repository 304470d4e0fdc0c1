// @ts-check
/**
 * A faithful, in-memory stand-in for api.weixin.qq.com's credential endpoints, plus the WeCom group-robot
 * webhook a broker sends alerts to. Pure logic: it answers SimRequest objects and performs no I/O, so
 * server.js (or a test) can drive it directly.
 * The rules it implements are in WECHAT-API.md; the rotation rules live in issuer.js, the webhook in webhook.js.
 *
 *   GET  /cgi-bin/token                  classic access_token
 *   POST /cgi-bin/stable_token           stable access_token
 *   GET  /cgi-bin/getcallbackip          the business API, to check a token
 *   GET  /cgi-bin/ticket/getticket       JS-SDK tickets, jsapi and wx_card (tickets.js)
 *   POST /cgi-bin/webhook/send?key=KEY   WeCom group robot (qyapi.weixin.qq.com's path)
 *   POST /__sim/webhook/generic          any JSON receiver (Slack, Feishu style)
 *   *    /__sim/...                      the control API (control.js)
 */
import { AppRegistry } from "./apps.js";
import { SimClock, wechatDay, wechatMinute } from "./clock.js";
import { handleControl } from "./control.js";
import { ERR } from "./errcodes.js";
import { FaultQueue, withFault } from "./faults.js";
import { TokenIssuer } from "./issuer.js";
import { APP_STAT_NAMES, EndpointStats, UnknownTokenStats } from "./stats.js";
import { checkAccessToken } from "./token-check.js";
import { TicketStore } from "./ticket-store.js";
import { OfficialTickets, isOfficialTicketType } from "./tickets.js";
import { TokenStore } from "./token-store.js";
import { WindowCounter } from "./window-counter.js";
import { WebhookReceiver } from "./webhook.js";
import { parseJsonObject, wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("./apps.js").AppConfig} AppConfig */
/** @typedef {import("./apps.js").PublicAppConfig} PublicAppConfig */
/** @typedef {import("./faults.js").FaultEndpoint} FaultEndpoint */
/** @typedef {import("./issuer.js").MintListener} MintListener */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./token-store.js").TokenRecord} TokenRecord */
/** @typedef {typeof APP_STAT_NAMES[number]} AppStatName */

const CONTROL_PREFIX = "/__sim/";
// A receiver, not a control endpoint, though it shares the prefix WeChat never uses.
const GENERIC_WEBHOOK_PATH = "/__sim/webhook/generic";
// The only grant_type both token endpoints accept.
const CLIENT_CREDENTIAL = "client_credential";
// getcallbackip answers with WeChat's callback egress ranges; these are real entries from that list.
const CALLBACK_IP_LIST = Object.freeze(["101.226.103.0/25", "101.226.62.0/26", "58.247.206.128/25", "182.254.11.0/24"]);

/**
 * @typedef {object} WeChatSimOptions
 * @property {() => number} [now]       real clock in ms (Date.now by default); the control API adds an offset
 * @property {MintListener} [onMint]    called for every token minted
 */

export class WeChatSim {
  #clock;
  #apps = new AppRegistry();
  #tokens = new TokenStore();
  #issuer;
  #faults = new FaultQueue();
  #stats = new EndpointStats(APP_STAT_NAMES);
  #unknownTokens = new UnknownTokenStats();
  #classicDaily = new WindowCounter(wechatDay);
  #stableDaily = new WindowCounter(wechatDay);
  #stableMinute = new WindowCounter(wechatMinute);
  #webhook = new WebhookReceiver();
  #ticketStore = new TicketStore();
  #officialTickets = new OfficialTickets(this.#ticketStore);
  /** @type {import("./control.js").ControlContext} */
  #control;

  /** @param {WeChatSimOptions} [options] */
  constructor({ now, onMint } = {}) {
    this.#clock = new SimClock(now);
    this.#issuer = new TokenIssuer(this.#tokens, onMint);
    this.#control = {
      clock: this.#clock,
      apps: this.#apps,
      issuer: this.#issuer,
      faults: this.#faults,
      stats: this.#stats,
      unknownTokens: this.#unknownTokens,
      webhook: this.#webhook,
      tickets: this.#ticketStore,
      reset: () => this.reset(),
    };
  }

  /** Simulated time in ms since the epoch. */
  now() {
    return this.#clock.now();
  }

  /**
   * Registers or updates an app (same rules as POST /__sim/apps); throws AppConfigError on bad input.
   * @param {unknown} app
   * @returns {PublicAppConfig}
   */
  registerApp(app) {
    const { secret: _secret, ...rest } = this.#apps.upsert(app);
    return rest;
  }

  /** Forgets apps, tokens, faults, counters, webhook messages and the clock offset; hung calls are released. */
  reset() {
    this.#apps.clear();
    this.#tokens.clear();
    this.#issuer.clear();
    this.#faults.clear();
    this.#stats.clear();
    this.#unknownTokens.clear();
    this.#classicDaily.clear();
    this.#stableDaily.clear();
    this.#stableMinute.clear();
    this.#webhook.clear();
    this.#ticketStore.clear();
    this.#officialTickets.clear();
    this.#clock.reset();
  }

  /** Lets every hung call finish without removing the faults (server.js calls it on close). */
  releaseHung() {
    this.#faults.releaseHung();
  }

  /**
   * @param {SimRequest} request
   * @returns {Promise<SimResult>}
   */
  async handle(request) {
    const req = { ...request, query: request.query ?? new URLSearchParams(), body: request.body ?? "" };
    // Webhooks are not token endpoints: no token fault applies to them and they are not in the stats.
    if (req.path === GENERIC_WEBHOOK_PATH) return this.#webhook.generic(req, this.#clock.now());
    if (req.path.startsWith(CONTROL_PREFIX)) return handleControl(this.#control, req);
    switch (req.path) {
      case "/cgi-bin/token":
        return this.#classicToken(req);
      case "/cgi-bin/stable_token":
        return this.#stableToken(req);
      case "/cgi-bin/getcallbackip":
        return this.#getCallbackIp(req);
      case "/cgi-bin/ticket/getticket":
        return this.#getTicket(req);
      case "/cgi-bin/webhook/send":
        return this.#webhook.wecom(req, this.#clock.now());
      default:
        return wechatError(ERR.SYSTEM_ERROR, 404);
    }
  }

  /** @param {Required<SimRequest>} req */
  #classicToken({ method, query }) {
    const appid = query.get("appid") ?? "";
    if (this.#apps.get(appid)) this.#stats.record(appid, "token");
    if (method !== "GET") return wechatError(ERR.REQUIRE_GET);
    const checked = this.#checkCredentials(query.get("grant_type"), appid, query.get("secret"));
    if (typeof checked === "number") return wechatError(checked);
    const app = checked;

    // Faults apply after validation and before quota, so a failed call neither mints nor spends quota.
    return withFault(this.#faults, app.appid, "token", () => {
      const now = this.#clock.now();
      if (this.#classicDaily.count(app.appid, now) >= app.daily_quota) return wechatError(ERR.DAILY_QUOTA);
      this.#classicDaily.increment(app.appid, now);
      return wechatJson(this.#issuer.issueClassic(app, now));
    }, wechatError);
  }

  /** @param {Required<SimRequest>} req */
  #stableToken({ method, body }) {
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
      const now = this.#clock.now();
      if (this.#stableMinute.count(app.appid, now) >= app.stable_minute_quota) return wechatError(ERR.MINUTE_QUOTA);
      if (this.#stableDaily.count(app.appid, now) >= app.stable_daily_quota) return wechatError(ERR.DAILY_QUOTA);
      this.#stableMinute.increment(app.appid, now);
      this.#stableDaily.increment(app.appid, now);
      const result = this.#issuer.issueStable(app, now, force_refresh === true);
      return "errcode" in result ? wechatError(result.errcode) : wechatJson(result);
    }, wechatError);
  }

  /** @param {Required<SimRequest>} req */
  #getCallbackIp(req) {
    return this.#withToken(req, ["getcallbackip"], "getcallbackip", () => wechatJson({ ip_list: CALLBACK_IP_LIST }));
  }

  /** @param {Required<SimRequest>} req */
  #getTicket(req) {
    const type = req.query.get("type");
    /** @type {AppStatName[]} */
    const stats = isOfficialTicketType(type) ? ["getticket", `getticket_${type}`] : ["getticket"];
    return this.#withToken(req, stats, "getticket", (record, now) => {
      const app = this.#apps.get(record.appid);
      return app ? this.#officialTickets.getticket(app, type, now) : wechatError(ERR.INVALID_ACCESS_TOKEN);
    });
  }

  /**
   * A call authorised by an access_token: counted against the token's app (or as an unknown token), hit by
   * the endpoint's faults, and carried out only when the token works now.
   * @param {Required<SimRequest>} req
   * @param {ReadonlyArray<AppStatName>} stats  the counters this call adds one to
   * @param {FaultEndpoint} endpoint
   * @param {(record: TokenRecord, nowMs: number) => SimResponse} perform
   * @returns {SimResult}
   */
  #withToken({ path, query }, stats, endpoint, perform) {
    const check = checkAccessToken(this.#tokens, query.get("access_token"), this.#clock.now());
    if (check.missing) return wechatError(ERR.ACCESS_TOKEN_MISSING);
    const appid = check.record?.appid;
    if (appid !== undefined) for (const stat of stats) this.#stats.record(appid, stat);
    else this.#unknownTokens.record(path);
    return withFault(this.#faults, check.record?.appid, endpoint, () => {
      // Time is read again: a slow or lost call is still judged at arrival, like the token endpoints.
      const now = this.#clock.now();
      const { record, errcode } = checkAccessToken(this.#tokens, query.get("access_token"), now);
      return errcode === undefined && record ? perform(record, now) : wechatError(errcode ?? ERR.INVALID_ACCESS_TOKEN);
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
}
