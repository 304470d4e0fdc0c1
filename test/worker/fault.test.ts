/**
 * Fault injection: for each kind of trouble, what clients receive, how many upstream calls were made,
 * that the token in storage and in KV is never lost or replaced by garbage, and that exactly one alert
 * and one recovery go out per incident.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { edgeKey, STATE_KEY } from "../../src/core/storage-keys";
import type { CredentialRecord } from "../../src/core/lifetime";
import { MAX_ATTEMPTS } from "../../src/wechat/retry";
import { appsFor, type TestApp } from "./fixtures";
import { alertsFor, call, getToken, invalidate, refuseNextProbe, runCron, settle, sim, statusEntry, statusOf, travel } from "./helpers";
import { findLeaks } from "./leaks";

const next = appsFor("fault");
/** Past the longest first backoff (2 s) and the next cron tick. */
const CRON_TICK_S = 61;

/** The token as the object stores it and as the edge copy holds it. */
async function heldTokens(app: TestApp): Promise<{ stored: string | undefined; edge: string | undefined }> {
	const state = await runInDurableObject(authority(env, app.appid), (_o, s) => s.storage.get<{ slots: { token?: { current: CredentialRecord | null } } }>(STATE_KEY));
	const edge = await env.TOKEN_CACHE.get<CredentialRecord>(edgeKey(app.appid), "json");
	return { stored: state?.slots.token?.current?.value, edge: edge?.value };
}

async function expectOneIncident(app: TestApp, reason: RegExp): Promise<void> {
	const alerts = await alertsFor(app);
	expect(alerts.map((a) => a.content.match(/is unhealthy|recovered/)?.[0])).toEqual(["is unhealthy", "recovered"]);
	expect(alerts[0]!.content).toMatch(reason);
	expect(alerts.every((a) => a.msgtype === "text")).toBe(true);
	expect(alerts.flatMap((a) => findLeaks(a.content, [app.secret]))).toEqual([]);
}

describe.each(["stable", "classic"] as const)("%s: WeChat down during a due refresh", (mode) => {
	it("keeps serving the valid token, alerts once, retries by cron, recovers once", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await travel(7200 - 250); // due in both modes, accepted by WeChat for 250 s more
		await sim.fault({ appid: app.appid, kind: "http", status: 503 });

		for (let i = 0; i < 5; i++) expect((await getToken(app)).body.access_token).toBe(first);
		await settle(app); // the read's background refresh
		for (let run = 0; run < 3; run++) {
			await travel(CRON_TICK_S);
			await runCron([app]);
			expect((await getToken(app)).body.access_token).toBe(first);
		}
		expect(await sim.tokenCalls(app)).toBe(1 + 4 * MAX_ATTEMPTS); // the read's refresh, then one per cron run
		expect(await heldTokens(app)).toEqual({ stored: first, edge: first });
		expect(await sim.check(first)).toBe(0);

		await sim.clearFaults();
		await travel(CRON_TICK_S);
		await runCron([app]);
		const second = (await getToken(app)).body.access_token as string;
		expect(second).not.toBe(first);
		expect(await sim.check(second)).toBe(0);
		expect(await heldTokens(app)).toEqual({ stored: second, edge: second });
		await expectOneIncident(app, /HTTP 503/);
	});
});

it("a hang longer than the timeout: 503 after bounded attempts, then recovery", async () => {
	const app = next("stable");
	await sim.fault({ appid: app.appid, kind: "hang" });
	const res = await getToken(app);
	expect(res.status).toBe(503);
	expect(res.body.message).toMatch(/did not answer within 300 ms/);
	expect(await sim.tokenCalls(app)).toBe(MAX_ATTEMPTS);
	expect(await heldTokens(app)).toEqual({ stored: undefined, edge: undefined });

	await sim.clearFaults();
	await travel(3);
	const ok = await getToken(app);
	expect(ok.status).toBe(200);
	expect(await sim.check(ok.body.access_token as string)).toBe(0);
	await expectOneIncident(app, /did not answer/);
});

it("45009 mid-day: the valid token keeps serving, the error says when the quota resets, one alert", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await travel(7200 - 250);
	await sim.fault({ appid: app.appid, kind: "errcode", errcode: 45009 });

	expect((await getToken(app)).body.access_token).toBe(first);
	await settle(app);
	expect(await sim.tokenCalls(app)).toBe(2); // not retried: waiting seconds does not refill a daily quota
	await refuseNextProbe(app);
	const reported = await invalidate(app, first);
	expect(reported.status).toBe(502);
	expect(reported.body.wechat_errcode).toBe(45009);
	expect(reported.body.message).toMatch(/00:00 China time.*clear_quota.*next reset \d{4}-/);
	expect(await heldTokens(app)).toEqual({ stored: first, edge: first });

	await sim.clearFaults();
	await travel(CRON_TICK_S);
	await runCron([app]);
	expect((await getToken(app)).body.access_token).not.toBe(first);
	await expectOneIncident(app, /45009/);
});

