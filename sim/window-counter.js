// @ts-check
/**
 * Per-key counters that restart whenever the time window changes (a WeChat day, a minute).
 * Only the current window is kept per key: quotas never look back.
 */

export class WindowCounter {
  /** @type {(ms: number) => number} */
  #windowOf;
  /** @type {Map<string, { window: number, count: number }>} */
  #entries = new Map();

  /** @param {(ms: number) => number} windowOf maps a time to its window index */
  constructor(windowOf) {
    this.#windowOf = windowOf;
  }

  /**
   * @param {string} key
   * @param {number} nowMs
   */
  count(key, nowMs) {
    const entry = this.#entries.get(key);
    return entry && entry.window === this.#windowOf(nowMs) ? entry.count : 0;
  }

  /**
   * @param {string} key
   * @param {number} nowMs
   */
  increment(key, nowMs) {
    const window = this.#windowOf(nowMs);
    const entry = this.#entries.get(key);
    if (entry && entry.window === window) entry.count += 1;
    else this.#entries.set(key, { window, count: 1 });
  }

  clear() {
    this.#entries.clear();
  }
}
