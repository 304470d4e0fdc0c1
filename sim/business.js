// @ts-check
/**
 * Official-account business APIs a broker's gateway forwards with the current token, so tests can prove a
 * forwarded call arrives intact (JSON body, multipart upload, binary download) and carries a token that
 * works. wechat-sim.js has judged the access_token (41001 / 40014 / 40001 / 42001) before anything here runs.
 *
 *   POST /cgi-bin/message/custom/send   {touser, msgtype, <msgtype>: {...}} → {errcode: 0, errmsg: "ok"}; recorded
 *   POST /cgi-bin/media/upload?type=    multipart/form-data, file field "media" (as co-wechat-api and wechat-api
 *                                       send it via formstream) → {type, media_id, created_at}
 *   GET  /cgi-bin/media/get?media_id=   the exact bytes, their content type, Content-Disposition
 *                                       `attachment; filename="<media_id><ext>"` as WeChat names downloads
 *
 * Temporary media live 3 days and belong to the app that uploaded them; any other id answers 40007.
 */
import { randomBytes } from "node:crypto";
import { DAY_MS, MS_PER_S } from "./clock.js";
import { ERR } from "./errcodes.js";
import { parseJsonObject, wechatError, wechatJson } from "./wire.js";

/** @typedef {import("./wire.js").SimRequest} SimRequest */
/** @typedef {import("./wire.js").SimResponse} SimResponse */

/**
 * @typedef {object} CustomMessage
 * @property {string} appid
 * @property {string} touser
 * @property {string} msgtype
 * @property {Record<string, unknown>} message  the whole JSON body as sent
 * @property {number} at_ms
 */

/**
 * @typedef {object} MediaFile
 * @property {Uint8Array} bytes
 * @property {string} contentType
 * @property {string} filename   as uploaded; only its extension survives into downloads
 */

/** @typedef {MediaFile & { appid: string, type: string, mediaId: string, createdAtMs: number }} StoredMedia */

// WeChat's temporary media limits (新增临时素材): size per type, and the errcode for exceeding it.
const MEDIA_LIMITS = Object.freeze({
  image: { maxBytes: 10 * 1024 * 1024, errcode: 40009 },
  voice: { maxBytes: 2 * 1024 * 1024, errcode: 40010 },
  video: { maxBytes: 10 * 1024 * 1024, errcode: 40011 },
  thumb: { maxBytes: 64 * 1024, errcode: 40012 },
});
const TEMPORARY_MEDIA_LIFETIME_MS = 3 * DAY_MS;
// 48 random bytes are 64 base64url characters, the length of real media_ids.
const MEDIA_ID_BYTES = 48;
// Only reached for an explicitly empty part type: a part without one reads as text/plain (RFC 7578).
const DEFAULT_MEDIA_TYPE = "application/octet-stream";
// Enough for any gateway test; the cap keeps a long-running `npm run sim` from growing without bound.
export const MAX_RECORDED_MESSAGES = 1000;

export const BUSINESS_ERR = Object.freeze({
  INVALID_OPENID: 40003,
  INVALID_MEDIA_TYPE: 40004,
  INVALID_MEDIA_ID: 40007,
  INVALID_MESSAGE_TYPE: 40008,
  MEDIA_DATA_MISSING: 41005,
});

/**
 * Reads the multipart upload before the token is judged (parsing is asynchronous, the judgement is not);
 * the outcome is only acted on once the token works.
 * @param {Required<SimRequest>} req
 * @returns {Promise<MediaFile | undefined>}  undefined when there is no usable "media" file part
 */
export async function readMediaPart({ headers, raw }) {
  const contentType = headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType)) return undefined;
  let form;
  try {
    form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
  } catch {
    return undefined;
  }
  const part = form.get("media");
  if (part === null || typeof part === "string") return undefined;
  return { bytes: new Uint8Array(await part.arrayBuffer()), contentType: part.type || DEFAULT_MEDIA_TYPE, filename: part.name };
}

