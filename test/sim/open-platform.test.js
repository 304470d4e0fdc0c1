// @ts-check
/**
 * The simulated open platform (sim/open-platform.js, open-pushes.js, open-pusher.js): tickets pushed on a
 * schedule, encrypted and signed; api_component_token and its errcodes; generations of component tokens;
 * pre_auth_codes, authorisations and their single-use codes; authorizer tokens and refresh tokens; the list.
 */
import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { decrypt, signature } from "../../sim/callback-crypto.js";
import { deliverDuePushes } from "../../sim/open-pusher.js";
import { advance, control, RID, useSimulator } from "./helpers.js";

const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const C = { component_appid: "wxcomponent00001", secret: "component-secret-1", token: "msgtoken1", encoding_aes_key: KEY };
const OTHER = { component_appid: "wxcomponent00002", secret: "component-secret-2", token: "msgtoken2", encoding_aes_key: KEY };

/** @param {string} url @param {Record<string, unknown>} component */
async function register(url, component) {
  const { status, body } = await control(url, "POST", "open/components", component);
  if (status !== 200) throw new Error(JSON.stringify(body));
  return body.component;
}

/** @param {string} url @param {string} id @returns {Promise<{ info_type: string, query: string, body: string, create_time: number }[]>} */
async function take(url, id) {
  return (await control(url, "POST", `open/components/${id}/take`)).body.pushes;
}

/**
 * What a receiver reads from a push: its signatures checked, its message decrypted into fields.
 * @param {{ query: string, body: string }} push @param {{ token: string, encoding_aes_key: string, component_appid: string }} component
 */
function open(push, component) {
  const query = new URLSearchParams(push.query);
  const encrypted = /<Encrypt><!\[CDATA\[(.*?)\]\]><\/Encrypt>/.exec(push.body)?.[1] ?? "";
  const [timestamp, nonce] = [query.get("timestamp") ?? "", query.get("nonce") ?? ""];
  expect(query.get("msg_signature")).toBe(signature(component.token, timestamp, nonce, encrypted));
  expect(query.get("signature")).toBe(signature(component.token, timestamp, nonce));
  expect(query.get("encrypt_type")).toBe("aes");
  expect(push.body).toContain(`<AppId><![CDATA[${component.component_appid}]]></AppId>`);
  const { message, receiverId } = decrypt(component.encoding_aes_key, encrypted);
  expect(receiverId).toBe(component.component_appid);
  return Object.fromEntries([...message.matchAll(/<(\w+)>(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))<\/\1>/g)].map((m) => [m[1], m[2] ?? m[3]]));
}

