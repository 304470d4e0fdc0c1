/**
 * The refresh engine's protections that an outside mutation pass (issue 20) could remove without any test
 * noticing. Each test fails when its protection is removed (scripts/mutations.mjs, "[guards-engine]").
 * This file's apps claim a getticket quota of TICKET_QUOTA_FILE_DAILY_QUOTA (fixtures.ts), so the ticket
 * quota guard is reached in a few calls.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { expiresInS } from "../../src/core/lifetime";
import { nextQuotaReset } from "../../src/core/usage";
import { allWeComApps, appsFor, KEYS, TICKET_QUOTA_FILE_DAILY_QUOTA, WECOM_CORP, type TestApp } from "./fixtures";
import { call, deferred, forceRefresh, getToken, heldAnswer, interceptUpstream, invalidate, isForce, lostAnswer, runCron, settle, sim, travel } from "./helpers";

const next = appsFor("guards-engine");

async function tokenOf(app: TestApp): Promise<string> {
	const res = await getToken(app);
	expect(res.status).toBe(200);
	return res.body.access_token as string;
}

function ticket(appid: string) {
	return call(`/ticket?appid=${appid}&type=jsapi`);
}

function forceTicket(appid: string) {
	return call(`/ticket/refresh?appid=${appid}&type=jsapi`, { method: "POST", key: KEYS.admin });
}

/** Moves both clocks to one second into the next WeChat day (00:00 China time), so a test's counts start at 0. */
async function startOfWeChatDay(): Promise<void> {
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
}

describe("tickets", () => {
	it("does not ask again for a ticket WeChat re-issued unchanged, up to that ticket's expiry", async () => {
		const app = next("stable");
		await sim.configure(app, { ticket_refetch: "same" });
		const first = (await ticket(app.appid)).body.ticket as string;
		await travel(7200 - 899); // due: WeChat answers the same ticket with the 899 s it has left
		await runCron([app]);
		expect((await sim.calls(app)).getticket).toBe(2);
		await travel(899 - 30);
		await runCron([app]);
		// Failed when the unchanged ticket was planned like a new one (refresh 1/8 of 899 s ahead): a third call.
		expect((await sim.calls(app)).getticket).toBe(2);
		const still = await ticket(app.appid);
		expect(still.body.ticket).toBe(first);
		expect(still.body.expires_in).toBeLessThanOrEqual(30);
		expect(still.body.expires_in).toBeGreaterThan(0);
	});

	it("refuses an admin's forced ticket once the guard's share of the daily getticket quota is spent", async () => {
		const app = next("stable");
		await startOfWeChatDay();
		const guard = Math.floor(TICKET_QUOTA_FILE_DAILY_QUOTA * 0.5); // QUOTA_GUARD_SHARE's default
		expect((await ticket(app.appid)).status).toBe(200); // call 1
		for (let n = 2; n <= guard; n++) {
			await travel(31);
			expect((await forceTicket(app.appid)).status, `forced ticket, call ${n}`).toBe(200);
		}
		await travel(31);
		const refused = await forceTicket(app.appid);
		// Failed when tickets were guarded against an unlimited quota: a fifth getticket call.
		expect(refused.status).toBe(429);
		expect(refused.body.message).toContain(`${guard} of the app's ${TICKET_QUOTA_FILE_DAILY_QUOTA} daily getticket calls are spent`);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
		expect((await sim.calls(app)).getticket).toBe(guard);
	});

	it("keeps a WeCom entry's corp tickets to its share of the corp's 400 an hour", async () => {
		const entries = allWeComApps().filter((a) => a.corpid === WECOM_CORP);
		const share = Math.floor(400 / entries.length);
		expect(entries.length).toBeGreaterThan(1);
		const appid = `${WECOM_CORP}-1000001`;
		// A clock hour's first second: the whole test falls on one WeCom hour.
		await travel(3600 - ((Date.now() / 1_000) % 3600) + 1);
		for (let n = 1; n <= share; n++) {
			expect((await forceTicket(appid)).status, `corp ticket ${n}`).toBe(200);
			await travel(31);
		}
		const refused = await forceTicket(appid);
		// Failed when each entry took the corp's whole 400: the entries of one corp together would pass it.
		expect(refused.status).toBe(429);
		expect(refused.body.message).toMatch(new RegExp(`WeCom allows ${share} get_jsapi_ticket calls an hour`));
	});
});

