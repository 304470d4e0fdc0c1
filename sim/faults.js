// @ts-check
/**
 * Injected upstream failures: an errcode, a bare HTTP error, a redirect, a stall, a garbage body, a dropped
 * connection, an answer that is lost after WeChat acted on the call, or a slow answer. They let tests prove that a
 * broker survives what api.weixin.qq.com (or a relay in front of it) actually does, without waiting for it
 * to happen.
 *
 * Kinds that fail *instead of* the call (errcode, http, redirect, hang, malformed, reset) leave WeChat's state alone:
 * nothing is minted, no quota is spent. `lost` and `slow` perform the call first, exactly as a normal call
 * (tokens minted, force refreshes performed, quota and stats counted), and then withhold or delay the answer.
 */
import { htmlErrorPage, WECHAT_CONTENT_TYPE } from "./wire.js";

/** @typedef {import("./wire.js").SimResponse} SimResponse */
/** @typedef {import("./wire.js").SimResult} SimResult */

/**
 * The endpoints a fault can target. "*" means the two token endpoints only, never the business or ticket
 * APIs: a broker's validity probe must keep working while its token calls fail unless a test says otherwise.
 */
export const FAULT_ENDPOINTS = /** @type {const} */ ([
  "token",
  "stable_token",
  "getcallbackip",
  "getticket",
  "message_custom_send",
  "media_upload",
  "media_get",
  "wecom_gettoken",
  "wecom_get_jsapi_ticket",
  "wecom_ticket_get",
  "wecom_getcallbackip",
  // The open platform's component endpoints (open-platform.js); appid is the component appid.
  "api_component_token",
  "api_start_push_ticket",
  "api_create_preauthcode",
  "api_query_auth",
  "api_authorizer_token",
  "api_get_authorizer_list",
  // WeCom's service-provider endpoints (wecom-service.js); appid is the suite_id (the provider corpid for
  // get_provider_token).
  "wecom_get_suite_token",
  "wecom_get_pre_auth_code",
  "wecom_get_permanent_code",
  "wecom_get_corp_token",
  "wecom_get_provider_token",
  "wecom_get_auth_info",
  "wecom_set_session_info",
  "*",
]);
/** @typedef {Exclude<typeof FAULT_ENDPOINTS[number], "*">} FaultEndpoint */
const WILDCARD_ENDPOINTS = new Set(["token", "stable_token"]);

export const FAULT_KINDS = /** @type {const} */ (["errcode", "http", "redirect", "hang", "malformed", "reset", "lost", "slow"]);
/** @typedef {typeof FAULT_KINDS[number]} FaultKind */
/** What a `lost` call does with the connection: keep it open until released, or drop it at once. */
export const LOST_THEN = /** @type {const} */ (["hang", "reset"]);
/** @typedef {typeof LOST_THEN[number]} LostThen */

export const DEFAULT_FAULT_HTTP_STATUS = 503;
// A slow answer is a real timer; a minute is far beyond any broker timeout and keeps a forgotten fault from
// holding a test run open for long.
export const MAX_SLOW_DELAY_MS = 60_000;
/**
 * Where kind `redirect` sends the caller (a relay or captive portal answering 302 instead of WeChat): the
 * same API without a token, so a caller that follows the redirect gets WeChat's 41001 instead of the 302.
 */
export const REDIRECT_LOCATION = "/cgi-bin/getcallbackip";
// What a misbehaving relay in front of WeChat returns instead of JSON.
const MALFORMED_BODY = "<html>502 Bad Gateway</html>";
// WeChat's "system error", answered to a hung call once it is released: an upstream that gave up.
const SYSTEM_ERROR = -1;

/**
 * @typedef {object} Fault
 * @property {string} id
 * @property {string | undefined} appid        undefined: every app (a WeCom fault matches the corpid)
 * @property {FaultEndpoint | "*"} endpoint    "*": both token endpoints
 * @property {FaultKind} kind
 * @property {number | undefined} errcode      kind "errcode"
 * @property {number} status                   kind "http"
 * @property {LostThen} then                   kind "lost"
 * @property {number} delay_ms                 kind "slow"
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
   * @param {string | undefined} appid  undefined when the call names no known app (a forged token)
   * @param {FaultEndpoint} endpoint
   * @returns {Fault | undefined}
   */
  take(appid, endpoint) {
    const index = this.#faults.findIndex(
      (f) =>
        (f.appid === undefined || f.appid === appid) &&
        (f.endpoint === endpoint || (f.endpoint === "*" && WILDCARD_ENDPOINTS.has(endpoint))),
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
    return this.delay(Infinity);
  }

  /**
   * A promise that settles after `ms` real milliseconds, or earlier when the hung calls are released (so
   * closing the server never waits for a slow answer).
   * @param {number} ms
   * @returns {Promise<void>}
   */
  delay(ms) {
    return new Promise((resolve) => {
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      const release = () => {
        clearTimeout(timer);
        this.#hung.delete(release);
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(release, ms);
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

/**
 * Runs one call under the oldest matching fault, if any.
 * @param {FaultQueue} faults
 * @param {string | undefined} appid   the app (or WeCom corp) the call belongs to
 * @param {FaultEndpoint} endpoint
 * @param {() => SimResponse} perform  the call as WeChat would carry it out
 * @param {(errcode: number) => SimResponse} errorOf  the platform's error body (WeChat and WeCom differ)
 * @returns {SimResult}
 */
export function withFault(faults, appid, endpoint, perform, errorOf) {
  const fault = faults.take(appid, endpoint);
  if (!fault) return perform();
  switch (fault.kind) {
    case "errcode":
      return errorOf(fault.errcode ?? SYSTEM_ERROR);
    case "http":
      return htmlErrorPage(fault.status);
    case "redirect":
      return { status: 302, headers: { location: REDIRECT_LOCATION }, body: "" };
    case "malformed":
      // Claims JSON but is not: the broker must survive a parse failure, not just check Content-Type.
      return { status: 200, headers: { "content-type": WECHAT_CONTENT_TYPE }, body: MALFORMED_BODY };
    case "reset":
      return { reset: true };
    case "hang":
      // When the faults are cleared the call is answered like an upstream that gave up: -1 system error.
      return { hang: faults.hang().then(() => errorOf(SYSTEM_ERROR)) };
    case "lost": {
      // WeChat acted (a token minted, the previous one's 5 min grace started, quota spent); only the
      // answer is gone. A broker must assume the call may have taken effect.
      perform();
      if (fault.then === "reset") return { reset: true };
      return { hang: faults.hang().then(() => errorOf(SYSTEM_ERROR)) };
    }
    case "slow": {
      // Performed on arrival, answered late: what a congested path between broker and WeChat looks like.
      const answer = perform();
      return { hang: faults.delay(fault.delay_ms).then(() => answer) };
    }
  }
}