/** @param {string} url @param {string} path @param {Record<string, unknown>} body @param {string} [query] */
async function post(url, path, body, query = "") {
  const res = await fetch(`${url}/cgi-bin/component/${path}${query}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return JSON.parse(await res.text());
}

/** The newest ticket pushed to `component`, read as its receiver would. */
async function ticketOf(/** @type {string} */ url, component = C) {
  const pushes = await take(url, component.component_appid);
  return open(/** @type {any} */ (pushes.at(-1)), component).ComponentVerifyTicket;
}

async function componentToken(/** @type {string} */ url, component = C, ticket = "") {
  return post(url, "api_component_token", { component_appid: component.component_appid, component_appsecret: component.secret, component_verify_ticket: ticket || (await ticketOf(url, component)) });
}

describe("component_verify_ticket pushes", () => {
  const sim = useSimulator();

  it("pushes a ticket at once, then every push_interval_s, encrypted for the component and signed", async () => {
    await register(sim.url, { ...C, push_interval_s: 600 });
    const first = await take(sim.url, C.component_appid);
    expect(first.map((p) => p.info_type)).toEqual(["component_verify_ticket"]);
    const fields = open(/** @type {any} */ (first[0]), C);
    expect(fields).toMatchObject({ AppId: C.component_appid, InfoType: "component_verify_ticket" });
    expect(fields.ComponentVerifyTicket).toMatch(/^ticket@@@/);
    expect(Number(fields.CreateTime)).toBe(Math.floor((await control(sim.url, "GET", "clock")).body.now_ms / 1000));
    expect(await take(sim.url, C.component_appid)).toEqual([]);
    await advance(sim.url, 599);
    expect(await take(sim.url, C.component_appid)).toEqual([]);
    await advance(sim.url, 1);
    const second = await take(sim.url, C.component_appid);
    expect(second).toHaveLength(1);
    expect(open(/** @type {any} */ (second[0]), C).ComponentVerifyTicket).not.toBe(fields.ComponentVerifyTicket);
  });

  it("stops, duplicates, and pushes on demand with any CreateTime, as the control API says", async () => {
    await register(sim.url, C);
    await take(sim.url, C.component_appid);
    expect((await control(sim.url, "POST", `open/components/${C.component_appid}/schedule`, { running: false })).body.schedule.running).toBe(false);
    await advance(sim.url, 3600);
    expect(await take(sim.url, C.component_appid)).toEqual([]);
    await control(sim.url, "POST", `open/components/${C.component_appid}/schedule`, { running: true, duplicate: true, next_in_s: 0 });
    const twice = await take(sim.url, C.component_appid);
    expect(twice).toHaveLength(2);
    expect(open(/** @type {any} */ (twice[0]), C).ComponentVerifyTicket).toBe(open(/** @type {any} */ (twice[1]), C).ComponentVerifyTicket);
    await control(sim.url, "POST", `open/components/${C.component_appid}/schedule`, { duplicate: false });
    await control(sim.url, "POST", `open/components/${C.component_appid}/push`, { create_time_s: 1_000 });
    const old = await take(sim.url, C.component_appid);
    expect(open(/** @type {any} */ (old[0]), C).CreateTime).toBe("1000");
    expect((await control(sim.url, "POST", `open/components/${C.component_appid}/schedule`, { running: "no" })).status).toBe(400);
  });

  it("api_start_push_ticket restarts a stopped service and pushes at once; a running one is 'in a normal state'", async () => {
    await register(sim.url, C);
    await take(sim.url, C.component_appid);
    const start = (/** @type {string} */ secret, appid = C.component_appid) => post(sim.url, "api_start_push_ticket", { component_appid: appid, component_secret: secret });
    expect(await start(C.secret)).toEqual({ errcode: 0, errmsg: "in a normal state" });
    await control(sim.url, "POST", `open/components/${C.component_appid}/schedule`, { running: false });
    expect(await start("wrong")).toMatchObject({ errcode: 40125 });
    expect(await start(C.secret, "wxnosuchcomponent")).toMatchObject({ errcode: 40013 });
    // component_appsecret is the token call's name; the push call wants component_secret (D-push).
    expect(await post(sim.url, "api_start_push_ticket", { component_appid: C.component_appid, component_appsecret: C.secret })).toMatchObject({ errcode: 40125 });
    expect(await start(C.secret)).toEqual({ errcode: 0, errmsg: "ok" });
    expect((await take(sim.url, C.component_appid)).map((p) => p.info_type)).toEqual(["component_verify_ticket"]);
    expect((await control(sim.url, "GET", `open/components/${C.component_appid}`)).body.stats.api_start_push_ticket).toBe(4);
  });

  it("delivers pushes to an event URL and counts only an exact `success` as delivered", async () => {
    /** @type {string[]} */
    const answers = ["success", "success\n", "fail"];
    /** @type {string[]} */
    const received = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push(`${req.method} ${req.url} ${body}`);
        res.end(answers.shift() ?? "success");
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", () => resolve(undefined)));
    try {
      const address = /** @type {import("node:net").AddressInfo} */ (receiver.address());
      await register(sim.url, { ...C, event_url: `http://127.0.0.1:${address.port}/open/${C.component_appid}/events` });
      await control(sim.url, "POST", `open/components/${C.component_appid}/push`, {});
      await control(sim.url, "POST", `open/components/${C.component_appid}/push`, {});
      await deliverDuePushes(sim.simulator.sim);
      expect(received).toHaveLength(3);
      expect(received[0]).toMatch(new RegExp(`^POST /open/${C.component_appid}/events\\?signature=[0-9a-f]{40}&timestamp=\\d+&nonce=\\d+&encrypt_type=aes&msg_signature=[0-9a-f]{40} <xml><AppId>`));
      expect((await control(sim.url, "GET", `open/components/${C.component_appid}`)).body.stats.pushes).toEqual({ made: 3, dropped: 0, delivered: 1, failed: 2 });
      // Delivered pushes are gone from the outbox.
      expect(await take(sim.url, C.component_appid)).toEqual([]);
    } finally {
      await new Promise((resolve) => receiver.close(() => resolve(undefined)));
    }
  });
});

