// @ts-check
/**
 * Simulated time. Tests move it forward through the control API instead of sleeping, so token expiry,
 * grace windows and daily quotas can be exercised in milliseconds.
 */

export const MS_PER_S = 1000;
export const MINUTE_MS = 60 * MS_PER_S;
export const DAY_MS = 24 * 60 * MINUTE_MS;
// WeChat's daily quotas reset at midnight Beijing time (UTC+8, no daylight saving).
export const CHINA_UTC_OFFSET_MS = 8 * 60 * MINUTE_MS;

/**
 * Index of the WeChat day containing `ms` (days start at 00:00 UTC+8).
 * @param {number} ms
 */
export function wechatDay(ms) {
  return Math.floor((ms + CHINA_UTC_OFFSET_MS) / DAY_MS);
}

/**
 * Index of the wall-clock minute containing `ms`; the stable_token minute quota (45011) resets per minute.
 * @param {number} ms
 */
export function wechatMinute(ms) {
  return Math.floor(ms / MINUTE_MS);
}

export class SimClock {
  /** @type {() => number} */
  #base;
  #offsetMs = 0;

  /** @param {() => number} [base] real clock in ms; Date.now by default */
  constructor(base = Date.now) {
    this.#base = base;
  }

  /** Current simulated time in ms since the epoch. */
  now() {
    return this.#base() + this.#offsetMs;
  }

  /**
   * Only forward: token records and quota windows assume time never runs backwards.
   * @param {number} ms
   */
  advance(ms) {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError("clock can only advance by a finite, non-negative amount");
    this.#offsetMs += ms;
  }

  reset() {
    this.#offsetMs = 0;
  }
}
