// @ts-check
/**
 * The open-platform scenario's arithmetic (bench/open-figures.mjs) and the plan both refresh scenarios
 * share (bench/refresh-run.mjs): component-token calls per lifetime, the refreshes a plan calls for, and
 * the check of a burst of ticket pushes' answers against the broker's rule.
 */
import { describe, expect, it } from "vitest";
import { watchGrantLog } from "../../bench/grant-run.mjs";
import { callsPerWindow, callTimes, checkTicketAnswers, openLifetimes, parentTokenFigures, wecomLifetimes } from "../../bench/open-figures.mjs";
import { alarmFigures, logEntry, plannedRefreshes } from "../../bench/refresh-run.mjs";

describe("component-token calls per lifetime", () => {
	it("reads each call's moment off a sampled counter, several at one sample when it rose by several", () => {
		expect(callTimes([{ at: 0, count: 0 }, { at: 1, count: 1 }, { at: 2, count: 1 }, { at: 3, count: 3 }])).toEqual([1, 3, 3]);
		// Calls before the first sample are not this run's.
		expect(callTimes([{ at: 0, count: 5 }, { at: 1, count: 6 }])).toEqual([1]);
		expect(callTimes([])).toEqual([]);
	});

	it("counts the calls in each whole window, leaving out the window the end cuts short", () => {
		// A refresh every 7/8 of a 60 s lifetime (52.5 s): windows of one interval centred on the plan hold one each.
		const times = [0, 52_500, 105_000, 157_500, 210_000];
		expect(callsPerWindow(times, -26_250, 230_000, 52_500)).toEqual([1, 1, 1, 1]);
		expect(callsPerWindow(times, -26_250, 240_000, 52_500)).toEqual([1, 1, 1, 1, 1]);
		// Lifetime windows from the first call hold two now and then (8/7 a lifetime on average).
		expect(callsPerWindow(times, 0, 240_000, 60_000)).toEqual([2, 1, 1, 1]);
		// A stampede (one call per authorizer) shows as the window's count, whatever N.
		expect(callsPerWindow([...times, ...Array(500).fill(70_000)], -26_250, 130_000, 52_500)).toEqual([1, 501]);
		expect(callsPerWindow(times, 0, 52_499, 52_500)).toEqual([]);
	});

	it("plans one refresh per whole interval since each credential's first value", () => {
		expect(plannedRefreshes([0, 10_000, 100_000], 100_000, 50_000)).toBe(2 + 1 + 0);
		expect(plannedRefreshes([200_000], 100_000, 50_000)).toBe(0);
	});
});

