/**
 * Review 19: the refresh engine after the WeCom installs (suite tokens, provider tokens, installed companies'
 * corp tokens, mode suite_corp), read adversarially. Each test shows one finding against the simulator.
 * Uses the install suites wwsuiteins12..17 (fixtures.ts), which no other test file touches, one per test that
 * installs (the simulator forgets its tokens between tests; the objects keep theirs).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import { describe, expect, it } from "vitest";
import { authority, suiteAuthority } from "../../src/authority/stub";
import { installTestSuite, KEYS, type TestSuite } from "./fixtures";
import { call, interceptUpstream, simUrl, travel } from "./helpers";
import { logLines } from "./setup";
import { alarmOf, installCompany, pushSuiteTicket, serviceStats, simSuite, suiteInSim } from "./suite-helpers";

const S = [12, 13, 14, 15, 16, 17].map((n) => installTestSuite(n)) as TestSuite[];
const corpOf = (n: number, k = 0) => `wwr19corp${n}${k}`;

interface Push { info_type: string; query: string; body: string }

/** An installed company of S[n] (suite-helpers.ts installCompany); its app's id. */
async function installed(n: number, k = 0): Promise<{ s: TestSuite; corpid: string; appid: string }> {
	const s = S[n]!;
	const corpid = corpOf(n, k);
	return { s, corpid, appid: await installCompany(s, corpid) };
}

/** How WeCom judges a corp token: 0 when its corp endpoints take it. */
async function check(token: string): Promise<number> {
	const res = await fetch(`${simUrl}/qyapi/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`);
	return ((await res.json()) as { errcode?: number }).errcode ?? 0;
}

const corpCalls = async (s: TestSuite) => (await serviceStats(s)).suite.wecom_get_corp_token ?? 0;

describe("review 19: an installed company's corp token", () => {
	/*
	 * Finding (high): an uninstall whose cancel_auth push was missed. WeCom stops the company's tokens at once;
	 * the next get_corp_token answers 40084, which the engine records (needs_reinstall) but, unlike an
	 * authorizer's 61003 / 61023 (fetch-and-store.ts endsHeldValue), it keeps handing out the held corp token,
	 * which WeCom refuses, for the rest of its lifetime (~900 s after the scheduled refresh; more after a
	 * client's report). Fix: a failure whose errcode is the kind's `regrant` set ends the held value at the
	 * call, whatever the policy (afterUnansweredCall does not cap an `independent` value).
	 */
	it("is not handed out once WeCom said the install is gone (40084 after a missed cancel_auth)", async () => {
		const { s, appid, corpid } = await installed(0);
		const first = await call(`/token?appid=${appid}`);
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		const held = first.body.access_token as string;
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: false });
		expect(await check(held)).not.toBe(0);
		// Zero traffic: the company's alarm refreshes the token when it is due, and meets 40084.
		const before = await corpCalls(s);
		await travel((first.body.expires_in as number) - 600);
		await runDurableObjectAlarm(authority(env, appid));
		await authority(env, appid).idle();
		expect(await corpCalls(s)).toBe(before + 1);
		// Past the memory tier; a reader now must not be handed the token WeCom refuses.
		await travel(6);
		const after = await call(`/token?appid=${appid}`);
		if (after.status === 200) expect(await check(after.body.access_token as string)).toBe(0);
		expect(after.status, JSON.stringify(after.body)).not.toBe(200);
		expect(after.body.message).toMatch(/install/);
	});
});

describe("review 19: a corp token WeCom hands back inside its validity (corp_token_refetch same, unconfirmed)", () => {
	/*
	 * Finding (medium): get_suite_token's answer may say how little is left of a reused token (0 s is an
	 * answer: suite-client.ts REUSED_MIN_EXPIRES_IN_S), but get_corp_token's is parsed with the 60-s floor
	 * of a fresh token. A refresh in the last minute of a corp token (a late alarm, a refresh that failed
	 * at the plan, a read at the deadline where WeCom's clock lags the broker's stamp) gets the live token
	 * back with expires_in < 60, which the broker takes for a broken answer: three calls (retries) instead of
	 * one, a failure with its backoff and error log, and readers told WeCom is unreachable. Fix: parse
	 * get_corp_token's answer with the same floor as the suite's (sameValueAgain caps the promise anyway).
	 */
	it("is taken as an answer when it says less than a minute is left: one call, no failure", async () => {
		const s = S[1]!;
		await suiteInSim(s, { corp_token_refetch: "same", reused_expires_in: "remaining" });
		try {
			const { appid } = await installed(1);
			const first = await call(`/token?appid=${appid}`);
			expect(first.status, JSON.stringify(first.body)).toBe(200);
			// The plan's refresh did not happen (no alarm delivered): the token is due, 20 s from its end.
			await travel((first.body.expires_in as number) - 20);
			const before = await corpCalls(s);
			logLines.length = 0;
			const due = await call(`/token?appid=${appid}`);
			expect(due.status, JSON.stringify(due.body)).toBe(200);
			await authority(env, appid).idle();
			expect(await corpCalls(s)).toBe(before + 1);
			expect(logLines.filter((l) => l.includes("refresh_failed"))).toEqual([]);
			const status = (await authority(env, appid).status(appid)) as unknown as Record<string, any>;
			expect(JSON.stringify(status)).not.toMatch(/no usable expires_in/);
		} finally {
			await suiteInSim(s, {});
		}
	});
});

