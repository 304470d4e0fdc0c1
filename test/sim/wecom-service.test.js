// @ts-check
/**
 * WeCom's simulated service-provider side (sim/wecom-service.js, wecom-suite-pushes.js, wecom-suite-control.js):
 * suite_ticket pushed on a jittered 7–15 minute schedule, encrypted for the suite and signed, which a test can
 * stop, duplicate or bring forward; the URL check; get_suite_token and its errcodes; pre_auth_codes, installs
 * and their single-use auth codes; permanent codes, corp tokens and the provider token.
 */
import { createServer } from "node:http";
import * as wecom from "@wecom/crypto";
import { describe, expect, it, vi } from "vitest";
import { decrypt, signature } from "../../sim/callback-crypto.js";
import { deliverDuePushes, SUITE_ANSWER_BUDGET_MS } from "../../sim/open-pusher.js";
import { advance, control, useSimulator } from "./helpers.js";

const KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const PROVIDER = "wwprovider000001";
const S = { suite_id: "wwsuite000000001", secret: "suite-secret-1", token: "suitetoken1", encoding_aes_key: KEY, provider_corpid: PROVIDER, provider_secret: "provider-secret-1" };
const OTHER = { suite_id: "wwsuite000000002", secret: "suite-secret-2", token: "suitetoken2", encoding_aes_key: KEY };
const MORE_INFO = /, hint: \[[0-9a-f-]+\], more info at https:\/\/open\.work\.weixin\.qq\.com\/devtool\/query\?e=\d+$/;

/** @typedef {{ info_type: string, query: string, body: string, time_stamp: number }} SuitePush */

/** @param {string} url @param {Record<string, unknown>} suite */
async function register(url, suite) {
  const { status, body } = await control(url, "POST", "wecom/suites", suite);
  if (status !== 200) throw new Error(JSON.stringify(body));
  return body.suite;
}

/** @param {string} url @param {string} id @returns {Promise<SuitePush[]>} */
async function take(url, id) {
  return (await control(url, "POST", `wecom/suites/${id}/take`)).body.pushes;
}

/**
 * What a receiver reads from an instruction callback: its signature checked, its message decrypted into
 * fields by the simulator's crypto and by @wecom/crypto, for the receiver id expected.
 * @param {SuitePush | undefined} push @param {{ token: string, encoding_aes_key: string }} suite @param {string} receiverId
 */
function open(push, suite, receiverId) {
  if (!push) throw new Error("no push");
  const query = new URLSearchParams(push.query);
  expect([...query.keys()].sort()).toEqual(["msg_signature", "nonce", "timestamp"]);
  const encrypted = /<Encrypt><!\[CDATA\[(.*?)\]\]><\/Encrypt>/.exec(push.body)?.[1] ?? "";
  expect(query.get("msg_signature")).toBe(signature(suite.token, query.get("timestamp") ?? "", query.get("nonce") ?? "", encrypted));
  expect(push.body).toBe(`<xml><ToUserName><![CDATA[${receiverId}]]></ToUserName><Encrypt><![CDATA[${encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>`);
  const { message, receiverId: id } = decrypt(suite.encoding_aes_key, encrypted);
  expect(id).toBe(receiverId);
  expect(wecom.decrypt(suite.encoding_aes_key, encrypted)).toMatchObject({ message, id: receiverId });
  return Object.fromEntries([...message.matchAll(/<(\w+)>(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))<\/\1>/g)].map((m) => [m[1], m[2] ?? m[3]]));
}

