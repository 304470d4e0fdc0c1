// @ts-check
/**
 * WeCom (企业微信, qyapi.weixin.qq.com), served under /qyapi so a broker must be configured with its own
 * WeCom base (WECOM_API_BASE=<sim>/qyapi): the same paths at the root stay unknown, which proves the broker
 * routes WeCom calls separately. Pure logic, like wechat-sim.js. Rules from WECHAT-API.md:
 *
 *   GET /qyapi/cgi-bin/gettoken?corpid=&corpsecret=    one token per (corpid, secret); a re-fetch inside the
 *                                                      validity returns the same token (per secret:
 *                                                      same_token_on_refetch; false mints a new one and the
 *                                                      older ones live on to their own expiry)
 *   GET /qyapi/cgi-bin/get_jsapi_ticket?access_token=  the corp ticket (wx.config, appId = corpid), 400/h per corp
 *   GET /qyapi/cgi-bin/ticket/get?access_token=&type=agent_config
 *                                                      the agent ticket (wx.agentConfig), only with a token of an
 *                                                      agent's own secret, 100/h per agent
 *   GET /qyapi/cgi-bin/getcallbackip?access_token=     the business API, to check a token
 *
 * WeCom's errcodes differ from the official account's: 40001 is a bad *secret*, 40013 a bad corpid, and a
 * token revoked early answers 40014 (not 40001); an expired one 42001. Hour limits use clock-hour windows
 * and answer 45009 ("api freq out of limit"). Successes carry errcode 0 and errmsg "ok".
 */
import { MS_PER_S } from "./clock.js";
import { withFault } from "./faults.js";
import { EndpointStats, WECOM_STAT_NAMES } from "./stats.js";
import { agentOwner, corpOwner } from "./ticket-store.js";
import { TokenStore, WECOM_TOKEN_SHAPE } from "./token-store.js";
import { WeComRegistry } from "./wecom-apps.js";
import { WindowCounter } from "./window-counter.js";
import { newRid } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("./wecom-apps.js").WeComSecret} WeComSecret */
/** @typedef {import("./faults.js").FaultEndpoint} FaultEndpoint */
/** @typedef {typeof WECOM_STAT_NAMES[number]} WeComStatName */

export const WECOM_PREFIX = "/qyapi";
export const CORP_TICKETS_PER_HOUR = 400;
export const AGENT_TICKETS_PER_HOUR = 100;
const HOUR_MS = 3600 * MS_PER_S;
const AGENT_CONFIG = "agent_config";
const WECOM_CONTENT_TYPE = "application/json; charset=UTF-8";
// Shaped like WeCom's callback egress list (single addresses); the values are illustrative.
const WECOM_CALLBACK_IPS = Object.freeze(["182.254.11.176", "182.254.78.66", "140.207.54.73", "140.207.54.74"]);

export const WECOM_ERR = Object.freeze({
  SYSTEM_ERROR: -1,
  INVALID_SECRET: 40001,
  INVALID_CORPID: 40013,
  INVALID_ACCESS_TOKEN: 40014,
  INVALID_PARAMETER: 40058,
  ACCESS_TOKEN_MISSING: 41001,
  CORPID_MISSING: 41002,
  SECRET_MISSING: 41004,
  ACCESS_TOKEN_EXPIRED: 42001,
  FREQ_OUT_OF_LIMIT: 45009,
  API_FORBIDDEN: 48002,
  // The service-provider API (wecom-service.js; OPEN-PLATFORM.md §10, WJ WxCpErrorMsgEnum).
  INVALID_PRE_AUTH_CODE: 40077,
  INVALID_AUTH_CODE: 40078,
  INVALID_SUITE_SECRET: 40080,
  INVALID_SUITE_TOKEN: 40082,
  INVALID_SUITE_ID: 40083,
  INVALID_PERMANENT_CODE: 40084,
  INVALID_SUITE_TICKET: 40085,
  SUITE_TOKEN_MISSING: 41022,
  SUITE_TICKET_MISSING: 41023,
  SECRET_MISSING_SERVICE: 41024,
  PERMANENT_CODE_MISSING: 41025,
  PRE_AUTH_CODE_EXPIRED: 42007,
  SUITE_TOKEN_EXPIRED: 42009,
});