describe("api_component_token", () => {
  const sim = useSimulator();

  it("mints a token from a pushed ticket: expires_in 7200, no errcode", async () => {
    await register(sim.url, C);
    const answer = await componentToken(sim.url);
    expect(Object.keys(answer).sort()).toEqual(["component_access_token", "expires_in"]);
    expect(answer.expires_in).toBe(7200);
  });

  it("answers 61006 for an unknown ticket or another component's, 61005 once a ticket's 12 h are over, and takes older live ones", async () => {
    await register(sim.url, C);
    await register(sim.url, OTHER);
    const first = await ticketOf(sim.url);
    expect(await componentToken(sim.url, C, "ticket@@@made-up")).toMatchObject({ errcode: 61006, errmsg: expect.stringMatching(RID) });
    expect(await componentToken(sim.url, C, await ticketOf(sim.url, OTHER))).toMatchObject({ errcode: 61006 });
    await advance(sim.url, 600);
    await ticketOf(sim.url);
    expect(await componentToken(sim.url, C, first)).toHaveProperty("component_access_token");
    await advance(sim.url, 12 * 3600 - 600);
    expect(await componentToken(sim.url, C, first)).toMatchObject({ errcode: 61005 });
  });

  it.each([
    ["a wrong secret", { component_appsecret: "wrong" }, 40125],
    ["no secret", { component_appsecret: undefined }, 41004],
    ["an unknown component", { component_appid: "wxnosuchcomponent" }, 61011],
    ["no component_appid", { component_appid: undefined }, 41002],
  ])("answers %s with its errcode", async (_what, change, errcode) => {
    await register(sim.url, C);
    const ticket = await ticketOf(sim.url);
    expect(await post(sim.url, "api_component_token", { component_appid: C.component_appid, component_appsecret: C.secret, component_verify_ticket: ticket, ...change })).toMatchObject({ errcode });
  });

  it("answers 61004 when the caller is not on the IP allowlist, 45009 past the daily quota, 47001 for a body that is not JSON, 43002 for GET", async () => {
    await register(sim.url, { ...C, ip_allowed: false, daily_quota: 1 });
    const ticket = await ticketOf(sim.url);
    expect(await componentToken(sim.url, C, ticket)).toMatchObject({ errcode: 61004 });
    await register(sim.url, { ...C, daily_quota: 1 });
    expect(await componentToken(sim.url, C, ticket)).toHaveProperty("component_access_token");
    expect(await componentToken(sim.url, C, ticket)).toMatchObject({ errcode: 45009 });
    const raw = await fetch(`${sim.url}/cgi-bin/component/api_component_token`, { method: "POST", body: "{" });
    expect(JSON.parse(await raw.text())).toMatchObject({ errcode: 47001 });
    expect(JSON.parse(await (await fetch(`${sim.url}/cgi-bin/component/api_component_token`)).text())).toMatchObject({ errcode: 43002 });
  });

  it("mints a new token per call: a replaced one works 300 s more, then answers 40001; an expired one 42001", async () => {
    await register(sim.url, C);
    const ticket = await ticketOf(sim.url);
    const preauth = async (/** @type {string} */ token, name = "component_access_token") =>
      (await post(sim.url, "api_create_preauthcode", { component_appid: C.component_appid }, `?${name}=${encodeURIComponent(token)}`)).errcode ?? 0;
    const a = (await componentToken(sim.url, C, ticket)).component_access_token;
    const b = (await componentToken(sim.url, C, ticket)).component_access_token;
    expect(a).not.toBe(b);
    expect([await preauth(a), await preauth(b), await preauth(b, "access_token")]).toEqual([0, 0, 0]);
    const c = (await componentToken(sim.url, C, ticket)).component_access_token;
    await advance(sim.url, 299);
    expect([await preauth(a), await preauth(b), await preauth(c)]).toEqual([0, 0, 0]);
    await advance(sim.url, 1);
    expect([await preauth(a), await preauth(b), await preauth(c)]).toEqual([40001, 40001, 0]);
    await advance(sim.url, 7200);
    expect(await preauth(c)).toBe(42001);
    expect(await preauth("")).toBe(41001);
    await register(sim.url, OTHER);
    const other = (await componentToken(sim.url, OTHER)).component_access_token;
    expect(await preauth(other)).toBe(40001);
  });

  it("is hit by injected faults like any endpoint (an errcode, once)", async () => {
    await register(sim.url, C);
    const ticket = await ticketOf(sim.url);
    expect((await control(sim.url, "POST", "faults", { appid: C.component_appid, endpoint: "api_component_token", kind: "errcode", errcode: -1, times: 1 })).status).toBe(200);
    expect(await componentToken(sim.url, C, ticket)).toMatchObject({ errcode: -1 });
    expect(await componentToken(sim.url, C, ticket)).toHaveProperty("component_access_token");
  });
});

