// @ts-check
/**
 * Registered WeCom (企业微信) corps and their secrets. Each self-built app (agentid) has its own secret, and
 * so do corp-level tools such as contacts sync; gettoken issues one token per (corpid, secret), so each
 * registration here is one secret: (corpid, agentid) for an app, (corpid, no agentid) for the corp-level one.
 * Re-registering the same (corpid, agentid) updates it; a new secret models a reset in the admin console and
 * leaves issued tokens alone.
 */
import { AppConfigError } from "./apps.js";
import { TICKET_REFETCH } from "./ticket-store.js";

export const DEFAULT_WECOM_LIFETIME_S = 7200;
export const DEFAULT_WECOM_TICKET_LIFETIME_S = 7200;
// Older WeCom docs: "a re-fetch inside the validity returns the same token" (WECHAT-API.md).
export const DEFAULT_SAME_TOKEN_ON_REFETCH = true;
const CORP_LEVEL = "corp";

/**
 * @typedef {object} WeComSecret
 * @property {string} key                  owner key of its tokens: corpid/agentid or corpid/corp
 * @property {string} corpid
 * @property {string | undefined} agentid  undefined for a corp-level secret
 * @property {string} secret
 * @property {number} lifetime_s           expires_in of freshly minted tokens
 * @property {boolean} same_token_on_refetch
 * @property {number} ticket_lifetime_s
 * @property {import("./ticket-store.js").TicketRefetch} ticket_refetch  for tickets fetched with its tokens
 */

/** @typedef {Omit<WeComSecret, "secret" | "key">} PublicWeComSecret */

const FIELDS = new Set(["corpid", "agentid", "secret", "lifetime_s", "same_token_on_refetch", "ticket_lifetime_s", "ticket_refetch"]);

/**
 * @param {string} corpid
 * @param {string | undefined} agentid
 */
export function wecomKey(corpid, agentid) {
  return `${corpid}/${agentid ?? CORP_LEVEL}`;
}

export class WeComRegistry {
  /** @type {Map<string, WeComSecret>} key → secret */
  #secrets = new Map();

  /**
   * @param {unknown} input
   * @returns {WeComSecret}
   */
  upsert(input) {
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      throw new AppConfigError('WeCom app must be a JSON object like {"corpid":"ww…","agentid":1000002,"secret":"…"}');
    }
    const fields = /** @type {Record<string, unknown>} */ (input);
    const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
    if (unknown.length) throw new AppConfigError(`unknown WeCom app field(s) ${unknown.join(", ")}; allowed: ${[...FIELDS].join(", ")}`);
    const { corpid, agentid, secret, lifetime_s, same_token_on_refetch, ticket_lifetime_s, ticket_refetch } = fields;
    if (typeof corpid !== "string" || corpid === "" || corpid.includes("/")) throw new AppConfigError("corpid must be a non-empty string without '/'");
    // WeCom's agentid is an integer (1000002); a string of digits is accepted and kept as text.
    if (agentid !== undefined && !(Number.isSafeInteger(agentid) || (typeof agentid === "string" && /^\d+$/.test(agentid)))) {
      throw new AppConfigError(`agentid must be an integer (omit it for a corp-level secret), got ${JSON.stringify(agentid)}`);
    }
    const agent = agentid === undefined ? undefined : String(agentid);
    const key = wecomKey(corpid, agent);
    const existing = this.#secrets.get(key);
    if (secret !== undefined && (typeof secret !== "string" || secret === "")) throw new AppConfigError(`secret of ${key} must be a non-empty string`);
    if (secret === undefined && !existing) throw new AppConfigError(`secret is required to register ${key}`);
    for (const [name, value] of /** @type {const} */ ([["lifetime_s", lifetime_s], ["ticket_lifetime_s", ticket_lifetime_s]])) {
      if (value !== undefined && !(typeof value === "number" && Number.isSafeInteger(value) && value >= 1)) {
        throw new AppConfigError(`${name} of ${key} must be an integer >= 1, got ${JSON.stringify(value)}`);
      }
    }
    if (same_token_on_refetch !== undefined && typeof same_token_on_refetch !== "boolean") {
      throw new AppConfigError(`same_token_on_refetch of ${key} must be true or false`);
    }
    if (ticket_refetch !== undefined && !TICKET_REFETCH.includes(/** @type {any} */ (ticket_refetch))) {
      throw new AppConfigError(`ticket_refetch of ${key} must be one of ${TICKET_REFETCH.join(", ")}, got ${JSON.stringify(ticket_refetch)}`);
    }
    /** @type {WeComSecret} */
    const entry = {
      key,
      corpid,
      agentid: agent,
      secret: /** @type {string | undefined} */ (secret) ?? existing?.secret ?? "",
      lifetime_s: /** @type {number | undefined} */ (lifetime_s) ?? existing?.lifetime_s ?? DEFAULT_WECOM_LIFETIME_S,
      same_token_on_refetch: /** @type {boolean | undefined} */ (same_token_on_refetch) ?? existing?.same_token_on_refetch ?? DEFAULT_SAME_TOKEN_ON_REFETCH,
      ticket_lifetime_s: /** @type {number | undefined} */ (ticket_lifetime_s) ?? existing?.ticket_lifetime_s ?? DEFAULT_WECOM_TICKET_LIFETIME_S,
      ticket_refetch: /** @type {any} */ (ticket_refetch) ?? existing?.ticket_refetch ?? "same",
    };
    this.#secrets.set(key, entry);
    return entry;
  }

  /** @param {string} key */
  byKey(key) {
    return this.#secrets.get(key);
  }

  /**
   * The registration gettoken finds for this (corpid, corpsecret), if any.
   * @param {string} corpid
   * @param {string} secret
   */
  bySecret(corpid, secret) {
    for (const entry of this.#secrets.values()) if (entry.corpid === corpid && entry.secret === secret) return entry;
    return undefined;
  }

  /** @param {string} corpid */
  hasCorp(corpid) {
    for (const entry of this.#secrets.values()) if (entry.corpid === corpid) return true;
    return false;
  }

  /**
   * Every registration of a corp, or the one of an agent.
   * @param {string} corpid
   * @param {string} [agentid]
   * @returns {WeComSecret[]}
   */
  select(corpid, agentid) {
    return [...this.#secrets.values()].filter((e) => e.corpid === corpid && (agentid === undefined || e.agentid === agentid));
  }

  /** @returns {string[]} */
  corpids() {
    return [...new Set([...this.#secrets.values()].map((e) => e.corpid))];
  }

  /** @returns {PublicWeComSecret[]} */
  listPublic() {
    return [...this.#secrets.values()].map(({ secret: _secret, key: _key, ...rest }) => rest);
  }

  clear() {
    this.#secrets.clear();
  }
}
