// @ts-check
import { describe, expect, it } from "vitest";
import { FROZEN_NOW_MS, advance, classicToken, control, probe, stableToken, statsOf, useSimulator, ZERO_STATS } from "./helpers.js";

const APP = { appid: "wxcontrol0000001", secret: "control-secret" };
const creds = { appid: APP.appid, secret: APP.secret };

describe("control API: apps", () => {
  const h = useSimulator([APP]);

  it("registers an app with WeChat's default limits and lists apps without secrets", async () => {
    const { status, body } = await control(h.url, "POST", "apps", { appid: "wxcontrolnew0001", secret: "s3cret" });
    expect(status).toBe(200);
    expect(body.app).toEqual({
      appid: "wxcontrolnew0001",
      lifetime_s: 7200,
      daily_quota: 2000,
      stable_daily_quota: 500000,
      stable_minute_quota: 10000,
      force_daily_limit: 20,
      ticket_lifetime_s: 7200,
      ticket_daily_quota: 10000,
      ticket_refetch: "same",
    });
    const list = await control(h.url, "GET", "apps");
    expect(list.body.apps.map((/** @type {{appid: string}} */ a) => a.appid)).toEqual([APP.appid, "wxcontrolnew0001"]);
    expect(JSON.stringify(list.body)).not.toContain("s3cret");
    expect(JSON.stringify(list.body)).not.toContain(APP.secret);
  });

  it("answers 40125 for the old secret after the AppSecret is reset, keeping issued tokens", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await control(h.url, "POST", "apps", { appid: APP.appid, secret: "new-secret" });
    expect((await classicToken(h.url, creds)).errcode).toBe(40125);
    expect(await probe(h.url, token)).toBe(0);
    expect((await classicToken(h.url, { appid: APP.appid, secret: "new-secret" })).access_token).toBeTypeOf("string");
  });

  it("updates only the given fields of an existing app", async () => {
    const { body } = await control(h.url, "POST", "apps", { appid: APP.appid, lifetime_s: 60 });
    expect(body.app.lifetime_s).toBe(60);
    expect(body.app.daily_quota).toBe(2000);
    expect((await classicToken(h.url, creds)).expires_in).toBe(60);
  });

  it.each([
    ["the body is not JSON", "nope"],
    ["appid is missing", JSON.stringify({ secret: "x" })],
    ["a new app has no secret", JSON.stringify({ appid: "wxcontrolnosecret" })],
    ["lifetime_s is zero", JSON.stringify({ ...APP, lifetime_s: 0 })],
    ["a quota is negative", JSON.stringify({ ...APP, daily_quota: -1 })],
    ["a quota is not an integer", JSON.stringify({ ...APP, daily_quota: 1.5 })],
    ["a field is misspelt", JSON.stringify({ ...APP, lifetime: 60 })],
    ["ticket_refetch is unknown", JSON.stringify({ ...APP, ticket_refetch: "sometimes" })],
    ["ticket_lifetime_s is zero", JSON.stringify({ ...APP, ticket_lifetime_s: 0 })],
  ])("answers 400 when %s", async (_, body) => {
    const response = await fetch(`${h.url}/__sim/apps`, { method: "POST", body });
    expect(response.status).toBe(400);
    expect(JSON.parse(await response.text()).error).toBeTypeOf("string");
  });
});

describe("control API: rotate and revoke", () => {
  const h = useSimulator([APP, { appid: "wxcontrolforce01", secret: "force-secret", force_daily_limit: 1 }]);

  it("rotates classic tokens out of band, leaving the broker's token 300 s of grace", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const { body } = await control(h.url, "POST", `apps/${APP.appid}/rotate`, { kind: "classic" });
    expect(body).toEqual({ ok: true });
    await advance(h.url, 299);
    expect(await probe(h.url, token)).toBe(0);
    await advance(h.url, 1);
    expect(await probe(h.url, token)).toBe(40001);
    expect((await statsOf(h.url, APP.appid)).token).toBe(1);
  });

  it("rotates stable tokens out of band like a force refresh, revoking the broker's token at once", async () => {
    const token = (await stableToken(h.url, creds)).access_token;
    await control(h.url, "POST", `apps/${APP.appid}/rotate`, { kind: "stable" });
    expect(await probe(h.url, token)).toBe(40001);
    const next = await stableToken(h.url, creds);
    expect(next.access_token).not.toBe(token);
    expect(await probe(h.url, next.access_token)).toBe(0);
    expect(await statsOf(h.url, APP.appid)).toEqual({ ...ZERO_STATS, token: 0, stable_token: 2, stable_token_force: 0, getcallbackip: 2 });
  });

  it("neither waits for nor spends the force refresh limits when rotating stable tokens", async () => {
    const force = { appid: "wxcontrolforce01", secret: "force-secret", force_refresh: true };
    await control(h.url, "POST", "apps/wxcontrolforce01/rotate", { kind: "stable" });
    await control(h.url, "POST", "apps/wxcontrolforce01/rotate", { kind: "stable" });
    const forced = await stableToken(h.url, force);
    expect(forced.expires_in).toBe(7200);
    await advance(h.url, 10);
    await control(h.url, "POST", "apps/wxcontrolforce01/rotate", { kind: "stable" });
    expect(await probe(h.url, forced.access_token)).toBe(40001);
  });

  it("revokes every token of one kind immediately and leaves the other kind alone", async () => {
    const a = (await classicToken(h.url, creds)).access_token;
    const b = (await classicToken(h.url, creds)).access_token;
    const stable = (await stableToken(h.url, creds)).access_token;
    expect((await control(h.url, "POST", `apps/${APP.appid}/revoke`, { kind: "classic" })).body).toEqual({ ok: true });
    expect(await probe(h.url, a)).toBe(40001);
    expect(await probe(h.url, b)).toBe(40001);
    expect(await probe(h.url, stable)).toBe(0);
    await control(h.url, "POST", `apps/${APP.appid}/revoke`, { kind: "stable" });
    expect(await probe(h.url, stable)).toBe(40001);
    // A normal-mode call after a revocation mints a fresh token.
    const fresh = await stableToken(h.url, creds);
    expect(fresh.access_token).not.toBe(stable);
    expect(fresh.expires_in).toBe(7200);
  });

  it("answers 400 for an unknown app or kind", async () => {
    expect((await control(h.url, "POST", "apps/wxnobody/rotate", { kind: "classic" })).status).toBe(400);
    expect((await control(h.url, "POST", `apps/${APP.appid}/revoke`, { kind: "both" })).status).toBe(400);
  });
});

