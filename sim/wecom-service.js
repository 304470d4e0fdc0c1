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
 *
 * The rules: every suite_ticket pushed stays valid for its 30 min (so the newest and the two before it
 * work); another suite's ticket, or an unknown or expired one, answers 40085. get_suite_token returns the
 * same token while it is valid (W-97162, ops answer), and so does get_provider_token (W-96237); an expired
 * suite token answers 42009, one never issued 40082. get_corp_token mints a new corp token each call (whether
 * WeCom reuses it is unconfirmed); each lives to its own expiry. pre_auth_codes live 1200 s; the temporary
 * auth code of an install lives 600 s and is used up by get_permanent_code (then, or unknown, 40078); a
 * permanent code works until the corp uninstalls the suite (then 40084, which is this simulator's reading of
 * an unconfirmed rule) and a reinstall issues a new one. Successes carry no errcode unless the suite says
 * otherwise ("for historical reasons errcode is only returned on failure", W-97162).
 */
import { randomBytes } from "node:crypto";
import { MS_PER_S } from "./clock.js";
import { withFault } from "./faults.js";
import { SuitePushes } from "./wecom-suite-pushes.js";
import { TokenStore, WECOM_TOKEN_SHAPE } from "./token-store.js";
import { WECOM_ERR, wecomError } from "./wecom.js";
import { parseJsonObject } from "./wire.js";

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
});
/** @typedef {keyof typeof SERVICE_ENDPOINTS} ServicePath */

/** @param {string} prefix @param {number} bytes  base64url of `bytes` random bytes after `prefix` */
function opaque(prefix, bytes) {
  return `${prefix}${randomBytes(bytes).toString("base64url")}`;
}

