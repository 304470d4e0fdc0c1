/**
 * The quota guard beyond invalidation: admin refreshes stop at the guard's share of the daily quota, and
 * past that share a failing WeChat gets one attempt per refresh, 300 s apart. This file's apps claim a
 * daily quota of 8 (fixtures.ts), so the guard (half of it, QUOTA_GUARD_SHARE's default) is 4 calls.
 */
import { describe, expect, it } from "vitest";
import { appsFor, KEYS, type TestApp } from "./fixtures";
import { call, getToken, runCron, sim, travel, settle } from "./helpers";

const next = appsFor("guard");
const GUARD_CALLS = 4;

/** Seconds until the next 00:00 in China (UTC+8), when WeChat's daily quotas reset. */
function secondsToChinaMidnight(now = Date.now()): number {
	const chinaMs = now + 8 * 3_600_000;
	const nextMidnightChina = (Math.floor(chinaMs / 86_400_000) + 1) * 86_400_000;
	return Math.ceil((nextMidnightChina - chinaMs) / 1_000);
}

/** Moves to a WeChat day's first second, so a test's calls all count against one day. */
async function startOfWeChatDay(): Promise<void> {
	await travel(secondsToChinaMidnight() + 1);
}

function adminRefresh(app: TestApp) {
	return call(`/token/refresh?appid=${app.appid}`, { method: "POST", key: KEYS.admin });
}

/** A token read and three admin refreshes, 31 s apart: the guard's 4 calls, all spent. */
async function spendTheGuardShare(app: TestApp): Promise<void> {
	expect((await getToken(app)).status).toBe(200);
	for (let i = 0; i < GUARD_CALLS - 1; i++) {
		await travel(31);
		expect((await adminRefresh(app)).status, `admin refresh ${i + 1}`).toBe(200);
	}
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS);
}

describe.each(["classic", "stable"] as const)("%s", (mode) => {
	it("refuses an admin refresh with 429 once 4 of the 8 daily calls are spent, until 00:00 China time", async () => {
		const app = next(mode);
		await startOfWeChatDay();
		await spendTheGuardShare(app);

		await travel(31);
		const refused = await adminRefresh(app);
		expect(refused.status).toBe(429);
		expect(refused.body.error).toBe("rate_limited");
		const endpoint = mode === "classic" ? "token" : "stable_token";
		expect(refused.body.message).toContain(`4 of the app's 8 daily ${endpoint} calls`);
		expect(refused.headers.get("retry-after")).toBe(String(secondsToChinaMidnight()));
		expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS);
	});
});

it("past the guard's share, a failing WeChat gets one attempt per refresh and 300 s between refreshes", async () => {
	const app = next("classic");
	await startOfWeChatDay();
	await spendTheGuardShare(app);
	const held = (await getToken(app)).body.access_token as string;

	// Due (7200 s token, refreshed 900 s ahead) and still accepted for 400 s.
	await travel(7200 - 400);
	await sim.fault({ appid: app.appid, kind: "http", status: 503 });
	const read = await getToken(app);
	expect(read.body.access_token).toBe(held);
	await settle(app); // the refresh the read started in the background
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS + 1); // one attempt, where a transient failure gets 3

	await travel(299);
	await runCron([app]);
	expect((await getToken(app)).body.access_token).toBe(held);
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS + 1); // 299 s: still pausing

	await travel(1);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS + 2); // 300 s: one more attempt, one call

	await travel(299);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS + 2);
	await travel(1);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(GUARD_CALLS + 3);
});
