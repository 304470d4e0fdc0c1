// @ts-check
/**
 * WeCom's service-provider API (服务商 / 第三方应用 / 代开发), under /qyapi/cgi-bin/service/, after
 * ../shared/OPEN-PLATFORM.md §10 and "What a faithful simulator must do" (the WeCom bullets). Pure logic,
 * like wecom.js: it answers requests and produces pushes (wecom-suite-pushes.js); delivering them is the
 * pusher's job (open-pusher.js).
 *
 *   POST /cgi-bin/service/get_suite_token      {suite_id, suite_secret, suite_ticket} → {suite_access_token, expires_in}
 *   GET  /cgi-bin/service/get_pre_auth_code    ?suite_access_token= → {pre_auth_code, expires_in: 1200}
 *   POST /cgi-bin/service/get_permanent_code   ?suite_access_token= {auth_code} → permanent_code, auth_corp_info,
 *                                               auth_info, auth_user_info, access_token, expires_in (v1)
 *   POST /cgi-bin/service/v2/get_permanent_code  the same without access_token (v2, W-100776)
 *   POST /cgi-bin/service/get_corp_token       ?suite_access_token= {auth_corpid, permanent_code} → {access_token, expires_in}
 *   POST /cgi-bin/service/get_provider_token   {corpid, provider_secret} → {provider_access_token, expires_in}
 *   POST /cgi-bin/service/get_auth_info        ?suite_access_token= {auth_corpid, permanent_code} → auth_corp_info, auth_info
 *   POST /cgi-bin/service/set_session_info     ?suite_access_token= {pre_auth_code, session_info: {auth_type: 0|1}} (1: test install)
 *
 * The rules: every suite_ticket pushed stays valid for its 30 min (so the newest and the two before it
 * work); another suite's ticket, or an unknown or expired one, answers 40085. get_suite_token returns the
 * same token while it is valid (W-97162, ops answer), and so does get_provider_token (W-96237); an expired
 * suite token answers 42009, one never issued 40082. pre_auth_codes live 1200 s (40077 unknown). Installs,
 * their codes and corp tokens are wecom-installs.js's. Successes carry no errcode unless the suite says
 * otherwise ("for historical reasons errcode is only returned on failure", W-97162).
 */
import { MS_PER_S } from "./clock.js";
import { withFault } from "./faults.js";
import { SuitePushes } from "./wecom-suite-pushes.js";
import { TokenStore, WECOM_TOKEN_SHAPE } from "./token-store.js";
import { WECOM_ERR, wecomError } from "./wecom.js";
import { parseJsonObject } from "./wire.js";
import { opaque, WeComInstalls } from "./wecom-installs.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./wire.js").SimResult} SimResult */
/** @typedef {import("./wecom-suites.js").Suite} Suite */

export const SERVICE_PREFIX = "/qyapi/cgi-bin/service/";
const WECOM_CONTENT_TYPE = "application/json; charset=UTF-8";

/** The endpoints, by their path after SERVICE_PREFIX: each has a stat and a fault name (faults.js). */
export const SERVICE_ENDPOINTS = /** @type {const} */ ({
  get_suite_token: "wecom_get_suite_token",
  get_pre_auth_code: "wecom_get_pre_auth_code",
  get_permanent_code: "wecom_get_permanent_code",
  "v2/get_permanent_code": "wecom_get_permanent_code",
  get_corp_token: "wecom_get_corp_token",
  get_provider_token: "wecom_get_provider_token",
  get_auth_info: "wecom_get_auth_info",
  set_session_info: "wecom_set_session_info",
});
/** @typedef {keyof typeof SERVICE_ENDPOINTS} ServicePath */

export class WeComServiceSim {
  /** @type {import("./wecom-suites.js").SuiteRegistry} */
  #suites;
  /** @type {import("./faults.js").FaultQueue} */
  #faults;
  #tokens = new TokenStore(WECOM_TOKEN_SHAPE);
  /** @type {Map<string, { suite: string, expiresAtMs: number }>} */
  #tickets = new Map();
  /** @type {Map<string, { suite: string, expiresAtMs: number }>} */
  #preAuthCodes = new Map();
  #installs = new WeComInstalls({ tokens: this.#tokens, ok: (suite, payload) => this.#ok(suite, payload) });
  /** @type {Map<string, Record<string, number>>} calls per suite (or provider corpid) and endpoint */
  #stats = new Map();
  pushes;

