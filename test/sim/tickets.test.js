// @ts-check
import { describe, expect, it } from "vitest";
import { cardSignature, jsapiSignature } from "../../sim/jssdk-signature.js";
import { RID, advance, classicToken, control, secondsToChinaMidnight, stableToken, statsOf, useSimulator } from "./helpers.js";

const SAME = { appid: "wxtickets0000001", secret: "tickets-secret" };
const NEW = { appid: "wxticketsnew0001", secret: "tickets-new", ticket_refetch: "new", ticket_lifetime_s: 600 };
const QUOTA = { appid: "wxticketsquota01", secret: "tickets-quota", ticket_daily_quota: 2 };
const PAGE = "https://shop.example/pay?order=42";

/**
 * @param {string} url
 * @param {{ appid: string, secret: string }} app
 */
async function tokenOf(url, app) {
  return (await classicToken(url, { appid: app.appid, secret: app.secret })).access_token;
}

/**
 * @param {string} url
 * @param {string | null} token
 * @param {string | null} [type]
 */
async function getticket(url, token, type = "jsapi") {
  const query = new URLSearchParams();
  if (token !== null) query.set("access_token", token);
  if (type !== null) query.set("type", type);
  return JSON.parse(await (await fetch(`${url}/cgi-bin/ticket/getticket?${query}`)).text());
}

/**
 * @param {string} url
 * @param {Record<string, unknown>} body
 */
async function verify(url, body) {
  return control(url, "POST", "jssdk/verify", body);
}

/**
 * A wx.config signature for this ticket, and the verify request that checks it.
 * @param {string} appid
 * @param {string} ticket
 * @param {string} [page]
 */
function signed(appid, ticket, page = PAGE) {
  const nonceStr = "n0nce";
  const timestamp = 1736913600;
  return { appid, url: page, timestamp, nonceStr, signature: jsapiSignature({ ticket, nonceStr, timestamp: String(timestamp), url: page }) };
}

