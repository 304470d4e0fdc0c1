/**
 * Review of 54b1ac5 (engine/fetch-and-store.ts awaitingTheOther): a ticket whose token cannot be had gets a
 * `retryAt` with no failure of its own, so `lastError` is whatever the ticket last failed with, however long
 * ago. Refresher.get() reads `now < retryAt && lastError` as "this credential is backing off after that
 * error", so once the ticket's value runs out inside that window, readers are refused with the stale error
 * and no fetch is tried, though the token is back.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { authority, componentAuthority } from "../../src/authority/stub";
import { appsFor, testComponent } from "./fixtures";
import { interceptUpstream, lostAnswer, settle, sim, simUrl, statusOf, travel } from "./helpers";
import { pushTicket, simOpen } from "./component-helpers";

const next = appsFor("review-engine");

it("an expired ticket is fetched at once when its token is back, not refused with a stale error for the token's wait", async () => {
	const app = next("stable");
	const stub = authority(env, app.appid);
	expect((await stub.getToken(app.appid)).ok).toBe(true);
	await travel(3_000);
	// Once, long ago: the ticket's fetch failed ("system busy", all three attempts); a retry got it.
	await sim.fault({ appid: app.appid, endpoint: "getticket", kind: "errcode", errcode: -1, times: 3 });
	expect((await stub.getCredential(app.appid, "jsapi")).ok).toBe(false);
	await travel(3);
	const first = await stub.getCredential(app.appid, "jsapi");
	expect(first.ok).toBe(true);
	const ticketExpiresAt = first.ok ? first.record.expiresAt : 0;
	// The token expired meanwhile and WeChat is busy: its refreshes back off (2, 4, 8, 16, 32 s, then 60).
	await sim.fault({ appid: app.appid, endpoint: "stable_token", kind: "errcode", errcode: -1 });
	await travel(Math.floor((ticketExpiresAt - Date.now()) / 1_000) - 92);
	for (const wait of [2, 4, 8, 16, 32]) {
		expect((await stub.getToken(app.appid)).ok).toBe(false);
		await travel(wait);
	}
	expect((await stub.getToken(app.appid)).ok).toBe(false); // the sixth: 60 s
	// The ticket (30 s left) is due: its refresh finds no token and waits for the token's 60 s.
	expect((await stub.getCredential(app.appid, "jsapi")).ok).toBe(true);
	await settle(app);
	// The token is back (an operator's force; a suite's ticket push does the same for its companies).
	await sim.clearFaults();
	expect((await stub.forceRefresh(app.appid)).ok).toBe(true);
	await travel(31); // the ticket has expired
	const after = await stub.getCredential(app.appid, "jsapi");
	const status = await statusOf(app);
	expect(after.ok, JSON.stringify({ after, jsapi: status.credentials[1] })).toBe(true);
});

/** An account that authorised component reveng<n> (the `authorized` push delivered and exchanged), 3,000 s after the component's token. */
async function authorised(n: number, appid: string): Promise<{ cid: string; appid: string }> {
	const c = testComponent("reveng", n);
	const cid = c.component_appid;
	expect(await pushTicket(c)).toBe("success");
	expect((await componentAuthority(env, cid).componentAccessToken(cid)).ok).toBe(true);
	await travel(3_000);
	await simOpen(`components/${cid}/take`);
	await simOpen(`components/${cid}/authorize`, { authorizer_appid: appid, push: true });
	const { pushes } = await simOpen(`components/${cid}/take`) as { pushes: { info_type: string; query: string; body: string }[] };
	const push = pushes.find((p) => p.info_type === "authorized")!;
	const res = await exports.default.fetch(new Request(`https://broker.test/open/${cid}/events?${push.query}`, {
		method: "POST", headers: { "content-type": "text/xml" }, body: push.body,
	}));
	expect(await res.text()).toBe("success");
	await componentAuthority(env, cid).idle();
	return { cid, appid };
}

/**
 * An authorizer's force (a no_overlap token: its edge copy is retracted first, which sets the `inFlight`
 * marker) that finds no component token sends nothing, yet returns with the marker still set, and
 * awaitingTheOther's save persists it: "a call is out" to the alarm chain (planChanged skips every plan,
 * so the retryAt it just set is never armed) and to a restarted instance (a phantom interrupted call).
 * PRE-EXISTING: the retraction's own writeEdge save already persisted it before 54b1ac5 (this test fails
 * with awaitingTheOther reverted too); 54b1ac5 adds a retryAt that this marker keeps from being armed.
 */