describe("authorisation and authorizer tokens", () => {
  const sim = useSimulator();

  async function setUp(extra = {}) {
    await register(sim.url, { ...C, ...extra });
    const token = (await componentToken(sim.url)).component_access_token;
    const q = `?component_access_token=${encodeURIComponent(token)}`;
    return { q, call: (/** @type {string} */ path, /** @type {Record<string, unknown>} */ body) => post(sim.url, path, { component_appid: C.component_appid, ...body }, q) };
  }

  it("single-use pre_auth_codes, and an authorisation pushed as `authorized` whose code api_query_auth exchanges once", async () => {
    const { call } = await setUp();
    const pre = await call("api_create_preauthcode", {});
    expect(pre).toMatchObject({ pre_auth_code: expect.stringMatching(/^preauthcode@@@/), expires_in: 600 });
    const authorize = (/** @type {Record<string, unknown>} */ body) => control(sim.url, "POST", `open/components/${C.component_appid}/authorize`, body);
    const consent = await authorize({ authorizer_appid: "wxauthorizer0001", pre_auth_code: pre.pre_auth_code, func_info: [1, 15] });
    expect(consent.body).toMatchObject({ auth_code: expect.stringMatching(/^queryauthcode@@@/), expires_in: 600 });
    expect((await authorize({ authorizer_appid: "wxauthorizer0002", pre_auth_code: pre.pre_auth_code })).status).toBe(400);
    const pushed = (await take(sim.url, C.component_appid)).filter((p) => p.info_type === "authorized");
    expect(open(/** @type {any} */ (pushed[0]), C)).toMatchObject({ InfoType: "authorized", AuthorizerAppid: "wxauthorizer0001", AuthorizationCode: consent.body.auth_code, PreAuthCode: pre.pre_auth_code });
    const exchanged = await call("api_query_auth", { authorization_code: consent.body.auth_code });
    expect(exchanged.authorization_info).toMatchObject({
      authorizer_appid: "wxauthorizer0001", expires_in: 7200, authorizer_refresh_token: expect.stringMatching(/^refreshtoken@@@/),
      func_info: [{ funcscope_category: { id: 1 } }, { funcscope_category: { id: 15 } }],
    });
    expect(await call("api_query_auth", { authorization_code: consent.body.auth_code })).toMatchObject({ errcode: 61009 });
    // The authorizer token is an access_token like any other on the business API.
    const probe = await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(exchanged.authorization_info.authorizer_access_token)}`);
    expect(JSON.parse(await probe.text())).toHaveProperty("ip_list");
    // And it gets the account's JS-SDK tickets, as an official account's own token does.
    const ticket = await fetch(`${sim.url}/cgi-bin/ticket/getticket?type=jsapi&access_token=${encodeURIComponent(exchanged.authorization_info.authorizer_access_token)}`);
    expect(JSON.parse(await ticket.text())).toMatchObject({ errcode: 0, ticket: expect.any(String), expires_in: 7200 });
  });

  it("answers 61010 for a code past its lifetime, and authorises without a push when told", async () => {
    const { call } = await setUp();
    const consent = await control(sim.url, "POST", `open/components/${C.component_appid}/authorize`, { authorizer_appid: "wxauthorizer0003", push: false });
    expect((await take(sim.url, C.component_appid)).filter((p) => p.info_type !== "component_verify_ticket")).toEqual([]);
    await advance(sim.url, 600);
    expect(await call("api_query_auth", { authorization_code: consent.body.auth_code })).toMatchObject({ errcode: 61010 });
  });

  it("refreshes with the same refresh token (61023 for any other), 61003 after `unauthorized`, a new refresh token on re-authorisation", async () => {
    const { call } = await setUp();
    const authorize = () => control(sim.url, "POST", `open/components/${C.component_appid}/authorize`, { authorizer_appid: "wxauthorizer0004" });
    const exchanged = await call("api_query_auth", { authorization_code: (await authorize()).body.auth_code });
    const refresh = exchanged.authorization_info.authorizer_refresh_token;
    const refreshed = await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0004", authorizer_refresh_token: refresh });
    expect(refreshed).toMatchObject({ expires_in: 7200, authorizer_refresh_token: refresh });
    expect(refreshed.authorizer_access_token).not.toBe(exchanged.authorization_info.authorizer_access_token);
    expect(await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0004", authorizer_refresh_token: "refreshtoken@@@wrong" })).toMatchObject({ errcode: 61023 });
    expect(await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0004", authorizer_refresh_token: null })).toMatchObject({ errcode: 61023 });
    expect((await control(sim.url, "POST", `open/components/${C.component_appid}/unauthorize`, { authorizer_appid: "wxauthorizer0004" })).status).toBe(200);
    expect(open(/** @type {any} */ ((await take(sim.url, C.component_appid)).find((p) => p.info_type === "unauthorized")), C)).toMatchObject({ AuthorizerAppid: "wxauthorizer0004" });
    expect(await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0004", authorizer_refresh_token: refresh })).toMatchObject({ errcode: 61003 });
    const probe = await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(refreshed.authorizer_access_token)}`);
    expect(JSON.parse(await probe.text())).toMatchObject({ errcode: 40001 });
    const again = await call("api_query_auth", { authorization_code: (await authorize()).body.auth_code });
    expect(again.authorization_info.authorizer_refresh_token).not.toBe(refresh);
    expect(await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0004", authorizer_refresh_token: refresh })).toMatchObject({ errcode: 61023 });
  });

  it("revokes an account's tokens behind the broker's back (40001, the refresh token still works) and counts its business calls under its appid", async () => {
    const { call } = await setUp();
    const exchanged = await call("api_query_auth", { authorization_code: (await control(sim.url, "POST", `open/components/${C.component_appid}/authorize`, { authorizer_appid: "wxauthorizer0005", push: false })).body.auth_code });
    const { authorizer_access_token: token, authorizer_refresh_token: refresh } = exchanged.authorization_info;
    const ip = async (/** @type {string} */ t) => JSON.parse(await (await fetch(`${sim.url}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(t)}`)).text());
    expect(await ip(token)).toHaveProperty("ip_list");
    expect((await control(sim.url, "GET", "stats?appid=wxauthorizer0005")).body.apps.wxauthorizer0005).toMatchObject({ getcallbackip: 1 });
    expect((await control(sim.url, "POST", `open/components/${C.component_appid}/revoke`, { authorizer_appid: "wxauthorizer0005" })).status).toBe(200);
    expect(await ip(token)).toMatchObject({ errcode: 40001 });
    const refreshed = await call("api_authorizer_token", { authorizer_appid: "wxauthorizer0005", authorizer_refresh_token: refresh });
    expect(await ip(refreshed.authorizer_access_token)).toHaveProperty("ip_list");
    expect((await control(sim.url, "GET", "stats?appid=wxauthorizer0005")).body.apps.wxauthorizer0005).toMatchObject({ getcallbackip: 3 });
    for (const bad of [{ authorizer_appid: "wxneverauthorised" }, { authorizer_appid: 5 }, { authorizer_appid: "wxauthorizer0005", push: true }]) {
      const answer = await control(sim.url, "POST", `open/components/${C.component_appid}/revoke`, bad);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatch(/authorised|string|unknown field/);
    }
    expect((await control(sim.url, "GET", "stats?appid=wxneverauthorised")).status).toBe(400);
  });

  it("lists authorizers in pages of at most 500, with or without their refresh tokens", async () => {
    const { call } = await setUp();
    for (let i = 0; i < 3; i++) await control(sim.url, "POST", `open/components/${C.component_appid}/authorize`, { authorizer_appid: `wxlisted000${i}`, push: false });
    const page = await call("api_get_authorizer_list", { offset: 1, count: 1 });
    expect(page).toMatchObject({ total_count: 3, list: [{ authorizer_appid: "wxlisted0001", refresh_token: expect.stringMatching(/^refreshtoken@@@/), auth_time: expect.any(Number) }] });
    expect(await call("api_get_authorizer_list", { offset: 0, count: 501 })).toMatchObject({ errcode: 40097 });
    await register(sim.url, { ...C, list_refresh_tokens: false });
    expect((await call("api_get_authorizer_list", { offset: 0, count: 500 })).list.map((/** @type {any} */ a) => a.refresh_token)).toEqual(["", "", ""]);
  });
});

