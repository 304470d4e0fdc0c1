// @ts-check
/**
 * Every access_token the simulator has issued, classic (/cgi-bin/token) and stable (/cgi-bin/stable_token).
 * Each record keeps two instants: its natural expiry and the possibly earlier instant it stops working
 * because a newer token superseded it or it was revoked. The business API tells the two apart:
 * 42001 after natural expiry, 40001 ("invalid or not latest") after being cut short.
 */
import { randomBytes } from "node:crypto";
import { MS_PER_S } from "./clock.js";

/** @typedef {"classic" | "stable" | "wecom" | "component" | `authorizer:${string}` | "suite" | "provider" | `corp:${string}`} TokenKind (open-platform.js: component tokens, and authorizer tokens per component; wecom-service.js: suite, provider and per-suite corp tokens) */

/**
 * @typedef {object} TokenRecord
 * @property {string} token
 * @property {string} appid
 * @property {TokenKind} kind
 * @property {number} issuedAtMs
 * @property {number} expiresAtMs    natural expiry: issue time + lifetime
 * @property {number} validUntilMs   <= expiresAtMs; earlier once superseded or revoked
 */

/** @typedef {"valid" | "unknown" | "superseded" | "expired"} TokenStatus */

// Real tokens look like "86_" followed by ~150 URL-safe characters; brokers must not assume a length
// (WeChat documents up to 512), but a realistic shape catches column-size and logging mistakes.
const TOKEN_PREFIX = "86_";
const TOKEN_RANDOM_BYTES = 114; // 152 base64url characters
// Per-app lists of live tokens are swept when they grow past this, then past twice their swept size:
// amortised O(1) per mint even when a frozen clock keeps every token alive.
const MIN_SWEEP_LENGTH = 64;

/**
 * @typedef {object} AppTokens
 * @property {TokenRecord[]} live  tokens minted for this app and kind that may still be valid, oldest first
 * @property {number} sweepAt
 */

/**
 * @typedef {object} TokenShape
 * @property {string} prefix
 * @property {number} randomBytes  random bytes after the prefix, base64url-encoded
 */

/** WeCom tokens carry no version prefix and are longer (WeCom documents up to 512 characters too). */
export const WECOM_TOKEN_SHAPE = Object.freeze({ prefix: "", randomBytes: 128 });

export class TokenStore {
  /** @type {TokenShape} */
  #shape;
  /** @type {Map<string, TokenRecord>} */
  #byToken = new Map();
  /** @type {Map<string, AppTokens>} */
  #byApp = new Map();

  /** @param {TokenShape} [shape] what minted tokens look like; official-account tokens by default */
  constructor(shape = { prefix: TOKEN_PREFIX, randomBytes: TOKEN_RANDOM_BYTES }) {
    this.#shape = shape;
  }

  /**
   * @param {string} appid
   * @param {TokenKind} kind
   * @param {number} lifetimeS
   * @param {number} nowMs
   * @returns {TokenRecord}
   */
  mint(appid, kind, lifetimeS, nowMs) {
    let token;
    do token = this.#shape.prefix + randomBytes(this.#shape.randomBytes).toString("base64url");
    while (this.#byToken.has(token));
    const expiresAtMs = nowMs + lifetimeS * MS_PER_S;
    /** @type {TokenRecord} */
    const record = { token, appid, kind, issuedAtMs: nowMs, expiresAtMs, validUntilMs: expiresAtMs };
    this.#byToken.set(token, record);

    const tokens = this.#appTokens(appid, kind);
    tokens.live.push(record);
    if (tokens.live.length > tokens.sweepAt) {
      tokens.live = tokens.live.filter((r) => r.validUntilMs > nowMs);
      tokens.sweepAt = Math.max(MIN_SWEEP_LENGTH, 2 * tokens.live.length);
    }
    return record;
  }

  /**
   * The most recently minted token of this app and kind, valid or not.
   * @param {string} appid
   * @param {TokenKind} kind
   * @returns {TokenRecord | undefined}
   */
  latest(appid, kind) {
    return this.#byApp.get(`${kind}:${appid}`)?.live.at(-1);
  }

  /**
   * Shortens the validity of every still-valid token of this app and kind to at most `untilMs`.
   * @param {string} appid
   * @param {TokenKind} kind
   * @param {number} untilMs
   * @param {number} nowMs
   */
  capAll(appid, kind, untilMs, nowMs) {
    const tokens = this.#byApp.get(`${kind}:${appid}`);
    if (!tokens) return;
    tokens.live = tokens.live.filter((r) => r.validUntilMs > nowMs);
    for (const record of tokens.live) record.validUntilMs = Math.min(record.validUntilMs, untilMs);
  }

  /**
   * Same result as capAll, provided every earlier cap of this app and kind used a bound <= `untilMs`.
   * Then every token older than the newest one already within the bound is within it too, and the walk
   * back from the newest can stop there. Classic rotation (bound = now + grace, forward-only clock) and
   * revocation (bound = now) keep that promise; this keeps a frozen-clock benchmark minting in O(1).
   * @param {string} appid
   * @param {TokenKind} kind
   * @param {number} untilMs
   */
  capNewest(appid, kind, untilMs) {
    const live = this.#byApp.get(`${kind}:${appid}`)?.live ?? [];
    for (let i = live.length - 1; i >= 0; i--) {
      const record = /** @type {TokenRecord} */ (live[i]);
      if (record.validUntilMs <= untilMs) break;
      record.validUntilMs = untilMs;
    }
  }

  /**
   * @param {string} token
   * @returns {TokenRecord | undefined}
   */
  lookup(token) {
    return this.#byToken.get(token);
  }

  /**
   * @param {TokenRecord | undefined} record
   * @param {number} nowMs
   * @returns {TokenStatus}
   */
  static status(record, nowMs) {
    if (!record) return "unknown";
    if (nowMs < record.validUntilMs) return "valid";
    // A token that would have died anyway by now reads as expired even if it was also cut short.
    if (nowMs >= record.expiresAtMs) return "expired";
    return "superseded";
  }

  clear() {
    this.#byToken.clear();
    this.#byApp.clear();
  }

  /**
   * @param {string} appid
   * @param {TokenKind} kind
   * @returns {AppTokens}
   */
  #appTokens(appid, kind) {
    const key = `${kind}:${appid}`;
    let tokens = this.#byApp.get(key);
    if (!tokens) {
      tokens = { live: [], sweepAt: MIN_SWEEP_LENGTH };
      this.#byApp.set(key, tokens);
    }
    return tokens;
  }
}