describe.each(["stable", "classic"] as const)("%s: a token rotated out of band", (mode) => {
	it("turns a storm of 100 invalidation reports into one upstream call, no force, no alert", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await sim.rotate(app); // another server holding the secret
		if (mode === "classic") await travel(301); // WeChat's 300 s overlap ends
		expect(await sim.check(first)).toBe(40001);
		const before = await sim.calls(app);

		const storm = await Promise.all(Array.from({ length: 100 }, () => invalidate(app, first)));
		expect(new Set(storm.map((r) => r.status))).toEqual(new Set([200]));
		const tokens = new Set(storm.map((r) => r.body.access_token as string));
		expect(tokens.size).toBe(1);
		expect(await sim.check([...tokens][0]!)).toBe(0);
		const after = await sim.calls(app);
		expect((after.token + after.stable_token) - (before.token + before.stable_token)).toBe(1);
		expect(after.stable_token_force).toBe(0);
		expect(await alertsFor(app)).toEqual([]);
	});
});

it("a reset AppSecret: the valid token keeps serving, 40125 is not retried, one alert naming the fix", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await sim.configure(app, { secret: "reset-by-an-admin-in-the-console" });
	await travel(7200 - 250);

	expect((await getToken(app)).body.access_token).toBe(first);
	await settle(app);
	for (let run = 0; run < 3; run++) {
		await travel(CRON_TICK_S);
		await runCron([app]);
	}
	// The read's refresh and one per cron run after its backoff: never retried at once, never in a loop.
	expect(await sim.tokenCalls(app)).toBe(1 + 1 + 3);
	expect(await heldTokens(app)).toEqual({ stored: first, edge: first });
	const entry = await statusEntry(app.appid);
	expect(entry?.last_error).toMatchObject({ wechat_errcode: 40125 });
	expect(entry?.incident?.reason).toMatch(/update the secret \(WECHAT_APPS, or PUT \/admin\/apps/);

	await sim.configure(app, { secret: app.secret }); // the operator puts the right secret back
	await travel(300);
	await runCron([app]);
	expect((await getToken(app)).body.access_token).not.toBe(first);
	await expectOneIncident(app, /40125.*WECHAT_APPS/);
});

it("KV unavailable: reads fall back to the object", async () => {
	const app = next("stable");
	const broken = new Proxy(env.TOKEN_CACHE, {
		get: () => () => Promise.reject(new Error("KV is down")),
	});
	const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
	const { default: worker } = await import("../../src/index");
	for (let i = 0; i < 3; i++) {
		const ctx = createExecutionContext();
		const res = await worker.fetch(new Request(`https://broker.test/token?appid=${app.appid}`, {
			headers: { authorization: "Bearer all-apps-key-0123456789abcdef" },
		}), { ...env, TOKEN_CACHE: broken }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(200);
		const body = (await res.json()) as { access_token: string };
		expect(await sim.check(body.access_token)).toBe(0);
	}
	expect(await sim.tokenCalls(app)).toBe(1);
});

it("a secret fixed by the operator ends the backoff: the next alarm or watchdog poke retries at once", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await sim.configure(app, { secret: "reset-by-an-admin-in-the-console" });
	await travel(7200 - 250); // due
	for (let run = 0; run < 3; run++) {
		await travel(CRON_TICK_S);
		await runCron([app]);
	}
	const failedCalls = await sim.tokenCalls(app);
	expect((await statusOf(app)).last_error).toMatchObject({ wechat_errcode: 40125 });

	// `wrangler secret put WECHAT_APPS` with the new secret: the object sees the new configuration.
	const fixed = JSON.parse(env.WECHAT_APPS!).map((a: { appid: string }) => (a.appid === app.appid ? { ...a, secret: "reset-by-an-admin-in-the-console" } : a));
	await runInDurableObject(authority(env, app.appid), (instance) => {
		(instance as unknown as { env: typeof env }).env = { ...env, WECHAT_APPS: JSON.stringify(fixed) };
	});
	await authority(env, app.appid).wake(app.appid); // no time has passed: only the fix can explain a call now
	expect(await sim.tokenCalls(app)).toBe(failedCalls + 1);
	expect((await statusOf(app)).token).not.toBeNull();
	expect((await statusOf(app)).last_error).toMatchObject({ wechat_errcode: 40125 }); // history, not state
	await sim.configure(app, { secret: app.secret });
	void first;
});
