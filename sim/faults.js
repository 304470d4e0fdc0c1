// @ts-check
/**
 * Injected upstream failures for the token endpoints: an errcode, a bare HTTP error, a stall, a garbage
 * body or a dropped connection. They let tests prove that a broker survives what api.weixin.qq.com (or a
 * relay in front of it) actually does, without waiting for it to happen.
 */

/** @typedef {"token" | "stable_token"} FaultEndpoint */
/** @typedef {"errcode" | "http" | "hang" | "malformed" | "reset"} FaultKind */

export const FAULT_ENDPOINTS = /** @type {const} */ (["token", "stable_token", "*"]);
export const FAULT_KINDS = /** @type {const} */ (["errcode", "http", "hang", "malformed", "reset"]);
export const DEFAULT_FAULT_HTTP_STATUS = 503;

/**
 * @typedef {object} Fault
 * @property {string} id
 * @property {string | undefined} appid        undefined: every app
 * @property {FaultEndpoint | "*"} endpoint    "*": both token endpoints
 * @property {FaultKind} kind
 * @property {number | undefined} errcode      kind "errcode"
 * @property {number} status                   kind "http"
 * @property {number} remaining                calls left to hit; Infinity until cleared
 */

/** @typedef {Omit<Fault, "id" | "remaining"> & { times?: number }} FaultSpec */

export class FaultQueue {
  /** @type {Fault[]} oldest first: faults are consumed in order of creation */
  #faults = [];
  #nextId = 1;
  /** @type {Set<() => void>} */
  #hung = new Set();

  /**
   * @param {FaultSpec} spec
   * @returns {Fault}
   */
  add({ times, ...spec }) {
    const fault = { ...spec, id: `fault-${this.#nextId++}`, remaining: times ?? Infinity };
    this.#faults.push(fault);
    return fault;
  }

  /**
   * Consumes one hit of the oldest fault matching this call, if any.
   * @param {string} appid
   * @param {FaultEndpoint} endpoint
   * @returns {Fault | undefined}
   */
  take(appid, endpoint) {
    const index = this.#faults.findIndex(
      (f) => (f.appid === undefined || f.appid === appid) && (f.endpoint === "*" || f.endpoint === endpoint),
    );
    const fault = this.#faults[index];
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#faults.splice(index, 1);
    return fault;
  }

  /** @returns {ReadonlyArray<Fault>} */
  list() {
    return this.#faults;
  }

  /**
   * A promise that settles only when the faults are cleared or the hung calls are released.
   * @returns {Promise<void>}
   */
  hang() {
    return new Promise((resolve) => {
      const release = () => {
        this.#hung.delete(release);
        resolve();
      };
      this.#hung.add(release);
    });
  }

  /** Removes every fault and lets hung calls finish. */
  clear() {
    this.#faults = [];
    this.releaseHung();
  }

  releaseHung() {
    for (const release of [...this.#hung]) release();
  }
}