/** @param {string} url @param {string} path @param {Record<string, unknown> | undefined} body @param {string} [query] */
async function service(url, path, body, query = "") {
  const res = await fetch(`${url}/qyapi/cgi-bin/service/${path}${query}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  expect(res.headers.get("content-type")).toBe("application/json; charset=UTF-8");
  return JSON.parse(await res.text());
}

/** @typedef {{ suite_id: string, secret: string, token: string, encoding_aes_key: string }} TestSuite */

/** A ticket pushed to `suite` now, read as its receiver would. @param {string} url @param {TestSuite} [suite] */
async function ticketOf(url, suite = S) {
  await control(url, "POST", `wecom/suites/${suite.suite_id}/push`, {});
  return open((await take(url, suite.suite_id)).at(-1), suite, suite.suite_id).SuiteTicket;
}

/** @param {string} url @param {TestSuite} [suite] @param {string} [ticket] */
async function suiteToken(url, suite = S, ticket = "") {
  return service(url, "get_suite_token", { suite_id: suite.suite_id, suite_secret: suite.secret, suite_ticket: ticket || (await ticketOf(url, suite)) });
}

describe("suite_ticket pushes", () => {
  const sim = useSimulator();

  it("pushes a ticket at once, then every 7 to 15 minutes with jitter, encrypted for the suite_id and signed", async () => {
    await register(sim.url, S);
    const first = await take(sim.url, S.suite_id);
    expect(first.map((p) => p.info_type)).toEqual(["suite_ticket"]);
    const fields = open(first[0], S, S.suite_id);
    const nowS = Math.floor((await control(sim.url, "GET", "clock")).body.now_ms / 1000);
    expect(fields).toEqual({ SuiteId: S.suite_id, InfoType: "suite_ticket", TimeStamp: String(nowS), SuiteTicket: expect.any(String) });
    const times = [nowS];
    const tickets = new Set([fields.SuiteTicket]);
    for (let minute = 1; minute <= 4 * 60; minute++) {
      await advance(sim.url, 60);
      for (const push of await take(sim.url, S.suite_id)) {
        const f = open(push, S, S.suite_id);
        times.push(Number(f.TimeStamp));
        tickets.add(f.SuiteTicket);
      }
    }
    const gaps = times.slice(1).map((t, i) => t - /** @type {number} */ (times[i]));
    // 4 h at 7–15 min apart: 16 to 34 pushes; sampled each minute, so a gap reads up to a minute late.
    expect(gaps.length).toBeGreaterThanOrEqual(16);
    expect(gaps.length).toBeLessThanOrEqual(35);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(7 * 60);
      expect(gap).toBeLessThan(16 * 60);
    }
    // Jittered, not a fixed period (the odds of 16+ equal random gaps are nil).
    expect(new Set(gaps).size).toBeGreaterThan(1);
    expect(tickets.size).toBe(times.length);
  });

  it("can be stopped, restarted, brought forward, duplicated, and pushed with an older TimeStamp", async () => {
    await register(sim.url, S);
    await take(sim.url, S.suite_id);
    expect((await control(sim.url, "POST", `wecom/suites/${S.suite_id}/schedule`, { running: false })).body.schedule.running).toBe(false);
    await advance(sim.url, 3600);
    expect(await take(sim.url, S.suite_id)).toEqual([]);
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/schedule`, { running: true, next_in_s: 0, duplicate: true });
    const twice = await take(sim.url, S.suite_id);
    // WeCom's retry of one callback: the same push, byte for byte.
    expect(twice).toHaveLength(2);
    expect(twice[0]).toEqual(twice[1]);
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/schedule`, { duplicate: false, next_in_s: 30 });
    await advance(sim.url, 30);
    expect(await take(sim.url, S.suite_id)).toHaveLength(1);
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/push`, { time_stamp_s: 1_600_000_000 });
    expect(open((await take(sim.url, S.suite_id))[0], S, S.suite_id).TimeStamp).toBe("1600000000");
    expect((await control(sim.url, "POST", `wecom/suites/${S.suite_id}/schedule`, { next_in_s: -1 })).status).toBe(400);
    expect((await control(sim.url, "POST", `wecom/suites/nosuch/take`)).status).toBe(400);
  });

  it("can be sped up: a suite registered with a shorter jitter window pushes that often", async () => {
    await register(sim.url, { ...S, push_min_s: 60, push_max_s: 90 });
    await take(sim.url, S.suite_id);
    let pushes = 0;
    for (let step = 0; step < 20; step++) {
      await advance(sim.url, 30);
      pushes += (await take(sim.url, S.suite_id)).length;
    }
    // 600 s at 60–90 s apart (sampled every 30 s, so up to 120 s): 5 to 10 pushes.
    expect(pushes).toBeGreaterThanOrEqual(5);
    expect(pushes).toBeLessThanOrEqual(10);
    expect((await control(sim.url, "POST", "wecom/suites", { ...S, push_min_s: 90, push_max_s: 60 })).status).toBe(400);
  });

  it("encrypts for the provider's corpid where a suite says WeCom does (the unconfirmed report)", async () => {
    await register(sim.url, { ...S, instruction_receiver: "provider_corpid" });
    expect(open((await take(sim.url, S.suite_id))[0], S, PROVIDER).SuiteId).toBe(S.suite_id);
    expect((await control(sim.url, "POST", "wecom/suites", { ...OTHER, instruction_receiver: "provider_corpid" })).status).toBe(400);
  });

  it("makes the URL check: echostr signed and encrypted for the provider's corpid, and the echo to answer", async () => {
    await register(sim.url, S);
    const { query, echo } = (await control(sim.url, "POST", `wecom/suites/${S.suite_id}/url-check`)).body;
    const params = new URLSearchParams(query);
    const echostr = params.get("echostr") ?? "";
    expect(params.get("msg_signature")).toBe(signature(S.token, params.get("timestamp") ?? "", params.get("nonce") ?? "", echostr));
    expect(decrypt(KEY, echostr)).toMatchObject({ message: echo, receiverId: PROVIDER });
    expect(echo).toMatch(/^[0-9]+$/);
  });

  it("delivers to a callback URL and counts only an exact `success` as delivered", async () => {
    const received = /** @type {string[]} */ ([]);
    const answers = ["success\n", "fail"];
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
      await register(sim.url, { ...S, callback_url: `http://127.0.0.1:${address.port}/wecom-suite/${S.suite_id}/events` });
      await control(sim.url, "POST", `wecom/suites/${S.suite_id}/push`, {});
      await control(sim.url, "POST", `wecom/suites/${S.suite_id}/push`, {});
      await deliverDuePushes(sim.simulator.sim);
      expect(received).toHaveLength(3);
      expect(received[0]).toMatch(new RegExp(`^POST /wecom-suite/${S.suite_id}/events\\?msg_signature=[0-9a-f]{40}&timestamp=\\d+&nonce=\\d+ <xml><ToUserName>`));
      expect((await control(sim.url, "GET", `wecom/suites/${S.suite_id}`)).body.stats.pushes).toEqual({ made: 3, dropped: 0, delivered: 1, failed: 2 });
    } finally {
      await new Promise((resolve) => receiver.close(() => resolve(undefined)));
    }
  });
  it("fails a push whose answer's body does not come within the budget, and goes on to the next", async () => {
    await register(sim.url, { ...S, callback_url: `http://127.0.0.1:9/wecom-suite/${S.suite_id}/events` });
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/push`, {});
    // Headers came, the body never does (a receiver busy past its budget): the round must still end.
    const stalled = /** @type {typeof fetch} */ (async () => /** @type {Response} */ (/** @type {unknown} */ ({ status: 200, text: () => new Promise(() => {}) })));
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      let over = false;
      const round = deliverDuePushes(sim.simulator.sim, stalled).then(() => (over = true));
      // One budget per push, in order (the suite's first ticket and the one pushed here).
      for (let budgets = 0; !over && budgets < 10; budgets++) await vi.advanceTimersByTimeAsync(SUITE_ANSWER_BUDGET_MS);
      await round;
    } finally {
      vi.useRealTimers();
    }
    expect((await control(sim.url, "GET", `wecom/suites/${S.suite_id}`)).body.stats.pushes).toMatchObject({ made: 2, failed: 2 });
  });
});

describe("get_suite_token", () => {
  const sim = useSimulator();

  it("answers the suite token without errcode, and the same token while it is valid", async () => {
    await register(sim.url, S);
    const ticket = await ticketOf(sim.url);
    const first = await suiteToken(sim.url, S, ticket);
    expect(first).toEqual({ suite_access_token: expect.any(String), expires_in: 7200 });
    await advance(sim.url, 600);
    const again = await suiteToken(sim.url, S, await ticketOf(sim.url));
    expect(again).toEqual({ suite_access_token: first.suite_access_token, expires_in: 6600 });
    await register(sim.url, { ...S, reused_expires_in: "full", omit_errcode: false });
    expect(await suiteToken(sim.url, S, ticket)).toEqual({ errcode: 0, errmsg: "ok", suite_access_token: first.suite_access_token, expires_in: 7200 });
    await advance(sim.url, 6600);
    const fresh = await suiteToken(sim.url, S, await ticketOf(sim.url));
    expect(fresh.suite_access_token).not.toBe(first.suite_access_token);
    // The expired one answers 42009 where a suite token is used; one never issued 40082; none 41022.
    expect((await service(sim.url, "get_pre_auth_code", undefined, `?suite_access_token=${first.suite_access_token}`)).errcode).toBe(42009);
    expect((await service(sim.url, "get_pre_auth_code", undefined, "?suite_access_token=garbage")).errcode).toBe(40082);
    expect((await service(sim.url, "get_pre_auth_code", undefined, "")).errcode).toBe(41022);
    expect(await service(sim.url, "get_pre_auth_code", undefined, `?suite_access_token=${fresh.suite_access_token}`)).toMatchObject({ pre_auth_code: expect.any(String), expires_in: 1200 });
  });

  it("accepts any ticket of the last 30 minutes, and refuses each wrong input with WeCom's errcode", async () => {
    await register(sim.url, S);
    await register(sim.url, OTHER);
    const oldest = await ticketOf(sim.url);
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/schedule`, { running: false });
    await advance(sim.url, 1799);
    expect((await suiteToken(sim.url, S, oldest)).suite_access_token).toEqual(expect.any(String));
    await advance(sim.url, 1);
    const base = { suite_id: S.suite_id, suite_secret: S.secret, suite_ticket: oldest };
    const otherTicket = await ticketOf(sim.url, OTHER);
    for (const [body, errcode] of /** @type {[Record<string, unknown>, number][]} */ ([
      [base, 40085],
      [{ ...base, suite_ticket: otherTicket }, 40085],
      [{ ...base, suite_ticket: "nonsense" }, 40085],
      [{ ...base, suite_ticket: "" }, 41023],
      [{ ...base, suite_secret: "wrong" }, 40080],
      [{ ...base, suite_secret: undefined }, 41024],
      [{ ...base, suite_id: "wwnosuchsuite" }, 40083],
    ])) {
      const answer = await service(sim.url, "get_suite_token", body);
      expect(answer.errcode, JSON.stringify(body)).toBe(errcode);
      expect(answer.errmsg).toMatch(MORE_INFO);
    }
    expect((await fetch(`${sim.url}/qyapi/cgi-bin/service/get_suite_token`, { method: "POST", body: "not json" }).then((r) => r.json())).errcode).toBe(40058);
    expect((await control(sim.url, "GET", `wecom/suites/${S.suite_id}`)).body.stats.wecom_get_suite_token).toBe(7);
  });

  it("takes injected faults by suite_id", async () => {
    await register(sim.url, S);
    const ticket = await ticketOf(sim.url);
    expect((await control(sim.url, "POST", "faults", { appid: S.suite_id, endpoint: "wecom_get_suite_token", kind: "errcode", errcode: -1, times: 1 })).status).toBe(200);
    expect((await suiteToken(sim.url, S, ticket)).errcode).toBe(-1);
    expect((await suiteToken(sim.url, S, ticket)).suite_access_token).toEqual(expect.any(String));
  });
});

