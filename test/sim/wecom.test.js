// @ts-check
import { describe, expect, it } from "vitest";
import { jsapiSignature } from "../../sim/jssdk-signature.js";
import { advance, classicToken, control, probe, useSimulator } from "./helpers.js";

const CORP = "wwsimcorp0000001";
const SALES = { corpid: CORP, agentid: 1000002, secret: "sales-secret" };
const HR = { corpid: CORP, agentid: 1000003, secret: "hr-secret", same_token_on_refetch: false, lifetime_s: 600 };
const CONTACTS = { corpid: CORP, secret: "contacts-secret" };
const OA = { appid: "wxwecomoa0000001", secret: "oa-secret" };
const PAGE = "https://work.example/approve?id=7";
const WECOM_HINT = /, hint: \[[0-9a-f-]+\], more info at https:\/\/open\.work\.weixin\.qq\.com\/devtool\/query\?e=-?\d+$/;

/**
 * @param {string} url
 * @param {string} path   below /qyapi/cgi-bin/
 * @param {Record<string, string>} params
 */
async function qy(url, path, params) {
  const response = await fetch(`${url}/qyapi/cgi-bin/${path}?${new URLSearchParams(params)}`);
  expect(response.headers.get("content-type")).toBe("application/json; charset=UTF-8");
  return JSON.parse(await response.text());
}

/**
 * @param {string} url
 * @param {{ corpid: string, secret: string }} app
 */
async function gettoken(url, app) {
  return qy(url, "gettoken", { corpid: app.corpid, corpsecret: app.secret });
}

/**
 * @param {string} url
 * @param {{ corpid: string, secret: string }} app
 */
async function tokenOf(url, app) {
  return (await gettoken(url, app)).access_token;
}

/**
 * 0 when WeCom's business API accepts the token, else its errcode.
 * @param {string} url
 * @param {string} token
 */
async function qyProbe(url, token) {
  return (await qy(url, "getcallbackip", { access_token: token })).errcode;
}

/**
 * @param {string} url
 * @param {Record<string, unknown>} body
 */
async function verify(url, body) {
  return (await control(url, "POST", "jssdk/verify", body)).body;
}

/**
 * @param {string} appid
 * @param {string} ticket
 * @param {Record<string, unknown>} [extra]
 */
function signed(appid, ticket, extra = {}) {
  const nonceStr = "qy-nonce";
  const timestamp = 1736913600;
  return { appid, url: PAGE, timestamp, nonceStr, signature: jsapiSignature({ ticket, nonceStr, timestamp: String(timestamp), url: PAGE }), ...extra };
}

describe("WeCom gettoken under /qyapi", () => {
  const h = useSimulator([OA]);
  const register = async () => {
    for (const app of [SALES, HR, CONTACTS]) expect((await control(h.url, "POST", "wecom/apps", app)).status).toBe(200);
  };

  it("answers a token with errcode 0 and returns the same one with its remaining lifetime inside the validity", async () => {
    await register();
    const first = await gettoken(h.url, SALES);
    expect(first).toEqual({ errcode: 0, errmsg: "ok", access_token: expect.stringMatching(/^[A-Za-z0-9_-]{100,512}$/), expires_in: 7200 });
    await advance(h.url, 1000);
    expect(await gettoken(h.url, SALES)).toEqual({ ...first, expires_in: 6200 });
    await advance(h.url, 6200);
    const next = await gettoken(h.url, SALES);
    expect(next.access_token).not.toBe(first.access_token);
    expect(next.expires_in).toBe(7200);
    expect(await qyProbe(h.url, first.access_token)).toBe(42001);
  });

  it("mints on every call with same_token_on_refetch false, older tokens living to their own expiry", async () => {
    await register();
    const first = await gettoken(h.url, HR);
    expect(first.expires_in).toBe(600);
    const second = await gettoken(h.url, HR);
    expect(second.access_token).not.toBe(first.access_token);
    expect(await qyProbe(h.url, first.access_token)).toBe(0);
    await advance(h.url, 600);
    expect(await qyProbe(h.url, first.access_token)).toBe(42001);
  });

  it("issues one token per secret: each agent and the corp-level secret its own", async () => {
    await register();
    const tokens = [await tokenOf(h.url, SALES), await tokenOf(h.url, HR), await tokenOf(h.url, CONTACTS)];
    expect(new Set(tokens).size).toBe(3);
    for (const token of tokens) expect(await qyProbe(h.url, token)).toBe(0);
  });

  it.each([
    ["41002 without corpid", { corpsecret: "x" }, 41002],
    ["41004 without corpsecret", { corpid: CORP }, 41004],
    ["40013 for an unknown corpid", { corpid: "wwnobody", corpsecret: "x" }, 40013],
    ["40001 for a wrong secret (WeCom's meaning of 40001)", { corpid: CORP, corpsecret: "wrong" }, 40001],
  ])("answers %s", async (_, params, errcode) => {
    await register();
    const body = await qy(h.url, "gettoken", params);
    expect(body.errcode).toBe(errcode);
    expect(body.errmsg).toMatch(WECOM_HINT);
  });

  it("answers 40001 for the old secret after a reset, keeping issued tokens", async () => {
    await register();
    const token = await tokenOf(h.url, SALES);
    await control(h.url, "POST", "wecom/apps", { corpid: CORP, agentid: SALES.agentid, secret: "sales-secret-2" });
    expect((await gettoken(h.url, SALES)).errcode).toBe(40001);
    expect(await qyProbe(h.url, token)).toBe(0);
    expect(await tokenOf(h.url, { corpid: CORP, secret: "sales-secret-2" })).toBe(token);
  });

  it("serves WeCom only under /qyapi and keeps its tokens apart from the official account's", async () => {
    await register();
    const response = await fetch(`${h.url}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${SALES.secret}`);
    expect(response.status).toBe(404);
    await response.text();
    const wecomToken = await tokenOf(h.url, SALES);
    const oaToken = (await classicToken(h.url, { appid: OA.appid, secret: OA.secret })).access_token;
    expect(await probe(h.url, wecomToken)).toBe(40014);
    expect(await qyProbe(h.url, oaToken)).toBe(40014);
    const unknown = await fetch(`${h.url}/qyapi/cgi-bin/token?grant_type=client_credential&appid=${OA.appid}&secret=${OA.secret}`);
    expect(unknown.status).toBe(404);
    await unknown.text();
  });
});

