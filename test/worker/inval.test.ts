import { describe, expect, it } from "vitest";
import { nextQuotaReset } from "../../src/core/usage";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { call, getToken, invalidate, refuseNextProbe, sim, travel } from "./helpers";

const next = appsFor("inval");

describe.each(["stable", "classic"] as const)("%s mode", (mode) => {
	/** An app whose first token a client reported and the broker replaced, the probe agreeing WeChat refuses it. */
	async function replacedOnce(): Promise<{ app: TestApp; first: string; second: string }> {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await refuseNextProbe(app);
		const second = (await invalidate(app, first)).body.access_token as string;
		return { app, first, second };
	}

	it("refreshes once when a client reports the current token, and WeChat accepts the new one", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await refuseNextProbe(app);
		const res = await invalidate(app, first);
		expect(res.status).toBe(200);
		expect(res.body.access_token).not.toBe(first);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
		expect((await getToken(app)).body.access_token).toBe(res.body.access_token);
	});

	it("answers a report of an older token with the current one and no upstream call", async () => {
		const { app, first, second } = await replacedOnce();
		const calls = await sim.calls(app);

		for (const stale of [first, "a-token-this-broker-never-issued"]) {
			const res = await invalidate(app, stale);
			expect(res.status).toBe(200);
			expect(res.body.access_token).toBe(second);
		}
		expect(await sim.calls(app)).toEqual(calls);
	});

	it("turns 50 concurrent reports of the current token into one refresh", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		const before = await sim.calls(app);
		await refuseNextProbe(app); // one probe for all 50
		const responses = await Promise.all(Array.from({ length: 50 }, () => invalidate(app, first)));
		expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
		const tokens = new Set(responses.map((r) => r.body.access_token));
		expect(tokens.size).toBe(1);
		expect(tokens.has(first)).toBe(false);
		const after = await sim.calls(app);
		// Classic: one /cgi-bin/token call. Stable: one normal call (same token back) and one forced call.
		expect(after.token - before.token).toBe(mode === "classic" ? 1 : 0);
		expect(after.stable_token_force - before.stable_token_force).toBe(mode === "stable" ? 1 : 0);
	});

	it("refuses a second forced refresh within 30 s with 429 and Retry-After, then allows it", async () => {
		const { app, second } = await replacedOnce();
		const calls = await sim.calls(app);

		const refused = await invalidate(app, second);
		expect(refused.status).toBe(429);
		expect(refused.body.error).toBe("rate_limited");
		expect(Number(refused.headers.get("retry-after"))).toBe(30);
		expect(await sim.calls(app)).toEqual(calls);

		await travel(31);
		await refuseNextProbe(app);
		const allowed = await invalidate(app, second);
		expect(allowed.status).toBe(200);
		expect(allowed.body.access_token).not.toBe(second);
	});
});

it("stable: picks up a token rotated out of band without spending a force refresh", async () => {
	const app = next("stable");
	const first = (await getToken(app)).body.access_token as string;
	await sim.rotate(app);
	expect(await sim.check(first)).toBe(40001);

	const res = await invalidate(app, first);
	expect(res.status).toBe(200);
	expect(await sim.check(res.body.access_token as string)).toBe(0);
	expect((await sim.calls(app)).stable_token_force).toBe(0);
});

it("stable: force-refreshes a token WeChat still calls current, revoking it", async () => {
	const app = next("stable");
	const first = (await getToken(app)).body.access_token as string;
	await refuseNextProbe(app); // WeChat refuses it, yet stable_token still returns it: only a force helps
	const res = await invalidate(app, first);
	expect((await sim.calls(app)).stable_token_force).toBe(1);
	expect(await sim.check(first)).toBe(40001);
	expect(await sim.check(res.body.access_token as string)).toBe(0);
});

it("classic: recovers from another server's fetch, which revokes the broker's token 300 s later", async () => {
	const app = next("classic");
	const first = (await getToken(app)).body.access_token as string;
	await sim.rotate(app);
	await travel(301);
	expect(await sim.check(first)).toBe(40001);
	const res = await invalidate(app, first);
	expect(res.status).toBe(200);
	expect(await sim.check(res.body.access_token as string)).toBe(0);
});

it("stable: refuses the 21st forced refresh of a WeChat day, as WeChat allows 20", async () => {
	const app = next("stable");
	// Start the test at a WeChat day's first second, so the 20 refreshes (10 min) fall on one day.
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
	await getToken(app);
	for (let i = 0; i < 20; i++) {
		const res = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
		expect(res.status, `forced refresh ${i + 1}`).toBe(200);
		await travel(31);
	}
	const refused = await call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
	expect(refused.status).toBe(429);
	expect(refused.body.message).toMatch(/20 forced/);
	expect((await sim.calls(app)).stable_token_force).toBe(20);
});
