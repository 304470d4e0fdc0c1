// @ts-check
/**
 * Every JS-SDK ticket the simulator has issued: official-account jsapi and wx_card tickets, WeCom corp and
 * agent tickets. A ticket belongs to an owner (an app, a corp, an agent) and a type, and lives until its own
 * expiry; nothing revokes it early (WeChat documents no such thing, and a newer ticket is not known to kill
 * an older one).
 *
 * Whether a re-fetch inside the validity returns the same ticket is not documented (WECHAT-API.md), so it
 * is a per-owner switch: "same" hands out the current ticket again with its remaining lifetime, "new" mints
 * a ticket on every call while the older ones keep working until their own expiry.
 */
import { randomBytes } from "node:crypto";
import { MS_PER_S } from "./clock.js";

/** @typedef {"same" | "new"} TicketRefetch */
export const TICKET_REFETCH = /** @type {const} */ (["same", "new"]);

/**
 * @typedef {object} TicketRecord
 * @property {string} ticket
 * @property {number} issuedAtMs
 * @property {number} expiresAtMs
 */

/** @typedef {{ ticket: string, expires_in: number }} TicketGrant */

// The official sample ticket is 86 base64url characters: 64 random bytes encode to exactly that.
const TICKET_RANDOM_BYTES = 64;

export class TicketStore {
  /** @type {Map<string, TicketRecord[]>} owner|type → tickets not yet expired, oldest first */
  #live = new Map();

  /**
   * @param {string} owner  e.g. "oa:wx…", "wecom-corp:ww…", "wecom-agent:ww…:1000002"
   * @param {string} type   jsapi, wx_card, agent_config
   * @param {{ refetch: TicketRefetch, lifetimeS: number }} rules
   * @param {number} nowMs
   * @returns {TicketGrant}
   */
  issue(owner, type, { refetch, lifetimeS }, nowMs) {
    const live = this.#sweep(owner, type, nowMs);
    const current = live.at(-1);
    if (refetch === "same" && current) return grant(current, nowMs);
    const record = { ticket: randomBytes(TICKET_RANDOM_BYTES).toString("base64url"), issuedAtMs: nowMs, expiresAtMs: nowMs + lifetimeS * MS_PER_S };
    live.push(record);
    return grant(record, nowMs);
  }

  /**
   * The tickets of this owner and type that work now, newest first.
   * @param {string} owner
   * @param {string} type
   * @param {number} nowMs
   * @returns {string[]}
   */
  valid(owner, type, nowMs) {
    return this.#sweep(owner, type, nowMs).map((r) => r.ticket).reverse();
  }

  clear() {
    this.#live.clear();
  }

  /**
   * Drops expired tickets (a ticket never comes back to life) and returns the live list, stored.
   * @param {string} owner
   * @param {string} type
   * @param {number} nowMs
   */
  #sweep(owner, type, nowMs) {
    const key = `${owner}|${type}`;
    const live = (this.#live.get(key) ?? []).filter((r) => r.expiresAtMs > nowMs);
    this.#live.set(key, live);
    return live;
  }
}

/**
 * expires_in is the remaining lifetime in whole seconds, rounded down so no client trusts a ticket longer
 * than it lives.
 * @param {TicketRecord} record
 * @param {number} nowMs
 * @returns {TicketGrant}
 */
function grant(record, nowMs) {
  return { ticket: record.ticket, expires_in: Math.floor((record.expiresAtMs - nowMs) / MS_PER_S) };
}

/** @param {string} appid */
export const officialOwner = (appid) => `oa:${appid}`;
/** @param {string} corpid */
export const corpOwner = (corpid) => `wecom-corp:${corpid}`;
/**
 * @param {string} corpid
 * @param {string} agentid
 */
export const agentOwner = (corpid, agentid) => `wecom-agent:${corpid}:${agentid}`;
