// @ts-check
/**
 * The simulator's transport-neutral request/response shapes and the builders for WeChat-style bodies.
 * WeChatSim speaks only these types, so it stays free of I/O and server.js is a thin adapter.
 */
import { randomBytes } from "node:crypto";
import { errmsgFor } from "./errcodes.js";

/**
 * @typedef {object} SimRequest
 * @property {string} method  upper-case HTTP method
 * @property {string} path    URL path without the query string
 * @property {URLSearchParams} [query]
 * @property {string} [body]      the body as UTF-8 text
 * @property {Uint8Array} [raw]   the body's exact bytes (media uploads); the UTF-8 encoding of body if absent
 * @property {Record<string, string>} [headers]  lower-case names; server.js passes content-type
 */

/**
 * @typedef {object} SimResponse
 * @property {number} status
 * @property {Record<string, string>} [headers]
 * @property {string | Uint8Array} body  text, or exact bytes (a media download)
 */

/**
 * The connection is dropped without an answer (models a TCP reset / a proxy killing the connection).
 * @typedef {{ reset: true }} SimReset
 */

/**
 * No answer until `released` settles (models an upstream that accepts the connection and then stalls).
 * @typedef {{ hang: Promise<SimResponse> }} SimHang
 */

/** @typedef {SimResponse | SimReset | SimHang} SimResult */

// api.weixin.qq.com sends exactly this header, including the non-standard "encoding" parameter.
export const WECHAT_CONTENT_TYPE = "application/json; encoding=utf-8";
export const CONTROL_CONTENT_TYPE = "application/json";

/** WeChat's request id: three groups of 8 hex digits, appended to every errmsg. */
export function newRid() {
  const hex = randomBytes(12).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16, 24)}`;
}

/**
 * A WeChat-shaped JSON answer (errors and successes alike are HTTP 200 upstream).
 * @param {unknown} payload
 * @param {number} [status]
 * @returns {SimResponse}
 */
export function wechatJson(payload, status = 200) {
  return { status, headers: { "content-type": WECHAT_CONTENT_TYPE }, body: JSON.stringify(payload) };
}

/**
 * `{"errcode":N,"errmsg":"... rid: xxxxxxxx-xxxxxxxx-xxxxxxxx"}` with HTTP 200, as WeChat answers every error.
 * @param {number} errcode
 * @param {number} [status]
 * @returns {SimResponse}
 */
export function wechatError(errcode, status = 200) {
  return wechatJson({ errcode, errmsg: `${errmsgFor(errcode)} rid: ${newRid()}` }, status);
}

/**
 * @param {unknown} payload
 * @param {number} [status]
 * @returns {SimResponse}
 */
export function controlJson(payload, status = 200) {
  return { status, headers: { "content-type": CONTROL_CONTENT_TYPE }, body: JSON.stringify(payload) };
}

/**
 * The bare error page nginx serves when the service behind it is down: HTML, not JSON, whatever the status.
 * @param {number} status
 * @returns {SimResponse}
 */
export function htmlErrorPage(status) {
  return {
    status,
    headers: { "content-type": "text/html" },
    body: `<html><head><title>${status}</title></head><body><center><h1>${status}</h1></center><hr><center>nginx</center></body></html>`,
  };
}

/**
 * Parses a JSON object body; anything else (invalid JSON, arrays, scalars) yields undefined.
 * @param {string | undefined} body
 * @returns {Record<string, unknown> | undefined}
 */
export function parseJsonObject(body) {
  let value;
  try {
    value = JSON.parse(body ?? "");
  } catch {
    return undefined;
  }
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
}