it("an authorizer force that finds no component token leaves no in-flight marker, and its alarm follows the plan again", async () => {
	const { cid, appid } = await authorised(2, "wxrevengacct02");
	const stub = authority(env, appid);
	expect((await stub.getToken(appid)).ok).toBe(true);
	// The component token's planned refresh (3,300 s on) loses its answers: it is no longer handed out, for its backoff.
	await travel(3_301);
	const restore = interceptUpstream((url) => (url.pathname.endsWith("/api_component_token") ? lostAnswer() : undefined));
	expect((await componentAuthority(env, cid).componentAccessToken(cid)).ok).toBe(false);
	restore();
	// Meanwhile an admin forces the authorizer's token (still good, 2,700 s before its plan).
	expect((await stub.forceRefresh(appid)).ok).toBe(false);
	const stored = await runInDurableObject(stub, (_o, state) => state.storage.get<Record<string, any>>("state"));
	const slot = stored!.slots.token;
	expect(slot.inFlight, JSON.stringify(slot)).toBeNull();
	// The chain plans again: the force's retracted edge copy is rewritten by the alarm's housekeeping (10 s),
	// instead of the alarm staying at the planned refresh, 2,700 s away, with KV serving no copy till then.
	expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBeLessThanOrEqual(Date.now() + 10_000);
});

/**
 * An authorizer's token (no_overlap: promised only until its planned refresh) whose refresh finds no component
 * token sends nothing, so the token WeChat still accepts stands: it is promised until the refresh is tried
 * again (as after a refusal, fetch-and-store.ts planRetry), not withdrawn from every reader at its plan.
 */
it("an authorizer whose refresh finds the component token unavailable goes on serving the token WeChat accepts until the retry", async () => {
	const { cid, appid } = await authorised(3, "wxrevengacct03");
	const stub = authority(env, appid);
	const first = await stub.getToken(appid);
	expect(first.ok).toBe(true);
	const held = first.ok ? first.record : null;
	// At the authorizer's planned refresh the component token has expired, and its refresh loses its answers.
	await travel(Math.ceil((held!.refreshAt - Date.now()) / 1_000));
	const restore = interceptUpstream((url) => (url.pathname.endsWith("/api_component_token") ? lostAnswer() : undefined));
	try {
		expect((await componentAuthority(env, cid).componentAccessToken(cid)).ok).toBe(false);
		const read = await stub.getToken(appid);
		expect(read.ok, JSON.stringify(read)).toBe(true);
		if (read.ok) expect(read.record.value).toBe(held!.value);
	} finally {
		restore();
	}
	const check = await fetch(`${simUrl}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(held!.value)}`);
	expect(((await check.json()) as { errcode?: number }).errcode ?? 0).toBe(0);
});

/**
 * Found by the open-platform bench at 10,000 authorizers (244 of 261,508 reads answered 503): in the last
 * second before an authorizer's planned refresh its token (no_overlap: promised only until the plan) has no
 * whole second left, and the reader was told WeCom's "the token expiring now is handed back, retry in a
 * second" (core/lifetime.ts awaitingRenewal), which only a kind renewed at its expiry (a suite token) means.
 */
it("an authorizer's reader in the last second before its planned refresh gets the next token, not WeCom's retry-in-a-second", async () => {
	const { appid } = await authorised(4, "wxrevengacct04");
	const stub = authority(env, appid);
	const first = await stub.getToken(appid);
	expect(first.ok).toBe(true);
	const held = first.ok ? first.record : null;
	await travel((held!.refreshAt - Date.now() - 500) / 1_000);
	const read = await stub.getToken(appid);
	expect(read.ok, JSON.stringify(read)).toBe(true);
	if (read.ok) expect(read.record.value).not.toBe(held!.value);
});

/**
 * Found by a second review: the fix above refreshed at once, up to a second before the plan, while a reader
 * a moment earlier had been promised the held token up to the plan (expires_in 1); the mint may revoke it at
 * once (no_overlap). The reader in the last second now waits for the plan before the refresh is sent. The
 * broker's clock is the test's (frozen between travels), so the wait shows as real time: a sleep never ends
 * early, so its lower bound is no matter of luck.
 */
it("an authorizer's refresh is not sent before its plan while the held token is still promised to a reader", async () => {
	const { appid } = await authorised(5, "wxrevengacct05");
	const stub = authority(env, appid);
	const first = await stub.getToken(appid);
	const held = first.ok ? first.record : null;
	await travel((held!.refreshAt - Date.now() - 1_300) / 1_000);
	const promised = await stub.getToken(appid);
	expect(promised.ok && promised.record.value).toBe(held!.value);
	await travel(0.8); // 500 ms before the plan
	const startedAt = performance.now();
	let sentAfterMs: number | null = null;
	const restore = interceptUpstream((url) => {
		if (url.pathname.endsWith("/api_authorizer_token")) sentAfterMs ??= performance.now() - startedAt;
		return undefined;
	});
	try {
		const next = await stub.getToken(appid);
		expect(next.ok && next.record.value).not.toBe(held!.value);
	} finally {
		restore();
	}
	expect(sentAfterMs).not.toBeNull();
	expect(sentAfterMs!).toBeGreaterThanOrEqual(450);
});
