// @ts-check
import { describe, expect, it } from "vitest";
import { RID, advance, classicToken, control, probe, secondsToChinaMidnight, stableToken, statsOf, useSimulator, ZERO_STATS } from "./helpers.js";

const APP = { appid: "wxstable00000001", secret: "stable-secret" };
const LIMITED = { appid: "wxstablelimit001", secret: "limit-secret", force_daily_limit: 2 };
const MINUTE = { appid: "wxstableminute01", secret: "minute-secret", stable_minute_quota: 2 };
const DAILY = { appid: "wxstabledaily001", secret: "daily-secret", stable_daily_quota: 2 };
const creds = { appid: APP.appid, secret: APP.secret };

describe("POST /cgi-bin/stable_token", () => {
  const h = useSimulator([APP, LIMITED, MINUTE, DAILY]);

  it("answers a token with its full lifetime and no errcode field", async () => {
    const body = await stableToken(h.url, creds);
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in"]);
    expect(body.expires_in).toBe(7200);
    expect(await probe(h.url, body.access_token)).toBe(0);
  });

  it("answers 43002 to a GET", async () => {
    const body = JSON.parse(await (await fetch(`${h.url}/cgi-bin/stable_token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`)).text());
    expect(body.errcode).toBe(43002);
    expect(body.errmsg).toMatch(/^require POST method rid: /);
  });

  it.each([
    ["is not JSON", "grant_type=client_credential"],
    ["is a JSON array", "[]"],
    ["is empty", ""],
    ["has force_refresh as a string", JSON.stringify({ grant_type: "client_credential", ...creds, force_refresh: "true" })],
    ["has a numeric appid", JSON.stringify({ grant_type: "client_credential", appid: 1, secret: "x" })],
  ])("answers 47001 when the body %s", async (_, body) => {
    const response = await fetch(`${h.url}/cgi-bin/stable_token`, { method: "POST", body });
    expect(JSON.parse(await response.text()).errcode).toBe(47001);
  });

  it.each([
    ["grant_type is missing", { grant_type: undefined }, 40002],
    ["grant_type is wrong", { grant_type: "password" }, 40002],
    ["appid is missing", { appid: undefined }, 41002],
    ["secret is missing", { secret: undefined }, 41004],
    ["appid is unknown", { appid: "wxunknown0000000" }, 40013],
    ["secret is wrong", { secret: "nope" }, 40125],
  ])("answers an error when %s", async (_, override, errcode) => {
    const body = await stableToken(h.url, { ...creds, ...override });
    expect(body.errcode).toBe(errcode);
    expect(body.errmsg).toMatch(RID);
  });

  it("returns the same token with the remaining whole seconds in normal mode", async () => {
    const first = await stableToken(h.url, creds);
    await advance(h.url, 1000.5);
    const again = await stableToken(h.url, creds);
    expect(again.access_token).toBe(first.access_token);
    expect(again.expires_in).toBe(6199);
  });

  it("returns the same token while exactly 300 s remain and never an expires_in below 300", async () => {
    const first = await stableToken(h.url, creds);
    await advance(h.url, 6900);
    const atEdge = await stableToken(h.url, creds);
    expect(atEdge).toEqual({ access_token: first.access_token, expires_in: 300 });
    await advance(h.url, 0.001);
    const rotated = await stableToken(h.url, creds);
    expect(rotated.access_token).not.toBe(first.access_token);
    expect(rotated.expires_in).toBe(7200);
  });

  it("keeps the old stable token valid until its own expiry after a normal-mode rotation", async () => {
    const first = (await stableToken(h.url, creds)).access_token;
    await advance(h.url, 7000);
    const second = (await stableToken(h.url, creds)).access_token;
    expect(second).not.toBe(first);
    await advance(h.url, 199);
    expect(await probe(h.url, first)).toBe(0);
    await advance(h.url, 1);
    expect(await probe(h.url, first)).toBe(42001);
    expect(await probe(h.url, second)).toBe(0);
  });

  it("mints a new token after the current one expired", async () => {
    const first = (await stableToken(h.url, creds)).access_token;
    await advance(h.url, 8000);
    const next = await stableToken(h.url, creds);
    expect(next.access_token).not.toBe(first);
    expect(next.expires_in).toBe(7200);
  });

  it("revokes the previous stable token immediately on force_refresh", async () => {
    const old = (await stableToken(h.url, creds)).access_token;
    await advance(h.url, 60);
    const forced = await stableToken(h.url, { ...creds, force_refresh: true });
    expect(forced.access_token).not.toBe(old);
    expect(forced.expires_in).toBe(7200);
    expect(await probe(h.url, old)).toBe(40001);
    expect(await probe(h.url, forced.access_token)).toBe(0);
  });

  it("treats a force_refresh within 30 s of the last effective one as normal mode", async () => {
    const forced = (await stableToken(h.url, { ...creds, force_refresh: true })).access_token;
    await advance(h.url, 29.999);
    const again = await stableToken(h.url, { ...creds, force_refresh: true });
    expect(again).toEqual({ access_token: forced, expires_in: 7170 });
    expect(await probe(h.url, forced)).toBe(0);
    await advance(h.url, 0.001);
    const refreshed = (await stableToken(h.url, { ...creds, force_refresh: true })).access_token;
    expect(refreshed).not.toBe(forced);
    expect(await probe(h.url, forced)).toBe(40001);
  });

  it("answers 45009 once the day's effective force refreshes are spent, and allows them again after midnight China time", async () => {
    const limited = { appid: LIMITED.appid, secret: LIMITED.secret, force_refresh: true };
    const current = (await stableToken(h.url, limited)).access_token;
    await advance(h.url, 30);
    expect((await stableToken(h.url, limited)).access_token).not.toBe(current);
    await advance(h.url, 30);
    expect((await stableToken(h.url, limited)).errcode).toBe(45009);
    // Normal mode still works: only forcing is refused.
    expect((await stableToken(h.url, { ...limited, force_refresh: false })).access_token).toBeTypeOf("string");
    await advance(h.url, await secondsToChinaMidnight(h.url));
    expect((await stableToken(h.url, limited)).access_token).toBeTypeOf("string");
  });

  it("does not count forces answered in normal mode towards the daily force limit", async () => {
    const limited = { appid: LIMITED.appid, secret: LIMITED.secret, force_refresh: true };
    await stableToken(h.url, limited);
    for (let i = 0; i < 5; i++) await stableToken(h.url, limited);
    await advance(h.url, 30);
    const second = await stableToken(h.url, limited);
    expect(second.errcode).toBeUndefined();
    expect(second.expires_in).toBe(7200);
  });

  it("answers 45011 once the minute quota is spent and serves again the next minute", async () => {
    const minute = { appid: MINUTE.appid, secret: MINUTE.secret };
    const { body } = await control(h.url, "GET", "clock");
    await advance(h.url, (60_000 - (body.now_ms % 60_000)) / 1000); // to the start of a minute
    await stableToken(h.url, minute);
    await stableToken(h.url, minute);
    const refused = await stableToken(h.url, minute);
    expect(refused.errcode).toBe(45011);
    await advance(h.url, 59.999);
    expect((await stableToken(h.url, minute)).errcode).toBe(45011);
    await advance(h.url, 0.001);
    expect((await stableToken(h.url, minute)).access_token).toBeTypeOf("string");
  });

  it("answers 45009 once the stable daily quota is spent", async () => {
    const daily = { appid: DAILY.appid, secret: DAILY.secret };
    await stableToken(h.url, daily);
    await stableToken(h.url, daily);
    expect((await stableToken(h.url, daily)).errcode).toBe(45009);
    await advance(h.url, await secondsToChinaMidnight(h.url));
    expect((await stableToken(h.url, daily)).access_token).toBeTypeOf("string");
  });

  it("never invalidates classic tokens, even on force_refresh", async () => {
    const classic = (await classicToken(h.url, creds)).access_token;
    await stableToken(h.url, creds);
    await stableToken(h.url, { ...creds, force_refresh: true });
    await advance(h.url, 30);
    await stableToken(h.url, { ...creds, force_refresh: true });
    await advance(h.url, 301);
    expect(await probe(h.url, classic)).toBe(0);
  });

  it("counts every call in stable_token and forced ones also in stable_token_force", async () => {
    await stableToken(h.url, creds);
    await stableToken(h.url, { ...creds, force_refresh: true });
    await stableToken(h.url, { ...creds, force_refresh: true });
    await stableToken(h.url, { ...creds, secret: "wrong", force_refresh: true });
    await stableToken(h.url, { ...creds, force_refresh: false });
    expect(await statsOf(h.url, APP.appid)).toEqual({ ...ZERO_STATS, token: 0, stable_token: 5, stable_token_force: 3, getcallbackip: 0 });
  });
});
