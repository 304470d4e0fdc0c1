// @ts-check
/**
 * The companies that installed a suite (OPEN-PLATFORM.md §10), for wecom-service.js: the temporary auth code
 * of each install (600 s, single use: 40078 once used, unknown or expired), the permanent code it exchanges
 * for (v1 also carries a corp access_token and the agent list, v2 neither), get_corp_token, get_auth_info,
 * and what the corp does later: change_auth (what it grants changed; get_auth_info reads it), cancel_auth
 * (its permanent code answers 40084 and its tokens stop) and, for 代开发 apps, reset_permanent_code (a new
 * AuthCode whose exchange issues the new permanent code; the old one stops then — this simulator's reading
 * of an unconfirmed rule).
 *
 * A corp token minted here is "the same kind as a corp's own gettoken token" (W-90605): wecom.js's corp
 * endpoints (get_jsapi_ticket, ticket/get agent_config, getcallbackip) take it through `corpTokenEntry`.
 * Whether a re-fetch inside the validity returns the same token is unconfirmed: `corp_token_refetch` of the
 * suite says which ("new", the default, mints on every call; "same" hands out the live one again).
 */
import { randomBytes } from "node:crypto";
import { MS_PER_S } from "./clock.js";
import { TokenStore } from "./token-store.js";
import { WECOM_ERR, wecomError } from "./wecom.js";

/** @typedef {import("./wecom-suites.js").Suite} Suite */
/** @typedef {import("./wire.js").SimResponse} SimResponse */

/**
 * @typedef {object} Install
 * @property {string} corpid
 * @property {string} corpName
 * @property {string} permanentCode
 * @property {number} agentid
 * @property {boolean} installed
 */

/** @param {string} prefix @param {number} bytes */
export function opaque(prefix, bytes) {
  return `${prefix}${randomBytes(bytes).toString("base64url")}`;
}

/** @param {string} suiteId */
const corpKind = (suiteId) => /** @type {`corp:${string}`} */ (`corp:${suiteId}`);

export class WeComInstalls {
  /** @type {TokenStore} */
  #tokens;
  /** @type {(suite: Suite, payload: Record<string, unknown>) => SimResponse} */
  #ok;
  /** @type {Map<string, { suite: string, corpid: string, expiresAtMs: number, reset: boolean }>} */
  #authCodes = new Map();
  /** @type {Map<string, Map<string, Install>>} suite → corpid → install */
  #installs = new Map();
  #nextAgentid = 1_000_001;

  /** @param {{ tokens: TokenStore, ok: (suite: Suite, payload: Record<string, unknown>) => SimResponse }} deps */
  constructor({ tokens, ok }) {
    this.#tokens = tokens;
    this.#ok = ok;
  }

  /** @param {string} suiteId @param {string} corpid */
  get(suiteId, corpid) {
    return this.#installs.get(suiteId)?.get(corpid);
  }

  /**
   * A corp installs the suite (again): an install, and a temporary auth code; the agent WeCom creates gets the
   * next agentid unless a test names it.
   * @param {Suite} suite @param {string} corpid @param {string | undefined} corpName @param {number} nowMs @param {number} [agentid]
   */
  install(suite, corpid, corpName, nowMs, agentid = undefined) {
    const installs = this.#installsOf(suite.suite_id);
    const existing = installs.get(corpid);
    if (!existing?.installed) {
      installs.set(corpid, {
        corpid, corpName: corpName ?? `corp ${corpid}`, permanentCode: opaque("", 32), installed: true,
        agentid: agentid ?? existing?.agentid ?? this.#nextAgentid++,
      });
    }
    return this.#authCode(suite, corpid, false, nowMs);
  }

  /** The corp uninstalls: false when it had no install. @param {Suite} suite @param {string} corpid @param {number} nowMs */
  uninstall(suite, corpid, nowMs) {
    const install = this.get(suite.suite_id, corpid);
    if (!install?.installed) return false;
    install.installed = false;
    this.#tokens.capAll(corpid, corpKind(suite.suite_id), nowMs, nowMs);
    return true;
  }

  /** change_auth: what the corp grants changed (here, its name). @param {Suite} suite @param {string} corpid @param {string | undefined} corpName */
  change(suite, corpid, corpName) {
    const install = this.get(suite.suite_id, corpid);
    if (!install?.installed) return false;
    if (corpName !== undefined) install.corpName = corpName;
    return true;
  }

  /** 代开发 reset_permanent_code: an auth code whose exchange replaces the permanent code. @param {Suite} suite @param {string} corpid @param {number} nowMs */
  reset(suite, corpid, nowMs) {
    if (!this.get(suite.suite_id, corpid)?.installed) return null;
    return this.#authCode(suite, corpid, true, nowMs);
  }

