/** Upstream failures map to the documented statuses and never cost a still-valid token. */
import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS } from "../../src/wechat/retry";
import { appsFor } from "./fixtures";
import { getToken, invalidate, refuseNextProbe, settle, sim, travel } from "./helpers";
import { retryPausesTaken } from "./setup";

const next = appsFor("errors");

describe("with no valid token to fall back on", () => {
	it.each([
		[40125, /AppSecret is wrong.*WECHAT_APPS/],
		[40164, /allowlist.*WECHAT_API_BASE/],
		[45009, /daily quota.*00:00 China time/],
		[-1, /busy/],
	])("answers 502 with wechat_errcode %i and what to do", async (errcode, advice) => {
		const app = next("classic");
		await sim.fault({ appid: app.appid, kind: "errcode", errcode });
		const res = await getToken(app);
		expect(res.status).toBe(502);
		expect(res.body).toMatchObject({ error: "wechat_error", wechat_errcode: errcode });
		expect(res.body.message).toMatch(advice);
		// Only "system busy" is worth retrying at once; the others need a person or midnight.
		expect(await sim.tokenCalls(app)).toBe(errcode === -1 ? MAX_ATTEMPTS : 1);
	});

	it("retries a transient failure after jittered pauses of ~200 ms then ~400 ms, and serves the token it gets", async () => {
		const app = next("classic");
		await sim.fault({ appid: app.appid, kind: "errcode", errcode: -1, times: 2 });
		const res = await getToken(app);
		expect(res.status).toBe(200);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
		expect(await sim.tokenCalls(app)).toBe(3);
		expect(retryPausesTaken).toHaveLength(2);
		expect(retryPausesTaken[0]).toBeGreaterThanOrEqual(100);
		expect(retryPausesTaken[0]).toBeLessThanOrEqual(200);
		expect(retryPausesTaken[1]).toBeGreaterThanOrEqual(200);
		expect(retryPausesTaken[1]).toBeLessThanOrEqual(400);
	});

	it.each([
		["http", { status: 503 }, /HTTP 503/],
		["malformed", {}, /not JSON/],
		["reset", {}, /could not connect/],
	] as const)("answers 503 with Retry-After when WeChat is unreachable (%s)", async (kind, extra, message) => {
		const app = next("stable");
		await sim.fault({ appid: app.appid, kind, ...extra });
		const res = await getToken(app);
		expect(await sim.tokenCalls(app)).toBe(MAX_ATTEMPTS);
		expect(res.status).toBe(503);
		expect(res.body.error).toBe("wechat_unreachable");
		expect(res.body.message).toMatch(message);
		expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
	});

	it("backs off instead of calling WeChat on every read, then recovers", async () => {
		const app = next("classic");
		await sim.fault({ appid: app.appid, kind: "errcode", errcode: 40125 });
		expect((await getToken(app)).status).toBe(502);
		for (let i = 0; i < 10; i++) expect((await getToken(app)).status).toBe(502);
		expect(await sim.tokenCalls(app)).toBe(1);

		await sim.clearFaults();
		await travel(3);
		const res = await getToken(app);
		expect(res.status).toBe(200);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
		expect(await sim.tokenCalls(app)).toBe(2);
	});
});

it("refuses an expires_in under 60 s (a broken relay) instead of storing a token that is due at once", async () => {
	const app = next("stable");
	await sim.configure(app, { lifetime_s: 30 });
	const res = await getToken(app);
	expect(res.status).toBe(503);
	expect(res.body.message).toMatch(/expires_in/);
});

it("classic: after a call that got no answer, promises the current token only 300 s (WeChat may have minted one)", async () => {
	const app = next("classic");
	const first = await getToken(app);
	expect(first.body.expires_in).toBe(6600);
	await sim.fault({ appid: app.appid, kind: "http", status: 502 });
	await refuseNextProbe(app);
	expect((await invalidate(app, first.body.access_token as string)).status).toBe(503);
	const after = await getToken(app);
	expect(after.body.access_token).toBe(first.body.access_token);
	expect(after.body.expires_in).toBeLessThanOrEqual(300);
});

describe.each(["stable", "classic"] as const)("%s: a failed refresh of a due token", (mode) => {
	it("keeps serving the current token, with its true remaining lifetime, and retries later", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await travel(7200 - 250); // due in both modes, still accepted by WeChat
		await sim.fault({ appid: app.appid, kind: "http", status: 502 });
		for (let i = 0; i < 5; i++) {
			const res = await getToken(app);
			expect(res.status).toBe(200);
			expect(res.body.access_token).toBe(first);
			expect(res.body.expires_in).toBeLessThanOrEqual(250);
		}
		await settle(app);
		expect(await sim.check(first)).toBe(0);
		expect(await sim.tokenCalls(app)).toBe(1 + MAX_ATTEMPTS); // one failed refresh, then backoff

		await sim.clearFaults();
		await travel(3);
		expect((await getToken(app)).body.access_token).toBe(first); // answered at once, refreshed behind
		await settle(app);
		const res = await getToken(app);
		expect(res.body.access_token).not.toBe(first);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
	});

	it("answers an invalidation with 502 and leaves the current token in place", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await sim.fault({ appid: app.appid, kind: "errcode", errcode: -1 });
		await refuseNextProbe(app);
		const res = await invalidate(app, first);
		expect(res.status).toBe(502);
		expect(res.body.wechat_errcode).toBe(-1);
		expect((await getToken(app)).body.access_token).toBe(first);
	});
});
