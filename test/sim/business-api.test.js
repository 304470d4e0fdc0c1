// @ts-check
import { describe, expect, it } from "vitest";
import { RID, advance, classicToken, control, probe, stableToken, useSimulator } from "./helpers.js";

const APP = { appid: "wxbusiness000001", secret: "business-secret" };
const creds = { appid: APP.appid, secret: APP.secret };

describe("GET /cgi-bin/getcallbackip", () => {
  const h = useSimulator([APP]);

  it("answers the callback IP list for a valid classic or stable token", async () => {
    for (const token of [(await classicToken(h.url, creds)).access_token, (await stableToken(h.url, creds)).access_token]) {
      const response = await fetch(`${h.url}/cgi-bin/getcallbackip?access_token=${token}`);
      const body = JSON.parse(await response.text());
      expect(body.errcode).toBeUndefined();
      expect(body.ip_list.length).toBeGreaterThan(0);
      for (const cidr of body.ip_list) expect(cidr).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    }
  });

  it("answers 41001 when access_token is missing", async () => {
    const body = JSON.parse(await (await fetch(`${h.url}/cgi-bin/getcallbackip`)).text());
    expect(body.errcode).toBe(41001);
    expect(body.errmsg).toMatch(RID);
  });

  it("answers 40014 for a string that was never issued", async () => {
    expect(await probe(h.url, "86_notatokenthesimulatorissued")).toBe(40014);
  });

  it("answers 40001 for a superseded token and 42001 once it is past its natural expiry", async () => {
    const old = (await classicToken(h.url, creds)).access_token;
    await classicToken(h.url, creds);
    await advance(h.url, 300);
    expect(await probe(h.url, old)).toBe(40001);
    await advance(h.url, 6900);
    expect(await probe(h.url, old)).toBe(42001);
  });

  it("counts calls against the app that owns the token", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await probe(h.url, token);
    await advance(h.url, 7200);
    await probe(h.url, token);
    await probe(h.url, "86_unknown");
    const { body } = await control(h.url, "GET", "stats");
    expect(body.apps[APP.appid].getcallbackip).toBe(2);
  });

  it("counts calls with a token it never issued per path, and calls without a token nowhere", async () => {
    expect((await control(h.url, "GET", "stats")).body.unknown_token).toEqual({});
    await probe(h.url, "86_forged-one");
    await probe(h.url, "86_forged-two");
    await fetch(`${h.url}/cgi-bin/getcallbackip`).then((r) => r.text());
    const { body } = await control(h.url, "GET", `stats?appid=${APP.appid}`);
    expect(body.unknown_token).toEqual({ "/cgi-bin/getcallbackip": 2 });
    expect(body.apps[APP.appid].getcallbackip).toBe(0);
  });
});

describe("unknown paths", () => {
  const h = useSimulator([APP]);

  it("answers HTTP 404 with errcode -1", async () => {
    const response = await fetch(`${h.url}/cgi-bin/nothing-here`);
    expect(response.status).toBe(404);
    expect(JSON.parse(await response.text()).errcode).toBe(-1);
  });
});