describe("WeCom getcallbackip and early revocation", () => {
  const h = useSimulator();

  it("answers the IP list, 41001 without a token and 40014 for one it never issued", async () => {
    await control(h.url, "POST", "wecom/apps", SALES);
    const ok = await qy(h.url, "getcallbackip", { access_token: await tokenOf(h.url, SALES) });
    expect(ok.errcode).toBe(0);
    expect(ok.errmsg).toBe("ok");
    expect(ok.ip_list.length).toBeGreaterThan(0);
    expect((await qy(h.url, "getcallbackip", {})).errcode).toBe(41001);
    expect(await qyProbe(h.url, "forged")).toBe(40014);
  });

  it("revokes one agent's tokens with 40014, leaving the others, and issues a new token afterwards", async () => {
    for (const app of [SALES, HR]) await control(h.url, "POST", "wecom/apps", app);
    const sales = await tokenOf(h.url, SALES);
    const hr = await tokenOf(h.url, HR);
    expect((await control(h.url, "POST", "wecom/revoke", { corpid: CORP, agentid: SALES.agentid })).body).toEqual({ ok: true });
    expect(await qyProbe(h.url, sales)).toBe(40014);
    expect(await qyProbe(h.url, hr)).toBe(0);
    const fresh = await tokenOf(h.url, SALES);
    expect(fresh).not.toBe(sales);
    expect(await qyProbe(h.url, fresh)).toBe(0);
  });

  it("revokes every secret of the corp when agentid is omitted", async () => {
    for (const app of [SALES, CONTACTS]) await control(h.url, "POST", "wecom/apps", app);
    const tokens = [await tokenOf(h.url, SALES), await tokenOf(h.url, CONTACTS)];
    await control(h.url, "POST", "wecom/revoke", { corpid: CORP });
    for (const token of tokens) expect(await qyProbe(h.url, token)).toBe(40014);
  });

  it.each([
    ["the corp is unknown", { corpid: "wwnobody" }],
    ["the agent is unknown", { corpid: CORP, agentid: 42 }],
    ["a field is misspelt", { corpid: CORP, agent: 1 }],
  ])("answers 400 to a revoke when %s", async (_, body) => {
    await control(h.url, "POST", "wecom/apps", SALES);
    const { status, body: answer } = await control(h.url, "POST", "wecom/revoke", body);
    expect(status).toBe(400);
    expect(answer.error).toBeTypeOf("string");
  });

  it.each([
    ["corpid is missing", { secret: "x" }],
    ["a new secret is missing", { corpid: CORP, agentid: 5 }],
    ["agentid is not an integer", { corpid: CORP, agentid: "sales", secret: "x" }],
    ["lifetime_s is zero", { ...SALES, lifetime_s: 0 }],
    ["same_token_on_refetch is not a boolean", { ...SALES, same_token_on_refetch: "yes" }],
    ["a field is misspelt", { ...SALES, lifetime: 60 }],
  ])("answers 400 to a registration when %s", async (_, body) => {
    const { status, body: answer } = await control(h.url, "POST", "wecom/apps", body);
    expect(status).toBe(400);
    expect(answer.error).toBeTypeOf("string");
  });

  it("lists registrations without secrets", async () => {
    await control(h.url, "POST", "wecom/apps", SALES);
    await control(h.url, "POST", "wecom/apps", CONTACTS);
    const { body } = await control(h.url, "GET", "wecom/apps");
    expect(body.apps).toEqual([
      { corpid: CORP, agentid: "1000002", lifetime_s: 7200, same_token_on_refetch: true, ticket_lifetime_s: 7200, ticket_refetch: "same" },
      { corpid: CORP, agentid: undefined, lifetime_s: 7200, same_token_on_refetch: true, ticket_lifetime_s: 7200, ticket_refetch: "same" },
    ].map((a) => JSON.parse(JSON.stringify(a))));
    expect(JSON.stringify(body)).not.toContain("secret\":");
    expect(JSON.stringify(body)).not.toContain(SALES.secret);
  });
});