export class BusinessApi {
  /** @type {CustomMessage[]} oldest first */
  #messages = [];
  /** @type {Map<string, StoredMedia>} */
  #media = new Map();

  /**
   * @param {string} appid  the app whose valid token made the call
   * @param {string} body
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  customSend(appid, body, nowMs) {
    const message = parseJsonObject(body);
    if (!message) return wechatError(ERR.DATA_FORMAT);
    const { touser, msgtype } = message;
    if (typeof touser !== "string" || touser === "") return wechatError(BUSINESS_ERR.INVALID_OPENID);
    if (typeof msgtype !== "string" || msgtype === "") return wechatError(BUSINESS_ERR.INVALID_MESSAGE_TYPE);
    const section = message[msgtype];
    if (section === null || typeof section !== "object") return wechatError(ERR.DATA_FORMAT);
    if (msgtype === "text" && typeof (/** @type {{ content?: unknown }} */ (section).content) !== "string") return wechatError(ERR.DATA_FORMAT);
    this.#messages.push({ appid, touser, msgtype, message, at_ms: nowMs });
    if (this.#messages.length > MAX_RECORDED_MESSAGES) this.#messages.splice(0, this.#messages.length - MAX_RECORDED_MESSAGES);
    return wechatJson({ errcode: 0, errmsg: "ok" });
  }

  /**
   * @param {string} appid
   * @param {string | null} type
   * @param {MediaFile | undefined} file
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  upload(appid, type, file, nowMs) {
    const limit = type !== null && Object.hasOwn(MEDIA_LIMITS, type) ? MEDIA_LIMITS[/** @type {keyof typeof MEDIA_LIMITS} */ (type)] : undefined;
    if (!limit || type === null) return wechatError(BUSINESS_ERR.INVALID_MEDIA_TYPE);
    if (!file || file.bytes.byteLength === 0) return wechatError(BUSINESS_ERR.MEDIA_DATA_MISSING);
    if (file.bytes.byteLength > limit.maxBytes) return wechatError(limit.errcode);
    let mediaId;
    do mediaId = randomBytes(MEDIA_ID_BYTES).toString("base64url");
    while (this.#media.has(mediaId));
    this.#media.set(mediaId, { ...file, appid, type, mediaId, createdAtMs: nowMs });
    return wechatJson({ type, media_id: mediaId, created_at: Math.floor(nowMs / MS_PER_S) });
  }

  /**
   * @param {string} appid
   * @param {string | null} mediaId
   * @param {number} nowMs
   * @returns {SimResponse}
   */
  get(appid, mediaId, nowMs) {
    const media = mediaId === null ? undefined : this.#media.get(mediaId);
    if (!media || media.appid !== appid || nowMs >= media.createdAtMs + TEMPORARY_MEDIA_LIFETIME_MS) {
      return wechatError(BUSINESS_ERR.INVALID_MEDIA_ID);
    }
    const dot = media.filename.lastIndexOf(".");
    const extension = dot > 0 ? media.filename.slice(dot).replace(/[^.\w]/g, "") : "";
    return {
      status: 200,
      headers: {
        "content-type": media.contentType,
        "content-disposition": `attachment; filename="${media.mediaId}${extension}"`,
        "cache-control": "no-cache, must-revalidate",
      },
      body: media.bytes,
    };
  }

  /**
   * @param {string | null} [appid]  only this app's messages
   * @returns {CustomMessage[]} oldest first
   */
  messages(appid = null) {
    return this.#messages.filter((m) => appid === null || m.appid === appid).map((m) => ({ ...m }));
  }

  /** @returns {number} how many messages were forgotten */
  clearMessages() {
    const cleared = this.#messages.length;
    this.#messages = [];
    return cleared;
  }

  clear() {
    this.#messages = [];
    this.#media.clear();
  }
}
