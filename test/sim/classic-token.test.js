// @ts-check
import { describe, expect, it } from "vitest";
import { RID, advance, classicToken, control, probe, secondsToChinaMidnight, stableToken, useSimulator } from "./helpers.js";

const APP = { appid: "wxclassic0000001", secret: "classic-secret" };
const SHORT = { appid: "wxclassicshort01", secret: "short-secret", lifetime_s: 200 };
const QUOTA = { appid: "wxclassicquota01", secret: "quota-secret", daily_quota: 3 };
const creds = { appid: APP.appid, secret: APP.secret };

describe("GET /cgi-bin/token", () => {
  const h = useSimulator([APP, SHORT, QUOTA]);

  it("answers a token and its lifetime as WeChat does, without an errcode field", async () => {
    const response = await fetch(`${h.url}/cgi-bin/token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; encoding=utf-8");
    const body = JSON.parse(await response.text());
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in"]);
    expect(body.expires_in).toBe(7200);
    expect(body.access_token).toMatch(/^\d+_[A-Za-z0-9_-]{140,}$/);
    expect(await probe(h.url, body.access_token)).toBe(0);
  });

  it("mints a different token on every call", async () => {
    const tokens = new Set();
    for (let i = 0; i < 5; i++) tokens.add((await classicToken(h.url, creds)).access_token);
    expect(tokens.size).toBe(5);
  });

  it("uses the app's configured lifetime for expires_in", async () => {
    expect((await classicToken(h.url, { appid: SHORT.appid, secret: SHORT.secret })).expires_in).toBe(200);
  });

  it.each([
    ["grant_type is missing", { grant_type: "" }, 40002],
    ["grant_type is wrong", { grant_type: "authorization_code" }, 40002],
    ["grant_type is wrong and appid missing", { grant_type: "x", appid: "" }, 40002],
    ["appid is missing", { appid: "" }, 41002],
    ["appid and secret are missing", { appid: "", secret: "" }, 41002],
    ["secret is missing", { secret: "" }, 41004],
    ["appid is unknown", { appid: "wxunknown0000000" }, 40013],
    ["appid is unknown and secret missing", { appid: "wxunknown0000000", secret: "" }, 41004],
    ["secret is wrong", { secret: "not-the-secret" }, 40125],
  ])("answers an error when %s", async (_, override, errcode) => {
    const params = Object.fromEntries(
      Object.entries({ grant_type: "client_credential", ...creds, ...override }).filter(([, v]) => v !== ""),
    );
    const body = JSON.parse(await (await fetch(`${h.url}/cgi-bin/token?${new URLSearchParams(params)}`)).text());
    expect(body.errcode).toBe(errcode);
    expect(body.errmsg).toMatch(RID);
    expect(body.access_token).toBeUndefined();
  });

  it("answers 43001 with HTTP 200 to a POST", async () => {
    const response = await fetch(`${h.url}/cgi-bin/token?grant_type=client_credential&appid=${APP.appid}&secret=${APP.secret}`, {
      method: "POST",
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(await response.text()).errcode).toBe(43001);
  });

  it("gives each error a fresh rid", async () => {
    const a = await classicToken(h.url, { appid: "wxnobody", secret: "x" });
    const b = await classicToken(h.url, { appid: "wxnobody", secret: "x" });
    expect(a.errmsg).not.toBe(b.errmsg);
  });

  it("keeps the previous classic token valid for 300 s after a new one is minted, then answers 40001", async () => {
    const old = (await classicToken(h.url, creds)).access_token;
    await advance(h.url, 1000);
    const fresh = (await classicToken(h.url, creds)).access_token;
    await advance(h.url, 299.999);
    expect(await probe(h.url, old)).toBe(0);
    await advance(h.url, 0.001);
    expect(await probe(h.url, old)).toBe(40001);
    expect(await probe(h.url, fresh)).toBe(0);
  });

  it("does not extend a previous token's life beyond its own expiry", async () => {
    const shortCreds = { appid: SHORT.appid, secret: SHORT.secret };
    const old = (await classicToken(h.url, shortCreds)).access_token;
    await advance(h.url, 100);
    await classicToken(h.url, shortCreds);
    await advance(h.url, 100);
    expect(await probe(h.url, old)).toBe(42001);
  });

  it("counts the grace from the newest mint, so two generations back die at the first grace end", async () => {
    const first = (await classicToken(h.url, creds)).access_token;
    await advance(h.url, 100);
    const second = (await classicToken(h.url, creds)).access_token;
    await advance(h.url, 100);
    await classicToken(h.url, creds);
    await advance(h.url, 200);
    expect(await probe(h.url, first)).toBe(40001);
    expect(await probe(h.url, second)).toBe(0);
    await advance(h.url, 100);
    expect(await probe(h.url, second)).toBe(40001);
  });

  it("answers 42001 for a token past its natural expiry", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await advance(h.url, 7199);
    expect(await probe(h.url, token)).toBe(0);
    await advance(h.url, 1);
    expect(await probe(h.url, token)).toBe(42001);
  });

  it("answers 45009 once the daily quota is spent", async () => {
    const quotaCreds = { appid: QUOTA.appid, secret: QUOTA.secret };
    for (let i = 0; i < 3; i++) expect((await classicToken(h.url, quotaCreds)).access_token).toBeTypeOf("string");
    const refused = await classicToken(h.url, quotaCreds);
    expect(refused.errcode).toBe(45009);
    expect(refused.errmsg).toMatch(RID);
  });

  it("does not spend quota on calls that fail validation", async () => {
    for (let i = 0; i < 5; i++) await classicToken(h.url, { appid: QUOTA.appid, secret: "wrong" });
    for (let i = 0; i < 3; i++) expect((await classicToken(h.url, { appid: QUOTA.appid, secret: QUOTA.secret })).access_token).toBeTypeOf("string");
  });

  it("resets the daily quota at midnight China time, not UTC", async () => {
    const quotaCreds = { appid: QUOTA.appid, secret: QUOTA.secret };
    for (let i = 0; i < 3; i++) await classicToken(h.url, quotaCreds);
    await advance(h.url, (await secondsToChinaMidnight(h.url)) - 1);
    expect((await classicToken(h.url, quotaCreds)).errcode).toBe(45009);
    await advance(h.url, 1);
    expect((await classicToken(h.url, quotaCreds)).access_token).toBeTypeOf("string");
  });

  it("never invalidates stable tokens when minting classic ones", async () => {
    const stable = (await stableToken(h.url, creds)).access_token;
    for (let i = 0; i < 3; i++) await classicToken(h.url, creds);
    await advance(h.url, 301);
    expect(await probe(h.url, stable)).toBe(0);
  });

  it("keeps each app's classic tokens independent of other apps' mints", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await classicToken(h.url, { appid: SHORT.appid, secret: SHORT.secret });
    await advance(h.url, 301);
    expect(await probe(h.url, token)).toBe(0);
  });

  it("counts the call in the stats even when it fails", async () => {
    await classicToken(h.url, creds);
    await classicToken(h.url, { appid: APP.appid, secret: "wrong" });
    const { body } = await control(h.url, "GET", `stats?appid=${APP.appid}`);
    expect(body.apps[APP.appid].token).toBe(2);
  });
});
