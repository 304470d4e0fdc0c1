// @ts-check
/**
 * WeChat's token rotation rules, separate from request parsing so they can be read (and audited) alone.
 *
 * Classic (/cgi-bin/token): every call mints a new token; older tokens keep working for at most
 *   PREVIOUS_TOKEN_GRACE_S more seconds ("old valid until min(old_expiry, new_issue + 300)").
 * Stable (/cgi-bin/stable_token), normal mode: the current token is returned again with its remaining
 *   expires_in; the platform rotates STABLE_EARLY_ROTATION_S before expiry, so a caller never receives
 *   expires_in < 300, and the old token lives on to its own expiry (both valid for those last 5 min).
 * Stable, force_refresh: previous stable tokens die at once and a new one is minted, at most
 *   force_daily_limit times a day and at most once per FORCE_REFRESH_MIN_INTERVAL_S; a force within the
 *   interval is answered as normal mode ("otherwise no refresh").
 * The two kinds are fully isolated: neither ever invalidates the other.
 */
import { MS_PER_S, wechatDay } from "./clock.js";
import { ERR } from "./errcodes.js";
import { TokenStore } from "./token-store.js";
import { WindowCounter } from "./window-counter.js";

export const PREVIOUS_TOKEN_GRACE_S = 300;
export const STABLE_EARLY_ROTATION_S = 300;
export const FORCE_REFRESH_MIN_INTERVAL_S = 30;

/** @typedef {import("./apps.js").AppConfig} AppConfig */
/** @typedef {import("./token-store.js").TokenKind} TokenKind */
/** @typedef {import("./token-store.js").TokenRecord} TokenRecord */

/** @typedef {{ access_token: string, expires_in: number }} TokenGrant */

/** @typedef {(record: TokenRecord) => void} MintListener */

export class TokenIssuer {
  /** @type {TokenStore} */
  #store;
  /** @type {MintListener | undefined} */
  #onMint;
  /** @type {Map<string, number>} appid → time of the last effective force refresh */
  #lastForceMs = new Map();
  #forcesToday = new WindowCounter(wechatDay);

  /**
   * @param {TokenStore} store
   * @param {MintListener} [onMint] told about every new token (main.js logs a prefix of it)
   */
  constructor(store, onMint) {
    this.#store = store;
    this.#onMint = onMint;
  }

  /**
   * @param {AppConfig} app
   * @param {number} nowMs
   * @returns {TokenGrant}
   */
  issueClassic(app, nowMs) {
    this.#store.capNewest(app.appid, "classic", nowMs + PREVIOUS_TOKEN_GRACE_S * MS_PER_S);
    return this.#grant(this.#mint(app, "classic", nowMs), nowMs);
  }

  /**
   * @param {AppConfig} app
   * @param {number} nowMs
   * @param {boolean} forceRefresh
   * @returns {TokenGrant | { errcode: number }}
   */
  issueStable(app, nowMs, forceRefresh) {
    if (forceRefresh) {
      const last = this.#lastForceMs.get(app.appid);
      const tooSoon = last !== undefined && nowMs - last < FORCE_REFRESH_MIN_INTERVAL_S * MS_PER_S;
      if (!tooSoon) {
        // Only effective forces count towards the daily limit; one refused here is not effective.
        if (this.#forcesToday.count(app.appid, nowMs) >= app.force_daily_limit) return { errcode: ERR.DAILY_QUOTA };
        this.#forcesToday.increment(app.appid, nowMs);
        this.#lastForceMs.set(app.appid, nowMs);
        return this.#grant(this.forceRotateStable(app, nowMs), nowMs);
      }
    }
    const current = this.#store.latest(app.appid, "stable");
    if (current && current.validUntilMs - nowMs >= STABLE_EARLY_ROTATION_S * MS_PER_S) {
      return this.#grant(current, nowMs);
    }
    return this.#grant(this.#mint(app, "stable", nowMs), nowMs);
  }

  /**
   * A force refresh without the 30 s / daily-limit bookkeeping (the control API's out-of-band rotation).
   * @param {AppConfig} app
   * @param {number} nowMs
   * @returns {TokenRecord}
   */
  forceRotateStable(app, nowMs) {
    this.#store.capAll(app.appid, "stable", nowMs, nowMs);
    return this.#mint(app, "stable", nowMs);
  }

  /**
   * Every token of this kind stops working now (40001 from then on, until its natural expiry).
   * @param {string} appid
   * @param {TokenKind} kind
   * @param {number} nowMs
   */
  revokeAll(appid, kind, nowMs) {
    this.#store.capAll(appid, kind, nowMs, nowMs);
  }

  clear() {
    this.#lastForceMs.clear();
    this.#forcesToday.clear();
  }

  /**
   * @param {AppConfig} app
   * @param {TokenKind} kind
   * @param {number} nowMs
   */
  #mint(app, kind, nowMs) {
    const record = this.#store.mint(app.appid, kind, app.lifetime_s, nowMs);
    this.#onMint?.(record);
    return record;
  }

  /**
   * expires_in is the remaining lifetime in whole seconds, rounded down so a client never trusts a token
   * for longer than it lives.
   * @param {TokenRecord} record
   * @param {number} nowMs
   * @returns {TokenGrant}
   */
  #grant(record, nowMs) {
    return { access_token: record.token, expires_in: Math.floor((record.validUntilMs - nowMs) / MS_PER_S) };
  }
}
