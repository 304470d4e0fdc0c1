// @ts-check
/**
 * The open platform (第三方平台) as WeChat runs it for a vendor's component, after ../shared/OPEN-PLATFORM.md
 * ("What a faithful simulator must do"). Pure logic, like wechat-sim.js: it answers requests and produces
 * pushes; delivering a push to an event URL is open-pusher.js's job (server.js runs it).
 *
 *   POST /cgi-bin/component/api_component_token     {component_appid, component_appsecret, component_verify_ticket}
 *   POST /cgi-bin/component/api_start_push_ticket   {component_appid, component_secret}
 *   POST /cgi-bin/component/api_create_preauthcode  ?component_access_token= {component_appid}
 *   POST /cgi-bin/component/api_query_auth          ?component_access_token= {component_appid, authorization_code}
 *   POST /cgi-bin/component/api_authorizer_token    ?component_access_token= {component_appid, authorizer_appid, authorizer_refresh_token}
 *   POST /cgi-bin/component/api_get_authorizer_list ?component_access_token= {component_appid, offset, count ≤ 500}
 * (the component token is accepted as `access_token=` too: both names appear in WeChat's docs). Authorizer
 * tokens follow the same rule, one generation line per (component, account).
 *
 * The rules: every ticket pushed stays valid for its 12 h (several at once; unknown → 61006, expired → 61005);
 * every api_component_token call mints a new token (expires_in 7200 by default) and leaves the one it
 * replaced 300 s more (then 40001; expired ones 42001) — the same generational rule as /cgi-bin/token, which
 * WeChat does not document for components (OPEN-PLATFORM.md §4), so a broker must not rely on the overlap;
 * pre_auth_codes and authorization codes are single use (61009 unknown or used, 61010 expired); an
 * authorizer's refresh token stays the same across refreshes and changes on re-authorisation (the old one
 * then 61023); after `unauthorized` it answers 61003. A component whose IP allowlist excludes the caller
 * (`ip_allowed: false`) answers 61004 to every call. api_component_token counts against a daily quota (45009).
 */
