// @ts-check
/**
 * What WeChat pushes to a component's event URL (授权事件接收URL), made as WeChat makes it: XML with AppId,
 * CreateTime and InfoType, encrypted for the component appid and signed (callback-crypto.js), in an envelope
 * `<xml><AppId/><Encrypt/></xml>` with `signature, timestamp, nonce, encrypt_type=aes, msg_signature` in the
 * query (OPEN-PLATFORM.md §2).
 *
 * component_verify_ticket goes out on a schedule in simulated time (every push_interval_s, 600 s by default):
 * `tick` makes whatever is due. Tests shape the schedule as WeChat's really behaves (§2: irregular,
 * duplicated, stopped for 30-60 min): stop it, duplicate every push, or push now with any CreateTime. Pushes
 * wait in a per-component outbox: open-pusher.js delivers those of components with an event URL; a test
 * takes the others and delivers them itself (the worker tests' broker has no port to push to).
 */
import { randomInt } from "node:crypto";
import { MS_PER_S } from "./clock.js";
import { RANDOM_STYLES, randomPrefix, sealPush, xmlMessage } from "./callback-crypto.js";

/** @typedef {import("./open-components.js").Component} Component */

/** Pushes kept per component before the oldest is dropped (counted): a test that never takes them stays bounded. */
export const MAX_OUTBOX = 100;

/**
 * @typedef {object} Push
 * @property {string} info_type
 * @property {string} query     the event URL's query string, as WeChat appends it
 * @property {string} body      the XML envelope
 * @property {number} create_time  CreateTime in the message, in seconds
 */

/**
 * @typedef {object} Schedule
 * @property {boolean} running        false: stopped, as WeChat's push service sometimes is (api_start_push_ticket restarts it)
 * @property {boolean} duplicate      every push sent twice
 * @property {number | null} next_at_ms  when the next ticket push is due
 */

export class OpenPushes {
  /** @type {import("./open-components.js").ComponentRegistry} */
  #components;
  /** @type {(component: Component, nowMs: number) => string} */
  #issueTicket;
  /** @type {Map<string, Schedule>} */
  #schedules = new Map();
  /** @type {Map<string, Push[]>} */
  #outbox = new Map();
  /** @type {Map<string, { made: number, dropped: number, delivered: number, failed: number }>} */
  #stats = new Map();
  #styleTurn = 0;

  /** @param {{ components: import("./open-components.js").ComponentRegistry, issueTicket: (component: Component, nowMs: number) => string }} deps */
  constructor({ components, issueTicket }) {
    this.#components = components;
    this.#issueTicket = issueTicket;
  }

  /** Makes every ticket push that is due by now (at most one per component: a jump in time is one push, as a gap is). */
  tick(/** @type {number} */ nowMs) {
    for (const component of this.#components.list()) {
      const schedule = this.scheduleOf(component.component_appid, nowMs);
      if (!schedule.running || schedule.next_at_ms === null || schedule.next_at_ms > nowMs) continue;
      this.pushTicket(component, nowMs);
      schedule.next_at_ms = nowMs + component.push_interval_s * MS_PER_S;
    }
  }