describe("the control API of the open platform", () => {
  const sim = useSimulator();

  it("refuses bad components with a message, and never shows a secret, token or key", async () => {
    for (const bad of [{ ...C, encoding_aes_key: "short" }, { ...C, secret: "" }, { ...C, colour: "red" }, { ...C, event_url: "ftp://x" }, { ...C, token_lifetime_s: 10 }]) {
      expect((await control(sim.url, "POST", "open/components", bad)).status).toBe(400);
    }
    await register(sim.url, C);
    const listed = JSON.stringify((await control(sim.url, "GET", "open/components")).body);
    for (const secret of [C.secret, C.token, C.encoding_aes_key]) expect(listed).not.toContain(secret);
    expect((await control(sim.url, "GET", "open/components/wxnosuch")).status).toBe(400);
    expect((await control(sim.url, "POST", "reset")).status).toBe(200);
    expect((await control(sim.url, "GET", "open/components")).body.components).toEqual([]);
  });

  it("authorises many accounts at once, each with its own single-use code and, with push, its own push", async () => {
    await register(sim.url, C);
    await take(sim.url, C.component_appid);
    const many = (/** @type {Record<string, unknown>} */ body) => control(sim.url, "POST", `open/components/${C.component_appid}/authorize-many`, body);
    const pushed = await many({ authorizer_appids: ["wxbulk0001", "wxbulk0002"] });
    expect(pushed.status).toBe(200);
    expect(pushed.body.codes.map((/** @type {any} */ c) => c.authorizer_appid)).toEqual(["wxbulk0001", "wxbulk0002"]);
    const pushes = await take(sim.url, C.component_appid);
    expect(pushes.map((p) => open(p, C))).toEqual(pushed.body.codes.map((/** @type {any} */ c) => expect.objectContaining({ InfoType: "authorized", AuthorizerAppid: c.authorizer_appid, AuthorizationCode: c.auth_code })));
    const quiet = await many({ authorizer_appids: ["wxbulk0003"], push: false });
    expect(await take(sim.url, C.component_appid)).toEqual([]);
    const token = (await componentToken(sim.url, C, await ticketFromBurst(sim.url))).component_access_token;
    const q = `?component_access_token=${encodeURIComponent(token)}`;
    for (const { auth_code, authorizer_appid } of [...pushed.body.codes, ...quiet.body.codes]) {
      const exchanged = await post(sim.url, "api_query_auth", { component_appid: C.component_appid, authorization_code: auth_code }, q);
      expect(exchanged.authorization_info.authorizer_appid).toBe(authorizer_appid);
      expect(await post(sim.url, "api_query_auth", { component_appid: C.component_appid, authorization_code: auth_code }, q)).toMatchObject({ errcode: 61009 });
    }
    for (const bad of [{ authorizer_appids: [] }, { authorizer_appids: ["a", "a"] }, { authorizer_appids: [""] }, { authorizer_appids: Array.from({ length: 101 }, (_, i) => `wx${i}`) }, { authorizer_appids: ["a"], push: "yes" }, { authorizer_appids: ["a"], colour: 1 }]) {
      const refused = await many(bad);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatch(/authorizer_appids|push|colour/);
    }
    expect((await many({ authorizer_appids: Array.from({ length: 101 }, (_, i) => `wx${i}`), push: false })).status).toBe(200);
  });

  it("hands over a burst of ticket pushes, one per CreateTime, each a fresh ticket that works, none queued", async () => {
    await register(sim.url, C);
    await take(sim.url, C.component_appid);
    const burst = await control(sim.url, "POST", `open/components/${C.component_appid}/tickets`, { create_times_s: [100, 300, 200] });
    expect(burst.status).toBe(200);
    const fields = burst.body.pushes.map((/** @type {any} */ p) => open(p, C));
    expect(fields.map((/** @type {any} */ f) => [f.InfoType, Number(f.CreateTime)])).toEqual([["component_verify_ticket", 100], ["component_verify_ticket", 300], ["component_verify_ticket", 200]]);
    expect(new Set(fields.map((/** @type {any} */ f) => f.ComponentVerifyTicket)).size).toBe(3);
    for (const f of fields) expect(await componentToken(sim.url, C, f.ComponentVerifyTicket)).toHaveProperty("component_access_token");
    expect(await take(sim.url, C.component_appid)).toEqual([]);
    for (const bad of [{}, { create_times_s: [] }, { create_times_s: [1.5] }, { create_times_s: [-1] }, { create_times_s: "1" }]) {
      expect((await control(sim.url, "POST", `open/components/${C.component_appid}/tickets`, bad)).status).toBe(400);
    }
  });
});

/** A ticket from a one-push burst (the outbox left alone), read as the receiver would. */
async function ticketFromBurst(/** @type {string} */ url) {
  const burst = await control(url, "POST", `open/components/${C.component_appid}/tickets`, { create_times_s: [1] });
  return open(burst.body.pushes[0], C).ComponentVerifyTicket;
}