describe("GET /cgi-bin/ticket/getticket", () => {
  const h = useSimulator([SAME, NEW, QUOTA]);

  it("answers a jsapi ticket with errcode 0 and the ticket's lifetime", async () => {
    const body = await getticket(h.url, await tokenOf(h.url, SAME));
    expect(body).toEqual({ errcode: 0, errmsg: "ok", ticket: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/), expires_in: 7200 });
  });

  it("returns the same ticket with its remaining lifetime on a re-fetch, and a new one after expiry (ticket_refetch same)", async () => {
    const token = (await stableToken(h.url, { appid: SAME.appid, secret: SAME.secret })).access_token;
    const first = await getticket(h.url, token);
    await advance(h.url, 100);
    const again = await getticket(h.url, token);
    expect(again.ticket).toBe(first.ticket);
    expect(again.expires_in).toBe(7100);
    await advance(h.url, 7100);
    const later = await getticket(h.url, (await stableToken(h.url, { appid: SAME.appid, secret: SAME.secret })).access_token);
    expect(later.ticket).not.toBe(first.ticket);
    expect(later.expires_in).toBe(7200);
  });

  it("mints on every call and keeps older tickets working to their own expiry (ticket_refetch new)", async () => {
    const token = await tokenOf(h.url, NEW);
    const first = await getticket(h.url, token);
    expect(first.expires_in).toBe(600);
    await advance(h.url, 300);
    const second = await getticket(h.url, token);
    expect(second.ticket).not.toBe(first.ticket);
    expect(second.expires_in).toBe(600);
    expect((await verify(h.url, signed(NEW.appid, first.ticket))).body).toEqual({ ok: true });
    await advance(h.url, 300);
    expect((await verify(h.url, signed(NEW.appid, first.ticket))).body).toEqual({ ok: false, reason: "invalid signature" });
    expect((await verify(h.url, signed(NEW.appid, second.ticket))).body).toEqual({ ok: true });
  });

  it("keeps jsapi and wx_card tickets apart", async () => {
    const token = await tokenOf(h.url, SAME);
    const jsapi = await getticket(h.url, token, "jsapi");
    const card = await getticket(h.url, token, "wx_card");
    expect(card.errcode).toBe(0);
    expect(card.ticket).not.toBe(jsapi.ticket);
    expect((await getticket(h.url, token, "wx_card")).ticket).toBe(card.ticket);
  });

  it("keeps a ticket working after the token that fetched it is superseded", async () => {
    const token = await tokenOf(h.url, SAME);
    const { ticket } = await getticket(h.url, token);
    await tokenOf(h.url, SAME);
    await advance(h.url, 300);
    expect((await getticket(h.url, token)).errcode).toBe(40001);
    expect((await verify(h.url, signed(SAME.appid, ticket))).body).toEqual({ ok: true });
  });

  it.each([
    ["41001 without an access_token", null, 41001],
    ["40014 for a token it never issued", "86_forged", 40014],
  ])("answers %s", async (_, token, errcode) => {
    const body = await getticket(h.url, token);
    expect(body.errcode).toBe(errcode);
    expect(body.errmsg).toMatch(RID);
  });

  it("answers 40001 for a superseded token and 42001 for an expired one", async () => {
    const old = await tokenOf(h.url, SAME);
    await tokenOf(h.url, SAME);
    await advance(h.url, 300);
    expect((await getticket(h.url, old)).errcode).toBe(40001);
    await advance(h.url, 6900);
    expect((await getticket(h.url, old)).errcode).toBe(42001);
  });

  it.each([["an unknown type", "wx_pay"], ["no type", null]])("answers 40097 for %s", async (_, type) => {
    expect((await getticket(h.url, await tokenOf(h.url, SAME), type)).errcode).toBe(40097);
  });

  it("answers 45009 past ticket_daily_quota until midnight in China, both types together", async () => {
    const token = (await stableToken(h.url, { appid: QUOTA.appid, secret: QUOTA.secret })).access_token;
    expect((await getticket(h.url, token, "jsapi")).errcode).toBe(0);
    expect((await getticket(h.url, token, "wx_card")).errcode).toBe(0);
    expect((await getticket(h.url, token, "jsapi")).errcode).toBe(45009);
    await advance(h.url, await secondsToChinaMidnight(h.url));
    const fresh = (await stableToken(h.url, { appid: QUOTA.appid, secret: QUOTA.secret })).access_token;
    expect((await getticket(h.url, fresh, "jsapi")).errcode).toBe(0);
  });

  it("counts calls per app and per type, and calls with an unknown token per path", async () => {
    const token = await tokenOf(h.url, SAME);
    await getticket(h.url, token, "jsapi");
    await getticket(h.url, token, "jsapi");
    await getticket(h.url, token, "wx_card");
    await getticket(h.url, token, "bogus");
    await getticket(h.url, "86_forged");
    const stats = await statsOf(h.url, SAME.appid);
    expect(stats).toMatchObject({ getticket: 4, getticket_jsapi: 2, getticket_wx_card: 1 });
    expect((await control(h.url, "GET", "stats")).body.unknown_token).toEqual({ "/cgi-bin/ticket/getticket": 1 });
  });

  it("is hit by faults on endpoint getticket; a lost call still mints and spends quota", async () => {
    const token = await tokenOf(h.url, QUOTA);
    await control(h.url, "POST", "faults", { endpoint: "getticket", kind: "errcode", errcode: -1, times: 1 });
    await control(h.url, "POST", "faults", { endpoint: "getticket", kind: "lost", then: "reset", times: 1 });
    expect((await getticket(h.url, token)).errcode).toBe(-1);
    await expect(getticket(h.url, token)).rejects.toThrow();
    // The lost call minted the ticket (refetch same: this is it) and spent one of the two calls a day.
    const { ticket } = await getticket(h.url, token);
    expect((await verify(h.url, signed(QUOTA.appid, ticket))).body).toEqual({ ok: true });
    expect((await getticket(h.url, token)).errcode).toBe(45009);
  });
});