import { randomBytes } from "node:crypto";
import { MS_PER_S, wechatDay } from "./clock.js";
import { ERR } from "./errcodes.js";
import { PREVIOUS_TOKEN_GRACE_S } from "./issuer.js";
import { OpenPushes } from "./open-pushes.js";
import { TokenStore } from "./token-store.js";
import { parseJsonObject, wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./open-components.js").Component} Component */

export const COMPONENT_PREFIX = "/cgi-bin/component/";
/** api_get_authorizer_list pages hold at most 500 (D-list). */
export const MAX_AUTHORIZER_PAGE = 500;
const COMPONENT_TOKEN_KIND = "component";

/** The endpoints, by the last part of their path: each has a stat and a fault name (faults.js). */
export const COMPONENT_ENDPOINTS = /** @type {const} */ ([
  "api_component_token", "api_start_push_ticket", "api_create_preauthcode", "api_query_auth", "api_authorizer_token", "api_get_authorizer_list",
]);
/** @typedef {typeof COMPONENT_ENDPOINTS[number]} ComponentEndpoint */

/** @param {string} prefix @param {number} bytes */
function opaque(prefix, bytes) {
  return `${prefix}${randomBytes(bytes).toString("base64url")}`;
}

/**
 * @typedef {object} Authorizer
 * @property {string} appid
 * @property {string} refreshToken
 * @property {boolean} authorized
 * @property {number} authTimeMs
 * @property {number[]} funcInfo
 */

export class OpenPlatformSim {
  /** @type {import("./open-components.js").ComponentRegistry} */
  #components;
  /** @type {TokenStore} component_access_tokens; never accepted as an app's access_token */
  #componentTokens = new TokenStore();
  /** @type {TokenStore} the broker-facing one: authorizer tokens work on the business API like any access_token */
  #accessTokens;
  /** @type {Map<string, { component: string, expiresAtMs: number }>} */
  #tickets = new Map();
  /** @type {Map<string, { component: string, expiresAtMs: number }>} */
  #preAuthCodes = new Map();
  /** @type {Map<string, { component: string, authorizer: string, expiresAtMs: number }>} */
  #authCodes = new Map();
  /** @type {Map<string, Map<string, Authorizer>>} component → authorizer appid → authorizer */
  #authorizers = new Map();
  /** @type {Map<string, { day: number, calls: number }>} api_component_token calls today, per component */
  #tokenCalls = new Map();
  /** @type {Map<string, Record<ComponentEndpoint, number>>} */
  #stats = new Map();
  pushes;

  /**
   * @param {{ components: import("./open-components.js").ComponentRegistry, accessTokens: TokenStore }} deps
   */
  constructor({ components, accessTokens }) {
    this.#components = components;
    this.#accessTokens = accessTokens;
    this.pushes = new OpenPushes({ components, issueTicket: (component, nowMs) => this.#issueTicket(component, nowMs) });
  }

  /**
   * @param {Required<SimRequest>} req
   * @param {number} nowMs
   * @param {(component: string | undefined, endpoint: ComponentEndpoint, perform: () => SimResponse) => import("./wire.js").SimResult} withFault
   * @returns {import("./wire.js").SimResult | undefined} undefined for a path that is not a component endpoint
   */
  handle(req, nowMs, withFault) {
    const endpoint = /** @type {ComponentEndpoint | undefined} */ (COMPONENT_ENDPOINTS.find((e) => req.path === `${COMPONENT_PREFIX}${e}`));
    if (!endpoint) return undefined;
    if (req.method !== "POST") return wechatError(ERR.REQUIRE_POST);
    const body = parseJsonObject(req.body);
    if (!body) return wechatError(ERR.DATA_FORMAT);
    const appid = body.component_appid;
    const component = typeof appid === "string" ? this.#components.get(appid) : undefined;
    if (component) this.#count(component.component_appid, endpoint);
    return withFault(component?.component_appid, endpoint, () => {
      if (typeof appid !== "string" || appid === "") return wechatError(ERR.APPID_MISSING);
      if (!component) return wechatError(endpoint === "api_start_push_ticket" ? ERR.INVALID_APPID : ERR.INVALID_COMPONENT);
      // "All the APIs above check the caller's IP" (D-ct).
      if (!component.ip_allowed) return wechatError(ERR.CLIENT_IP_NOT_REGISTERED);
      switch (endpoint) {
        case "api_component_token": return this.#componentToken(component, body, nowMs);
        case "api_start_push_ticket": return this.#startPushTicket(component, body, nowMs);
        default: {
          const check = this.#checkComponentToken(component, req.query, nowMs);
          if (check !== null) return wechatError(check);
          if (endpoint === "api_create_preauthcode") return this.#createPreAuthCode(component, nowMs);
          if (endpoint === "api_query_auth") return this.#queryAuth(component, body, nowMs);
          if (endpoint === "api_authorizer_token") return this.#authorizerToken(component, body, nowMs);
          return this.#authorizerList(component, body);
        }
      }
    });
  }

  /**
   * A user consents on the authorisation page: an authorization code for the redirect (and an `authorized` or
   * `updateauthorized` push when `push`). A pre_auth_code, when given, must be live and unused, and is used up.
   * @param {string} componentAppid
   * @param {{ authorizer_appid: string, pre_auth_code?: string, push: boolean, func_info: number[] }} consent
   * @param {number} nowMs
   * @returns {{ auth_code: string, expires_in: number } | { error: string }}
   */
  authorize(componentAppid, { authorizer_appid, pre_auth_code, push, func_info }, nowMs) {
    const component = this.#components.get(componentAppid);
    if (!component) return { error: `unknown component ${componentAppid}` };
    if (pre_auth_code !== undefined) {
      const pre = this.#preAuthCodes.get(pre_auth_code);
      if (!pre || pre.component !== componentAppid || pre.expiresAtMs <= nowMs) return { error: "pre_auth_code is unknown, used or expired" };
      this.#preAuthCodes.delete(pre_auth_code);
    }
    const authorizers = this.#authorizersOf(componentAppid);
    const existing = authorizers.get(authorizer_appid);
    const update = existing?.authorized === true;
    // Re-authorisation after a revocation issues a new refresh token and kills the old one (D-aatuse).
    authorizers.set(authorizer_appid, {
      appid: authorizer_appid, refreshToken: update && existing ? existing.refreshToken : opaque("refreshtoken@@@", 36),
      authorized: true, authTimeMs: update && existing ? existing.authTimeMs : nowMs, funcInfo: func_info,
    });
    const authCode = opaque("queryauthcode@@@", 36);
    const expiresAtMs = nowMs + component.auth_code_lifetime_s * MS_PER_S;
    this.#authCodes.set(authCode, { component: componentAppid, authorizer: authorizer_appid, expiresAtMs });
    if (push) {
      this.pushes.enqueue(component, {
        InfoType: update ? "updateauthorized" : "authorized", AuthorizerAppid: authorizer_appid, AuthorizationCode: authCode,
        AuthorizationCodeExpiredTime: Math.floor(expiresAtMs / MS_PER_S), PreAuthCode: pre_auth_code ?? "",
      }, nowMs);
    }
    return { auth_code: authCode, expires_in: component.auth_code_lifetime_s };
  }

  /**
   * The account revokes the authorisation: its refresh token answers 61003 from now on, its tokens stop, and an
   * `unauthorized` push goes out when `push`.
   * @param {string} componentAppid @param {string} authorizerAppid @param {boolean} push @param {number} nowMs
   */
  unauthorize(componentAppid, authorizerAppid, push, nowMs) {
    const authorizer = this.#authorizers.get(componentAppid)?.get(authorizerAppid);
    const component = this.#components.get(componentAppid);
    if (!authorizer || !authorizer.authorized || !component) return false;
    authorizer.authorized = false;
    this.#accessTokens.capAll(authorizerAppid, authorizerKind(componentAppid), nowMs, nowMs);
    if (push) this.pushes.enqueue(component, { InfoType: "unauthorized", AuthorizerAppid: authorizerAppid }, nowMs);
    return true;
  }

  /**
   * Every token of the account stops at once (40001), its authorisation untouched: what a token refused
   * behind the broker's back looks like (a reset by the account's admin, a leak cut off). False when the
   * account never authorised the component.
   * @param {string} componentAppid @param {string} authorizerAppid @param {number} nowMs
   */
  revokeTokens(componentAppid, authorizerAppid, nowMs) {
    if (!this.#authorizers.get(componentAppid)?.has(authorizerAppid)) return false;
    this.#accessTokens.capAll(authorizerAppid, authorizerKind(componentAppid), nowMs, nowMs);
    return true;
  }

  /** Whether the account ever authorised some component (its business calls are counted under its appid). @param {string} appid */
  isAuthorizer(appid) {
    return [...this.#authorizers.values()].some((authorizers) => authorizers.has(appid));
  }

  /** @param {string} componentAppid */
  statsOf(componentAppid) {
    return { ...this.#emptyStats(), ...this.#stats.get(componentAppid), pushes: this.pushes.statsOf(componentAppid) };
  }

  clear() {
    for (const map of [this.#tickets, this.#preAuthCodes, this.#authCodes, this.#authorizers, this.#tokenCalls, this.#stats]) map.clear();
    this.#componentTokens.clear();
    this.pushes.clear();
  }

  /** @param {Component} component @param {number} nowMs */
  #issueTicket(component, nowMs) {
    const ticket = opaque("ticket@@@", 64);
    this.#tickets.set(ticket, { component: component.component_appid, expiresAtMs: nowMs + component.ticket_lifetime_s * MS_PER_S });
    return ticket;
  }

  /** @param {Component} component @param {Record<string, unknown>} body @param {number} nowMs */
  #componentToken(component, { component_appsecret, component_verify_ticket }, nowMs) {
    if (typeof component_appsecret !== "string" || component_appsecret === "") return wechatError(ERR.APPSECRET_MISSING);
    if (component_appsecret !== component.secret) return wechatError(ERR.INVALID_APPSECRET);
    const ticket = typeof component_verify_ticket === "string" ? this.#tickets.get(component_verify_ticket) : undefined;
    // A ticket another component was pushed is as unknown here as a made-up one.
    if (!ticket || ticket.component !== component.component_appid) return wechatError(ERR.COMPONENT_TICKET_INVALID);
    if (ticket.expiresAtMs <= nowMs) return wechatError(ERR.COMPONENT_TICKET_EXPIRED);
    const day = wechatDay(nowMs);
    const used = this.#tokenCalls.get(component.component_appid);
    const calls = used?.day === day ? used.calls : 0;
    if (calls >= component.daily_quota) return wechatError(ERR.DAILY_QUOTA);
    this.#tokenCalls.set(component.component_appid, { day, calls: calls + 1 });
    this.#componentTokens.capNewest(component.component_appid, COMPONENT_TOKEN_KIND, nowMs + PREVIOUS_TOKEN_GRACE_S * MS_PER_S);
    const record = this.#componentTokens.mint(component.component_appid, COMPONENT_TOKEN_KIND, component.token_lifetime_s, nowMs);
    // The success body has no errcode (D-cat).
    return wechatJson({ component_access_token: record.token, expires_in: component.token_lifetime_s });
  }

  /** @param {Component} component @param {Record<string, unknown>} body @param {number} nowMs */
  #startPushTicket(component, { component_secret }, nowMs) {
    // `component_secret`, not `component_appsecret` (D-push).
    if (component_secret !== component.secret) return wechatError(ERR.INVALID_APPSECRET);
    const wasStopped = this.pushes.start(component, nowMs);
    return wechatJson({ errcode: 0, errmsg: wasStopped ? "ok" : "in a normal state" });
  }

  /**
   * @param {Component} component @param {URLSearchParams} query @param {number} nowMs
   * @returns {number | null} the errcode, or null when the token is this component's and works now
   */
  #checkComponentToken(component, query, nowMs) {
    const token = query.get("component_access_token") ?? query.get("access_token");
    if (!token) return ERR.ACCESS_TOKEN_MISSING;
    const record = this.#componentTokens.lookup(token);
    if (!record || record.appid !== component.component_appid) return ERR.INVALID_CREDENTIAL;
    const status = TokenStore.status(record, nowMs);
    return status === "valid" ? null : status === "expired" ? ERR.ACCESS_TOKEN_EXPIRED : ERR.INVALID_CREDENTIAL;
  }

  /** @param {Component} component @param {number} nowMs */
  #createPreAuthCode(component, nowMs) {
    const code = opaque("preauthcode@@@", 36);
    this.#preAuthCodes.set(code, { component: component.component_appid, expiresAtMs: nowMs + component.pre_auth_code_lifetime_s * MS_PER_S });
    return wechatJson({ pre_auth_code: code, expires_in: component.pre_auth_code_lifetime_s });
  }

  /** @param {Component} component @param {Record<string, unknown>} body @param {number} nowMs */
  #queryAuth(component, { authorization_code }, nowMs) {
    const code = typeof authorization_code === "string" ? this.#authCodes.get(authorization_code) : undefined;
    if (!code || code.component !== component.component_appid) return wechatError(ERR.INVALID_AUTH_CODE);
    if (code.expiresAtMs <= nowMs) return wechatError(ERR.AUTH_CODE_EXPIRED);
    // Single use: a second exchange of the same code is an unknown code.
    this.#authCodes.delete(/** @type {string} */ (authorization_code));
    const authorizer = this.#authorizersOf(component.component_appid).get(code.authorizer);
    if (!authorizer?.authorized) return wechatError(ERR.COMPONENT_NOT_AUTHORIZED);
    const access = this.#mintAuthorizerToken(component, authorizer, nowMs);
    return wechatJson({
      authorization_info: {
        authorizer_appid: authorizer.appid, authorizer_access_token: access, expires_in: component.authorizer_token_lifetime_s,
        authorizer_refresh_token: authorizer.refreshToken, func_info: authorizer.funcInfo.map((id) => ({ funcscope_category: { id } })),
      },
    });
  }

  /** @param {Component} component @param {Record<string, unknown>} body @param {number} nowMs */
  #authorizerToken(component, { authorizer_appid, authorizer_refresh_token }, nowMs) {
    const authorizer = typeof authorizer_appid === "string" ? this.#authorizersOf(component.component_appid).get(authorizer_appid) : undefined;
    if (!authorizer) return wechatError(ERR.COMPONENT_NOT_AUTHORIZED);
    if (!authorizer.authorized) return wechatError(ERR.COMPONENT_NOT_AUTHORIZED);
    if (authorizer_refresh_token !== authorizer.refreshToken) return wechatError(ERR.INVALID_REFRESH_TOKEN);
    const access = this.#mintAuthorizerToken(component, authorizer, nowMs);
    return wechatJson({ authorizer_access_token: access, expires_in: component.authorizer_token_lifetime_s, authorizer_refresh_token: authorizer.refreshToken });
  }

  /** @param {Component} component @param {Record<string, unknown>} body */
  #authorizerList(component, { offset = 0, count }) {
    if (!Number.isSafeInteger(offset) || /** @type {number} */ (offset) < 0) return wechatError(ERR.INVALID_ARGS);
    if (!Number.isSafeInteger(count) || /** @type {number} */ (count) < 1 || /** @type {number} */ (count) > MAX_AUTHORIZER_PAGE) return wechatError(ERR.INVALID_ARGS);
    const all = [...this.#authorizersOf(component.component_appid).values()].filter((a) => a.authorized).sort((a, b) => a.authTimeMs - b.authTimeMs || (a.appid < b.appid ? -1 : 1));
    const page = all.slice(/** @type {number} */ (offset), /** @type {number} */ (offset) + /** @type {number} */ (count));
    return wechatJson({
      total_count: all.length,
      list: page.map((a) => ({ authorizer_appid: a.appid, refresh_token: component.list_refresh_tokens ? a.refreshToken : "", auth_time: Math.floor(a.authTimeMs / MS_PER_S) })),
    });
  }

  /** @param {Component} component @param {Authorizer} authorizer @param {number} nowMs */
  #mintAuthorizerToken(component, authorizer, nowMs) {
    const kind = authorizerKind(component.component_appid);
    this.#accessTokens.capNewest(authorizer.appid, kind, nowMs + PREVIOUS_TOKEN_GRACE_S * MS_PER_S);
    return this.#accessTokens.mint(authorizer.appid, kind, component.authorizer_token_lifetime_s, nowMs).token;
  }

  /** @param {string} componentAppid */
  #authorizersOf(componentAppid) {
    let map = this.#authorizers.get(componentAppid);
    if (!map) this.#authorizers.set(componentAppid, (map = new Map()));
    return map;
  }

  /** @param {string} componentAppid @param {ComponentEndpoint} endpoint */
  #count(componentAppid, endpoint) {
    const stats = this.#stats.get(componentAppid) ?? this.#emptyStats();
    stats[endpoint] += 1;
    this.#stats.set(componentAppid, stats);
  }

  #emptyStats() {
    return /** @type {Record<ComponentEndpoint, number>} */ (Object.fromEntries(COMPONENT_ENDPOINTS.map((e) => [e, 0])));
  }
}

/**
 * Each component's authorizer tokens are their own generation line: an account that authorised two
 * components holds two independent tokens (OPEN-PLATFORM.md §7).
 * @param {string} componentAppid
 * @returns {import("./token-store.js").TokenKind}
 */
function authorizerKind(componentAppid) {
  return `authorizer:${componentAppid}`;
}
