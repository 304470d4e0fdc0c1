// @ts-check
/**
 * Parsing of control-API input (control.js): JSON bodies, fault and webhook-failure specs. Every refusal is a
 * BadRequest whose message says what to send instead.
 */
import { DEFAULT_FAULT_HTTP_STATUS, FAULT_ENDPOINTS, FAULT_KINDS, LOST_THEN, MAX_SLOW_DELAY_MS } from "./faults.js";
import { parseJsonObject } from "./wire.js";

/** @typedef {import("./faults.js").Fault} Fault */
/** @typedef {import("./faults.js").FaultSpec} FaultSpec */
/** @typedef {import("./webhook.js").WebhookFailureSpec} WebhookFailureSpec */

const FAULT_FIELDS = new Set(["appid", "endpoint", "kind", "errcode", "status", "then", "delay_ms", "times"]);
const WEBHOOK_FAILURE_FIELDS = new Set(["status", "times"]);
// A webhook receiver that fails is most often an application error behind the proxy.
const DEFAULT_WEBHOOK_FAILURE_STATUS = 500;
const MIN_FAULT_HTTP_STATUS = 200;
const MAX_FAULT_HTTP_STATUS = 599;

export class BadRequest extends Error {
  /**
   * @param {string} message
   * @param {number} [status]
   */
  constructor(message, status = 400) {
    super(message);
    this.status = status;
  }
}

/**
 * @param {string} body
 * @returns {Record<string, unknown>}
 */
export function jsonBody(body) {
  const json = parseJsonObject(body === "" ? "{}" : body);
  if (!json) throw new BadRequest("body must be a JSON object");
  return json;
}

/**
 * @param {string} body
 * @param {(appid: string) => boolean} isRegistered  an appid or a WeCom corpid the simulator knows
 * @returns {FaultSpec}
 */
export function parseFault(body, isRegistered) {
  const json = jsonBody(body);
  const unknown = Object.keys(json).filter((k) => !FAULT_FIELDS.has(k));
  if (unknown.length) throw new BadRequest(`unknown fault field(s) ${unknown.join(", ")}; allowed: ${[...FAULT_FIELDS].join(", ")}`);
  const { appid, endpoint = "*", kind, errcode, status = DEFAULT_FAULT_HTTP_STATUS, then = "hang", delay_ms, times } = json;

  if (appid !== undefined) {
    if (typeof appid !== "string") throw new BadRequest("appid must be a string (omit it to hit every app)");
    if (!isRegistered(appid)) throw new BadRequest(`unknown appid ${JSON.stringify(appid)}; register it with POST /__sim/apps (or /__sim/wecom/apps for a corpid)`);
  }
  if (!FAULT_ENDPOINTS.includes(/** @type {any} */ (endpoint))) {
    throw new BadRequest(`endpoint must be one of ${FAULT_ENDPOINTS.join(", ")}, got ${JSON.stringify(endpoint)}`);
  }
  if (!FAULT_KINDS.includes(/** @type {any} */ (kind))) {
    throw new BadRequest(`kind must be one of ${FAULT_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  if (kind === "errcode" && !(Number.isSafeInteger(errcode) && errcode !== 0)) {
    throw new BadRequest(`kind errcode needs a non-zero integer errcode, got ${JSON.stringify(errcode)}`);
  }
  if (!LOST_THEN.includes(/** @type {any} */ (then))) {
    throw new BadRequest(`then must be one of ${LOST_THEN.join(", ")} (what a lost call does with its connection), got ${JSON.stringify(then)}`);
  }
  if (then !== "hang" && kind !== "lost") throw new BadRequest("then applies only to kind lost");
  const slow = kind === "slow";
  if (slow !== (delay_ms !== undefined)) throw new BadRequest("kind slow needs delay_ms, and only kind slow takes it");
  if (slow && !(typeof delay_ms === "number" && Number.isSafeInteger(delay_ms) && delay_ms >= 0 && delay_ms <= MAX_SLOW_DELAY_MS)) {
    throw new BadRequest(`delay_ms must be an integer 0-${MAX_SLOW_DELAY_MS} (real milliseconds), got ${JSON.stringify(delay_ms)}`);
  }
  return {
    appid: /** @type {string | undefined} */ (appid),
    endpoint: /** @type {FaultSpec["endpoint"]} */ (endpoint),
    kind: /** @type {FaultSpec["kind"]} */ (kind),
    errcode: kind === "errcode" ? /** @type {number} */ (errcode) : undefined,
    status: httpStatus(status),
    then: /** @type {FaultSpec["then"]} */ (then),
    delay_ms: slow ? /** @type {number} */ (delay_ms) : 0,
    times: faultTimes(times),
  };
}

/**
 * @param {string} body
 * @returns {WebhookFailureSpec}
 */
export function parseWebhookFailure(body) {
  const json = jsonBody(body);
  const unknown = Object.keys(json).filter((k) => !WEBHOOK_FAILURE_FIELDS.has(k));
  if (unknown.length) throw new BadRequest(`unknown webhook failure field(s) ${unknown.join(", ")}; allowed: ${[...WEBHOOK_FAILURE_FIELDS].join(", ")}`);
  const { status = DEFAULT_WEBHOOK_FAILURE_STATUS, times } = json;
  return { status: httpStatus(status), times: faultTimes(times) };
}

/**
 * @param {unknown} status
 * @returns {number}
 */
function httpStatus(status) {
  if (
    typeof status !== "number" ||
    !Number.isInteger(status) ||
    status < MIN_FAULT_HTTP_STATUS ||
    status > MAX_FAULT_HTTP_STATUS
  ) {
    throw new BadRequest(`status must be an integer HTTP status ${MIN_FAULT_HTTP_STATUS}-${MAX_FAULT_HTTP_STATUS}, got ${JSON.stringify(status)}`);
  }
  return status;
}

/**
 * @param {unknown} times
 * @returns {number | undefined}
 */
function faultTimes(times) {
  if (times !== undefined && !(typeof times === "number" && Number.isSafeInteger(times) && times >= 1)) {
    throw new BadRequest(`times must be an integer >= 1 (omit it to fail until cleared), got ${JSON.stringify(times)}`);
  }
  return times;
}

/**
 * @param {Fault} fault
 */
export function describeFault({ id, appid, endpoint, kind, errcode, status, then, delay_ms, remaining }) {
  return {
    id,
    appid: appid ?? "*",
    endpoint,
    kind,
    ...(kind === "errcode" ? { errcode } : {}),
    ...(kind === "http" ? { status } : {}),
    ...(kind === "lost" ? { then } : {}),
    ...(kind === "slow" ? { delay_ms } : {}),
    times_left: Number.isFinite(remaining) ? remaining : null,
  };
}
