/**
 * The suite_access_token on the one refresh engine, in the suite's own object (suite:<suite_id>): fetched with
 * the newest pushed suite_ticket, single flight, fetched and refreshed by the object's alarm with no traffic,
 * a promise that never runs past the deadline the first fetch set when WeCom hands the same token back
 * (whatever expires_in it then says), failures that keep a valid value, incidents that name what to check.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, suiteAuthority } from "../../src/authority/stub";
import { parseSuites } from "../../src/config/suites";
import { watchdog } from "../../src/ops/scheduled";
import type { Outcome } from "../../src/core/outcome";
import { KEYS, registryTestSuite, tokenTestSuite, type TestApp, type TestSuite } from "./fixtures";
import { alertsFor, call, interceptUpstream, sim, simUrl, travel, wechatAnswer } from "./helpers";
import { alarmOf, pushSuiteTicket, ring, serviceStats, statusOfObject, suiteInSim } from "./suite-helpers";

const S = Array.from({ length: 16 }, (_, n) => tokenTestSuite(n)) as TestSuite[];
const name = (suite: TestSuite) => `suite:${suite.suite_id}`;

function suiteToken(suite: TestSuite): Promise<Outcome> {
	return suiteAuthority(env, suite.suite_id).suiteAccessToken(suite.suite_id);
}

async function tokenOf(suite: TestSuite): Promise<{ value: string; expiresInS: number }> {
	const outcome = await suiteToken(suite);
	if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure));
	return { value: outcome.record.value, expiresInS: Math.floor((outcome.record.expiresAt - Date.now()) / 1_000) };
}

/** How WeCom's service API judges a suite token: 0 when accepted, else its errcode. */
async function check(token: string): Promise<number> {
	const res = await fetch(`${simUrl}/qyapi/cgi-bin/service/get_pre_auth_code?suite_access_token=${encodeURIComponent(token)}`);
	return ((await res.json()) as { errcode?: number }).errcode ?? 0;
}

const suiteCalls = async (suite: TestSuite) => (await serviceStats(suite)).suite.wecom_get_suite_token ?? 0;

// First in the file: the watchdog pokes the most overdue objects first, and later tests leave many behind.
describe("the watchdog", () => {
	it("pokes a suite and a provider of WECOM_SUITES whose alarms are overdue, which then do what their alarms would", async () => {
		const s = tokenTestSuite(30);
		const corpid = s.provider_corpid!;
		await pushSuiteTicket(s);
		await tokenOf(s);
		const provider = await authority(env, `provider:${corpid}`).providerAccessToken(corpid);
		expect(provider.ok).toBe(true);
		// Neither alarm fires (the platform lost them): the suite's was due when its ticket went stale, both at expiry.
		await travel(7200 + 600);
		const report = await watchdog({ ...env, WECHAT_APPS: "[]" });
		expect(report.overdue).toEqual(expect.arrayContaining([`suite:${s.suite_id}`, `provider:${corpid}`]));
		await suiteAuthority(env, s.suite_id).idle();
		// Its token was due too, and the newest ticket long dead: WeCom refuses it, and the incident says where to look.
		expect((await statusOfObject(name(s))).incident?.reason).toMatch(/suite_ticket.*指令回调URL/);
		await authority(env, `provider:${corpid}`).idle();
		expect((await statusOfObject(`provider:${corpid}`)).last_refresh?.trigger).toBe("scheduled");
	});
});