/** @type {ReadonlyMap<number, string>} */
const WECOM_ERRMSG = new Map([
  [WECOM_ERR.SYSTEM_ERROR, "system busy"],
  [WECOM_ERR.INVALID_SECRET, "invalid credential"],
  [WECOM_ERR.INVALID_CORPID, "invalid corpid"],
  [WECOM_ERR.INVALID_ACCESS_TOKEN, "invalid access_token"],
  [WECOM_ERR.INVALID_PARAMETER, "invalid parameter"],
  [WECOM_ERR.ACCESS_TOKEN_MISSING, "access_token missing"],
  [WECOM_ERR.CORPID_MISSING, "corpid missing"],
  [WECOM_ERR.SECRET_MISSING, "corpsecret missing"],
  [WECOM_ERR.ACCESS_TOKEN_EXPIRED, "access_token expired"],
  [WECOM_ERR.FREQ_OUT_OF_LIMIT, "api freq out of limit"],
  [WECOM_ERR.API_FORBIDDEN, "api forbidden"],
  [WECOM_ERR.INVALID_PRE_AUTH_CODE, "invalid preauth_code"],
  [WECOM_ERR.INVALID_AUTH_CODE, "invalid auth_code"],
  [WECOM_ERR.INVALID_SUITE_SECRET, "invalid suite_secret"],
  // WeCom's own spelling (OPEN-PLATFORM.md §10).
  [WECOM_ERR.INVALID_SUITE_TOKEN, "invalid suite_acccess_token or provider_access_token"],
  [WECOM_ERR.INVALID_SUITE_ID, "invalid suite_id"],
  [WECOM_ERR.INVALID_PERMANENT_CODE, "invalid permanent_code"],
  [WECOM_ERR.INVALID_SUITE_TICKET, "invalid suite_ticket"],
  [WECOM_ERR.SUITE_TOKEN_MISSING, "missing suite_access_token"],
  [WECOM_ERR.SUITE_TICKET_MISSING, "missing suite_ticket"],
  [WECOM_ERR.SECRET_MISSING_SERVICE, "missing secret"],
  [WECOM_ERR.PERMANENT_CODE_MISSING, "missing permanent_code"],
  [WECOM_ERR.PRE_AUTH_CODE_EXPIRED, "preauth_code expired"],
  [WECOM_ERR.SUITE_TOKEN_EXPIRED, "suite_access_token expired"],
]);

/**
 * @param {unknown} payload
 * @param {number} [status]
 * @returns {SimResponse}
 */
function wecomJson(payload, status = 200) {
  return { status, headers: { "content-type": WECOM_CONTENT_TYPE }, body: JSON.stringify(payload) };
}

/**
 * WeCom's error shape: the errmsg ends with a hint and a link to its errcode lookup.
 * @param {number} errcode
 * @param {number} [status]  200, as WeCom answers every error, except for an unknown path
 * @returns {SimResponse}
 */
export function wecomError(errcode, status = 200) {
  const text = WECOM_ERRMSG.get(errcode) ?? "injected error";
  return wecomJson({ errcode, errmsg: `${text}, hint: [${newRid()}], more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}` }, status);
}

/** @param {number} ms */
const clockHour = (ms) => Math.floor(ms / HOUR_MS);

export class WeComSim {
  registry = new WeComRegistry();
  stats = new EndpointStats(WECOM_STAT_NAMES);
  #tokens = new TokenStore(WECOM_TOKEN_SHAPE);
  #corpTickets = new WindowCounter(clockHour);
  #agentTickets = new WindowCounter(clockHour);
  /** @type {import("./ticket-store.js").TicketStore} */
  #tickets;
  /** @type {import("./faults.js").FaultQueue} */
  #faults;
  /** @type {import("./stats.js").UnknownTokenStats} */
  #unknownTokens;
  /** @type {(token: string) => { record: import("./token-store.js").TokenRecord, entry: WeComSecret } | undefined} */
  #installedToken;

  /**
   * @param {object} deps  shared with the official-account side
   * @param {import("./ticket-store.js").TicketStore} deps.tickets
   * @param {import("./faults.js").FaultQueue} deps.faults
   * @param {import("./stats.js").UnknownTokenStats} deps.unknownTokens
   * @param {(token: string) => { record: import("./token-store.js").TokenRecord, entry: WeComSecret } | undefined} [deps.installedToken]
   *        a corp token of a suite's install (wecom-installs.js), which the corp endpoints take like a gettoken one
   */
  constructor({ tickets, faults, unknownTokens, installedToken = () => undefined }) {
    this.#tickets = tickets;
    this.#faults = faults;
    this.#unknownTokens = unknownTokens;
    this.#installedToken = installedToken;
  }