  /** @param {{ suites: import("./wecom-suites.js").SuiteRegistry, faults: import("./faults.js").FaultQueue }} deps */
  constructor({ suites, faults }) {
    this.#suites = suites;
    this.#faults = faults;
    this.pushes = new SuitePushes({ suites, issueTicket: (suite, nowMs) => this.#issueTicket(suite, nowMs) });
  }

  /**
   * @param {Required<SimRequest>} req  path still carries the /qyapi prefix
   * @param {number} nowMs
   * @returns {SimResult | undefined}  undefined: not a service-provider path
   */
  handle(req, nowMs) {
    if (!req.path.startsWith(SERVICE_PREFIX)) return undefined;
    const path = /** @type {ServicePath} */ (req.path.slice(SERVICE_PREFIX.length));
    if (!Object.hasOwn(SERVICE_ENDPOINTS, path)) return undefined;
    const endpoint = SERVICE_ENDPOINTS[path];
    if (path === "get_pre_auth_code") return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#preAuthCode(suite, nowMs));
    if (req.method !== "POST") return wecomError(WECOM_ERR.INVALID_PARAMETER);
    const body = parseJsonObject(req.body);
    if (!body) return wecomError(WECOM_ERR.INVALID_PARAMETER);
    switch (path) {
      case "get_suite_token": return this.#suiteToken(body, endpoint, nowMs);
      case "get_provider_token": return this.#providerToken(body, endpoint, nowMs);
      case "get_corp_token": return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#installs.corpToken(suite, body, nowMs));
      case "get_auth_info": return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#installs.authInfo(suite, body));
      case "set_session_info": return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#sessionInfo(suite, body, nowMs));
      default: return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#installs.permanentCode(suite, body, path === "get_permanent_code", nowMs));
    }
  }

  /**
   * A corp admin installs the suite: a temporary auth code (as the install page's redirect carries it) and,
   * when `push`, a create_auth callback with it (installs from the app market; W-90642). A pre_auth_code,
   * when given, must be live and of this suite.
   * @param {string} suiteId
   * @param {{ corpid: string, corp_name?: string, pre_auth_code?: string, push: boolean, state?: string, agentid?: number }} install
   * @param {number} nowMs
   * @returns {{ auth_code: string, expires_in: number } | { error: string }}
   */
  install(suiteId, { corpid, corp_name, pre_auth_code, push, state = "", agentid }, nowMs) {
    const suite = this.#suites.get(suiteId);
    if (!suite) return { error: `unknown suite ${suiteId}` };
    if (pre_auth_code !== undefined) {
      const pre = this.#preAuthCodes.get(pre_auth_code);
      if (!pre || pre.suite !== suiteId || pre.expiresAtMs <= nowMs) return { error: "pre_auth_code is unknown, of another suite or expired" };
    }
    const { auth_code: authCode, expires_in } = this.#installs.install(suite, corpid, corp_name, nowMs, agentid);
    if (push) this.pushes.enqueue(suite, { InfoType: "create_auth", AuthCode: authCode, State: state }, nowMs);
    return { auth_code: authCode, expires_in };
  }

  /**
   * The corp uninstalls the suite: its permanent code answers 40084 and its tokens stop; a cancel_auth
   * callback goes out when `push`.
   * @param {string} suiteId @param {string} corpid @param {boolean} push @param {number} nowMs
   */
  uninstall(suiteId, corpid, push, nowMs) {
    const suite = this.#suites.get(suiteId);
    if (!suite || !this.#installs.uninstall(suite, corpid, nowMs)) return false;
    if (push) this.pushes.enqueue(suite, { InfoType: "cancel_auth", AuthCorpId: corpid }, nowMs);
    return true;
  }

  /**
   * change_auth: what the corp grants changed (get_auth_info reads it); the callback goes out when `push`.
   * @param {string} suiteId @param {string} corpid @param {string | undefined} corpName @param {boolean} push @param {number} nowMs
   */
  change(suiteId, corpid, corpName, push, nowMs) {
    const suite = this.#suites.get(suiteId);
    if (!suite || !this.#installs.change(suite, corpid, corpName)) return false;
    if (push) this.pushes.enqueue(suite, { InfoType: "change_auth", AuthCorpId: corpid }, nowMs);
    return true;
  }

  /**
   * 代开发 reset_permanent_code: an AuthCode (pushed when `push`) whose exchange issues the new permanent code.
   * @param {string} suiteId @param {string} corpid @param {boolean} push @param {number} nowMs
   * @returns {{ auth_code: string, expires_in: number } | null}
   */
  reset(suiteId, corpid, push, nowMs) {
    const suite = this.#suites.get(suiteId);
    const code = suite ? this.#installs.reset(suite, corpid, nowMs) : null;
    if (!suite || !code) return null;
    if (push) this.pushes.enqueue(suite, { InfoType: "reset_permanent_code", AuthCode: code.auth_code }, nowMs);
    return code;
  }

  /** A corp token of an install, as wecom.js's corp endpoints see it (wecom-installs.js). @param {string} token */
  corpTokenEntry(token) {
    return this.#installs.corpTokenEntry(token, (suiteId) => this.#suites.get(suiteId));
  }

  /** @param {string} id  a suite_id or a provider corpid */
  statsOf(id) {
    return { ...Object.fromEntries(Object.values(SERVICE_ENDPOINTS).map((name) => [name, 0])), ...this.#stats.get(id), pushes: this.pushes.statsOf(id) };
  }

  clear() {
    for (const map of [this.#tickets, this.#preAuthCodes, this.#stats]) map.clear();
    this.#installs.clear();
    this.#tokens.clear();
    this.pushes.clear();
  }

  /** @param {Suite} suite @param {number} nowMs */
  #issueTicket(suite, nowMs) {
    const ticket = opaque("", 48);
    this.#tickets.set(ticket, { suite: suite.suite_id, expiresAtMs: nowMs + suite.ticket_lifetime_s * MS_PER_S });
    return ticket;
  }

  /** @param {Record<string, unknown>} body @param {string} endpoint @param {number} nowMs */
  #suiteToken({ suite_id, suite_secret, suite_ticket }, endpoint, nowMs) {
    const suite = typeof suite_id === "string" ? this.#suites.get(suite_id) : undefined;
    if (suite) this.#count(suite.suite_id, endpoint);
    return this.#fault(suite?.suite_id, endpoint, () => {
      if (!suite) return wecomError(WECOM_ERR.INVALID_SUITE_ID);
      if (typeof suite_secret !== "string" || suite_secret === "") return wecomError(WECOM_ERR.SECRET_MISSING_SERVICE);
      if (suite_secret !== suite.secret) return wecomError(WECOM_ERR.INVALID_SUITE_SECRET);
      if (typeof suite_ticket !== "string" || suite_ticket === "") return wecomError(WECOM_ERR.SUITE_TICKET_MISSING);
      const ticket = this.#tickets.get(suite_ticket);
      // A ticket belongs to one suite: another suite's is 40085 like an unknown or expired one.
      if (!ticket || ticket.suite !== suite.suite_id || ticket.expiresAtMs <= nowMs) return wecomError(WECOM_ERR.INVALID_SUITE_TICKET);
      const current = this.#tokens.latest(suite.suite_id, "suite");
      const reuse = current !== undefined && TokenStore.status(current, nowMs) === "valid";
      const record = reuse ? current : this.#tokens.mint(suite.suite_id, "suite", suite.token_lifetime_s, nowMs);
      const expiresIn = reuse && suite.reused_expires_in === "full" ? suite.token_lifetime_s : Math.floor((record.validUntilMs - nowMs) / MS_PER_S);
      return this.#ok(suite, { suite_access_token: record.token, expires_in: expiresIn });
    });
  }

  /** @param {Record<string, unknown>} body @param {string} endpoint @param {number} nowMs */
  #providerToken({ corpid, provider_secret }, endpoint, nowMs) {
    const suites = typeof corpid === "string" ? this.#suites.ofProvider(corpid) : [];
    if (suites.length) this.#count(/** @type {string} */ (corpid), endpoint);
    return this.#fault(suites.length ? /** @type {string} */ (corpid) : undefined, endpoint, () => {
      if (typeof corpid !== "string" || corpid === "") return wecomError(WECOM_ERR.CORPID_MISSING);
      if (typeof provider_secret !== "string" || provider_secret === "") return wecomError(WECOM_ERR.SECRET_MISSING_SERVICE);
      const suite = suites.find((s) => s.provider_secret !== null);
      if (!suite) return wecomError(WECOM_ERR.INVALID_CORPID);
      if (provider_secret !== suite.provider_secret) return wecomError(WECOM_ERR.INVALID_SECRET);
      const current = this.#tokens.latest(corpid, "provider");
      const reuse = current !== undefined && TokenStore.status(current, nowMs) === "valid";
      const record = reuse ? current : this.#tokens.mint(corpid, "provider", suite.provider_token_lifetime_s, nowMs);
      // What a reused provider token's expires_in says is as unconfirmed as a suite token's: the suite's choice.
      const expiresIn = reuse && suite.reused_expires_in === "full" ? suite.provider_token_lifetime_s : Math.floor((record.validUntilMs - nowMs) / MS_PER_S);
      return this.#ok(suite, { provider_access_token: record.token, expires_in: expiresIn });
    });
  }

