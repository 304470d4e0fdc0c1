// @ts-check
import { describe, expect, it } from "vitest";
import { startSimulator } from "../../sim/server.js";
import { FROZEN_NOW_MS, RID, classicToken, control, probe, stableToken, statsOf, useSimulator } from "./helpers.js";

const APP = { appid: "wxfaults00000001", secret: "faults-secret", daily_quota: 1 };
const OTHER = { appid: "wxfaultsother001", secret: "other-secret" };
const creds = { appid: APP.appid, secret: APP.secret };
const otherCreds = { appid: OTHER.appid, secret: OTHER.secret };

/**
 * @param {string} url
 * @param {Record<string, unknown>} fault
 */
async function addFault(url, fault) {
  const { status, body } = await control(url, "POST", "faults", fault);
  expect(status).toBe(200);
  expect(body.id).toBeTypeOf("string");
  return body.id;
}

/**
 * Resolves once the simulator has received `count` calls to /cgi-bin/token for the app, without sleeping:
 * each poll is a real round trip.
 * @param {string} url
 * @param {string} appid
 * @param {number} count
 */
async function untilTokenCalls(url, appid, count) {
  while ((await statsOf(url, appid)).token < count);
}

describe("injected faults", () => {
  const h = useSimulator([APP, OTHER]);

  it("answers the injected errcode the given number of times without spending quota", async () => {
    await addFault(h.url, { kind: "errcode", errcode: -1, times: 2 });
    for (let i = 0; i < 2; i++) {
      const body = await classicToken(h.url, creds);
      expect(body.errcode).toBe(-1);
      expect(body.errmsg).toMatch(/^system error rid: /);
    }
    // daily_quota is 1: the faulted calls did not use it.
    expect((await classicToken(h.url, creds)).access_token).toBeTypeOf("string");
  });

  it("still validates credentials before a fault applies", async () => {
    await addFault(h.url, { kind: "errcode", errcode: 50004, times: 1 });
    expect((await classicToken(h.url, { appid: APP.appid, secret: "wrong" })).errcode).toBe(40125);
    expect((await classicToken(h.url, creds)).errcode).toBe(50004);
  });

  it("consumes faults in order of creation", async () => {
    await addFault(h.url, { kind: "errcode", errcode: 40164, times: 1 });
    await addFault(h.url, { kind: "errcode", errcode: 45011, times: 1 });
    expect((await stableToken(h.url, creds)).errcode).toBe(40164);
    expect((await stableToken(h.url, creds)).errcode).toBe(45011);
    expect((await stableToken(h.url, creds)).access_token).toBeTypeOf("string");
  });

  it("keeps hitting until cleared when times is omitted", async () => {
    await addFault(h.url, { kind: "errcode", errcode: -1 });
    for (let i = 0; i < 3; i++) expect((await stableToken(h.url, creds)).errcode).toBe(-1);
    expect((await control(h.url, "DELETE", "faults")).body).toEqual({ ok: true, cleared: 1 });
    expect((await stableToken(h.url, creds)).access_token).toBeTypeOf("string");
  });

  it("hits only the given app and endpoint", async () => {
    await addFault(h.url, { appid: APP.appid, endpoint: "stable_token", kind: "errcode", errcode: -1 });
    expect((await classicToken(h.url, creds)).access_token).toBeTypeOf("string");
    expect((await stableToken(h.url, otherCreds)).access_token).toBeTypeOf("string");
    expect((await stableToken(h.url, creds)).errcode).toBe(-1);
  });

  it("never applies to the business API", async () => {
    const token = (await classicToken(h.url, otherCreds)).access_token;
    await addFault(h.url, { kind: "reset" });
    expect(await probe(h.url, token)).toBe(0);
  });

  it("answers a bare HTTP error page for kind http, 503 by default", async () => {
    await addFault(h.url, { kind: "http", times: 1 });
    await addFault(h.url, { kind: "http", status: 429, times: 1 });
    const first = await fetch(`${h.url}/cgi-bin/token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`);
    expect(first.status).toBe(503);
    const page = await first.text();
    expect(page).toMatch(/^<html>/);
    expect(() => JSON.parse(page)).toThrow();
    const second = await fetch(`${h.url}/cgi-bin/token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`);
    expect(second.status).toBe(429);
    await second.text();
  });

  it("answers 302 to the same API without a token for kind redirect, and performs nothing", async () => {
    await addFault(h.url, { endpoint: "getcallbackip", kind: "redirect", times: 1 });
    const token = (await classicToken(h.url, otherCreds)).access_token;
    const url = `${h.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`;
    const redirected = await fetch(url, { redirect: "manual" });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get("location")).toBe("/cgi-bin/getcallbackip");
    await redirected.text();
    // Followed, the redirect ends at WeChat's "access_token missing".
    await addFault(h.url, { endpoint: "getcallbackip", kind: "redirect", times: 1 });
    expect(((await (await fetch(url)).json()))).toMatchObject({ errcode: 41001 });
    expect(await probe(h.url, token)).toBe(0);
  });

  it("answers HTTP 200 with a body that is not JSON for kind malformed", async () => {
    await addFault(h.url, { kind: "malformed", times: 1 });
    const response = await fetch(`${h.url}/cgi-bin/stable_token`, {
      method: "POST",
      body: JSON.stringify({ grant_type: "client_credential", ...creds }),
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(() => JSON.parse(text)).toThrow();
  });

  it("drops the connection without an answer for kind reset", async () => {
    await addFault(h.url, { kind: "reset", times: 1 });
    await expect(classicToken(h.url, creds)).rejects.toThrow();
    expect((await classicToken(h.url, creds)).access_token).toBeTypeOf("string");
  });

  it("holds a call for kind hang until the faults are cleared, then answers -1", async () => {
    await addFault(h.url, { kind: "hang", times: 1 });
    let settled = false;
    const hung = classicToken(h.url, creds).finally(() => (settled = true));
    await untilTokenCalls(h.url, APP.appid, 1);
    // The fault has been consumed, so this call goes through while the first still waits.
    expect((await classicToken(h.url, creds)).access_token).toBeTypeOf("string");
    expect(settled).toBe(false);
    await control(h.url, "DELETE", "faults");
    const body = await hung;
    expect(body.errcode).toBe(-1);
    expect(body.errmsg).toMatch(RID);
  });

  it("lists active faults with the hits they have left", async () => {
    const id = await addFault(h.url, { appid: APP.appid, kind: "errcode", errcode: 40164, times: 2 });
    await addFault(h.url, { endpoint: "token", kind: "http" });
    await addFault(h.url, { endpoint: "getcallbackip", kind: "lost", then: "reset", times: 1 });
    await addFault(h.url, { endpoint: "stable_token", kind: "slow", delay_ms: 20 });
    await classicToken(h.url, creds);
    const { body } = await control(h.url, "GET", "faults");
    expect(body.faults).toEqual([
      { id, appid: APP.appid, endpoint: "*", kind: "errcode", errcode: 40164, times_left: 1 },
      { id: expect.any(String), appid: "*", endpoint: "token", kind: "http", status: 503, times_left: null },
      { id: expect.any(String), appid: "*", endpoint: "getcallbackip", kind: "lost", then: "reset", times_left: 1 },
      { id: expect.any(String), appid: "*", endpoint: "stable_token", kind: "slow", delay_ms: 20, times_left: null },
    ]);
  });

  it.each([
    ["kind is missing", {}],
    ["kind is unknown", { kind: "explode" }],
    ["errcode is missing for kind errcode", { kind: "errcode" }],
    ["endpoint is unknown", { kind: "reset", endpoint: "nowhere" }],
    ["then is given for a kind other than lost", { kind: "hang", then: "reset" }],
    ["then is unknown", { kind: "lost", then: "explode" }],
    ["delay_ms is missing for kind slow", { kind: "slow" }],
    ["delay_ms is given for a kind other than slow", { kind: "hang", delay_ms: 10 }],
    ["delay_ms is over a minute", { kind: "slow", delay_ms: 60_001 }],
    ["delay_ms is negative", { kind: "slow", delay_ms: -1 }],
    ["appid is not registered", { kind: "reset", appid: "wxnobody" }],
    ["times is zero", { kind: "reset", times: 0 }],
    ["status is not an HTTP status", { kind: "http", status: 99 }],
    ["a field is misspelt", { kind: "reset", time: 1 }],
  ])("answers 400 when %s", async (_, fault) => {
    const { status, body } = await control(h.url, "POST", "faults", fault);
    expect(status).toBe(400);
    expect(body.error).toBeTypeOf("string");
  });
});

describe("closing the simulator", () => {
  it("destroys hung calls", async () => {
    const simulator = await startSimulator({ apps: [APP], now: () => FROZEN_NOW_MS });
    await control(simulator.url, "POST", "faults", { kind: "hang" });
    const hung = classicToken(simulator.url, creds);
    await untilTokenCalls(simulator.url, APP.appid, 1);
    await simulator.close();
    await expect(hung).rejects.toThrow();
  });
});
