import { describe, expect, it } from "vitest";
import { appsFor } from "./fixtures";
import { getToken, sim } from "./helpers";

const next = appsFor("cold");

describe.each(["stable", "classic"] as const)("%s mode", (mode) => {
	it("fetches one token from WeChat on a cold start, and WeChat accepts it", async () => {
		const app = next(mode);
		// An earlier file's watchdog run may have started this app's chain, and its clock travel made that
		// token due: what this read costs is what is checked (the test after this one checks a run's total).
		const before = await sim.tokenCalls(app);
		const res = await getToken(app);
		expect(res.status).toBe(200);
		expect(Object.keys(res.body).sort()).toEqual(["access_token", "expires_in"]);
		expect(await sim.check(res.body.access_token as string)).toBe(0);
		expect(await sim.tokenCalls(app) - before).toBeLessThanOrEqual(1);
		expect(await sim.tokenCalls(app)).toBeGreaterThanOrEqual(1);
	});

	it("answers 100 concurrent cold reads with one upstream call and one token", async () => {
		const app = next(mode);
		const responses = await Promise.all(Array.from({ length: 100 }, () => getToken(app)));
		expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
		expect(new Set(responses.map((r) => r.body.access_token)).size).toBe(1);
		expect(await sim.tokenCalls(app)).toBe(1);
	});

	it("serves hot reads without calling WeChat", async () => {
		const app = next(mode);
		const first = await getToken(app);
		for (let i = 0; i < 20; i++) {
			expect((await getToken(app)).body.access_token).toBe(first.body.access_token);
		}
		expect(await sim.tokenCalls(app)).toBe(1);
	});
});
