// @ts-check
/**
 * How an official-account business API judges the access_token it is called with (getcallbackip, getticket,
 * message and media calls): one place, so every endpoint answers the same errcode for the same token.
 * WECHAT-API.md: 41001 missing, 40014 never issued, 40001 superseded or revoked ("invalid or not latest"),
 * 42001 past its natural expiry.
 */
import { ERR } from "./errcodes.js";
import { TokenStore } from "./token-store.js";

/** @typedef {import("./token-store.js").TokenRecord} TokenRecord */

/**
 * @typedef {object} TokenCheck
 * @property {TokenRecord | undefined} record  the token's record when the simulator issued it, valid or not
 * @property {number | undefined} errcode      undefined when the token works now
 * @property {boolean} missing                 no access_token parameter at all
 */

/**
 * @param {TokenStore} tokens
 * @param {string | null} token
 * @param {number} nowMs
 * @returns {TokenCheck}
 */
export function checkAccessToken(tokens, token, nowMs) {
  if (!token) return { record: undefined, errcode: ERR.ACCESS_TOKEN_MISSING, missing: true };
  const record = tokens.lookup(token);
  switch (TokenStore.status(record, nowMs)) {
    case "valid":
      return { record, errcode: undefined, missing: false };
    case "superseded":
      return { record, errcode: ERR.INVALID_CREDENTIAL, missing: false };
    case "expired":
      return { record, errcode: ERR.ACCESS_TOKEN_EXPIRED, missing: false };
    default:
      return { record, errcode: ERR.INVALID_ACCESS_TOKEN, missing: false };
  }
}
