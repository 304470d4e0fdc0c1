// @ts-check
/**
 * What WeCom sends to a suite's instruction URL (指令回调URL), made as WeCom makes it (OPEN-PLATFORM.md §1,
 * §10): the instruction XML (SuiteId, InfoType, TimeStamp and what the InfoType carries) encrypted for the
 * suite_id (or, where a suite says so, the provider's corpid) and signed, in the envelope
 * `<xml><ToUserName/><Encrypt/><AgentID/></xml>` with `msg_signature, timestamp, nonce` in the query; and the
 * GET URL check, whose echostr is encrypted for the provider's corpid.
 *
 * suite_ticket goes out on a jittered schedule in simulated time: each next push is due a random
 * push_min_s..push_max_s (7–15 min by default) after the last. Tests shape it as WeCom's really behaves: stop
 * it, duplicate every push, move the next one, or push now with any TimeStamp. Pushes wait in a per-suite
 * outbox: the pusher (open-pusher.js) delivers those of suites with a callback URL; a test takes the others.
 */
import { randomInt } from "node:crypto";
import { MS_PER_S } from "./clock.js";
import { encrypt, RANDOM_STYLES, randomPrefix, signature, xmlMessage } from "./callback-crypto.js";

/** @typedef {import("./wecom-suites.js").Suite} Suite */

/** Pushes kept per suite before the oldest is dropped (counted). */
export const MAX_SUITE_OUTBOX = 100;

/**
 * @typedef {object} SuitePush
 * @property {string} info_type
 * @property {string} query       the instruction URL's query string, as WeCom appends it
 * @property {string} body        the XML envelope
 * @property {number} time_stamp  TimeStamp in the message, in seconds
 */

/**
 * @typedef {object} SuiteSchedule
 * @property {boolean} running
 * @property {boolean} duplicate     every push sent twice
 * @property {number | null} next_at_ms
 */

/** @param {number} nowMs */
const seconds = (nowMs) => Math.floor(nowMs / MS_PER_S);

export class SuitePushes {
  /** @type {import("./wecom-suites.js").SuiteRegistry} */
  #suites;
  /** @type {(suite: Suite, nowMs: number) => string} */
  #issueTicket;
  /** @type {Map<string, SuiteSchedule>} */
  #schedules = new Map();
  /** @type {Map<string, SuitePush[]>} */
  #outbox = new Map();
  /** @type {Map<string, { made: number, dropped: number, delivered: number, failed: number }>} */
  #stats = new Map();
  #styleTurn = 0;

  /** @param {{ suites: import("./wecom-suites.js").SuiteRegistry, issueTicket: (suite: Suite, nowMs: number) => string }} deps */
  constructor({ suites, issueTicket }) {
    this.#suites = suites;
    this.#issueTicket = issueTicket;
  }

  /** Makes every ticket push due by now (at most one per suite: a jump in time is one push, as a gap is). */
  tick(/** @type {number} */ nowMs) {
    for (const suite of this.#suites.list()) {
      const schedule = this.scheduleOf(suite.suite_id, nowMs);
      if (!schedule.running || schedule.next_at_ms === null || schedule.next_at_ms > nowMs) continue;
      this.pushTicket(suite, nowMs);
      schedule.next_at_ms = nowMs + randomInt(suite.push_min_s, suite.push_max_s + 1) * MS_PER_S;
    }
  }

  /**
   * A suite_ticket push now (twice in duplicate mode), with a fresh ticket valid from now.
   * @param {Suite} suite @param {number} nowMs @param {number} [timeStampS] TimeStamp, e.g. an older one
   */
  pushTicket(suite, nowMs, timeStampS) {
    const ticket = this.#issueTicket(suite, nowMs);
    const copies = this.scheduleOf(suite.suite_id, nowMs).duplicate ? 2 : 1;
    const push = this.seal(suite, { InfoType: "suite_ticket", SuiteTicket: ticket }, nowMs, timeStampS);
    for (let i = 0; i < copies; i++) this.#enqueue(suite.suite_id, push);
  }

  /**
   * An instruction callback (create_auth, cancel_auth, …) into the suite's outbox.
   * @param {Suite} suite @param {Record<string, string | number>} fields  InfoType and what it carries @param {number} nowMs
   */
  enqueue(suite, fields, nowMs) {
    this.#enqueue(suite.suite_id, this.seal(suite, fields, nowMs));
  }