describe("suite_access_token", () => {
	it("is fetched with the newest pushed suite_ticket, once for many concurrent readers, and WeCom accepts it", async () => {
		const s = S[0]!;
		expect(await pushSuiteTicket(s)).toBe("success");
		const start = await suiteCalls(s);
		const outcomes = await Promise.all(Array.from({ length: 8 }, () => suiteToken(s)));
		for (const outcome of outcomes) expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
		const values = new Set(outcomes.map((o) => (o.ok ? o.record.value : "")));
		expect(values.size).toBe(1);
		expect(await suiteCalls(s)).toBe(start + 1);
		expect(await check([...values][0]!)).toBe(0);
		const status = await statusOfObject(name(s));
		expect(status.calls_today.get_suite_token).toBe(1);
	});

	it("is fetched by the object's alarm as soon as the first ticket arrives, with no client traffic", async () => {
		const s = S[1]!;
		const start = await suiteCalls(s);
		expect(await pushSuiteTicket(s)).toBe("success");
		expect(await alarmOf(name(s))).toBeLessThanOrEqual(Date.now());
		await ring(name(s));
		expect(await suiteCalls(s)).toBe(start + 1);
		const token = await tokenOf(s);
		expect(await check(token.value)).toBe(0);
		expect(await suiteCalls(s)).toBe(start + 1);
	});

	it("is planned for its expiry, not earlier: WeCom hands out the same token until then, so one call a lifetime", async () => {
		const s = S[2]!;
		await pushSuiteTicket(s);
		const start = await suiteCalls(s);
		const first = await tokenOf(s);
		const fetchedAt = Date.now();
		// The plan is the expiry; the alarm wakes before only for the ticket's silence (25 min), which the pushes end.
		expect(Date.parse((await statusOfObject(name(s))).next_refresh)).toBe(fetchedAt + 7200 * 1_000);
		// Pushes keep coming, as WeCom's do (every ~10 min, each valid 30 min).
		for (let moved = 0; moved < 6600; moved += 600) {
			await travel(600);
			await pushSuiteTicket(s);
			if ((await alarmOf(name(s)))! <= Date.now()) await ring(name(s));
		}
		expect(await suiteCalls(s)).toBe(start + 1);
		await travel(600);
		await pushSuiteTicket(s);
		await ring(name(s));
		expect(await suiteCalls(s)).toBe(start + 2);
		const second = await tokenOf(s);
		expect(second.value).not.toBe(first.value);
		expect(await check(second.value)).toBe(0);
	});

	it.each(["full", "remaining"] as const)("never promises a token WeCom handed back again (expires_in %s) past the deadline its first fetch set", async (reused) => {
		const s = S[reused === "full" ? 3 : 4]!;
		await suiteInSim(s, { reused_expires_in: reused });
		await pushSuiteTicket(s);
		const first = await tokenOf(s);
		const deadline = Date.now() + first.expiresInS * 1_000;
		await travel(3600);
		await pushSuiteTicket(s);
		const start = await suiteCalls(s);
		// An admin's refresh inside the validity: WeCom answers with the same token (and 7200, or what is left).
		const again = await suiteAuthority(env, s.suite_id).forceRefresh(name(s));
		expect(again.ok, JSON.stringify(again)).toBe(true);
		expect(await suiteCalls(s)).toBe(start + 1);
		const served = await tokenOf(s);
		expect(served.value).toBe(first.value);
		expect(Date.now() + served.expiresInS * 1_000).toBeLessThanOrEqual(deadline);
		expect(await alarmOf(name(s))).toBeLessThanOrEqual(deadline);
		await suiteInSim(s, { reused_expires_in: "remaining" });
	});

	it("at its deadline, a token WeCom still hands back (its clock a moment behind) is not served, nor asked for again by every reader", async () => {
		const s = S[5]!;
		await pushSuiteTicket(s);
		const first = await tokenOf(s);
		for (let moved = 0; moved < 7200; moved += 600) {
			await travel(600);
			await pushSuiteTicket(s);
		}
		// At the broker's deadline WeCom answers with the same token, and says 7200 again.
		let intercepted = 0;
		const restore = interceptUpstream((url) => {
			if (!url.pathname.endsWith("/cgi-bin/service/get_suite_token")) return undefined;
			intercepted++;
			return wechatAnswer({ suite_access_token: first.value, expires_in: 7200 });
		});
		try {
			await ring(name(s));
			expect(intercepted).toBe(1);
			const readers = [...await Promise.all(Array.from({ length: 4 }, () => suiteToken(s))), await suiteToken(s), await suiteToken(s)];
			for (const outcome of readers) {
				expect(outcome.ok).toBe(false);
				if (!outcome.ok) expect(outcome.failure).toMatchObject({ code: "wechat_unreachable", retryAfterS: 1 });
			}
			expect(intercepted).toBe(1);
		} finally {
			restore();
		}
		// A second later WeCom's copy has expired too: the new token.
		await ring(name(s));
		const second = await tokenOf(s);
		expect(second.value).not.toBe(first.value);
		expect(await check(second.value)).toBe(0);
	});
});