  /** @param {Suite} suite @param {Record<string, unknown>} body @param {boolean} v1 @param {number} nowMs */
  permanentCode(suite, { auth_code }, v1, nowMs) {
    if (typeof auth_code !== "string" || auth_code === "") return wecomError(WECOM_ERR.INVALID_AUTH_CODE);
    if (auth_code.length < 64) return wecomError(WECOM_ERR.INVALID_PARAMETER);
    const code = this.#authCodes.get(auth_code);
    // Used once, and only by its own suite; an expired one is as unknown as one never issued.
    if (!code || code.suite !== suite.suite_id || code.expiresAtMs <= nowMs) return wecomError(WECOM_ERR.INVALID_AUTH_CODE);
    this.#authCodes.delete(auth_code);
    const install = /** @type {Install} */ (this.get(suite.suite_id, code.corpid));
    if (code.reset) install.permanentCode = opaque("", 32);
    const answer = {
      permanent_code: install.permanentCode,
      auth_corp_info: { corpid: install.corpid, corp_name: install.corpName },
      auth_user_info: { userid: "admin", open_userid: opaque("wo", 12), name: "admin" },
      ...(v1 && this.#authInfo(suite, install)),
    };
    if (!v1) return this.#ok(suite, answer);
    const token = this.#tokens.mint(install.corpid, corpKind(suite.suite_id), suite.corp_token_lifetime_s, nowMs);
    return this.#ok(suite, { ...answer, access_token: token.token, expires_in: suite.corp_token_lifetime_s });
  }

  /** @param {Suite} suite @param {Record<string, unknown>} body @param {number} nowMs */
  corpToken(suite, body, nowMs) {
    const install = this.#installFor(suite, body);
    if (!("corpid" in install)) return install;
    const current = this.#tokens.latest(install.corpid, corpKind(suite.suite_id));
    const reuse = suite.corp_token_refetch === "same" && current !== undefined && TokenStore.status(current, nowMs) === "valid";
    const record = reuse ? current : this.#tokens.mint(install.corpid, corpKind(suite.suite_id), suite.corp_token_lifetime_s, nowMs);
    // What a reused token says of its lifetime follows the suite's reused_expires_in, as get_suite_token's.
    const expiresIn = reuse && suite.reused_expires_in === "full" ? suite.corp_token_lifetime_s : Math.floor((record.validUntilMs - nowMs) / MS_PER_S);
    return this.#ok(suite, { access_token: record.token, expires_in: expiresIn });
  }

  /** get_auth_info: what the corp grants now. @param {Suite} suite @param {Record<string, unknown>} body */
  authInfo(suite, body) {
    const install = this.#installFor(suite, body);
    if (!("corpid" in install)) return install;
    return this.#ok(suite, { auth_corp_info: { corpid: install.corpid, corp_name: install.corpName }, ...this.#authInfo(suite, install) });
  }

  /**
   * The install whose corp token this is, shaped as wecom.js's registrations are, or undefined.
   * @param {string} token @param {(suiteId: string) => Suite | undefined} suiteOf
   * @returns {{ record: import("./token-store.js").TokenRecord, entry: import("./wecom-apps.js").WeComSecret } | undefined}
   */
  corpTokenEntry(token, suiteOf) {
    const record = this.#tokens.lookup(token);
    if (!record?.kind.startsWith("corp:")) return undefined;
    const suiteId = record.kind.slice("corp:".length);
    const install = this.get(suiteId, record.appid);
    const suite = suiteOf(suiteId);
    if (!install || !suite) return undefined;
    return {
      record,
      entry: {
        key: `${install.corpid}/suite:${suiteId}`, corpid: install.corpid, agentid: String(install.agentid), secret: "",
        lifetime_s: suite.corp_token_lifetime_s, same_token_on_refetch: suite.corp_token_refetch === "same", ticket_lifetime_s: 7200, ticket_refetch: "same",
      },
    };
  }

  clear() {
    this.#authCodes.clear();
    this.#installs.clear();
  }

  /** @param {Suite} suite @param {Install} install */
  #authInfo(suite, install) {
    return { auth_info: { agent: [{ agentid: install.agentid, name: `app of ${suite.suite_id}` }] } };
  }

  /** @param {Suite} suite @param {Record<string, unknown>} body @returns {Install | SimResponse} */
  #installFor(suite, { auth_corpid, permanent_code }) {
    if (typeof auth_corpid !== "string" || auth_corpid === "") return wecomError(WECOM_ERR.CORPID_MISSING);
    if (typeof permanent_code !== "string" || permanent_code === "") return wecomError(WECOM_ERR.PERMANENT_CODE_MISSING);
    const install = this.get(suite.suite_id, auth_corpid);
    // WeCom answers 40082 when the suite has no install in that corp (OPEN-PLATFORM.md §10).
    if (!install) return wecomError(WECOM_ERR.INVALID_SUITE_TOKEN);
    if (!install.installed || permanent_code !== install.permanentCode) return wecomError(WECOM_ERR.INVALID_PERMANENT_CODE);
    return install;
  }

  /** @param {Suite} suite @param {string} corpid @param {boolean} reset @param {number} nowMs */
  #authCode(suite, corpid, reset, nowMs) {
    // WeCom's temporary codes are at least 64 characters (40058 for a shorter one, OPEN-PLATFORM.md §10).
    const authCode = opaque("", 60);
    this.#authCodes.set(authCode, { suite: suite.suite_id, corpid, expiresAtMs: nowMs + suite.auth_code_lifetime_s * MS_PER_S, reset });
    return { auth_code: authCode, expires_in: suite.auth_code_lifetime_s };
  }

  /** @param {string} suiteId */
  #installsOf(suiteId) {
    let installs = this.#installs.get(suiteId);
    if (!installs) this.#installs.set(suiteId, (installs = new Map()));
    return installs;
  }
}
