// @ts-check
/**
 * How many calls each endpoint received per app (or WeCom corp), failed ones included: tests assert on
 * these to prove, for example, that a broker called WeChat once for a thousand clients. Calls made with a
 * token the simulator never issued belong to no app; they are counted per path instead, so a test can
 * prove that a forged token never reached WeChat.
 */

/** Official account / mini program counters, per appid. */
export const APP_STAT_NAMES = /** @type {const} */ ([
  "token",
  "stable_token",
  "stable_token_force",
  "getcallbackip",
  "getticket",
  "getticket_jsapi",
  "getticket_wx_card",
  "message_custom_send",
  "media_upload",
  "media_get",
]);
/** WeCom counters, per corpid (every secret of the corp together). */
export const WECOM_STAT_NAMES = /** @type {const} */ (["gettoken", "get_jsapi_ticket", "ticket_get", "getcallbackip"]);

/**
 * @template {string} Name
 * @typedef {Record<Name, number>} Counts
 */

/** @template {string} Name */
export class EndpointStats {
  /** @type {ReadonlyArray<Name>} */
  #names;
  /** @type {Map<string, Counts<Name>>} */
  #byKey = new Map();

  /** @param {ReadonlyArray<Name>} names every counter a key reports, zero until recorded */
  constructor(names) {
    this.#names = names;
  }

  /**
   * @param {string} key  appid or corpid
   * @param {Name} name
   */
  record(key, name) {
    let counts = this.#byKey.get(key);
    if (!counts) {
      counts = this.#zero();
      this.#byKey.set(key, counts);
    }
    counts[name] += 1;
  }

  /**
   * @param {string} key
   * @returns {Counts<Name>}
   */
  of(key) {
    return { ...(this.#byKey.get(key) ?? this.#zero()) };
  }

  clear() {
    this.#byKey.clear();
  }

  /** @returns {Counts<Name>} */
  #zero() {
    return /** @type {Counts<Name>} */ (Object.fromEntries(this.#names.map((name) => [name, 0])));
  }
}

/** Calls whose access_token the simulator never issued, per request path. */
export class UnknownTokenStats {
  /** @type {Map<string, number>} */
  #byPath = new Map();

  /** @param {string} path */
  record(path) {
    this.#byPath.set(path, (this.#byPath.get(path) ?? 0) + 1);
  }

  /** @returns {Record<string, number>} */
  snapshot() {
    return Object.fromEntries(this.#byPath);
  }

  clear() {
    this.#byPath.clear();
  }
}
