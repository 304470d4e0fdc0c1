/**
 * Runs around every worker test:
 * - Date is faked (and only Date), so tests move time with `travel()` instead of sleeping; the Durable
 *   Object runs in the same isolate and sees the same clock.
 * - every console line is captured and checked: no AppSecret and nothing that looks like a full token may
 *   ever reach a log line.
 */
import { afterEach, beforeEach, expect, vi } from "vitest";
import { allTestApps, allWeComApps } from "./fixtures";
import { findLeaks } from "./leaks";

export const logLines: string[] = [];
const secrets = [...allTestApps(), ...allWeComApps()].map((a) => a.secret);

for (const level of ["log", "info", "warn", "error", "debug"] as const) {
	console[level] = (...args: unknown[]) => {
		logLines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
	};
}

beforeEach(() => {
	vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
});

afterEach(() => {
	vi.useRealTimers();
	const leaks = logLines.flatMap((line) => findLeaks(line, secrets));
	logLines.length = 0;
	expect(leaks, "log lines must not carry secrets or full tokens").toEqual([]);
});
