import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authority } from "../../src/authority/stub";
import { refreshAheadS } from "../../src/core/lifetime";
import { appsFor } from "./fixtures";
import { getToken, runCron, sim, travel } from "./helpers";

const next = appsFor("cron");
const LIFETIME_S = 7200;

describe.each(["stable", "classic"] as const)("%s mode", (mode) => {
	it("fetches a token for an app that has none, with no client traffic", async () => {
		const app = next(mode);
		await runCron([app]);
		expect(await sim.tokenCalls(app)).toBe(1);
		await getToken(app);
		expect(await sim.tokenCalls(app)).toBe(1);
	});

	it("leaves a fresh token alone, also when the platform delivers its alarm early or twice", async () => {
		const app = next(mode);
		const first = await getToken(app);
		await travel(600);
		await runCron([app]);
		await runCron([app]);
		await runDurableObjectAlarm(authority(env, app.appid));
		await runDurableObjectAlarm(authority(env, app.appid));
		expect(await sim.tokenCalls(app)).toBe(1);
		expect((await getToken(app)).body.access_token).toBe(first.body.access_token);
	});

	it("refreshes a due token, and the old one keeps working for clients that still hold it", async () => {
		const app = next(mode);
		const first = (await getToken(app)).body.access_token as string;
		await travel(LIFETIME_S - refreshAheadS(mode, LIFETIME_S) + 1);
		await runCron([app]);
		expect(await sim.tokenCalls(app)).toBe(2);
		const second = (await getToken(app)).body.access_token as string;
		expect(second).not.toBe(first);
		expect(await sim.check(second)).toBe(0);
		expect(await sim.check(first)).toBe(0);
		await runCron([app]);
		expect(await sim.tokenCalls(app)).toBe(2);
	});
});

it("refreshes every due app in one run and leaves the fresh ones alone", async () => {
	const due = [next("stable"), next("classic")];
	for (const app of due) await getToken(app);
	await travel(LIFETIME_S - 200);
	const fresh = next("classic");
	await getToken(fresh);
	await runCron([...due, fresh]);
	expect(await Promise.all(due.map((app) => sim.tokenCalls(app)))).toEqual([2, 2]);
	expect(await sim.tokenCalls(fresh)).toBe(1);
});
