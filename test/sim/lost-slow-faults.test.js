// @ts-check
import { describe, expect, it } from "vitest";
import { RID, advance, classicToken, control, probe, stableToken, statsOf, useSimulator } from "./helpers.js";

const APP = { appid: "wxlostslow000001", secret: "lost-secret" };
const SPENT = { appid: "wxlostslowquota1", secret: "quota-secret", daily_quota: 1 };
const creds = { appid: APP.appid, secret: APP.secret };
const spentCreds = { appid: SPENT.appid, secret: SPENT.secret };
// Short enough to keep the suite fast; the brief for the simulator caps slow delays in tests at 50 ms.
const SLOW_MS = 40;

/**
 * @param {string} url
 * @param {Record<string, unknown>} fault
 */
async function addFault(url, fault) {
  const { status, body } = await control(url, "POST", "faults", fault);
  expect(status, JSON.stringify(body)).toBe(200);
}

/**
 * Resolves once the simulator has counted `count` calls of `stat` for the app; each poll is a real round
 * trip, so no sleeping.
 * @param {string} url
 * @param {string} appid
 * @param {string} stat
 * @param {number} count
 */
async function untilCalls(url, appid, stat, count) {
  while ((await statsOf(url, appid))[stat] < count);
}

describe("fault kind lost", () => {
  const h = useSimulator([APP, SPENT]);

  it("mints the classic token and starts the previous one's grace, then hangs until cleared", async () => {
    const previous = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { appid: APP.appid, endpoint: "token", kind: "lost", times: 1 });
    let settled = false;
    const lost = classicToken(h.url, creds).finally(() => (settled = true));
    await untilCalls(h.url, APP.appid, "token", 2);
    // The lost call superseded the previous token: 300 s of grace, then 40001.
    await advance(h.url, 299);
    expect(await probe(h.url, previous)).toBe(0);
    await advance(h.url, 1);
    expect(await probe(h.url, previous)).toBe(40001);
    expect(settled).toBe(false);
    await control(h.url, "DELETE", "faults");
    const body = await lost;
    expect(body.errcode).toBe(-1);
    expect(body.errmsg).toMatch(RID);
  });

  it("spends the daily quota like a normal call", async () => {
    await addFault(h.url, { appid: SPENT.appid, kind: "lost", then: "reset", times: 1 });
    await expect(classicToken(h.url, spentCreds)).rejects.toThrow();
    expect((await classicToken(h.url, spentCreds)).errcode).toBe(45009);
  });

  it("drops the connection at once with then reset", async () => {
    const previous = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { kind: "lost", then: "reset", times: 1 });
    await expect(classicToken(h.url, creds)).rejects.toThrow();
    expect((await statsOf(h.url, APP.appid)).token).toBe(2);
    await advance(h.url, 300);
    expect(await probe(h.url, previous)).toBe(40001);
  });

  it("performs a stable force_refresh, revoking the previous stable token at once", async () => {
    const previous = (await stableToken(h.url, creds)).access_token;
    await addFault(h.url, { endpoint: "stable_token", kind: "lost", then: "reset", times: 1 });
    await expect(stableToken(h.url, { ...creds, force_refresh: true })).rejects.toThrow();
    expect(await probe(h.url, previous)).toBe(40001);
    const stats = await statsOf(h.url, APP.appid);
    expect(stats.stable_token_force).toBe(1);
    // The lost force counted towards the 30 s spacing: a force right away is served as normal mode.
    const current = await stableToken(h.url, { ...creds, force_refresh: true });
    expect(await probe(h.url, current.access_token)).toBe(0);
    const again = await stableToken(h.url, creds);
    expect(again.access_token).toBe(current.access_token);
  });

  it("counts a lost getcallbackip call against the token's app", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { endpoint: "getcallbackip", kind: "lost", then: "reset", times: 1 });
    await expect(probe(h.url, token)).rejects.toThrow();
    expect((await statsOf(h.url, APP.appid)).getcallbackip).toBe(1);
    expect(await probe(h.url, token)).toBe(0);
  });
});

describe("fault kind slow", () => {
  const h = useSimulator([APP]);

  it("answers normally after delay_ms real milliseconds", async () => {
    await addFault(h.url, { endpoint: "stable_token", kind: "slow", delay_ms: SLOW_MS, times: 1 });
    const started = performance.now();
    const body = await stableToken(h.url, creds);
    // A lower bound only: timers never fire before their delay (1 ms of timer rounding allowed).
    expect(performance.now() - started).toBeGreaterThanOrEqual(SLOW_MS - 1);
    expect(await probe(h.url, body.access_token)).toBe(0);
    expect(body.expires_in).toBe(7200);
  });

  it("mints on arrival and answers at once when the faults are cleared", async () => {
    await addFault(h.url, { endpoint: "token", kind: "slow", delay_ms: 60_000, times: 1 });
    let settled = false;
    const slow = classicToken(h.url, creds).finally(() => (settled = true));
    await untilCalls(h.url, APP.appid, "token", 1);
    expect(settled).toBe(false);
    await control(h.url, "DELETE", "faults");
    const body = await slow;
    expect(await probe(h.url, body.access_token)).toBe(0);
  });
});

describe("faults on getcallbackip", () => {
  const h = useSimulator([APP, { appid: "wxlostslowother1", secret: "other" }]);

  it("answers the injected errcode, then the real answer", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { endpoint: "getcallbackip", kind: "errcode", errcode: -1, times: 1 });
    expect(await probe(h.url, token)).toBe(-1);
    expect(await probe(h.url, token)).toBe(0);
  });

  it("answers a bare HTTP error page and drops connections", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { endpoint: "getcallbackip", kind: "http", status: 502, times: 1 });
    await addFault(h.url, { endpoint: "getcallbackip", kind: "reset", times: 1 });
    const response = await fetch(`${h.url}/cgi-bin/getcallbackip?access_token=${token}`);
    expect(response.status).toBe(502);
    expect(await response.text()).toMatch(/^<html>/);
    await expect(probe(h.url, token)).rejects.toThrow();
    expect(await probe(h.url, token)).toBe(0);
  });

  it("hangs until the faults are cleared", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { endpoint: "getcallbackip", kind: "hang", times: 1 });
    let settled = false;
    const hung = probe(h.url, token).finally(() => (settled = true));
    await untilCalls(h.url, APP.appid, "getcallbackip", 1);
    expect(await probe(h.url, token)).toBe(0);
    expect(settled).toBe(false);
    await control(h.url, "DELETE", "faults");
    expect(await hung).toBe(-1);
  });

  it("hits only tokens of the fault's app", async () => {
    const mine = (await classicToken(h.url, creds)).access_token;
    const theirs = (await classicToken(h.url, { appid: "wxlostslowother1", secret: "other" })).access_token;
    await addFault(h.url, { appid: APP.appid, endpoint: "getcallbackip", kind: "errcode", errcode: 50004 });
    expect(await probe(h.url, theirs)).toBe(0);
    expect(await probe(h.url, "86_forged")).toBe(40014);
    expect(await probe(h.url, mine)).toBe(50004);
  });

  it("is not hit by a fault on every endpoint (*), which means the token endpoints", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await addFault(h.url, { kind: "errcode", errcode: -1 });
    expect(await probe(h.url, token)).toBe(0);
    expect((await classicToken(h.url, creds)).errcode).toBe(-1);
  });
});