  /** @param {Suite} suite @param {number} nowMs */
  #preAuthCode(suite, nowMs) {
    const code = opaque("", 32);
    this.#preAuthCodes.set(code, { suite: suite.suite_id, expiresAtMs: nowMs + suite.pre_auth_code_lifetime_s * MS_PER_S });
    return this.#ok(suite, { pre_auth_code: code, expires_in: suite.pre_auth_code_lifetime_s });
  }

  /** set_session_info: 0 a normal install, 1 a test install (W-90601). @param {Suite} suite @param {Record<string, unknown>} body @param {number} nowMs */
  #sessionInfo(suite, { pre_auth_code, session_info }, nowMs) {
    const pre = typeof pre_auth_code === "string" ? this.#preAuthCodes.get(pre_auth_code) : undefined;
    if (!pre || pre.suite !== suite.suite_id) return wecomError(WECOM_ERR.INVALID_PRE_AUTH_CODE);
    if (pre.expiresAtMs <= nowMs) return wecomError(WECOM_ERR.PRE_AUTH_CODE_EXPIRED);
    const authType = /** @type {{ auth_type?: unknown } | undefined} */ (session_info)?.auth_type;
    if (authType !== 0 && authType !== 1) return wecomError(WECOM_ERR.INVALID_PARAMETER);
    // A call that changes something answers errcode 0 whatever the suite's omit_errcode says.
    return { status: 200, headers: { "content-type": WECOM_CONTENT_TYPE }, body: JSON.stringify({ errcode: 0, errmsg: "ok" }) };
  }

  /**
   * A call authorised by a suite_access_token (query `suite_access_token`): counted against its suite, hit by
   * the endpoint's faults, carried out only while the token is valid (missing 41022, expired 42009, never
   * issued or replaced 40082).
   * @param {Required<SimRequest>} req @param {string} endpoint @param {number} nowMs @param {(suite: Suite) => SimResponse} perform
   */
  #withSuiteToken({ query }, endpoint, nowMs, perform) {
    const token = query.get("suite_access_token");
    const record = token ? this.#tokens.lookup(token) : undefined;
    const suite = record?.kind === "suite" ? this.#suites.get(record.appid) : undefined;
    if (suite) this.#count(suite.suite_id, endpoint);
    return this.#fault(suite?.suite_id, endpoint, () => {
      if (!token) return wecomError(WECOM_ERR.SUITE_TOKEN_MISSING);
      const status = TokenStore.status(record, nowMs);
      if (!suite || status === "unknown") return wecomError(WECOM_ERR.INVALID_SUITE_TOKEN);
      if (status === "expired") return wecomError(WECOM_ERR.SUITE_TOKEN_EXPIRED);
      if (status !== "valid") return wecomError(WECOM_ERR.INVALID_SUITE_TOKEN);
      return perform(suite);
    });
  }

  /** @param {string | undefined} id @param {string} endpoint @param {() => SimResponse} perform */
  #fault(id, endpoint, perform) {
    return withFault(this.#faults, id, /** @type {import("./faults.js").FaultEndpoint} */ (endpoint), perform, wecomError);
  }

  /** @param {Suite} suite @param {Record<string, unknown>} payload */
  #ok(suite, payload) {
    const body = suite.omit_errcode ? payload : { errcode: 0, errmsg: "ok", ...payload };
    return { status: 200, headers: { "content-type": WECOM_CONTENT_TYPE }, body: JSON.stringify(body) };
  }

  /** @param {string} id @param {string} endpoint */
  #count(id, endpoint) {
    const stats = this.#stats.get(id) ?? {};
    stats[endpoint] = (stats[endpoint] ?? 0) + 1;
    this.#stats.set(id, stats);
  }
}