describe("installs, permanent codes and corp tokens", () => {
  const sim = useSimulator();

  /** @returns {Promise<string>} */
  const tokenNow = async () => (await suiteToken(sim.url)).suite_access_token;

  it("installs with a live pre_auth_code, exchanges the auth code once (v1 with a corp token), and mints corp tokens", async () => {
    await register(sim.url, S);
    const token = await tokenNow();
    const { pre_auth_code } = await service(sim.url, "get_pre_auth_code", undefined, `?suite_access_token=${token}`);
    const install = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp01", corp_name: "Corp One", pre_auth_code, push: true });
    expect(install.body).toEqual({ auth_code: expect.stringMatching(/^.{64,}$/), expires_in: 600 });
    const created = (await take(sim.url, S.suite_id)).filter((p) => p.info_type === "create_auth");
    expect(open(created[0], S, S.suite_id)).toMatchObject({ SuiteId: S.suite_id, InfoType: "create_auth", AuthCode: install.body.auth_code });
    const permanent = await service(sim.url, "get_permanent_code", { auth_code: install.body.auth_code }, `?suite_access_token=${token}`);
    expect(permanent).toMatchObject({
      permanent_code: expect.any(String), auth_corp_info: { corpid: "wwcorp01", corp_name: "Corp One" },
      auth_info: { agent: [{ agentid: expect.any(Number) }] }, access_token: expect.any(String), expires_in: 7200,
    });
    expect(permanent).not.toHaveProperty("errcode");
    // Single use: the same code again is 40078.
    expect((await service(sim.url, "get_permanent_code", { auth_code: install.body.auth_code }, `?suite_access_token=${token}`)).errcode).toBe(40078);
    const corp = { auth_corpid: "wwcorp01", permanent_code: permanent.permanent_code };
    const first = await service(sim.url, "get_corp_token", corp, `?suite_access_token=${token}`);
    expect(first).toEqual({ access_token: expect.any(String), expires_in: 7200 });
    expect((await service(sim.url, "get_corp_token", corp, `?suite_access_token=${token}`)).access_token).not.toBe(first.access_token);
    for (const [body, errcode] of /** @type {[Record<string, unknown>, number][]} */ ([
      [{ ...corp, permanent_code: "wrong" }, 40084],
      [{ ...corp, permanent_code: "" }, 41025],
      [{ ...corp, auth_corpid: "wwnotinstalled" }, 40082],
    ])) expect((await service(sim.url, "get_corp_token", body, `?suite_access_token=${token}`)).errcode).toBe(errcode);
    // Uninstalled: cancel_auth goes out and the permanent code stops working; a reinstall issues another.
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/uninstall`, { corpid: "wwcorp01" });
    expect(open((await take(sim.url, S.suite_id)).at(-1), S, S.suite_id)).toMatchObject({ InfoType: "cancel_auth", AuthCorpId: "wwcorp01" });
    expect((await service(sim.url, "get_corp_token", corp, `?suite_access_token=${token}`)).errcode).toBe(40084);
    const again = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp01" });
    const v2 = await service(sim.url, "v2/get_permanent_code", { auth_code: again.body.auth_code }, `?suite_access_token=${token}`);
    expect(v2).toMatchObject({ permanent_code: expect.any(String), auth_corp_info: { corpid: "wwcorp01" } });
    expect(v2).not.toHaveProperty("access_token");
    expect(v2.permanent_code).not.toBe(permanent.permanent_code);
  });

  it("installs many companies at once, each with its own single-use auth code and create_auth push, within the outbox", async () => {
    await register(sim.url, S);
    const token = await tokenNow();
    await take(sim.url, S.suite_id);
    const corpids = ["wwmany01", "wwmany02", "wwmany03"];
    const many = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install-many`, { corpids });
    expect(many.status).toBe(200);
    const codes = /** @type {{ corpid: string, auth_code: string, expires_in: number }[]} */ (many.body.codes);
    expect(codes.map((c) => c.corpid)).toEqual(corpids);
    expect(new Set(codes.map((c) => c.auth_code)).size).toBe(3);
    const pushed = (await take(sim.url, S.suite_id)).filter((p) => p.info_type === "create_auth").map((p) => open(p, S, S.suite_id).AuthCode);
    expect(pushed).toEqual(codes.map((c) => c.auth_code));
    for (const { corpid, auth_code } of codes) {
      expect(await service(sim.url, "get_permanent_code", { auth_code }, `?suite_access_token=${token}`)).toMatchObject({ auth_corp_info: { corpid } });
      expect((await service(sim.url, "get_permanent_code", { auth_code }, `?suite_access_token=${token}`)).errcode).toBe(40078);
    }
    // Without push nothing is queued; with push no more than the outbox holds; duplicates and non-strings refused.
    const quiet = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install-many`, { corpids: ["wwmany04"], push: false });
    expect(quiet.body.codes).toHaveLength(1);
    expect((await take(sim.url, S.suite_id)).filter((p) => p.info_type === "create_auth")).toEqual([]);
    const tooMany = Array.from({ length: 101 }, (_, i) => `wwover${i}`);
    for (const body of [{ corpids: tooMany }, { corpids: ["wwdup", "wwdup"] }, { corpids: [1] }, { corpids: [] }, { corpids: ["wwx"], push: "yes" }, { corpids: ["wwx"], agentid: 1 }]) {
      const refused = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install-many`, body);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toEqual(expect.any(String));
    }
    expect((await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install-many`, { corpids: tooMany, push: false })).body.codes).toHaveLength(101);
  });

  it("refuses an auth code that expired, is another suite's, or too short, and a pre_auth_code that expired", async () => {
    await register(sim.url, S);
    await register(sim.url, OTHER);
    const token = await tokenNow();
    const otherToken = (await suiteToken(sim.url, OTHER)).suite_access_token;
    const forOther = await control(sim.url, "POST", `wecom/suites/${OTHER.suite_id}/install`, { corpid: "wwcorp02" });
    expect((await service(sim.url, "get_permanent_code", { auth_code: forOther.body.auth_code }, `?suite_access_token=${token}`)).errcode).toBe(40078);
    // Its own suite still exchanges it: refusing it elsewhere consumed nothing.
    expect(await service(sim.url, "get_permanent_code", { auth_code: forOther.body.auth_code }, `?suite_access_token=${otherToken}`)).toHaveProperty("permanent_code");
    const expiring = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp03" });
    expect((await service(sim.url, "get_permanent_code", { auth_code: "short" }, `?suite_access_token=${token}`)).errcode).toBe(40058);
    const { pre_auth_code } = await service(sim.url, "get_pre_auth_code", undefined, `?suite_access_token=${token}`);
    await advance(sim.url, 1200);
    expect((await service(sim.url, "get_permanent_code", { auth_code: expiring.body.auth_code }, `?suite_access_token=${token}`)).errcode).toBe(40078);
    expect((await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp04", pre_auth_code })).status).toBe(400);
  });

  it("answers get_auth_info, set_session_info, change_auth and 代开发 reset_permanent_code as WeCom does", async () => {
    await register(sim.url, S);
    const token = await tokenNow();
    const q = `?suite_access_token=${token}`;
    const { pre_auth_code } = await service(sim.url, "get_pre_auth_code", undefined, q);
    expect(await service(sim.url, "set_session_info", { pre_auth_code, session_info: { auth_type: 1 } }, q)).toMatchObject({ errcode: 0 });
    expect((await service(sim.url, "set_session_info", { pre_auth_code: "nope", session_info: { auth_type: 1 } }, q)).errcode).toBe(40077);
    expect((await service(sim.url, "set_session_info", { pre_auth_code, session_info: { auth_type: 2 } }, q)).errcode).toBe(40058);
    const install = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp05", corp_name: "Five", pre_auth_code });
    const permanent = await service(sim.url, "get_permanent_code", { auth_code: install.body.auth_code }, q);
    const corp = { auth_corpid: "wwcorp05", permanent_code: permanent.permanent_code };
    expect(await service(sim.url, "get_auth_info", corp, q)).toMatchObject({ auth_corp_info: { corpid: "wwcorp05", corp_name: "Five" }, auth_info: { agent: [{ agentid: permanent.auth_info.agent[0].agentid }] } });
    expect((await service(sim.url, "get_auth_info", { ...corp, permanent_code: "wrong" }, q)).errcode).toBe(40084);
    // change_auth: the corp changed what it grants; get_auth_info reads the change.
    await take(sim.url, S.suite_id);
    await control(sim.url, "POST", `wecom/suites/${S.suite_id}/change`, { corpid: "wwcorp05", corp_name: "Five Renamed" });
    expect(open((await take(sim.url, S.suite_id)).at(-1), S, S.suite_id)).toMatchObject({ InfoType: "change_auth", AuthCorpId: "wwcorp05" });
    expect((await service(sim.url, "get_auth_info", corp, q)).auth_corp_info.corp_name).toBe("Five Renamed");
    // The corp token of an install is a corp token: WeCom's corp endpoints take it, as a gettoken one.
    const { access_token } = await service(sim.url, "get_corp_token", corp, q);
    const jsapi = await (await fetch(`${sim.url}/qyapi/cgi-bin/get_jsapi_ticket?access_token=${access_token}`)).json();
    expect(jsapi).toMatchObject({ errcode: 0, ticket: expect.any(String) });
    const agent = await (await fetch(`${sim.url}/qyapi/cgi-bin/ticket/get?access_token=${access_token}&type=agent_config`)).json();
    expect(agent).toMatchObject({ errcode: 0, ticket: expect.any(String) });
    // 代开发: reset_permanent_code carries an AuthCode whose exchange issues the new permanent code; the old one stops.
    const reset = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/reset`, { corpid: "wwcorp05" });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    const pushed = open((await take(sim.url, S.suite_id)).at(-1), S, S.suite_id);
    expect(pushed).toMatchObject({ InfoType: "reset_permanent_code", AuthCode: reset.body.auth_code });
    expect((await service(sim.url, "get_corp_token", corp, q)).access_token).toEqual(expect.any(String));
    const renewed = await service(sim.url, "get_permanent_code", { auth_code: reset.body.auth_code }, q);
    expect(renewed.permanent_code).not.toBe(permanent.permanent_code);
    expect((await service(sim.url, "get_corp_token", corp, q)).errcode).toBe(40084);
    expect(await service(sim.url, "get_corp_token", { ...corp, permanent_code: renewed.permanent_code }, q)).toHaveProperty("access_token");
  });

  it("can return the same corp token on a re-fetch inside its validity, where a suite says so (unconfirmed)", async () => {
    await register(sim.url, { ...S, corp_token_refetch: "same" });
    const token = await tokenNow();
    const q = `?suite_access_token=${token}`;
    const install = await control(sim.url, "POST", `wecom/suites/${S.suite_id}/install`, { corpid: "wwcorp06" });
    const permanent = await service(sim.url, "get_permanent_code", { auth_code: install.body.auth_code }, q);
    const corp = { auth_corpid: "wwcorp06", permanent_code: permanent.permanent_code };
    const first = await service(sim.url, "get_corp_token", corp, q);
    expect(first.access_token).toBe(permanent.access_token);
    await advance(sim.url, 100);
    expect(await service(sim.url, "get_corp_token", corp, q)).toEqual({ access_token: first.access_token, expires_in: 7100 });
  });

  it("answers get_provider_token with the same token while it is valid, and refuses a wrong secret or corpid", async () => {
    await register(sim.url, S);
    const body = { corpid: PROVIDER, provider_secret: S.provider_secret };
    const first = await service(sim.url, "get_provider_token", body);
    expect(first).toEqual({ provider_access_token: expect.any(String), expires_in: 7200 });
    await advance(sim.url, 100);
    expect(await service(sim.url, "get_provider_token", body)).toEqual({ provider_access_token: first.provider_access_token, expires_in: 7100 });
    expect((await service(sim.url, "get_provider_token", { ...body, provider_secret: "wrong" })).errcode).toBe(40001);
    expect((await service(sim.url, "get_provider_token", { ...body, provider_secret: "" })).errcode).toBe(41024);
    expect((await service(sim.url, "get_provider_token", { ...body, corpid: "wwnobody" })).errcode).toBe(40013);
    expect((await service(sim.url, "get_provider_token", { ...body, corpid: "" })).errcode).toBe(41002);
    expect((await control(sim.url, "GET", `wecom/suites/${S.suite_id}`)).body.suite).toMatchObject({ provider_corpid: PROVIDER, provider_secret: true });
    expect(JSON.stringify((await control(sim.url, "GET", "wecom/suites")).body)).not.toContain(S.provider_secret);
    // The provider's calls are counted under its corpid (those naming it), and the suite's page shows them.
    expect((await control(sim.url, "GET", `wecom/suites/${S.suite_id}`)).body.provider_stats.wecom_get_provider_token).toBe(4);
  });

  it("says 7200 again for a reused provider token when the suite carrying its secret says reused_expires_in full", async () => {
    await register(sim.url, { ...S, reused_expires_in: "full" });
    const body = { corpid: PROVIDER, provider_secret: S.provider_secret };
    const first = await service(sim.url, "get_provider_token", body);
    await advance(sim.url, 100);
    expect(await service(sim.url, "get_provider_token", body)).toEqual({ provider_access_token: first.provider_access_token, expires_in: 7200 });
  });
});
