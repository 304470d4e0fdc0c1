// @ts-check
/**
 * A stand-in for the incoming webhooks a broker posts alerts to: the WeCom group robot
 * (qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY) and a generic JSON receiver (Slack, Feishu style).
 * Accepted messages are kept in memory for tests to read back; an injected failure mode answers bare HTTP
 * errors instead, as a receiver or the proxy in front of it does when it is down. Pure logic, like
 * wechat-sim.js: SimRequest in, SimResponse out. None of this touches the token endpoints' faults or stats.
 */
import { controlJson, htmlErrorPage, parseJsonObject } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */

/**
 * @typedef {object} WebhookMessage
 * @property {string | null} key     the WeCom robot key; null for the generic receiver
 * @property {string} msgtype        "text" | "markdown" (WeCom), "json" (generic)
 * @property {string} content        the message text (WeCom), the raw body (generic)
 * @property {number} at_ms          simulated time of receipt
 */

/**
 * @typedef {object} WebhookFailureSpec
 * @property {number} status         HTTP status of the error page
 * @property {number} [times]        calls to fail; until cleared when omitted
 */

// The message types a broker's alerts use; WeCom's others (image, news, file, template_card) are refused.
const WECOM_MSGTYPES = /** @type {const} */ (["text", "markdown"]);
const WECOM_CONTENT_TYPE = "application/json; charset=UTF-8";
// WeCom's errcodes for a robot: 93000 for a missing or unknown key, 40008 for a message it cannot read.
const WECOM_INVALID_WEBHOOK_URL = Object.freeze({ errcode: 93000, errmsg: "invalid webhook url" });
const WECOM_INVALID_MESSAGE_TYPE = Object.freeze({ errcode: 40008, errmsg: "invalid message type" });
const WECOM_REQUIRE_POST = Object.freeze({ errcode: 43002, errmsg: "require POST method" });
const WECOM_OK = Object.freeze({ errcode: 0, errmsg: "ok" });
// Enough for any alert test; the cap keeps a long-running `npm run sim` from growing without bound.
export const MAX_WEBHOOK_MESSAGES = 1000;

/**
 * @param {unknown} payload
 * @returns {SimResponse}
 */
function wecomJson(payload) {
  // WeCom answers every outcome with HTTP 200 and an errcode, as api.weixin.qq.com does.
  return { status: 200, headers: { "content-type": WECOM_CONTENT_TYPE }, body: JSON.stringify(payload) };
}

export class WebhookReceiver {
  /** @type {WebhookMessage[]} oldest first */
  #messages = [];
  /** @type {{ status: number, remaining: number } | undefined} */
  #failure;

  /**
   * POST /cgi-bin/webhook/send?key=KEY with {"msgtype": "text" | "markdown", <msgtype>: {"content": "..."}}.
   * @param {Required<SimRequest>} req
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  wecom({ method, query, body }, nowMs) {
    const failed = this.#takeFailure();
    if (failed) return failed;
    if (method !== "POST") return wecomJson(WECOM_REQUIRE_POST);
    const key = query.get("key");
    if (!key) return wecomJson(WECOM_INVALID_WEBHOOK_URL);
    const json = parseJsonObject(body);
    const msgtype = json?.msgtype;
    if (!WECOM_MSGTYPES.includes(/** @type {any} */ (msgtype))) return wecomJson(WECOM_INVALID_MESSAGE_TYPE);
    const section = json?.[/** @type {string} */ (msgtype)];
    const content = section !== null && typeof section === "object" ? /** @type {{ content?: unknown }} */ (section).content : undefined;
    if (typeof content !== "string" || content === "") return wecomJson(WECOM_INVALID_MESSAGE_TYPE);
    this.#record({ key, msgtype: /** @type {string} */ (msgtype), content, at_ms: nowMs });
    return wecomJson(WECOM_OK);
  }

  /**
   * POST /__sim/webhook/generic with any JSON body, kept verbatim.
   * @param {Required<SimRequest>} req
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  generic({ method, body }, nowMs) {
    const failed = this.#takeFailure();
    if (failed) return failed;
    if (method !== "POST") return controlJson({ ok: false, error: `use POST here, not ${method}` }, 405);
    try {
      JSON.parse(body);
    } catch {
      return controlJson({ ok: false, error: "body must be JSON" }, 400);
    }
    this.#record({ key: null, msgtype: "json", content: body, at_ms: nowMs });
    return controlJson({ ok: true });
  }

  /**
   * @param {string | null} [key]  only the messages sent with this WeCom key
   * @returns {WebhookMessage[]} oldest first
   */
  list(key = null) {
    const messages = key === null ? this.#messages : this.#messages.filter((m) => m.key === key);
    return messages.map((m) => ({ ...m }));
  }

  /**
   * The next `times` webhook calls (every call until cleared, by default) answer an HTML error page.
   * Replaces any failure mode already set.
   * @param {WebhookFailureSpec} spec
   */
  failNext({ status, times }) {
    this.#failure = { status, remaining: times ?? Infinity };
  }

  /**
   * Forgets the messages and the failure mode.
   * @returns {number} how many messages were forgotten
   */
  clear() {
    const cleared = this.#messages.length;
    this.#messages = [];
    this.#failure = undefined;
    return cleared;
  }

  /** @param {WebhookMessage} message */
  #record(message) {
    this.#messages.push(message);
    if (this.#messages.length > MAX_WEBHOOK_MESSAGES) this.#messages.splice(0, this.#messages.length - MAX_WEBHOOK_MESSAGES);
  }

  /**
   * Runs before any validation: a receiver that is down answers the same page whatever was sent.
   * @returns {SimResponse | undefined}
   */
  #takeFailure() {
    const failure = this.#failure;
    if (!failure) return undefined;
    failure.remaining -= 1;
    if (failure.remaining <= 0) this.#failure = undefined;
    return htmlErrorPage(failure.status);
  }
}
