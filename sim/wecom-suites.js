// @ts-check
/**
 * The simulator's WeCom suites (第三方应用 / 代开发 templates of a service provider), registered through the
 * control API (POST /__sim/wecom/suites): each with its Secret, the Token and EncodingAESKey of its callbacks,
 * its instruction URL, the provider it belongs to, and the lifetimes a test may shorten. Values are
 * OPEN-PLATFORM.md §10's; where WeCom's behaviour is unconfirmed (which receiver id it encrypts a callback
 * for, what expires_in a reused token shows) the suite says which way it behaves.
 */
import { AppConfigError } from "./apps.js";
import { aesKeyOf } from "./callback-crypto.js";

/** suite_access_token: expires_in 7200 (W-97162). */
export const DEFAULT_SUITE_TOKEN_LIFETIME_S = 7200;
/** suite_ticket: valid 30 min (W-90628). */
export const DEFAULT_SUITE_TICKET_LIFETIME_S = 1800;
/** WeCom pushes every 10 min; users observe 7–15 (WJ #1924, forum): the jitter's bounds. */
export const DEFAULT_PUSH_MIN_S = 7 * 60;
export const DEFAULT_PUSH_MAX_S = 15 * 60;
/** get_pre_auth_code: expires_in 1200 (W-90601). */
export const DEFAULT_PRE_AUTH_CODE_LIFETIME_S = 1200;
/** The temporary auth code: 10 min, single use (W-90597). */
export const DEFAULT_AUTH_CODE_LIFETIME_S = 600;
export const DEFAULT_CORP_TOKEN_LIFETIME_S = 7200;
/** get_provider_token: expires_in 7200 (W-96237). */
export const DEFAULT_PROVIDER_TOKEN_LIFETIME_S = 7200;
/** Below a minute nothing is realistic; tests shorten lifetimes to fit several cycles in a run. */
const MIN_LIFETIME_S = 60;
/** WeCom's documented receivers; OPEN-PLATFORM.md §1 reports the provider's corpid on create_auth once. */
export const RECEIVERS = /** @type {const} */ (["suite_id", "provider_corpid"]);

/**
 * @typedef {object} Suite
 * @property {string} suite_id
 * @property {string} secret
 * @property {string} token              the callback Token (signatures)
 * @property {string} encoding_aes_key
 * @property {string | null} callback_url  the instruction URL pushes are POSTed to; null: tests take them
 * @property {string | null} provider_corpid
 * @property {string | null} provider_secret
 * @property {number} token_lifetime_s
 * @property {number} ticket_lifetime_s
 * @property {number} push_min_s         the next ticket push comes between push_min_s and push_max_s later
 * @property {number} push_max_s
 * @property {number} pre_auth_code_lifetime_s
 * @property {number} auth_code_lifetime_s
 * @property {number} corp_token_lifetime_s
 * @property {number} provider_token_lifetime_s
 * @property {"suite_id" | "provider_corpid"} instruction_receiver  whom instruction callbacks are encrypted for
 * @property {"remaining" | "full"} reused_expires_in  what get_suite_token (and get_provider_token, for the
 *                                       provider whose secret this suite carries) says of a reused token: its
 *                                       remaining life, or 7200 again (unconfirmed, OPEN-PLATFORM.md §10)
 * @property {boolean} omit_errcode      successes without errcode (W-97162: "only returned on failure")
 * @property {"new" | "same"} corp_token_refetch  what get_corp_token does inside a corp token's validity: mint
 *                                       a new one, or hand out the live one again (unconfirmed, OPEN-PLATFORM.md §10)
 */

const FIELDS = new Set([
  "suite_id", "secret", "token", "encoding_aes_key", "callback_url", "provider_corpid", "provider_secret", "token_lifetime_s",
  "ticket_lifetime_s", "push_min_s", "push_max_s", "pre_auth_code_lifetime_s", "auth_code_lifetime_s", "corp_token_lifetime_s",
  "provider_token_lifetime_s", "instruction_receiver", "reused_expires_in", "omit_errcode", "corp_token_refetch",
]);

export class SuiteRegistry {
  /** @type {Map<string, Suite>} */
  #suites = new Map();