describe("control API: stats, clock, reset", () => {
  const h = useSimulator([APP, { appid: "wxcontrolidle001", secret: "idle" }]);

  it("lists zero counts for registered apps that were never called", async () => {
    const { body } = await control(h.url, "GET", "stats");
    expect(body.apps.wxcontrolidle001).toEqual({ ...ZERO_STATS, token: 0, stable_token: 0, stable_token_force: 0, getcallbackip: 0 });
  });

  it("filters stats by appid and answers 400 for an unknown one", async () => {
    await classicToken(h.url, creds);
    const { body } = await control(h.url, "GET", `stats?appid=${APP.appid}`);
    expect(Object.keys(body.apps)).toEqual([APP.appid]);
    expect((await control(h.url, "GET", "stats?appid=wxnobody")).status).toBe(400);
  });

  it("reports and advances the simulated clock", async () => {
    expect((await control(h.url, "GET", "clock")).body).toEqual({ now_ms: FROZEN_NOW_MS });
    expect((await control(h.url, "POST", "clock", { advance_s: 1.5 })).body).toEqual({ now_ms: FROZEN_NOW_MS + 1500 });
    expect((await control(h.url, "POST", "clock", { advance_s: -1 })).status).toBe(400);
    expect((await control(h.url, "POST", "clock", { advance_s: "60" })).status).toBe(400);
  });

  it("forgets apps, tokens, faults, counters and the clock offset on reset", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    await control(h.url, "POST", "faults", { kind: "errcode", errcode: -1 });
    await advance(h.url, 100);
    expect((await control(h.url, "POST", "reset")).body).toEqual({ ok: true });
    expect((await control(h.url, "GET", "apps")).body).toEqual({ apps: [] });
    expect((await control(h.url, "GET", "faults")).body).toEqual({ faults: [] });
    expect((await control(h.url, "GET", "stats")).body).toEqual({ apps: {}, wecom: {}, unknown_token: {} });
    expect((await control(h.url, "GET", "clock")).body).toEqual({ now_ms: FROZEN_NOW_MS });
    expect(await probe(h.url, token)).toBe(40014);
    await control(h.url, "POST", "apps", APP);
    expect((await statsOf(h.url, APP.appid)).token).toBe(0);
  });

  it("forgets corps, tickets, media and messages on reset", async () => {
    const token = (await classicToken(h.url, creds)).access_token;
    const { ticket } = JSON.parse(await (await fetch(`${h.url}/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`)).text());
    const form = new FormData();
    form.set("media", new Blob([new Uint8Array([1, 2, 3])], { type: "image/png" }), "a.png");
    const upload = await fetch(`${h.url}/cgi-bin/media/upload?access_token=${token}&type=image`, { method: "POST", body: form });
    const { media_id } = JSON.parse(await upload.text());
    await fetch(`${h.url}/cgi-bin/message/custom/send?access_token=${token}`, {
      method: "POST",
      body: JSON.stringify({ touser: "o1", msgtype: "text", text: { content: "hi" } }),
    }).then((r) => r.text());
    await control(h.url, "POST", "wecom/apps", { corpid: "wwreset", secret: "s" });
    await control(h.url, "POST", "reset");
    expect((await control(h.url, "GET", "wecom/apps")).body).toEqual({ apps: [] });
    expect((await control(h.url, "GET", "messages")).body).toEqual({ messages: [] });
    await control(h.url, "POST", "apps", APP);
    const fresh = (await classicToken(h.url, creds)).access_token;
    const again = JSON.parse(await (await fetch(`${h.url}/cgi-bin/ticket/getticket?access_token=${fresh}&type=jsapi`)).text());
    expect(again.ticket).not.toBe(ticket);
    const media = JSON.parse(await (await fetch(`${h.url}/cgi-bin/media/get?access_token=${fresh}&media_id=${media_id}`)).text());
    expect(media.errcode).toBe(40007);
  });

  it("answers 404 for an unknown control path and 405 for a wrong method", async () => {
    expect((await control(h.url, "GET", "token-info?access_token=x")).status).toBe(404);
    expect((await control(h.url, "DELETE", "clock")).status).toBe(405);
  });
});