describe("WeCom JS-SDK tickets", () => {
  const h = useSimulator();

  it("answers the corp ticket, the same one on a re-fetch, and verifies wx.config with appId = corpid", async () => {
    for (const app of [SALES, HR]) await control(h.url, "POST", "wecom/apps", app);
    const first = await qy(h.url, "get_jsapi_ticket", { access_token: await tokenOf(h.url, SALES) });
    expect(first).toEqual({ errcode: 0, errmsg: "ok", ticket: expect.any(String), expires_in: 7200 });
    await advance(h.url, 60);
    const again = await qy(h.url, "get_jsapi_ticket", { access_token: await tokenOf(h.url, SALES) });
    expect(again).toEqual({ ...first, expires_in: 7140 });
    expect(await verify(h.url, signed(CORP, first.ticket))).toEqual({ ok: true });
    // The corp ticket does not sign wx.agentConfig.
    expect(await verify(h.url, signed(CORP, first.ticket, { type: "agent_config", agentid: SALES.agentid }))).toEqual({
      ok: false,
      reason: `no agent_config ticket of ${CORP} is valid now`,
    });
  });

  it("answers the agent ticket only for type agent_config and a token of an agent's own secret", async () => {
    for (const app of [SALES, HR, CONTACTS]) await control(h.url, "POST", "wecom/apps", app);
    const token = await tokenOf(h.url, SALES);
    expect((await qy(h.url, "ticket/get", { access_token: token })).errcode).toBe(40058);
    expect((await qy(h.url, "ticket/get", { access_token: token, type: "jsapi" })).errcode).toBe(40058);
    expect((await qy(h.url, "ticket/get", { access_token: await tokenOf(h.url, CONTACTS), type: "agent_config" })).errcode).toBe(48002);
    const sales = await qy(h.url, "ticket/get", { access_token: token, type: "agent_config" });
    expect(sales).toEqual({ errcode: 0, errmsg: "ok", ticket: expect.any(String), expires_in: 7200 });
    const hr = await qy(h.url, "ticket/get", { access_token: await tokenOf(h.url, HR), type: "agent_config" });
    expect(hr.ticket).not.toBe(sales.ticket);
    expect(await verify(h.url, signed(CORP, sales.ticket, { type: "agent_config", agentid: SALES.agentid }))).toEqual({ ok: true });
    expect(await verify(h.url, signed(CORP, sales.ticket, { type: "agent_config", agentid: String(HR.agentid) }))).toEqual({
      ok: false,
      reason: "invalid signature",
    });
    expect(await verify(h.url, signed(CORP, sales.ticket, { type: "agent_config", agentid: 7 }))).toEqual({
      ok: false,
      reason: `agent 7 is not registered for corp ${CORP}`,
    });
  });

  it("answers a bad token on the ticket endpoints as on any WeCom API", async () => {
    await control(h.url, "POST", "wecom/apps", SALES);
    const token = await tokenOf(h.url, SALES);
    expect((await qy(h.url, "get_jsapi_ticket", {})).errcode).toBe(41001);
    expect((await qy(h.url, "get_jsapi_ticket", { access_token: "forged" })).errcode).toBe(40014);
    await advance(h.url, 7200);
    expect((await qy(h.url, "ticket/get", { access_token: token, type: "agent_config" })).errcode).toBe(42001);
  });

  it("limits agent tickets to 100 an hour per agent and corp tickets to 400 an hour per corp (45009)", async () => {
    for (const app of [SALES, HR]) await control(h.url, "POST", "wecom/apps", app);
    // Start on a clock hour so the window cannot turn over mid-test.
    const { body: clock } = await control(h.url, "GET", "clock");
    await advance(h.url, (3_600_000 - (clock.now_ms % 3_600_000)) / 1000);
    const sales = await tokenOf(h.url, SALES);
    const hr = await tokenOf(h.url, HR);
    for (let i = 0; i < 100; i++) expect((await qy(h.url, "ticket/get", { access_token: sales, type: "agent_config" })).errcode).toBe(0);
    expect((await qy(h.url, "ticket/get", { access_token: sales, type: "agent_config" })).errcode).toBe(45009);
    expect((await qy(h.url, "ticket/get", { access_token: hr, type: "agent_config" })).errcode).toBe(0);
    for (let i = 0; i < 400; i++) {
      const token = i % 2 ? sales : hr;
      expect((await qy(h.url, "get_jsapi_ticket", { access_token: token })).errcode).toBe(0);
    }
    expect((await qy(h.url, "get_jsapi_ticket", { access_token: hr })).errcode).toBe(45009);
    await advance(h.url, 3600);
    const fresh = await tokenOf(h.url, SALES);
    expect((await qy(h.url, "get_jsapi_ticket", { access_token: fresh })).errcode).toBe(0);
    expect((await qy(h.url, "ticket/get", { access_token: fresh, type: "agent_config" })).errcode).toBe(0);
  });
});