describe("review 19: a 40082 that is the suite token's, not the install's", () => {
	/*
	 * Finding (medium; fixed as described below): get_corp_token answers 40082 both for "the suite has no install in that
	 * corp" and for "invalid suite_access_token" (OPEN-PLATFORM.md §10). The engine reads every 40082 as the
	 * install's absence (install-client.ts REINSTALL_ERRCODES, attempt.ts withParentToken) and marks the company
	 * needs_reinstall at once: no call is sent again until a person re-installs or syncs. SUITE_TOKEN_INVALID
	 * (suite-client.ts) says "a caller there compares before it heals", but nothing uses it. So a suite token
	 * WeCom stops early (a suite Secret reset, say) strands every installed company of the suite, each with its
	 * own incident. Fix: in withParentToken, a 40082 / 42009 first asks the suite's object to compare-and-
	 * refresh the suite token used (invalidate(used, …, confirmedByWeChat)); only when it hands back the same
	 * token does 40082 mean the install is gone; else one retry with the new suite token.
	 * Here WeCom is faked around the simulator: it stops the suite token held and issues a new one.
	 */
	it("heals the suite token before it takes 40082 for an uninstall", async () => {
		const { s, appid } = await installed(2);
		const first = await call(`/token?appid=${appid}`);
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		let dead: string | null = null;
		const fresh = "r19suitetokenissuedafterthefirstwasstopped";
		interceptUpstream((url, init, real) => {
			if (url.pathname.endsWith("/get_suite_token")) {
				return Promise.resolve(Response.json({ errcode: 0, suite_access_token: fresh, expires_in: 7200 }));
			}
			const used = url.searchParams.get("suite_access_token");
			if (used === null) return undefined;
			dead ??= used === fresh ? null : used;
			if (used === dead) return Promise.resolve(Response.json({ errcode: 40082, errmsg: "invalid suite_acccess_token or provider_access_token" }));
			if (used === fresh && dead) {
				url.searchParams.set("suite_access_token", dead);
				return real(url.toString(), init);
			}
			return undefined;
		});
		const again = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
		expect(again.status, JSON.stringify(again.body)).toBe(200);
		expect(await check(again.body.access_token as string)).toBe(0);
		const status = (await authority(env, appid).status(appid)) as unknown as Record<string, any>;
		expect(status.suite_corp?.needs_reinstall ?? null).toBeNull();
		expect(s.suite_id).toBeTruthy();
	});
});

describe("review 19: what a company that must install again is told", () => {
	/*
	 * Finding (low; fixed): the 40084 / 40082 advice reads "POST /wecom-suite/<suite_id>/install-url", the placeholder
	 * left in: the caller is not told which suite's route to use (an authorizer's 61003 names its component's
	 * route since open-ends). Fix: get_corp_token's refusal names the company's own suite.
	 */
	it("names the company's own suite's install-url route", async () => {
		const { s, appid, corpid } = await installed(3);
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: false });
		const res = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
		expect(res.body).toMatchObject({ wechat_errcode: 40084 });
		expect(res.body.message).toContain(`POST /wecom-suite/${s.suite_id}/install-url`);
		expect(res.body.message).not.toContain("<suite_id>");
	});
});

