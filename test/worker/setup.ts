/**
 * Runs around every worker test:
 * - the pause between upstream attempts is recorded instead of slept (`retryPausesTaken`);
 * - Date is faked (and only Date), so tests move time with `travel()` instead of sleeping; the Durable
 *   Object runs in the same isolate and sees the same clock. It starts CLOCK_AHEAD_MS ahead of the real
 *   clock, at the same time of day in every run (time-of-day.ts), so every alarm an object arms lies months ahead for workerd, which keeps real time: a backoff's
 *   2-s alarm must not fire for real in the middle of a test. Tests deliver alarms themselves
 *   (runDurableObjectAlarm; helpers.ts deliverDueAlarms).
 * - every console line is captured and checked: no AppSecret and nothing that looks like a full token may
 *   ever reach a log line;
 * - what a test did to WeChat is undone after it, whether it passed or not: upstream interceptions it left
 *   in place are lifted and the faults it set on the simulator cleared (helpers.ts, resetUpstream).
 */
import { afterEach, beforeEach, expect, vi } from "vitest";
import { retryPauses } from "../../src/wechat/retry";
import { shiftToTestTimeOfDay } from "../time-of-day";
import { allSecrets } from "./fixtures";
import { resetUpstream } from "./helpers";
import { findLeaks } from "./leaks";

export const logLines: string[] = [];
/** The pauses the broker took between upstream attempts, in ms: recorded, not slept (see retry.ts). */
export const retryPausesTaken: number[] = [];

retryPauses.sleep = async (ms) => {
	retryPausesTaken.push(ms);
};
const secrets = allSecrets();

for (const level of ["log", "info", "warn", "error", "debug"] as const) {
	console[level] = (...args: unknown[]) => {
		logLines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
	};
}

/**
 * Whole days, so China-time days (quota resets) fall where they do on the simulator's clock, plus the shift
 * to the runs' fixed time of day (time-of-day.ts), which the simulator's clock takes too.
 */
export const CLOCK_AHEAD_MS = 400 * 86_400_000 + shiftToTestTimeOfDay(Date.now());

beforeEach(() => {
	vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + CLOCK_AHEAD_MS });
});

afterEach(async () => {
	await resetUpstream();
	vi.restoreAllMocks();
	vi.useRealTimers();
	retryPausesTaken.length = 0;
	const leaks = logLines.flatMap((line) => findLeaks(line, secrets));
	logLines.length = 0;
	expect(leaks, "log lines must not carry secrets or full tokens").toEqual([]);
});