describe("lifetimes and log lines", () => {
	it("gives authorizer tokens 300 s up to 3,000 and 900 s above, the component 60 s, unless told", () => {
		expect(openLifetimes(1_000, {})).toEqual({ authorizerS: 300, componentS: 60 });
		expect(openLifetimes(10_000, {})).toEqual({ authorizerS: 900, componentS: 60 });
		expect(openLifetimes(10_000, { BENCH_OPEN_LIFETIME_S: "600", BENCH_OPEN_COMPONENT_LIFETIME_S: "90" })).toEqual({ authorizerS: 600, componentS: 90 });
	});

	it("gives a suite's corp tokens the grant lifetime and its suite token 60 s unless told otherwise", () => {
		expect(wecomLifetimes(1_000, {})).toEqual({ corpS: 300, suiteS: 60 });
		expect(wecomLifetimes(3_001, {})).toEqual({ corpS: 900, suiteS: 60 });
		expect(wecomLifetimes(10_000, { BENCH_WECOM_LIFETIME_S: "1800", BENCH_WECOM_SUITE_LIFETIME_S: "120" })).toEqual({ corpS: 1800, suiteS: 120 });
	});

	it("sums a parent token's calls per refresh interval and lifetime, beside its plan and the naive per-grant fetch", () => {
		// A suite token planned for its 60 s expiry: one call a minute from 1 s, sampled every second, over 4 minutes.
		const samples = Array.from({ length: 241 }, (_, s) => ({ at: s * 1_000, count: s === 0 ? 0 : 1 + Math.floor((s - 1) / 60) }));
		const figures = parentTokenFigures({ samples, calls: 4, lifetimeS: 60, intervalMs: 60_000, endedAt: 241_000, naiveCalls: 4_000 });
		// The plan at the end: the first call, then one each whole minute after it (the fifth due at 241 s).
		expect(figures).toMatchObject({ calls: 4, planned: 5, lifetimes: 4, calls_per_lifetime: 1, per_refresh_interval: [1, 1, 1, 1], intervals_with_one_call: 4, per_refresh_interval_max: 1, naive_calls: 4_000, naive_calls_per_lifetime: 1_000 });
		expect(parentTokenFigures({ samples, calls: 4, lifetimeS: 60, intervalMs: 60_000, endedAt: 240_999, naiveCalls: 0 }).planned).toBe(4);
		// A second call a second after each expiry (WeCom handed back the expiring token) shows as 2 per interval.
		const twice = samples.map((s) => ({ at: s.at, count: s.count * 2 - (s.at > 0 && (s.at / 1_000 - 1) % 60 === 0 ? 1 : 0) }));
		expect(parentTokenFigures({ samples: twice, calls: 8, lifetimeS: 60, intervalMs: 60_000, endedAt: 241_000, naiveCalls: 0 }).per_refresh_interval).toEqual([2, 2, 2, 2]);
		// No call at all (a run too short): no lifetime, no ratio.
		expect(parentTokenFigures({ samples: [{ at: 0, count: 0 }], calls: 0, lifetimeS: 60, intervalMs: 60_000, endedAt: 1_000, naiveCalls: 0 })).toMatchObject({ lifetimes: 0, calls_per_lifetime: null, per_refresh_interval: [] });
	});

	it("reads exchanges, alarms (a parent's own apart), watchdog runs and errcodes off the Worker's log", () => {
		const log = watchGrantLog({ exchangedEvent: "install_code_exchanged", keyOf: (entry) => String(entry.corpid) });
		log.onLine('{"level":"info","event":"install_code_exchanged","suite_id":"s","corpid":"ww1","appid":"ww1-1000001"}');
		log.onLine('{"level":"info","event":"install_code_exchanged","suite_id":"s","corpid":"ww1","appid":"ww1-1000009"}');
		log.onLine('{"level":"info","event":"alarm_rang","appid":"ww1-1000001","delay_ms":12}');
		log.onLine('{"level":"info","event":"alarm_rang","appid":"suite:s","delay_ms":3}');
		log.onLine('{"level":"info","event":"watchdog_run","subrequests":4}');
		log.onLine('{"level":"warn","event":"alarm_no_progress","appid":"ww1-1000001","retry_in_s":5}');
		log.onLine('{"level":"warn","event":"refresh_failed","errcode":42009} {"errcode":0}');
		log.onLine("Ready on http://127.0.0.1:1234");
		expect([...log.appidOf]).toEqual([["ww1", "ww1-1000001"]]);
		expect(log.alarms.map((a) => [a.delay, a.parent])).toEqual([[12, false], [3, true]]);
		expect(log.watchdogRuns.map((r) => r.subrequests)).toEqual([4]);
		expect(log.noProgress).toBe(1);
		expect([...log.errcodes]).toEqual([[42009, 1]]);
	});

	it("reads a Worker's JSON log line and ignores anything else; summarises alarm delays", () => {
		expect(logEntry('workerd: {"level":"info","event":"alarm_rang","delay_ms":3}')).toEqual({ level: "info", event: "alarm_rang", delay_ms: 3 });
		expect(logEntry("Ready on http://127.0.0.1:1234")).toBeNull();
		expect(logEntry("{not json")).toBeNull();
		expect(alarmFigures([0, 10, 2_000])).toMatchObject({ count: 3, late: 1, delay_p50_ms: 10, delay_max_ms: 2_000 });
		expect(alarmFigures([])).toMatchObject({ count: 0, late: 0, delay_p50_ms: null, delay_max_ms: null });
	});
});

describe("a burst of ticket pushes, checked against the rule", () => {
	/** @param {number} createTime @param {number} sentAt @param {number} answeredAt @param {number} status */
	const answer = (createTime, sentAt, answeredAt, status) => ({ createTime, sentAt, answeredAt, status, body: status === 200 ? "success" : '{"error":"conflict"}' });

	it("accepts `success` for a push not older than what was kept, and 409 for one older than something sent before its answer", () => {
		const answers = [answer(105, 0, 1, 200), answer(103, 2, 3, 409), answer(110, 2, 4, 200), answer(100, 4, 5, 409)];
		expect(checkTicketAnswers(104, answers)).toMatchObject({ accepted: 2, refused_older: 2, wrong: 0, newest_create_time: 110 });
		// Two in flight at once: either order at the object is right.
		expect(checkTicketAnswers(100, [answer(102, 0, 2, 409), answer(103, 0, 2, 200)]).wrong).toBe(0);
		expect(checkTicketAnswers(100, [answer(102, 0, 2, 200), answer(103, 0, 2, 200)]).wrong).toBe(0);
		// The same second as the kept ticket: answered, kept as it is.
		expect(checkTicketAnswers(100, [answer(100, 0, 1, 200)]).accepted).toBe(1);
	});

	it("flags a 409 with nothing newer around, a `success` for a push older than one already stored, and any other answer", () => {
		expect(checkTicketAnswers(100, [answer(101, 0, 1, 409)])).toMatchObject({ wrong: 1, first_wrong: { createTime: 101 } });
		expect(checkTicketAnswers(100, [answer(105, 0, 1, 200), answer(103, 2, 3, 200)])).toMatchObject({ accepted: 1, wrong: 1, first_wrong: { createTime: 103 } });
		expect(checkTicketAnswers(100, [answer(99, 0, 1, 200)]).wrong).toBe(1);
		expect(checkTicketAnswers(100, [{ ...answer(101, 0, 1, 200), body: "ok" }]).wrong).toBe(1);
		expect(checkTicketAnswers(100, [answer(101, 0, 1, 500)]).wrong).toBe(1);
		expect(checkTicketAnswers(null, [answer(5, 0, 1, 200)])).toMatchObject({ accepted: 1, newest_create_time: 5 });
	});
});