  /**
   * Creates or replaces a suite; throws AppConfigError naming what to fix.
   * @param {unknown} input
   * @returns {Suite}
   */
  upsert(input) {
    if (typeof input !== "object" || input === null || Array.isArray(input)) throw new AppConfigError("a suite is a JSON object");
    const value = /** @type {Record<string, unknown>} */ (input);
    const unknown = Object.keys(value).filter((k) => !FIELDS.has(k));
    if (unknown.length) throw new AppConfigError(`unknown suite field(s) ${unknown.join(", ")}; allowed: ${[...FIELDS].join(", ")}`);
    const text = (/** @type {string} */ name) => {
      const v = value[name];
      if (typeof v !== "string" || v === "") throw new AppConfigError(`${name} must be a non-empty string`);
      return v;
    };
    const optionalText = (/** @type {string} */ name) => (value[name] === undefined || value[name] === null ? null : text(name));
    const seconds = (/** @type {string} */ name, /** @type {number} */ fallback, min = MIN_LIFETIME_S) => {
      const v = value[name] ?? fallback;
      if (!Number.isSafeInteger(v) || /** @type {number} */ (v) < min) throw new AppConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
      return /** @type {number} */ (v);
    };
    /** @template {string} T @param {string} name @param {readonly T[]} choices @returns {T} */
    const choice = (name, choices) => {
      const v = value[name] ?? choices[0];
      if (!choices.includes(/** @type {T} */ (v))) throw new AppConfigError(`${name} must be one of ${choices.join(", ")}`);
      return /** @type {T} */ (v);
    };
    const encodingAesKey = text("encoding_aes_key");
    try {
      aesKeyOf(encodingAesKey);
    } catch (error) {
      throw new AppConfigError(`encoding_aes_key: ${error instanceof Error ? error.message : "invalid"}`);
    }
    const callbackUrl = value.callback_url ?? null;
    if (callbackUrl !== null && !(typeof callbackUrl === "string" && /^https?:\/\//.test(callbackUrl))) throw new AppConfigError("callback_url must be an http(s) URL, or omitted");
    const providerCorpid = optionalText("provider_corpid");
    const providerSecret = optionalText("provider_secret");
    if (providerSecret !== null && providerCorpid === null) throw new AppConfigError("provider_secret needs provider_corpid");
    const pushMinS = seconds("push_min_s", DEFAULT_PUSH_MIN_S, 1);
    const pushMaxS = seconds("push_max_s", Math.max(DEFAULT_PUSH_MAX_S, pushMinS), 1);
    if (pushMaxS < pushMinS) throw new AppConfigError("push_max_s must be >= push_min_s");
    const omitErrcode = value.omit_errcode ?? true;
    if (typeof omitErrcode !== "boolean") throw new AppConfigError("omit_errcode must be true or false");
    /** @type {Suite} */
    const suite = {
      suite_id: text("suite_id"), secret: text("secret"), token: text("token"), encoding_aes_key: encodingAesKey,
      callback_url: /** @type {string | null} */ (callbackUrl), provider_corpid: providerCorpid, provider_secret: providerSecret,
      token_lifetime_s: seconds("token_lifetime_s", DEFAULT_SUITE_TOKEN_LIFETIME_S),
      ticket_lifetime_s: seconds("ticket_lifetime_s", DEFAULT_SUITE_TICKET_LIFETIME_S),
      push_min_s: pushMinS, push_max_s: pushMaxS,
      pre_auth_code_lifetime_s: seconds("pre_auth_code_lifetime_s", DEFAULT_PRE_AUTH_CODE_LIFETIME_S),
      auth_code_lifetime_s: seconds("auth_code_lifetime_s", DEFAULT_AUTH_CODE_LIFETIME_S),
      corp_token_lifetime_s: seconds("corp_token_lifetime_s", DEFAULT_CORP_TOKEN_LIFETIME_S),
      provider_token_lifetime_s: seconds("provider_token_lifetime_s", DEFAULT_PROVIDER_TOKEN_LIFETIME_S),
      instruction_receiver: choice("instruction_receiver", RECEIVERS),
      reused_expires_in: choice("reused_expires_in", /** @type {const} */ (["remaining", "full"])),
      omit_errcode: omitErrcode,
      corp_token_refetch: choice("corp_token_refetch", /** @type {const} */ (["new", "same"])),
    };
    if (suite.instruction_receiver === "provider_corpid" && providerCorpid === null) throw new AppConfigError("instruction_receiver provider_corpid needs provider_corpid");
    this.#suites.set(suite.suite_id, suite);
    return suite;
  }

  /** @param {string} suiteId */
  get(suiteId) {
    return this.#suites.get(suiteId);
  }

  /** The suites of the provider `corpid` (a provider runs several). @param {string} corpid */
  ofProvider(corpid) {
    return this.list().filter((suite) => suite.provider_corpid === corpid);
  }

  list() {
    return [...this.#suites.values()];
  }

  clear() {
    this.#suites.clear();
  }
}

/** Without the secret, the token, the key or the provider secret. @param {Suite} suite */
export function publicSuite({ secret: _s, token: _t, encoding_aes_key: _k, provider_secret: providerSecret, ...rest }) {
  return { ...rest, provider_secret: providerSecret !== null };
}