describe("POST /__sim/jssdk/verify", () => {
  const h = useSimulator([SAME]);

  it("accepts a wx.config signature over a valid ticket, the page URL's #fragment dropped", async () => {
    const { ticket } = await getticket(h.url, await tokenOf(h.url, SAME));
    expect((await verify(h.url, signed(SAME.appid, ticket))).body).toEqual({ ok: true });
    const withFragment = { ...signed(SAME.appid, ticket), url: `${PAGE}#/step/2` };
    expect((await verify(h.url, withFragment)).body).toEqual({ ok: true });
    expect((await verify(h.url, { ...signed(SAME.appid, ticket), timestamp: "1736913600" })).body).toEqual({ ok: true });
  });

  it("refuses a signature made over the #fragment, another URL, nonce or upper-case hex", async () => {
    const { ticket } = await getticket(h.url, await tokenOf(h.url, SAME));
    const overFragment = signed(SAME.appid, ticket, `${PAGE}#/step/2`);
    expect((await verify(h.url, overFragment)).body).toEqual({ ok: false, reason: "invalid signature" });
    expect((await verify(h.url, { ...signed(SAME.appid, ticket), url: `${PAGE}&x=1` })).body.ok).toBe(false);
    expect((await verify(h.url, { ...signed(SAME.appid, ticket), nonceStr: "other" })).body.ok).toBe(false);
    const upper = signed(SAME.appid, ticket);
    expect((await verify(h.url, { ...upper, signature: upper.signature.toUpperCase() })).body.ok).toBe(false);
  });

  it("refuses a signature over a ticket that has expired", async () => {
    const { ticket } = await getticket(h.url, await tokenOf(h.url, SAME));
    await advance(h.url, 7200);
    expect((await verify(h.url, signed(SAME.appid, ticket))).body).toEqual({ ok: false, reason: `no jsapi ticket of ${SAME.appid} is valid now` });
  });

  it("checks a card's cardExt signature against the wx_card ticket", async () => {
    const token = await tokenOf(h.url, SAME);
    await getticket(h.url, token, "jsapi");
    const { ticket } = await getticket(h.url, token, "wx_card");
    const card = { card_id: "pjZ8Yt1XGILfi-FUsewpnnolGgZk", code: "1434008071", timestamp: "1404896688", nonceStr: "123" };
    const signature = cardSignature([ticket, card.timestamp, card.card_id, card.code, card.nonceStr]);
    expect((await verify(h.url, { appid: SAME.appid, type: "wx_card", ...card, signature })).body).toEqual({ ok: true });
    expect((await verify(h.url, { appid: SAME.appid, type: "wx_card", ...card, code: "1", signature })).body.ok).toBe(false);
  });

  it("answers ok false for an app it does not know", async () => {
    const { body } = await verify(h.url, { appid: "wxnobody", url: PAGE, timestamp: 1, nonceStr: "n", signature: "s" });
    expect(body).toEqual({ ok: false, reason: "appid wxnobody is not registered" });
  });

  it.each([
    ["signature is missing", { appid: SAME.appid, url: PAGE, timestamp: 1, nonceStr: "n" }],
    ["url is missing for jsapi", { appid: SAME.appid, timestamp: 1, nonceStr: "n", signature: "s" }],
    ["timestamp is not whole seconds", { appid: SAME.appid, url: PAGE, timestamp: "1.5", nonceStr: "n", signature: "s" }],
    ["type is unknown", { appid: SAME.appid, url: PAGE, timestamp: 1, nonceStr: "n", signature: "s", type: "pay" }],
    ["a field is misspelt", { appid: SAME.appid, url: PAGE, timestamp: 1, noncestr: "n", signature: "s" }],
  ])("answers 400 when %s", async (_, body) => {
    const { status, body: answer } = await verify(h.url, body);
    expect(status).toBe(400);
    expect(answer.error).toBeTypeOf("string");
  });
});
