/**
 * Review of 54b1ac5 (engine/fetch-and-store.ts awaitingTheOther): a ticket whose token cannot be had gets a
 * `retryAt` with no failure of its own, so `lastError` is whatever the ticket last failed with, however long
 * ago. Refresher.get() reads `now < retryAt && lastError` as "this credential is backing off after that
 * error", so once the ticket's value runs out inside that window, readers are refused with the stale error
 * and no fetch is tried, though the token is back.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { appsFor } from "./fixtures";
import { settle, sim, statusOf, travel } from "./helpers";

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
