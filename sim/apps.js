// @ts-check
/**
 * Registered apps (公众号 / 小程序) and their limits. Defaults follow WECHAT-API.md:
 * tokens live 7200 s, /cgi-bin/token allows 2000 calls a day (公众号), stable_token 500,000 a day and
 * 10,000 a minute, and 20 effective force refreshes a day. JS-SDK tickets live 7200 s and getticket allows
 * 10,000 calls a day (the documented test allowance; 45009 after 10,000 has been reported).
 */
import { TICKET_REFETCH } from "./ticket-store.js";

export const DEFAULT_LIFETIME_S = 7200;
export const DEFAULT_DAILY_QUOTA = 2000;
export const DEFAULT_STABLE_DAILY_QUOTA = 500_000;
export const DEFAULT_STABLE_MINUTE_QUOTA = 10_000;
export const DEFAULT_FORCE_DAILY_LIMIT = 20;
export const DEFAULT_TICKET_LIFETIME_S = 7200;
export const DEFAULT_TICKET_DAILY_QUOTA = 10_000;
// Community observation (WECHAT-API.md): a re-fetch inside the validity returns the same ticket.
export const DEFAULT_TICKET_REFETCH = "same";

/**
 * @typedef {object} AppConfig
 * @property {string} appid
 * @property {string} secret
 * @property {number} lifetime_s           expires_in of freshly minted tokens
 * @property {number} daily_quota          /cgi-bin/token calls per WeChat day
 * @property {number} stable_daily_quota   /cgi-bin/stable_token calls per WeChat day
 * @property {number} stable_minute_quota  /cgi-bin/stable_token calls per minute
 * @property {number} force_daily_limit    effective force_refresh calls per WeChat day
 * @property {number} ticket_lifetime_s    expires_in of freshly minted JS-SDK tickets
 * @property {number} ticket_daily_quota   /cgi-bin/ticket/getticket calls per WeChat day (both types)
 * @property {import("./ticket-store.js").TicketRefetch} ticket_refetch  what a re-fetch inside the validity gets
 */

/** @typedef {Omit<AppConfig, "secret">} PublicAppConfig */

/** Bad input to the control API or to startSimulator({ apps }); the message says how to fix it. */
export class AppConfigError extends Error {
  /** @override */
  name = "AppConfigError";
}

/** @type {ReadonlyArray<[keyof AppConfig, number, number]>} field, default, smallest allowed value */
const LIMIT_FIELDS = [
  // A token must live at least a second or it is expired when handed out.
  ["lifetime_s", DEFAULT_LIFETIME_S, 1],
  // Zero quotas are allowed: they model an app whose quota is already spent.
  ["daily_quota", DEFAULT_DAILY_QUOTA, 0],
  ["stable_daily_quota", DEFAULT_STABLE_DAILY_QUOTA, 0],
  ["stable_minute_quota", DEFAULT_STABLE_MINUTE_QUOTA, 0],
  ["force_daily_limit", DEFAULT_FORCE_DAILY_LIMIT, 0],
  ["ticket_lifetime_s", DEFAULT_TICKET_LIFETIME_S, 1],
  ["ticket_daily_quota", DEFAULT_TICKET_DAILY_QUOTA, 0],
];

const APP_FIELDS = new Set(["appid", "secret", "ticket_refetch", ...LIMIT_FIELDS.map(([field]) => field)]);

export class AppRegistry {
  /** @type {Map<string, AppConfig>} */
  #apps = new Map();

  /**
   * Registers an app or updates the given fields of an existing one. Changing the secret is allowed: it
   * models an operator resetting the AppSecret in the admin console. Tokens already issued are untouched.
   * @param {unknown} input
   * @returns {AppConfig}
   */
  upsert(input) {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      throw new AppConfigError("app must be a JSON object like {\"appid\":\"wx…\",\"secret\":\"…\"}");
    }
    const fields = /** @type {Record<string, unknown>} */ (input);
    // A misspelt limit would otherwise be ignored silently and the test would run against a default.
    const unknown = Object.keys(fields).filter((k) => !APP_FIELDS.has(k));
    if (unknown.length) {
      throw new AppConfigError(`unknown app field(s) ${unknown.join(", ")}; allowed: ${[...APP_FIELDS].join(", ")}`);
    }
    const { appid, secret } = fields;
    if (typeof appid !== "string" || appid === "") throw new AppConfigError("appid must be a non-empty string");
    const existing = this.#apps.get(appid);
    if (secret !== undefined && (typeof secret !== "string" || secret === "")) {
      throw new AppConfigError(`secret of ${appid} must be a non-empty string`);
    }
    if (secret === undefined && !existing) throw new AppConfigError(`secret is required to register new app ${appid}`);

    /** @type {AppConfig} */
    const app = existing
      ? { ...existing }
      : {
          appid,
          secret: "",
          lifetime_s: DEFAULT_LIFETIME_S,
          daily_quota: DEFAULT_DAILY_QUOTA,
          stable_daily_quota: DEFAULT_STABLE_DAILY_QUOTA,
          stable_minute_quota: DEFAULT_STABLE_MINUTE_QUOTA,
          force_daily_limit: DEFAULT_FORCE_DAILY_LIMIT,
          ticket_lifetime_s: DEFAULT_TICKET_LIFETIME_S,
          ticket_daily_quota: DEFAULT_TICKET_DAILY_QUOTA,
          ticket_refetch: DEFAULT_TICKET_REFETCH,
        };
    if (typeof secret === "string") app.secret = secret;
    const { ticket_refetch } = fields;
    if (ticket_refetch !== undefined) {
      if (!TICKET_REFETCH.includes(/** @type {any} */ (ticket_refetch))) {
        throw new AppConfigError(`ticket_refetch of ${appid} must be one of ${TICKET_REFETCH.join(", ")}, got ${JSON.stringify(ticket_refetch)}`);
      }
      app.ticket_refetch = /** @type {import("./ticket-store.js").TicketRefetch} */ (ticket_refetch);
    }
    for (const [field, , min] of LIMIT_FIELDS) {
      const value = fields[field];
      if (value === undefined) continue;
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
        throw new AppConfigError(`${field} of ${appid} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
      }
      /** @type {Record<string, unknown>} */ (app)[field] = value;
    }
    this.#apps.set(appid, app);
    return app;
  }

  /** @param {string} appid */
  get(appid) {
    return this.#apps.get(appid);
  }

  /** @returns {PublicAppConfig[]} */
  listPublic() {
    return [...this.#apps.values()].map(({ secret: _secret, ...rest }) => rest);
  }

  clear() {
    this.#apps.clear();
  }
}