  /**
   * @param {Suite} suite @param {Record<string, string | number>} fields @param {number} nowMs @param {number} [timeStampS]
   * @returns {SuitePush}
   */
  seal(suite, fields, nowMs, timeStampS = seconds(nowMs)) {
    const { InfoType = "", ...rest } = fields;
    const message = xmlMessage({ SuiteId: suite.suite_id, InfoType, TimeStamp: timeStampS, ...rest });
    const receiver = suite.instruction_receiver === "provider_corpid" ? /** @type {string} */ (suite.provider_corpid) : suite.suite_id;
    const { query, encrypted } = this.#signed(suite, message, receiver, nowMs);
    const body = xmlMessage({ ToUserName: receiver, Encrypt: encrypted, AgentID: "" });
    return { info_type: String(InfoType), query: query.toString(), body, time_stamp: timeStampS };
  }

  /**
   * The GET URL check WeCom makes when the instruction URL is saved: its query, and the plaintext a
   * receiver must answer with. The echostr is encrypted for the provider's corpid (W-91144), or the
   * suite_id when the suite has no provider.
   * @param {Suite} suite @param {number} nowMs
   */
  urlCheck(suite, nowMs) {
    const echo = String(randomInt(1, 2 ** 47)) + String(randomInt(1_000, 10_000));
    const { query, encrypted } = this.#signed(suite, echo, suite.provider_corpid ?? suite.suite_id, nowMs);
    query.set("echostr", encrypted);
    return { query: query.toString(), echo };
  }

  /** @param {Suite} suite @param {string} message @param {string} receiver @param {number} nowMs */
  #signed(suite, message, receiver, nowMs) {
    const style = RANDOM_STYLES[this.#styleTurn++ % RANDOM_STYLES.length] ?? "bytes";
    const encrypted = encrypt(suite.encoding_aes_key, message, receiver, randomPrefix(style));
    const timestamp = String(seconds(nowMs));
    const nonce = String(randomInt(100_000_000, 2_000_000_000));
    return { encrypted, query: new URLSearchParams({ msg_signature: signature(suite.token, timestamp, nonce, encrypted), timestamp, nonce }) };
  }

  /** @param {string} suiteId @param {SuitePush} push */
  #enqueue(suiteId, push) {
    const outbox = this.#outbox.get(suiteId) ?? [];
    outbox.push(push);
    const stats = this.statsOf(suiteId);
    stats.made += 1;
    if (outbox.length > MAX_SUITE_OUTBOX) {
      outbox.shift();
      stats.dropped += 1;
    }
    this.#outbox.set(suiteId, outbox);
  }

  /** Every push waiting for `suiteId`, oldest first; they are the caller's to deliver now. */
  take(/** @type {string} */ suiteId) {
    const pushes = this.#outbox.get(suiteId) ?? [];
    this.#outbox.delete(suiteId);
    return pushes;
  }

  /** @param {string} suiteId @param {boolean} delivered  answered exactly `success` in time */
  recordDelivery(suiteId, delivered) {
    this.statsOf(suiteId)[delivered ? "delivered" : "failed"] += 1;
  }

  /**
   * Stops or runs a suite's schedule, duplicates its pushes, or moves its next push.
   * @param {string} suiteId @param {{ running?: boolean, duplicate?: boolean, next_in_s?: number }} change @param {number} nowMs
   */
  reschedule(suiteId, { running, duplicate, next_in_s }, nowMs) {
    const schedule = this.scheduleOf(suiteId, nowMs);
    if (running !== undefined) schedule.running = running;
    if (duplicate !== undefined) schedule.duplicate = duplicate;
    if (next_in_s !== undefined) schedule.next_at_ms = nowMs + next_in_s * MS_PER_S;
    return { ...schedule };
  }

  /** A new suite's first ticket is due at once (WeCom pushes one when the callback URL is saved). */
  scheduleOf(/** @type {string} */ suiteId, /** @type {number} */ nowMs) {
    let schedule = this.#schedules.get(suiteId);
    if (!schedule) this.#schedules.set(suiteId, (schedule = { running: true, duplicate: false, next_at_ms: nowMs }));
    return schedule;
  }

  /** @param {string} suiteId */
  statsOf(suiteId) {
    let stats = this.#stats.get(suiteId);
    if (!stats) this.#stats.set(suiteId, (stats = { made: 0, dropped: 0, delivered: 0, failed: 0 }));
    return stats;
  }

  clear() {
    this.#schedules.clear();
    this.#outbox.clear();
    this.#stats.clear();
  }
}
