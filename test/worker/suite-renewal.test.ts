/**
 * The moment a suite_access_token expires. WeCom renews it only then (a re-fetch inside its validity returns
 * the same token), so for a moment at each expiry the suite has no token to give, and may be handed the
 * expiring one back once (its clock a moment behind the broker's): the suite's object asks again a second
 * later (core/lifetime.ts). An installed company whose refresh falls in that moment must be tried again when
 * the suite's token is due back, not after the alarm chain's stall backoff (5 s, doubling). Uses the install
 * suites wwsuiteins20..21 (fixtures.ts), which no other test file touches.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority, suiteAuthority } from "../../src/authority/stub";
import { installTestSuite, KEYS, type TestSuite } from "./fixtures";
import { call, interceptUpstream, simUrl, travel, wechatAnswer } from "./helpers";
import { alarmOf, installCompany, pushSuiteTicket, ring, serviceStats, simSuite } from "./suite-helpers";

const S = [20, 21].map((n) => installTestSuite(n)) as TestSuite[];

/** How WeCom judges a corp token: 0 when its corp endpoints take it. */
async function check(token: string): Promise<number> {
	const res = await fetch(`${simUrl}/qyapi/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
	return ((await res.json()) as { errcode?: number }).errcode ?? 0;
}

/**
 * Travels to `beforeS` seconds before the suite token's deadline, a fresh ticket pushed every 600 s as WeCom
 * would; the token held.
 */
async function toSuiteDeadline(s: TestSuite, beforeS = 0): Promise<string> {
	const outcome = await suiteAuthority(env, s.suite_id).suiteAccessToken(s.suite_id);
	if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure));
	for (let left = Math.ceil((outcome.record.expiresAt - Date.now()) / 1_000) - beforeS; left > 0; left -= 600) {
		await travel(Math.min(600, left));
		await pushSuiteTicket(s);
	}
	return outcome.record.value;
}

describe("a company's refresh at its suite token's expiry", () => {
	it("is tried again when the suite's token is due back (a second), not after the chain's 5 s stall, and then refreshed", async () => {
		const s = S[0]!;
		const appid = await installCompany(s, "wwrenewcorp0");
		// The company's token got a while after the suite's (a company's refresh falls anywhere in the suite's
		// lifetime): at the suite's deadline it is due, 900 s ahead of its own expiry, and still good.
		await travel(300);
		expect((await authority(env, appid).forceRefresh(appid)).ok).toBe(true);
		const first = await call(`/token?appid=${appid}`);
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		const held = await toSuiteDeadline(s);
		// At the broker's deadline WeCom hands the expiring suite token back once more (its clock a moment behind).
		const restore = interceptUpstream((url) => (url.pathname.endsWith("/cgi-bin/service/get_suite_token")
			? wechatAnswer({ suite_access_token: held, expires_in: 7200 })
			: undefined));
		try {
			await ring(`suite:${s.suite_id}`);
		} finally {
			restore();
		}
		const suiteDueBack = await alarmOf(`suite:${s.suite_id}`);
		expect(suiteDueBack).toBe(Date.now() + 1_000);
		const corpCalls = (await serviceStats(s)).suite.wecom_get_corp_token ?? 0;
		await ring(appid);
		await authority(env, appid).idle();
		expect((await serviceStats(s)).suite.wecom_get_corp_token ?? 0).toBe(corpCalls);
		expect(await alarmOf(appid)).toBe(suiteDueBack);
		// A second later: the suite's token is renewed on the company's ask, and the company's refreshed with it.
		await ring(appid);
		await authority(env, appid).idle();
		expect((await serviceStats(s)).suite.wecom_get_corp_token ?? 0).toBe(corpCalls + 1);
		await travel(6); // past the memory tier
		const after = await call(`/token?appid=${appid}`);
		expect(after.status, JSON.stringify(after.body)).toBe(200);
		expect(after.body.access_token).not.toBe(first.body.access_token);
		expect(await check(after.body.access_token as string)).toBe(0);
	});
});

describe("the suite's own calls at its token's expiry", () => {
	it("an install code whose exchange meets the suite token expiring in flight (42009) is exchanged with the new token, not refused", async () => {
		const s = S[1]!;
		await travel(1);
		expect(await pushSuiteTicket(s)).toBe("success");
		const held = await toSuiteDeadline(s, 1);
		// The broker still serves its token (a second left); WeCom's clock passes the expiry while the call travels.
		const { auth_code } = await simSuite(`${s.suite_id}/install`, { corpid: "wwrenewcorp1", push: false });
		let expiredInFlight = 0;
		const restore = interceptUpstream((url, init, real) => {
			if (!url.pathname.endsWith("/cgi-bin/service/get_permanent_code") || expiredInFlight++ > 0) return undefined;
			return travel(2).then(() => real(url.toString(), init));
		});
		try {
			const res = await call(`/wecom-suite/${s.suite_id}/installs`, { method: "POST", key: KEYS.admin, body: { auth_code } });
			expect(res.status, JSON.stringify(res.body)).toBe(200);
			expect(res.body).toMatchObject({ corpid: "wwrenewcorp1" });
		} finally {
			restore();
		}
		expect(expiredInFlight).toBe(2);
		const suite = await suiteAuthority(env, s.suite_id).suiteAccessToken(s.suite_id);
		expect(suite.ok && suite.record.value).not.toBe(held);
	});
});