describe("suite_access_token failures", () => {
	const alerts = (s: TestSuite) => alertsFor({ appid: name(s) } as TestApp);

	it("without any ticket sends nothing, fails naming the instruction URL, opens an incident; the first push ends it at once", async () => {
		const s = S[6]!;
		const start = await suiteCalls(s);
		const outcome = await suiteToken(s);
		expect(outcome.ok).toBe(false);
		if (!outcome.ok) expect(outcome.failure.message).toMatch(/no suite_ticket.*\/wecom-suite\/<suite_id>\/events.*`success`/);
		expect(await suiteCalls(s)).toBe(start);
		await suiteAuthority(env, s.suite_id).idle();
		expect((await statusOfObject(name(s))).incident?.reason).toMatch(/no suite_ticket/);
		expect((await alerts(s)).map((a) => a.content).join("\n")).toMatch(/unhealthy.*no suite_ticket/);
		// The push ends the backoff and re-arms the alarm for now: the token comes with no client traffic.
		expect(await pushSuiteTicket(s)).toBe("success");
		expect(await alarmOf(name(s))).toBeLessThanOrEqual(Date.now());
		await ring(name(s));
		expect(await suiteCalls(s)).toBe(start + 1);
		expect((await statusOfObject(name(s))).incident).toBeNull();
		expect(await check((await tokenOf(s)).value)).toBe(0);
	});

	it.each([
		[40085, 7, /suite_ticket.*指令回调URL is \/wecom-suite\/<suite_id>\/events.*`success`/],
		[41023, 8, /no suite_ticket.*指令回调URL/],
		[40080, 9, /suite's Secret.*WECOM_SUITES, or PUT \/admin\/suites\/\{suite_id\}/],
		[40083, 10, /SuiteID.*WECOM_SUITES/],
		[60020, 11, /egress IP.*IP allowlist.*WECOM_API_BASE/],
		[45009, 12, /frequency limit/],
	])("errcode %i is an incident whose message says what to check", async (errcode, n, advice) => {
		const s = S[n]!;
		await pushSuiteTicket(s);
		await sim.fault({ appid: s.suite_id, endpoint: "wecom_get_suite_token", kind: "errcode", errcode, times: 100 });
		const outcome = await suiteToken(s);
		expect(outcome.ok).toBe(false);
		if (!outcome.ok) {
			expect(outcome.failure.wechatErrcode).toBe(errcode);
			expect(outcome.failure.message).toMatch(advice);
		}
		await suiteAuthority(env, s.suite_id).idle();
		expect((await statusOfObject(name(s))).incident?.reason).toMatch(advice);
		expect(JSON.stringify(await alerts(s))).not.toContain(s.secret);
	});

	it("a refusal inside the validity costs nothing: the token WeCom still accepts goes on being served, to its first deadline", async () => {
		const s = S[13]!;
		await pushSuiteTicket(s);
		const first = await tokenOf(s);
		const deadline = Date.now() + first.expiresInS * 1_000;
		await travel(3600);
		await sim.fault({ appid: s.suite_id, endpoint: "wecom_get_suite_token", kind: "errcode", errcode: 40085, times: 1 });
		const forced = await suiteAuthority(env, s.suite_id).forceRefresh(name(s));
		expect(forced.ok).toBe(false);
		const served = await tokenOf(s);
		expect(served.value).toBe(first.value);
		expect(Date.now() + served.expiresInS * 1_000).toBeLessThanOrEqual(deadline);
		expect(served.expiresInS).toBeGreaterThan(3500);
		expect(await check(served.value)).toBe(0);
	});

	it("no push for 25 min is an incident that opens from the alarm with no traffic, and the next push closes it", async () => {
		const s = S[14]!;
		await pushSuiteTicket(s);
		await tokenOf(s);
		expect(await ring(name(s))).toBe(25 * 60);
		const status = await statusOfObject(name(s));
		expect(status.incident?.reason).toMatch(/no suite_ticket pushed for 25 min.*\/wecom-suite\/<suite_id>\/events.*刷新ticket/);
		expect((await alerts(s)).map((a) => a.content).join("\n")).toMatch(/unhealthy.*no suite_ticket pushed/);
		await pushSuiteTicket(s);
		expect((await statusOfObject(name(s))).incident).toBeNull();
	});
});

describe("provider_access_token", () => {
	const provider = (s: TestSuite) => s.provider_corpid!;
	const providerToken = (corpid: string) => authority(env, `provider:${corpid}`).providerAccessToken(corpid);
	const providerCalls = async (s: TestSuite) => (await serviceStats(s)).provider.wecom_get_provider_token ?? 0;

	it("lives in the provider's own object: fetched once for every suite of the provider and many readers, the same token WeCom holds", async () => {
		const [a, b] = [S[0]!, S[1]!];
		expect(provider(a)).toBe(provider(b));
		const start = await providerCalls(a);
		const outcomes = await Promise.all(Array.from({ length: 6 }, () => providerToken(provider(a))));
		const values = new Set(outcomes.map((o) => (o.ok ? o.record.value : JSON.stringify(o))));
		expect(values.size).toBe(1);
		expect(await providerCalls(a)).toBe(start + 1);
		// WeCom hands the same token to anyone who asks inside its validity: the one the broker holds is live.
		const direct = await fetch(`${simUrl}/qyapi/cgi-bin/service/get_provider_token`, { method: "POST", body: JSON.stringify({ corpid: provider(a), provider_secret: a.provider_secret }) });
		expect(((await direct.json()) as { provider_access_token: string }).provider_access_token).toBe([...values][0]);
		expect(Date.parse((await statusOfObject(`provider:${provider(a)}`)).next_refresh) - Date.now()).toBeGreaterThan(7190 * 1_000);
	});

	it("a refused provider secret (40001) is an incident naming provider_secret; an unknown provider says how to add one", async () => {
		const s = S[15]!;
		await sim.fault({ appid: provider(s), endpoint: "wecom_get_provider_token", kind: "errcode", errcode: 40001, times: 100 });
		const outcome = await providerToken(provider(s));
		expect(outcome.ok).toBe(false);
		if (!outcome.ok) expect(outcome.failure.message).toMatch(/provider secret.*provider_secret \(WECOM_SUITES/);
		await authority(env, `provider:${provider(s)}`).idle();
		expect((await statusOfObject(`provider:${provider(s)}`)).incident?.reason).toMatch(/provider_secret/);
		const unknown = await providerToken("wwnosuchprovider");
		expect(unknown.ok).toBe(false);
		if (!unknown.ok) expect(unknown.failure).toMatchObject({ code: "not_found", message: expect.stringMatching(/provider_corpid wwnosuchprovider and provider_secret/) });
	});

	it("WECOM_SUITES refuses two suites that give one provider different secrets", () => {
		const [a, b] = [S[0]!, S[1]!];
		expect(() => parseSuites(JSON.stringify([a, { ...b, provider_secret: "another" }]))).toThrow(/provider_secret differs from wwsuitetok00's.*one ProviderSecret/);
		expect(parseSuites(JSON.stringify([a, b])).size).toBe(2);
	});
});

describe("a suite added through the admin API", () => {
	it("gets its token the same way, also from an object that restarted (the alarm names it before any call)", async () => {
		const s = registryTestSuite(5);
		const { suite_id: _id, ...body } = s;
		const put = await call(`/admin/suites/${s.suite_id}`, { method: "PUT", key: KEYS.admin, body });
		expect(put.status, JSON.stringify(put.body)).toBe(201);
		expect(await pushSuiteTicket(s)).toBe("success");
		await ring(name(s));
		const first = await tokenOf(s);
		expect(await check(first.value)).toBe(0);
		for (let moved = 0; moved < 7200; moved += 600) {
			await travel(600);
			await pushSuiteTicket(s);
		}
		// A fresh instance whose first call is its alarm: the registry suite is opened in the constructor.
		await abortAllDurableObjects();
		await ring(name(s));
		const second = await tokenOf(s);
		expect(second.value).not.toBe(first.value);
		expect((await statusOfObject(name(s))).last_refresh.trigger).toBe("scheduled");
	});
});