/**
 * @typedef {object} Install
 * @property {string} corpid
 * @property {string} corpName
 * @property {string} permanentCode
 * @property {number} agentid
 * @property {boolean} installed
 */

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
  /** @type {Map<string, { suite: string, corpid: string, expiresAtMs: number }>} */
  #authCodes = new Map();
  /** @type {Map<string, Map<string, Install>>} suite → corpid → install */
  #installs = new Map();
  /** @type {Map<string, Record<string, number>>} calls per suite (or provider corpid) and endpoint */
  #stats = new Map();
  #nextAgentid = 1_000_001;
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
      case "get_corp_token": return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#corpToken(suite, body, nowMs));
      default: return this.#withSuiteToken(req, endpoint, nowMs, (suite) => this.#permanentCode(suite, body, path === "get_permanent_code", nowMs));
    }
  }

  /**
   * A corp admin installs the suite: a temporary auth code (as the install page's redirect carries it) and,
   * when `push`, a create_auth callback with it (installs from the app market; W-90642). A pre_auth_code,
   * when given, must be live and of this suite.
   * @param {string} suiteId
   * @param {{ corpid: string, corp_name?: string, pre_auth_code?: string, push: boolean, state?: string }} install
   * @param {number} nowMs
   * @returns {{ auth_code: string, expires_in: number } | { error: string }}
   */
  install(suiteId, { corpid, corp_name, pre_auth_code, push, state = "" }, nowMs) {
    const suite = this.#suites.get(suiteId);
    if (!suite) return { error: `unknown suite ${suiteId}` };
    if (pre_auth_code !== undefined) {
      const pre = this.#preAuthCodes.get(pre_auth_code);
      if (!pre || pre.suite !== suiteId || pre.expiresAtMs <= nowMs) return { error: "pre_auth_code is unknown, of another suite or expired" };
    }
    const installs = this.#installsOf(suiteId);
    const existing = installs.get(corpid);
    if (!existing?.installed) {
      installs.set(corpid, {
        corpid, corpName: corp_name ?? `corp ${corpid}`, permanentCode: opaque("", 32), installed: true,
        agentid: existing?.agentid ?? this.#nextAgentid++,
      });
    }
    // WeCom's temporary codes are at least 64 characters (40058 for a shorter one, OPEN-PLATFORM.md §10).
    const authCode = opaque("", 60);
    this.#authCodes.set(authCode, { suite: suiteId, corpid, expiresAtMs: nowMs + suite.auth_code_lifetime_s * MS_PER_S });
    if (push) this.pushes.enqueue(suite, { InfoType: "create_auth", AuthCode: authCode, State: state }, nowMs);
    return { auth_code: authCode, expires_in: suite.auth_code_lifetime_s };
  }

  /**
   * The corp uninstalls the suite: its permanent code answers 40084 and its tokens stop; a cancel_auth
   * callback goes out when `push`.
   * @param {string} suiteId @param {string} corpid @param {boolean} push @param {number} nowMs
   */
  uninstall(suiteId, corpid, push, nowMs) {
    const suite = this.#suites.get(suiteId);
    const install = this.#installs.get(suiteId)?.get(corpid);
    if (!suite || !install?.installed) return false;
    install.installed = false;
    this.#tokens.capAll(corpid, `corp:${suiteId}`, nowMs, nowMs);
    if (push) this.pushes.enqueue(suite, { InfoType: "cancel_auth", AuthCorpId: corpid }, nowMs);
    return true;
  }

  /** @param {string} id  a suite_id or a provider corpid */
  statsOf(id) {
    return { ...Object.fromEntries(Object.values(SERVICE_ENDPOINTS).map((name) => [name, 0])), ...this.#stats.get(id), pushes: this.pushes.statsOf(id) };
  }

  clear() {
    for (const map of [this.#tickets, this.#preAuthCodes, this.#authCodes, this.#installs, this.#stats]) map.clear();
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

  /** @param {Suite} suite @param {Record<string, unknown>} body @param {boolean} v1 @param {number} nowMs */
  #permanentCode(suite, { auth_code }, v1, nowMs) {
    if (typeof auth_code !== "string" || auth_code === "") return wecomError(WECOM_ERR.INVALID_AUTH_CODE);
    if (auth_code.length < 64) return wecomError(WECOM_ERR.INVALID_PARAMETER);
    const code = this.#authCodes.get(auth_code);
    // Used once, and only by its own suite; an expired one is as unknown as one never issued.
    if (!code || code.suite !== suite.suite_id || code.expiresAtMs <= nowMs) return wecomError(WECOM_ERR.INVALID_AUTH_CODE);
    this.#authCodes.delete(auth_code);
    const install = /** @type {Install} */ (this.#installsOf(suite.suite_id).get(code.corpid));
    const answer = {
      permanent_code: install.permanentCode,
      auth_corp_info: { corpid: install.corpid, corp_name: install.corpName },
      auth_user_info: { userid: "admin", open_userid: opaque("wo", 12), name: "admin" },
      ...(v1 && { auth_info: { agent: [{ agentid: install.agentid, name: `app of ${suite.suite_id}` }] } }),
    };
    if (!v1) return this.#ok(suite, answer);
    const token = this.#tokens.mint(install.corpid, `corp:${suite.suite_id}`, suite.corp_token_lifetime_s, nowMs);
    return this.#ok(suite, { ...answer, access_token: token.token, expires_in: suite.corp_token_lifetime_s });
  }

  /** @param {Suite} suite @param {Record<string, unknown>} body @param {number} nowMs */
  #corpToken(suite, { auth_corpid, permanent_code }, nowMs) {
    if (typeof auth_corpid !== "string" || auth_corpid === "") return wecomError(WECOM_ERR.CORPID_MISSING);
    if (typeof permanent_code !== "string" || permanent_code === "") return wecomError(WECOM_ERR.PERMANENT_CODE_MISSING);
    const install = this.#installs.get(suite.suite_id)?.get(auth_corpid);
    // WeCom answers 40082 when the suite has no install in that corp (OPEN-PLATFORM.md §10).
    if (!install) return wecomError(WECOM_ERR.INVALID_SUITE_TOKEN);
    if (!install.installed || permanent_code !== install.permanentCode) return wecomError(WECOM_ERR.INVALID_PERMANENT_CODE);
    const token = this.#tokens.mint(auth_corpid, `corp:${suite.suite_id}`, suite.corp_token_lifetime_s, nowMs);
    return this.#ok(suite, { access_token: token.token, expires_in: suite.corp_token_lifetime_s });
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

  /** @param {string} suiteId */
  #installsOf(suiteId) {
    let installs = this.#installs.get(suiteId);
    if (!installs) this.#installs.set(suiteId, (installs = new Map()));
    return installs;
  }

  /** @param {string} id @param {string} endpoint */
  #count(id, endpoint) {
    const stats = this.#stats.get(id) ?? {};
    stats[endpoint] = (stats[endpoint] ?? 0) + 1;
    this.#stats.set(id, stats);
  }
}
