// @ts-check
/**
 * Test helpers: each test gets its own simulator on a free port, talks to it over real HTTP with the
 * global fetch, and moves time only through the control API.
 */
import { afterEach, beforeEach } from "vitest";
import { startSimulator } from "../../sim/server.js";

// Noon in China (04:00 UTC) on an ordinary day, so a test has 12 h before the daily counters reset.
export const FROZEN_NOW_MS = Date.UTC(2025, 0, 15, 4, 0, 0);
export const CHINA_OFFSET_MS = 8 * 3600 * 1000;
export const DAY_MS = 24 * 3600 * 1000;
export const RID = /rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;
/** Every per-app counter of GET /__sim/stats, as an app that was never called reports them. */
export const ZERO_STATS = Object.freeze({
  token: 0,
  stable_token: 0,
  stable_token_force: 0,
  getcallbackip: 0,
  getticket: 0,
  getticket_jsapi: 0,
  getticket_wx_card: 0,
  message_custom_send: 0,
  media_upload: 0,
  media_get: 0,
});

/**
 * @typedef {object} SimHarness
 * @property {string} url
 * @property {import("../../sim/server.js").Simulator} simulator
 */

/**
 * Starts a fresh simulator (frozen base clock) before each test and closes it after.
 * @param {unknown[]} [apps]
 * @returns {SimHarness}
 */
export function useSimulator(apps = []) {
  const harness = /** @type {SimHarness} */ ({});
  beforeEach(async () => {
    harness.simulator = await startSimulator({ port: 0, apps, now: () => FROZEN_NOW_MS });
    harness.url = harness.simulator.url;
  });
  afterEach(async () => {
    await harness.simulator.close();
  });
  return harness;
}

/**
 * @param {Response} response
 * @returns {Promise<any>}
 */
async function json(response) {
  return JSON.parse(await response.text());
}

/**
 * GET /cgi-bin/token with the given query parameters (grant_type defaults to client_credential).
 * @param {string} url
 * @param {Record<string, string>} params
 */
export async function classicToken(url, params) {
  const query = new URLSearchParams({ grant_type: "client_credential", ...params });
  return json(await fetch(`${url}/cgi-bin/token?${query}`));
}

/**
 * POST /cgi-bin/stable_token with a JSON body (grant_type defaults to client_credential).
 * @param {string} url
 * @param {Record<string, unknown>} body
 */
export async function stableToken(url, body) {
  const response = await fetch(`${url}/cgi-bin/stable_token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ grant_type: "client_credential", ...body }),
  });
  return json(response);
}

/**
 * Asks the business API whether a token works: 0 if it does, else the errcode.
 * @param {string} url
 * @param {string} token
 * @returns {Promise<number>}
 */
export async function probe(url, token) {
  const body = await json(await fetch(`${url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`));
  return body.errcode ?? 0;
}

/**
 * Calls the control API.
 * @param {string} url
 * @param {string} method
 * @param {string} path  below /__sim/
 * @param {unknown} [body]
 * @returns {Promise<{ status: number, body: any }>}
 */
export async function control(url, method, path, body) {
  const response = await fetch(`${url}/__sim/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await json(response) };
}

/**
 * @param {string} url
 * @param {number} seconds
 */
export async function advance(url, seconds) {
  const { status, body } = await control(url, "POST", "clock", { advance_s: seconds });
  if (status !== 200) throw new Error(`advancing the clock failed: ${JSON.stringify(body)}`);
}

/**
 * Seconds from the simulated now to the next midnight in China (UTC+8).
 * @param {string} url
 */
export async function secondsToChinaMidnight(url) {
  const { body } = await control(url, "GET", "clock");
  const now = body.now_ms;
  const nextMidnight = (Math.floor((now + CHINA_OFFSET_MS) / DAY_MS) + 1) * DAY_MS - CHINA_OFFSET_MS;
  return (nextMidnight - now) / 1000;
}

/**
 * @param {string} url
 * @param {string} appid
 */
export async function statsOf(url, appid) {
  const { body } = await control(url, "GET", `stats?appid=${encodeURIComponent(appid)}`);
  return body.apps[appid];
}
