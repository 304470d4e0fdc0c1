// @ts-check
/** The bench refuses to report figures made of failed requests, and a partial run never replaces results.json. */
import { describe, expect, it } from "vitest";
import { BenchFailure, MAX_FAILED_SHARE, requireSuccess } from "../../bench/failures.mjs";
import { DAY_TOKEN_LIFETIME_S } from "../../bench/scenarios/day.mjs";
import { readSettings } from "../../bench/settings.mjs";

/** @param {() => void} run */
function failure(run) {
	try {
		run();
	} catch (error) {
		expect(error).toBeInstanceOf(BenchFailure);
		return /** @type {Error} */ (error).message;
	}
	throw new Error("no BenchFailure");
}

describe("requireSuccess", () => {
	it("passes rows without failures, or with a stray one under the threshold", () => {
		requireSuccess("day", [{ label: "a", requests: 1000, failed: 0 }, { label: "b", requests: 1000, failed: 1000 * MAX_FAILED_SHARE }]);
	});

	it("stops on a row whose requests failed, naming the scenario, the row, the count and the first error", () => {
		const message = failure(() => requireSuccess("compressed day", [
			{ label: "broker (classic)", requests: 4512, failed: 4512, firstError: 'HTTP 503 {"error":"wechat_unreachable"}' },
			{ label: "(a) Redis lazy cache", requests: 576, failed: 0 },
		]));
		expect(message).toMatch(/^compressed day: requests failed/);
		expect(message).toContain('broker (classic): 4512 of 4512 requests failed; first: HTTP 503 {"error":"wechat_unreachable"}');
		expect(message).not.toContain("(a) Redis lazy cache");
	});

	it("stops on failures of a row that has no successful request to compare with", () => {
		expect(failure(() => requireSuccess("stampede", [{ label: "x", requests: 0, failed: 3 }]))).toContain("x: 3 of 0");
	});
});

describe("bench settings", () => {
	it("writes a partial run (--only) beside, never over, results.json", () => {
		const partial = readSettings(["--only", "day"], {});
		expect([...partial.only]).toEqual(["day"]);
		expect(partial.partial).toBe(true);
		expect(partial.resultsPath).not.toBe("bench/results.json");
		const full = readSettings([], {});
		expect(full.partial).toBe(false);
		expect(full.resultsPath).toBe("bench/results.json");
	});

	it("refuses an unknown scenario with the list of known ones", () => {
		expect(() => readSettings(["--only", "day,nightly"], {})).toThrow(/--only must list scenarios out of throughput, gateway, stampede, storm, day/);
	});

	it("compresses the day into tokens the broker accepts (at least 60 s) and at least two of their lifetimes", () => {
		expect(DAY_TOKEN_LIFETIME_S).toBeGreaterThanOrEqual(60);
		expect(readSettings([], {}).daySeconds).toBeGreaterThanOrEqual(2 * DAY_TOKEN_LIFETIME_S);
		expect(() => readSettings(["--day-seconds", "45"], {})).toThrow(/--day-seconds must be a number from 120/);
	});
});