describe("review 19: a pushed install code whose exchange failed", () => {
	/*
	 * Finding (high; fixed as described below): the code ledger plans its retry at `now + 30 s` whenever the object plans its alarm
	 * (code-ledger.ts wake), and the object plans after every save. A suite object that saves more often than
	 * every 30 s (each install-url counts its get_pre_auth_code and saves; a vendor's install page asks for
	 * one per visit) pushes the retry back each time, so it never rings, and the install code dies at WeCom
	 * (10 min) unexchanged: the permanent code, issued once, is lost and the company must install again. The
	 * open platform's authorisation codes share the ledger. Fix: the ledger keeps when its retry is due (set
	 * when an exchange fails, or at load) and wakes for that moment, not for 30 s after the latest plan.
	 */
	it("is exchanged by the alarm 30 s later even while install-url traffic keeps the suite's object saving", async () => {
		const s = S[3]!;
		// A ticket newer than one an earlier test of this file may have pushed to the same suite.
		await travel(1);
		expect(await pushSuiteTicket(s)).toBe("success");
		const corpid = corpOf(3, 1);
		await simSuite(`${s.suite_id}/take`);
		await simSuite(`${s.suite_id}/install`, { corpid, push: true });
		const { pushes } = await simSuite(`${s.suite_id}/take`) as { pushes: Push[] };
		const create = pushes.find((p) => p.info_type === "create_auth")!;
		let refused = 0;
		interceptUpstream((url) => (url.pathname.endsWith("/get_permanent_code") && refused++ === 0
			? Promise.resolve(Response.json({ errcode: -1, errmsg: "system busy" }))
			: undefined));
		const res = await exports.default.fetch(new Request(`https://broker.test/wecom-suite/${s.suite_id}/events?${create.query}`, {
			method: "POST", headers: { "content-type": "text/xml" }, body: create.body,
		}));
		expect(await res.text()).toBe("success");
		await suiteAuthority(env, s.suite_id).idle();
		expect(refused).toBe(1);
		const installedNow = async () => (await suiteAuthority(env, s.suite_id).listInstalls(s.suite_id, null, 100)).some((r) => r.corpid === corpid);
		expect(await installedNow()).toBe(false);
		// The vendor's install page asks for a link every 20 s for 3 min; the platform delivers the alarm when due.
		for (let i = 0; i < 9; i++) {
			await travel(20);
			const at = await alarmOf(`suite:${s.suite_id}`);
			if (at !== null && at <= Date.now()) {
				await runDurableObjectAlarm(suiteAuthority(env, s.suite_id));
				await suiteAuthority(env, s.suite_id).idle();
			}
			const link = await call(`/wecom-suite/${s.suite_id}/install-url`, { method: "POST", key: KEYS.admin, body: { redirect_uri: "https://vendor.example/installed" } });
			expect(link.status, JSON.stringify(link.body)).toBe(200);
		}
		expect(await installedNow()).toBe(true);
	});
});

describe("review 19: get_corp_token refusing the suite token", () => {
	/*
	 * Finding (low; fixed): 42009 (the suite token expired) on get_corp_token is classed retryable, so the engine's
	 * retries send the same dead suite token three times before anything else happens: two calls that cannot
	 * succeed. Fix: get_corp_token marks 40082 / 42009 as refusing the token it was asked with (tokenRefused),
	 * which ends the retries; the heal (withParentToken) then asks the suite's object for its token.
	 */
	it("is asked once with a suite token WeCom calls expired, not three times", async () => {
		const { appid } = await installed(4);
		let refusals = 0;
		interceptUpstream((url) => {
			if (!url.pathname.endsWith("/get_corp_token")) return undefined;
			refusals++;
			return Promise.resolve(Response.json({ errcode: 42009, errmsg: "suite_access_token expired" }));
		});
		const res = await call(`/token/refresh?appid=${appid}`, { method: "POST", key: KEYS.admin });
		expect(res.body).toMatchObject({ wechat_errcode: 42009 });
		expect(refusals).toBe(1);
	});
});

describe("review 19: a client's report of a corp token the company's uninstall stopped", () => {
	/*
	 * Finding (medium; fixed): a client whose call failed with 40014 reports the corp token; the normal call that
	 * follows meets 40084 and the object ends the held token (endsHeldValue), but a report of an `independent`
	 * value retracted nothing, and nothing rewrites a copy that is no longer usable: every isolate's KV copy
	 * goes on handing out the dead token up to its refresh plan (~6300 s of a 7200-s token). Fix: when a
	 * failure ends the held value, its KV copy is rewritten as ended (a retraction), as a force's is before
	 * its call.
	 */
	it("is not handed out from KV once the report met 40084", async () => {
		const { s, appid, corpid } = await installed(5);
		const first = await call(`/token?appid=${appid}`);
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		const held = first.body.access_token as string;
		await simSuite(`${s.suite_id}/uninstall`, { corpid, push: false });
		expect(await check(held)).not.toBe(0);
		const reported = await call("/token/invalidate", { method: "POST", key: KEYS.admin, body: { appid, access_token: held } });
		expect(reported.status, JSON.stringify(reported.body)).not.toBe(200);
		// Past the memory tier: what KV holds is what an isolate serves.
		await travel(6);
		const after = await call(`/token?appid=${appid}`);
		if (after.status === 200) expect(after.body.access_token).not.toBe(held);
		expect(after.status, JSON.stringify(after.body)).not.toBe(200);
	});
});