describe("WeCom stats and faults", () => {
  const h = useSimulator([OA]);

  it("counts every WeCom call per corp and unknown tokens per path", async () => {
    await control(h.url, "POST", "wecom/apps", SALES);
    const token = await tokenOf(h.url, SALES);
    await gettoken(h.url, { corpid: CORP, secret: "wrong" });
    await qy(h.url, "get_jsapi_ticket", { access_token: token });
    await qy(h.url, "ticket/get", { access_token: token, type: "agent_config" });
    await qyProbe(h.url, token);
    await qyProbe(h.url, "forged");
    const { body } = await control(h.url, "GET", `stats?appid=${CORP}`);
    expect(body).toEqual({
      apps: {},
      wecom: { [CORP]: { gettoken: 2, get_jsapi_ticket: 1, ticket_get: 1, getcallbackip: 1 } },
      unknown_token: { "/qyapi/cgi-bin/getcallbackip": 1 },
    });
    expect(Object.keys((await control(h.url, "GET", "stats")).body.apps)).toEqual([OA.appid]);
  });

  it("applies faults aimed at a corp's WeCom endpoints and not the official account's", async () => {
    await control(h.url, "POST", "wecom/apps", SALES);
    const added = await control(h.url, "POST", "faults", { appid: CORP, endpoint: "wecom_gettoken", kind: "errcode", errcode: -1, times: 1 });
    expect(added.status).toBe(200);
    expect((await classicToken(h.url, { appid: OA.appid, secret: OA.secret })).access_token).toBeTypeOf("string");
    const failed = await gettoken(h.url, SALES);
    expect(failed.errcode).toBe(-1);
    expect(failed.errmsg).toMatch(WECOM_HINT);
    // A lost gettoken minted the token: with same_token_on_refetch the next call returns that very token.
    await control(h.url, "POST", "faults", { endpoint: "wecom_gettoken", kind: "lost", then: "reset", times: 1 });
    await expect(gettoken(h.url, SALES)).rejects.toThrow();
    const { body } = await control(h.url, "GET", `stats?appid=${CORP}`);
    expect(body.wecom[CORP].gettoken).toBe(2);
    const token = await tokenOf(h.url, SALES);
    await advance(h.url, 10);
    expect((await gettoken(h.url, SALES)).expires_in).toBe(7190);
    await control(h.url, "POST", "faults", { endpoint: "wecom_getcallbackip", kind: "http", status: 502, times: 1 });
    const page = await fetch(`${h.url}/qyapi/cgi-bin/getcallbackip?access_token=${token}`);
    expect(page.status).toBe(502);
    await page.text();
    expect(await qyProbe(h.url, token)).toBe(0);
  });

  it("receives group-robot messages under /qyapi too", async () => {
    const response = await fetch(`${h.url}/qyapi/cgi-bin/webhook/send?key=qy-key`, {
      method: "POST",
      body: JSON.stringify({ msgtype: "text", text: { content: "hello" } }),
    });
    expect(JSON.parse(await response.text())).toEqual({ errcode: 0, errmsg: "ok" });
    const { body } = await control(h.url, "GET", "webhook?key=qy-key");
    expect(body.messages).toEqual([expect.objectContaining({ key: "qy-key", msgtype: "text", content: "hello" })]);
  });
});