  /**
   * @param {Required<SimRequest>} req  path still carries the /qyapi prefix
   * @param {number} nowMs
   * @returns {SimResult | undefined}  undefined: not a WeCom credential path
   */
  handle(req, nowMs) {
    switch (req.path.slice(WECOM_PREFIX.length)) {
      case "/cgi-bin/gettoken":
        return this.#gettoken(req, nowMs);
      case "/cgi-bin/get_jsapi_ticket":
        return this.#withToken(req, "get_jsapi_ticket", "wecom_get_jsapi_ticket", nowMs, (entry) => this.#corpTicket(entry, nowMs));
      case "/cgi-bin/ticket/get":
        return this.#withToken(req, "ticket_get", "wecom_ticket_get", nowMs, (entry) => this.#agentTicket(entry, req.query.get("type"), nowMs));
      case "/cgi-bin/getcallbackip":
        return this.#withToken(req, "getcallbackip", "wecom_getcallbackip", nowMs, () =>
          wecomJson({ errcode: 0, errmsg: "ok", ip_list: WECOM_CALLBACK_IPS }),
        );
      default:
        return undefined;
    }
  }

  /**
   * Revokes every token of the corp, or of one of its secrets, at once (WeCom "may invalidate early").
   * @param {string} corpid
   * @param {string | undefined} agentid  undefined: every secret of the corp
   * @param {number} nowMs
   * @returns {number} how many secrets were affected
   */
  revoke(corpid, agentid, nowMs) {
    const entries = this.registry.select(corpid, agentid);
    for (const entry of entries) this.#tokens.capAll(entry.key, "wecom", nowMs, nowMs);
    return entries.length;
  }

  clear() {
    this.registry.clear();
    this.stats.clear();
    this.#tokens.clear();
    this.#corpTickets.clear();
    this.#agentTickets.clear();
  }

  /**
   * Validation order as for the official account: corpid present, secret present, corpid known, secret right.
   * @param {Required<SimRequest>} req
   * @param {number} nowMs
   * @returns {SimResult}
   */
  #gettoken({ query }, nowMs) {
    const corpid = query.get("corpid");
    const secret = query.get("corpsecret");
    if (corpid && this.registry.hasCorp(corpid)) this.stats.record(corpid, "gettoken");
    if (!corpid) return wecomError(WECOM_ERR.CORPID_MISSING);
    if (!secret) return wecomError(WECOM_ERR.SECRET_MISSING);
    if (!this.registry.hasCorp(corpid)) return wecomError(WECOM_ERR.INVALID_CORPID);
    const entry = this.registry.bySecret(corpid, secret);
    if (!entry) return wecomError(WECOM_ERR.INVALID_SECRET);
    return withFault(this.#faults, corpid, "wecom_gettoken", () => {
      const current = this.#tokens.latest(entry.key, "wecom");
      const reuse = entry.same_token_on_refetch && current && current.validUntilMs > nowMs;
      const record = reuse ? current : this.#tokens.mint(entry.key, "wecom", entry.lifetime_s, nowMs);
      return wecomJson({ errcode: 0, errmsg: "ok", access_token: record.token, expires_in: Math.floor((record.validUntilMs - nowMs) / MS_PER_S) });
    }, wecomError);
  }

  /**
   * A call authorised by a WeCom access_token: counted per corp (or as an unknown token), hit by the
   * endpoint's faults, carried out only when the token works now.
   * @param {Required<SimRequest>} req
   * @param {WeComStatName} stat
   * @param {FaultEndpoint} endpoint
   * @param {number} nowMs
   * @param {(entry: WeComSecret) => SimResponse} perform
   * @returns {SimResult}
   */
  #withToken({ path, query }, stat, endpoint, nowMs, perform) {
    const token = query.get("access_token");
    if (!token) return wecomError(WECOM_ERR.ACCESS_TOKEN_MISSING);
    const installed = this.#installedToken(token);
    const record = installed?.record ?? this.#tokens.lookup(token);
    const entry = installed?.entry ?? (record && this.registry.byKey(record.appid));
    if (entry) this.stats.record(entry.corpid, stat);
    else this.#unknownTokens.record(path);
    return withFault(this.#faults, entry?.corpid, endpoint, () => {
      switch (TokenStore.status(record, nowMs)) {
        case "valid":
          return entry ? perform(entry) : wecomError(WECOM_ERR.INVALID_ACCESS_TOKEN);
        case "expired":
          return wecomError(WECOM_ERR.ACCESS_TOKEN_EXPIRED);
        default:
          // Revoked early and never issued read the same in WeCom: 40014.
          return wecomError(WECOM_ERR.INVALID_ACCESS_TOKEN);
      }
    }, wecomError);
  }

  /**
   * @param {WeComSecret} entry  the secret whose token made the call
   * @param {number} nowMs
   */
  #corpTicket(entry, nowMs) {
    if (this.#corpTickets.count(entry.corpid, nowMs) >= CORP_TICKETS_PER_HOUR) return wecomError(WECOM_ERR.FREQ_OUT_OF_LIMIT);
    this.#corpTickets.increment(entry.corpid, nowMs);
    const grant = this.#tickets.issue(corpOwner(entry.corpid), "jsapi", { refetch: entry.ticket_refetch, lifetimeS: entry.ticket_lifetime_s }, nowMs);
    return wecomJson({ errcode: 0, errmsg: "ok", ...grant });
  }

  /**
   * @param {WeComSecret} entry
   * @param {string | null} type
   * @param {number} nowMs
   */
  #agentTicket(entry, type, nowMs) {
    if (type !== AGENT_CONFIG) return wecomError(WECOM_ERR.INVALID_PARAMETER);
    // The application ticket belongs to an agent: a corp-level secret (contacts sync …) has none.
    if (entry.agentid === undefined) return wecomError(WECOM_ERR.API_FORBIDDEN);
    if (this.#agentTickets.count(entry.key, nowMs) >= AGENT_TICKETS_PER_HOUR) return wecomError(WECOM_ERR.FREQ_OUT_OF_LIMIT);
    this.#agentTickets.increment(entry.key, nowMs);
    const owner = agentOwner(entry.corpid, entry.agentid);
    const grant = this.#tickets.issue(owner, AGENT_CONFIG, { refetch: entry.ticket_refetch, lifetimeS: entry.ticket_lifetime_s }, nowMs);
    return wecomJson({ errcode: 0, errmsg: "ok", ...grant });
  }
}
