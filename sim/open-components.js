// @ts-check
/**
 * The simulator's open-platform components (第三方平台), registered through the control API
 * (POST /__sim/open/components): each with its secret, its message token and EncodingAESKey, where WeChat
 * pushes its events, and the lifetimes and limits a test may shorten. Values are OPEN-PLATFORM.md's; where
 * the docs disagree (pre_auth_code 600 vs 1800 s, the daily quota) the default is one of them and a test can
 * set the other.
 */
import { AppConfigError } from "./apps.js";
import { aesKeyOf } from "./callback-crypto.js";

/** component_access_token: expires_in 7200 (D-cat). */
export const DEFAULT_COMPONENT_TOKEN_LIFETIME_S = 7200;
/** component_verify_ticket: valid 12 h (D-cvt). */
export const DEFAULT_VERIFY_TICKET_LIFETIME_S = 12 * 3600;
/** WeChat pushes a ticket every 10 min (D-cvt). */
export const DEFAULT_PUSH_INTERVAL_S = 600;
/** The doc's example says 600, its text 1800 (D-pre): configurable. */
export const DEFAULT_PRE_AUTH_CODE_LIFETIME_S = 600;
/** The redirect carries `expires_in=600` (D-ct). */
export const DEFAULT_AUTH_CODE_LIFETIME_S = 600;
export const DEFAULT_AUTHORIZER_TOKEN_LIFETIME_S = 7200;
/** One user read 10,000 a day for api_component_token; another claims 2,000 (unconfirmed). */
export const DEFAULT_COMPONENT_DAILY_QUOTA = 10_000;
/** A short lifetime is what tests use to fit several cycles in a run; below a minute nothing is realistic. */
const MIN_LIFETIME_S = 60;

/**
 * @typedef {object} Component
 * @property {string} component_appid
 * @property {string} secret
 * @property {string} token              the message token (signatures)
 * @property {string} encoding_aes_key
 * @property {string | null} event_url   where pushes are POSTed (open-pusher.js); null: tests take them
 * @property {number} token_lifetime_s
 * @property {number} ticket_lifetime_s
 * @property {number} push_interval_s
 * @property {number} pre_auth_code_lifetime_s
 * @property {number} auth_code_lifetime_s
 * @property {number} authorizer_token_lifetime_s
 * @property {number} daily_quota        api_component_token calls a WeChat day
 * @property {boolean} ip_allowed        false: every component call answers 61004
 * @property {boolean} list_refresh_tokens  false: api_get_authorizer_list returns empty refresh tokens
 */

const FIELDS = new Set([
  "component_appid", "secret", "token", "encoding_aes_key", "event_url", "token_lifetime_s", "ticket_lifetime_s", "push_interval_s",
  "pre_auth_code_lifetime_s", "auth_code_lifetime_s", "authorizer_token_lifetime_s", "daily_quota", "ip_allowed", "list_refresh_tokens",
]);

export class ComponentRegistry {
  /** @type {Map<string, Component>} */
  #components = new Map();

  /**
   * Creates or replaces a component; throws AppConfigError naming what to fix.
   * @param {unknown} input
   * @returns {Component}
   */
  upsert(input) {
    if (typeof input !== "object" || input === null || Array.isArray(input)) throw new AppConfigError("a component is a JSON object");
    const value = /** @type {Record<string, unknown>} */ (input);
    const unknown = Object.keys(value).filter((k) => !FIELDS.has(k));
    if (unknown.length) throw new AppConfigError(`unknown component field(s) ${unknown.join(", ")}; allowed: ${[...FIELDS].join(", ")}`);
    const text = (/** @type {string} */ name) => {
      const v = value[name];
      if (typeof v !== "string" || v === "") throw new AppConfigError(`${name} must be a non-empty string`);
      return v;
    };
    const seconds = (/** @type {string} */ name, /** @type {number} */ fallback, min = MIN_LIFETIME_S) => {
      const v = value[name] ?? fallback;
      if (!Number.isSafeInteger(v) || /** @type {number} */ (v) < min) throw new AppConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
      return /** @type {number} */ (v);
    };
    const flag = (/** @type {string} */ name) => {
      const v = value[name] ?? true;
      if (typeof v !== "boolean") throw new AppConfigError(`${name} must be true or false`);
      return v;
    };
    const encodingAesKey = text("encoding_aes_key");
    try {
      aesKeyOf(encodingAesKey);
    } catch (error) {
      throw new AppConfigError(`encoding_aes_key: ${error instanceof Error ? error.message : "invalid"}`);
    }
    const eventUrl = value.event_url ?? null;
    if (eventUrl !== null && !(typeof eventUrl === "string" && /^https?:\/\//.test(eventUrl))) throw new AppConfigError("event_url must be an http(s) URL, or omitted");
    /** @type {Component} */
    const component = {
      component_appid: text("component_appid"), secret: text("secret"), token: text("token"), encoding_aes_key: encodingAesKey,
      event_url: /** @type {string | null} */ (eventUrl),
      token_lifetime_s: seconds("token_lifetime_s", DEFAULT_COMPONENT_TOKEN_LIFETIME_S),
      ticket_lifetime_s: seconds("ticket_lifetime_s", DEFAULT_VERIFY_TICKET_LIFETIME_S),
      push_interval_s: seconds("push_interval_s", DEFAULT_PUSH_INTERVAL_S, 1),
      pre_auth_code_lifetime_s: seconds("pre_auth_code_lifetime_s", DEFAULT_PRE_AUTH_CODE_LIFETIME_S),
      auth_code_lifetime_s: seconds("auth_code_lifetime_s", DEFAULT_AUTH_CODE_LIFETIME_S),
      authorizer_token_lifetime_s: seconds("authorizer_token_lifetime_s", DEFAULT_AUTHORIZER_TOKEN_LIFETIME_S),
      daily_quota: seconds("daily_quota", DEFAULT_COMPONENT_DAILY_QUOTA, 0),
      ip_allowed: flag("ip_allowed"),
      list_refresh_tokens: flag("list_refresh_tokens"),
    };
    this.#components.set(component.component_appid, component);
    return component;
  }

  /** @param {string} appid */
  get(appid) {
    return this.#components.get(appid);
  }

  list() {
    return [...this.#components.values()];
  }

  /** Without the secret, the token or the key. */
  listPublic() {
    return this.list().map(publicComponent);
  }

  clear() {
    this.#components.clear();
  }
}

/** @param {Component} component */
export function publicComponent({ secret: _s, token: _t, encoding_aes_key: _k, ...rest }) {
  return rest;
}
