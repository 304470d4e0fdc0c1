// @ts-check
/**
 * How many calls each endpoint received per app, failed ones included: tests assert on these to prove,
 * for example, that a broker called WeChat once for a thousand clients.
 */

/** @typedef {"token" | "stable_token" | "stable_token_force" | "getcallbackip"} StatName */
/** @typedef {Record<StatName, number>} AppStats */

export class EndpointStats {
  /** @type {Map<string, AppStats>} */
  #byApp = new Map();

  /**
   * @param {string} appid
   * @param {StatName} name
   */
  record(appid, name) {
    let stats = this.#byApp.get(appid);
    if (!stats) {
      stats = EndpointStats.#zero();
      this.#byApp.set(appid, stats);
    }
    stats[name] += 1;
  }

  /**
   * @param {string} appid
   * @returns {AppStats}
   */
  of(appid) {
    return { ...(this.#byApp.get(appid) ?? EndpointStats.#zero()) };
  }

  clear() {
    this.#byApp.clear();
  }

  /** @returns {AppStats} */
  static #zero() {
    return { token: 0, stable_token: 0, stable_token_force: 0, getcallbackip: 0 };
  }
}
