/** The quota guard: forced refreshes stop at a share of the daily quota; scheduled ones go on. */
import { expect, it } from "vitest";
import { nextQuotaReset } from "../../src/core/usage";
import { appsFor, QUOTA_FILE_DAILY_QUOTA } from "./fixtures";
import { alertsFor, getToken, invalidate, refuseNextProbe, runCron, sim, travel } from "./helpers";

const next = appsFor("quota");
const GUARD = Math.floor(QUOTA_FILE_DAILY_QUOTA * 0.5); // QUOTA_GUARD_SHARE's default

it("refuses invalidation-triggered refreshes with 429 once the guard's share is spent, but not scheduled ones", async () => {
	const app = next("classic");
	// A WeChat day's first second: the whole test falls on one day.
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
	let token = (await getToken(app)).body.access_token as string;
	for (let used = 1; used < GUARD; used++) {
		await travel(31);
		await refuseNextProbe(app);
		token = (await invalidate(app, token)).body.access_token as string;
	}
	expect(await sim.tokenCalls(app)).toBe(GUARD);

	await travel(31);
	const refused = await invalidate(app, token);
	expect(refused.status).toBe(429);
	expect(refused.body.message).toMatch(new RegExp(`${GUARD} of the app's ${QUOTA_FILE_DAILY_QUOTA} daily token calls`));
	expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
	expect(await sim.tokenCalls(app)).toBe(GUARD);

	await travel(7200 - 900);
	await runCron([app]);
	expect(await sim.tokenCalls(app)).toBe(GUARD + 1);
	expect((await getToken(app)).body.access_token).not.toBe(token);

	const [alert, ...rest] = await alertsFor(app);
	expect(rest).toEqual([]);
	expect(alert?.content).toMatch(/daily quota nearly spent/);

	// The WeChat day turns: the incident closes at the next cron run.
	await travel(Math.ceil((nextQuotaReset(Date.now()) - Date.now()) / 1_000) + 1);
	await runCron([app]);
	expect((await alertsFor(app)).map((a) => /recovered/.test(a.content))).toEqual([false, true]);
});