describe("a refresh under way", () => {
	it("classic: a read while a lost call is retried is promised no more than 300 s from the first attempt", async () => {
		const app = next("classic");
		await tokenOf(app);
		await travel(7200 - 900 + 1); // due
		let attempts = 0;
		const retried = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) => {
			if (url.pathname !== "/cgi-bin/token") return undefined;
			attempts++;
			// WeChat mints a token (the current one now dies 300 s later); its answer is lost 200 s on.
			if (attempts === 1) return real(url, init).then(async (r) => (await r.text(), await travel(200), lostAnswer()));
			retried.resolve();
			return release.promise.then(() => real(url, init));
		});
		expect((await authority(env, app.appid).getToken(app.appid)).ok).toBe(true); // due: answered now, the refresh goes on behind
		await retried.promise;
		// A stub made after the await: workerd refuses one made before it here ("Cannot perform I/O on behalf of a different Durable Object").
		const during = await authority(env, app.appid).getToken(app.appid);
		release.resolve();
		expect(during.ok).toBe(true);
		// Failed when the marker took each attempt's start: promised 300 s from the retry, 200 s past WeChat's revocation.
		expect(during.ok && expiresInS(during.record, Date.now())).toBeLessThanOrEqual(100);
		await settle(app);
	});

	it("stable: an admin force during a normal refresh waits for it, then forces", async () => {
		const app = next("stable");
		const old = await tokenOf(app);
		await travel(7200 - 270 + 1); // due, inside WeChat's last 300 s: a normal call rotates the token
		const sent = deferred();
		const release = deferred();
		interceptUpstream((url, init, real) => url.pathname === "/cgi-bin/stable_token" && !isForce(url, init)
			? heldAnswer(real, url, init, sent.resolve, release.promise)
			: undefined);
		expect((await authority(env, app.appid).getToken(app.appid)).ok).toBe(true); // the normal refresh starts behind this read
		await sent.promise;
		const forces = (await sim.calls(app)).stable_token_force;
		const stub = authority(env, app.appid);
		const forcing = stub.forceRefresh(app.appid, "token");
		await stub.status(app.appid); // the force has reached the object while the normal call is out
		release.resolve();
		const forced = await forcing;
		expect(forced.ok).toBe(true);
		// Failed when the force joined the normal refresh: no force_refresh sent, the old token still accepted.
		expect((await sim.calls(app)).stable_token_force).toBe(forces + 1);
		expect(await sim.check(old)).toBe(40001);
		expect(forced.ok && (await sim.check(forced.record.value))).toBe(0);
	});
});

describe("reports", () => {
	it("recalls a report's verdict only for the token it judged", async () => {
		const app = next("classic");
		const first = await tokenOf(app);
		// WeChat accepts `first`: the report is answered with it, and that verdict is remembered for a minute.
		expect((await invalidate(app, first)).body.access_token).toBe(first);
		const second = (await forceRefresh(app.appid)).body.access_token as string;
		expect(second).not.toBe(first);
		await travel(31); // past the 30 s between forced refreshes, inside the minute
		await sim.revoke(app); // behind the broker's back
		expect(await sim.check(second)).toBe(40001);
		const healed = await invalidate(app, second);
		expect(healed.status).toBe(200);
		// Failed when any remembered verdict answered any report: the dead token came back.
		expect(healed.body.access_token).not.toBe(second);
		expect(await sim.check(healed.body.access_token as string)).toBe(0);
	});
});