  /**
   * A component_verify_ticket push now (twice in duplicate mode), with a fresh ticket valid from now.
   * @param {Component} component @param {number} nowMs @param {number} [createTimeS] CreateTime, e.g. an older one
   */
  pushTicket(component, nowMs, createTimeS) {
    const ticket = this.#issueTicket(component, nowMs);
    const copies = this.scheduleOf(component.component_appid, nowMs).duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) this.enqueue(component, { InfoType: "component_verify_ticket", ComponentVerifyTicket: ticket }, nowMs, createTimeS);
  }

  /**
   * @param {Component} component
   * @param {Record<string, string | number>} fields  InfoType and what it carries
   * @param {number} nowMs @param {number} [createTimeS]
   */
  enqueue(component, fields, nowMs, createTimeS = Math.floor(nowMs / MS_PER_S)) {
    const outbox = this.#outbox.get(component.component_appid) ?? [];
    outbox.push(this.#seal(component, fields, nowMs, createTimeS));
    const stats = this.statsOf(component.component_appid);
    stats.made += 1;
    if (outbox.length > MAX_OUTBOX) {
      outbox.shift();
      stats.dropped += 1;
    }
    this.#outbox.set(component.component_appid, outbox);
  }

  /**
   * One ticket push per CreateTime, each with a fresh ticket valid 12 h from now, handed to the caller rather
   * than queued (the bench's burst of pushes: each is as WeChat would send it, and its ticket works for
   * api_component_token). Not counted as made: they never enter the outbox.
   * @param {Component} component @param {number} nowMs @param {readonly number[]} createTimesS
   * @returns {Push[]}
   */
  ticketPushes(component, nowMs, createTimesS) {
    return createTimesS.map((createTimeS) => this.#seal(component, { InfoType: "component_verify_ticket", ComponentVerifyTicket: this.#issueTicket(component, nowMs) }, nowMs, createTimeS));
  }

  /**
   * A push as WeChat makes it: the message encrypted for the component and signed, in its envelope.
   * @param {Component} component @param {Record<string, string | number>} fields @param {number} nowMs @param {number} createTimeS
   * @returns {Push}
   */
  #seal(component, fields, nowMs, createTimeS) {
    const { InfoType = "", ...rest } = fields;
    const message = xmlMessage({ AppId: component.component_appid, CreateTime: createTimeS, InfoType, ...rest });
    const style = RANDOM_STYLES[this.#styleTurn++ % RANDOM_STYLES.length] ?? "bytes";
    const { query, body } = sealPush({
      token: component.token, encodingAesKey: component.encoding_aes_key, componentAppid: component.component_appid, message,
      timestamp: String(Math.floor(nowMs / MS_PER_S)), nonce: String(randomInt(100_000_000, 2_000_000_000)), random: randomPrefix(style),
    });
    return { info_type: String(InfoType), query: query.toString(), body, create_time: createTimeS };
  }

  /** Every push waiting for `componentAppid`, oldest first; they are the caller's to deliver now. */
  take(/** @type {string} */ componentAppid) {
    const pushes = this.#outbox.get(componentAppid) ?? [];
    this.#outbox.delete(componentAppid);
    return pushes;
  }

  /** @param {string} componentAppid @param {boolean} delivered  answered exactly `success` in time */
  recordDelivery(componentAppid, delivered) {
    this.statsOf(componentAppid)[delivered ? "delivered" : "failed"] += 1;
  }

  /**
   * api_start_push_ticket: a stopped service runs again and pushes at once. True when it was stopped.
   * @param {Component} component @param {number} nowMs
   */
  start(component, nowMs) {
    const schedule = this.scheduleOf(component.component_appid, nowMs);
    if (schedule.running) return false;
    schedule.running = true;
    schedule.next_at_ms = nowMs;
    return true;
  }

  /**
   * Changes a component's schedule: stop or run it, duplicate its pushes, or move its next push.
   * @param {string} componentAppid @param {{ running?: boolean, duplicate?: boolean, next_in_s?: number }} change @param {number} nowMs
   */
  reschedule(componentAppid, { running, duplicate, next_in_s }, nowMs) {
    const schedule = this.scheduleOf(componentAppid, nowMs);
    if (running !== undefined) schedule.running = running;
    if (duplicate !== undefined) schedule.duplicate = duplicate;
    if (next_in_s !== undefined) schedule.next_at_ms = nowMs + next_in_s * MS_PER_S;
    return { ...schedule };
  }

  /** A new component's first ticket is due at once (as after 全网发布, which triggers a push). */
  scheduleOf(/** @type {string} */ componentAppid, /** @type {number} */ nowMs) {
    let schedule = this.#schedules.get(componentAppid);
    if (!schedule) this.#schedules.set(componentAppid, (schedule = { running: true, duplicate: false, next_at_ms: nowMs }));
    return schedule;
  }

  /** @param {string} componentAppid */
  statsOf(componentAppid) {
    let stats = this.#stats.get(componentAppid);
    if (!stats) this.#stats.set(componentAppid, (stats = { made: 0, dropped: 0, delivered: 0, failed: 0 }));
    return stats;
  }

  clear() {
    this.#schedules.clear();
    this.#outbox.clear();
    this.#stats.clear();
  }
}
