// @ts-check
/**
 * Refresh without polling, at N apps (issue 17): the built broker in Miniflare, its own simulator whose
 * tokens live scaleLifetimeS(N), N apps registered through the admin API (each PUT fetches the app's first
 * token and arms its alarm), then two phases on workerd's real clock, where alarms fire by themselves:
 * - traffic: readers sample random apps' tokens (GET /token) and check each with WeChat's getcallbackip;
 * - quiet: no client at all, only alarms and the watchdog cron (fired every CRON_INTERVAL_MS).
 * What is reported (README "Scale"): tokens handed out that WeChat refused and reads answered 503; alarm
 * delay (how long after its planned moment each alarm ran) and how many were late; upstream token calls per
 * app per lifetime; object requests per app per hour in the quiet phase beside the every-minute poll;
 * subrequests per watchdog run; workerd's memory; the time to register N apps; /status latency; and a
 * sweep of every app's object through /status pages (the fan-out the old cron made every minute).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUTH_HEADERS, startBroker } from "../broker.mjs";
import { alarmFigures, CRON_INTERVAL_MS, logEntry, plannedRefreshes, readTokens, REFRESH_AT, sleep, workerdRssMiB } from "../refresh-run.mjs";
import { median, round } from "../stats.mjs";
import { startWorld } from "../world.mjs";

/**
 * Token lifetimes of a few minutes, so that every app refreshes twice in one run (WeChat's 7200 s would need
 * hours), and long enough that registering every app ends before the first of them refreshes: one local
 * workerd holds the databases of a few thousand objects at once, not of every object (README "Scale":
 * SQLITE_NOMEM near 3,000 resident objects), so registrations and the first alarms must not overlap. On 2
 * cores 10,000 PUTs take ~165 s, hence 300 s tokens for N > 3,000 (refreshed every 262.5 s) and 120 s below
 * (every 105 s). BENCH_SCALE_LIFETIME_S sets another (a loaded machine registers more slowly: the run stops
 * with that advice when registering outlasts the first refresh interval).
 * @param {number} n
 * @param {Record<string, string | undefined>} env
 */
export function scaleLifetimeS(n, env = process.env) {
	if (env.BENCH_SCALE_LIFETIME_S) return Number(env.BENCH_SCALE_LIFETIME_S);
	return n > 3_000 ? 300 : 120;
}
/**
 * Default phases: readers, then quiet, together 1.8 refresh intervals and a margin: every app's first
 * refresh lands in them (registering ends before it), and the second of every app registered before the
 * last 0.2 interval of registration; 1,000 and 10,000 apps then take ~15 min on 2 cores.
 * @param {number} lifetimeS
 */
export function defaultPhases(lifetimeS) {
	const interval = lifetimeS * REFRESH_AT;
	return { trafficS: Math.round(interval * 1.1), quietS: Math.round(interval * 0.7) + 10 };
}
/**
 * The old design's fan-out (the cron asked every app's object every minute) is measured on at most this
 * many objects through the /status pages: asking all 10,000 at once keeps more databases open than one
 * local workerd holds, which is the old design's problem and not the bench's to reproduce.
 */
const OLD_POLL_SAMPLE = 1_000;
/** Admin PUTs in flight while registering. */
const REGISTER_CONCURRENCY = 32;
/** /status timings: medians of this many. */
const STATUS_SAMPLES = 5;

/**
 * @param {{ n: number, trafficS: number | null, quietS: number | null, step: (message: string) => void }} options
 */
export async function measureScale({ n, step, ...phases }) {
	const SCALE_LIFETIME_S = scaleLifetimeS(n);
	const { trafficS, quietS } = phases.trafficS !== null && phases.quietS !== null ? { trafficS: phases.trafficS, quietS: phases.quietS } : defaultPhases(SCALE_LIFETIME_S);
	const world = await startWorld({ name: `scale-${n}` });
	const apps = Array.from({ length: n }, (_, i) => ({ appid: `wxscale${String(i).padStart(9, "0")}`, secret: `bench-scale-secret-${i}`, mode: /** @type {"stable" | "classic"} */ (i % 2 === 0 ? "stable" : "classic") }));
	await world.registerApps(apps.map((app) => ({ ...app, lifetime_s: SCALE_LIFETIME_S })));

	/** Upstream token calls of every app so far, each of its own mode's endpoint. */
	async function tokenCallsNow() {
		const stats = /** @type {any} */ (await (await fetch(`${world.url}/__sim/stats`)).json()).apps ?? {};
		let calls = 0;
		for (const app of apps) {
			const s = stats[app.appid];
			if (s) calls += app.mode === "classic" ? s.token : s.stable_token;
		}
		return calls;
	}

	/** @type {{ at: number, delay: number }[]} */
	const alarms = [];
	/** @type {{ at: number, subrequests: number, woken: number }[]} */
	const watchdogRuns = [];
	const persistTo = mkdtempSync(join(tmpdir(), `broker-scale-${n}-`));
	const broker = await startBroker({
		name: `scale-${n}`, apps: [], apiBase: world.url, persistTo,
		bindings: { REGISTRY_KEY: randomBytes(32).toString("base64") },
		onLine(line) {
			if (!line.includes('"event":"alarm_rang"') && !line.includes('"event":"watchdog_run"')) return;
			const entry = logEntry(line);
			if (!entry) return;
			if (entry.event === "alarm_rang" && typeof entry.delay_ms === "number") alarms.push({ at: Date.now(), delay: entry.delay_ms });
			if (entry.event === "watchdog_run") watchdogRuns.push({ at: Date.now(), subrequests: entry.subrequests, woken: entry.overdue.length + entry.started.length });
		},
	});
	const memoryIdle = workerdRssMiB();

	step(`scale N=${n}: registering ${n} apps through PUT /admin/apps (each fetches its first token)…`);
	const registerStarted = performance.now();
	/** ms; when each app got its first token, which sets its refresh plan. */
	const firstTokenAt = new Map();
	let registerFailures = 0;
	for (let i = 0; i < apps.length; i += REGISTER_CONCURRENCY) {
		await Promise.all(apps.slice(i, i + REGISTER_CONCURRENCY).map(async (app) => {
			const res = await fetch(`${broker.url}/admin/apps/${app.appid}`, { method: "PUT", headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify({ secret: app.secret, mode: app.mode }) });
			const body = /** @type {any} */ (await res.json());
			if (res.status !== 201 || !body.token?.ok) registerFailures++;
			else firstTokenAt.set(app.appid, Date.now());
		}));
	}
	const registerS = (performance.now() - registerStarted) / 1000;
	if (registerS > SCALE_LIFETIME_S * REFRESH_AT) {
		throw new Error(`scale N=${n}: registering took ${round(registerS, 0)} s, longer than the first refresh interval (${SCALE_LIFETIME_S * REFRESH_AT} s), so alarms rang while registrations arrived, which one local workerd does not hold at this N; run on a quieter machine or set BENCH_SCALE_LIFETIME_S above ${Math.ceil(registerS * 1.3 / REFRESH_AT)}`);
	}
	const runStarted = Date.now();
	const cron = setInterval(() => void broker.fireCron().catch(() => {}), CRON_INTERVAL_MS);

	step(`scale N=${n}: ${trafficS} s of readers sampling tokens, alarms refreshing…`);
	const reads = await readTokens({ brokerUrl: broker.url, world, appids: apps.map((app) => app.appid), seconds: trafficS });
	const memoryBusy = workerdRssMiB();

	step(`scale N=${n}: ${quietS} s with no client traffic (alarms and the watchdog only)…`);
	const callsBeforeQuiet = await tokenCallsNow();
	const quietStarted = Date.now();
	const alarmsBeforeQuiet = alarms.length;
	const runsBeforeQuiet = watchdogRuns.length;
	await sleep(quietS * 1000);
	const quietAlarms = alarms.length - alarmsBeforeQuiet;
	const quietRuns = watchdogRuns.slice(runsBeforeQuiet);
	const quietHours = (Date.now() - quietStarted) / 3_600_000;
	const quietRefreshes = (await tokenCallsNow()) - callsBeforeQuiet;
	clearInterval(cron);
	const runS = (Date.now() - runStarted) / 1000;

	step(`scale N=${n}: /status latency, and a sweep of every app's object through its pages…`);
	/** @param {string} path */
	async function timed(path) {
		const started = performance.now();
		const res = await fetch(`${broker.url}${path}`, { headers: AUTH_HEADERS });
		const body = /** @type {any} */ (await res.json());
		if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
		return { ms: performance.now() - started, body };
	}
	const summaryTimes = [];
	const pageTimes = [];
	let summary = null;
	for (let i = 0; i < STATUS_SAMPLES; i++) {
		const one = await timed("/status?limit=1");
		summaryTimes.push(one.ms);
		summary = one.body.summary;
		pageTimes.push((await timed("/status?limit=100")).ms);
	}
	// The old every-minute cron, one run of it on a sample: each page asks each of its apps' objects once.
	const pollStarted = performance.now();
	let polled = 0;
	/** @type {string | null} */
	let cursor = null;
	do {
		const page = await timed(`/status?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
		polled += page.body.apps.length;
		cursor = page.body.next_cursor;
	} while (cursor && polled < Math.min(n, OLD_POLL_SAMPLE));
	const pollS = (performance.now() - pollStarted) / 1000;

	const tokenCalls = await tokenCallsNow();
	// What the plan calls for: each app refreshed every 7/8 of a lifetime from its first token, both modes
	// alike at these lifetimes (1/8 of one is under stable's 270 s cap), until the run's end.
	const endedAt = Date.now();
	const planned = plannedRefreshes(firstTokenAt.values(), endedAt, SCALE_LIFETIME_S * REFRESH_AT * 1000);
	await broker.dispose();
	await world.close();
	rmSync(persistTo, { recursive: true, force: true });

	const delays = alarms.map((a) => a.delay);
	const lifetimes = runS / SCALE_LIFETIME_S;
	// Object requests with no client: each alarm's run plus the index upsert it makes (one per refresh:
	// test/worker/alarm.test.ts), per app, and the watchdog's subrequests, shared by every app.
	const quietRequests = quietAlarms * 2 + quietRuns.reduce((sum, r) => sum + r.subrequests, 0);
	const perAppHour = quietHours > 0 ? quietRequests / n / quietHours : null;
	// The same design with WeChat's 7200 s tokens: a refresh every 6930 s (stable) or 6300 s (classic), half
	// the apps each, at the measured requests per refresh; the watchdog's 60 runs an hour shared by N apps.
	const alarmsPerRefresh = quietRefreshes > 0 ? quietAlarms / quietRefreshes : null;
	const refreshesPerAppHourAt7200 = (3600 / 6930 + 3600 / 6300) / 2;
	const perAppHourAt7200 = alarmsPerRefresh === null ? null : alarmsPerRefresh * 2 * refreshesPerAppHourAt7200 + 60 * (quietRuns.length ? quietRuns.reduce((sum, r) => sum + r.subrequests, 0) / quietRuns.length : 1) / n;
	return {
		apps: n,
		token_lifetime_s: SCALE_LIFETIME_S,
		register_s: round(registerS, 1),
		register_failures: registerFailures,
		run_s: round(runS, 0),
		reads,
		alarms: alarmFigures(delays),
		upstream_token_calls_per_app_per_lifetime: round(tokenCalls / n / lifetimes, 2),
		// Without each app's first fetch, over the run's window (short: apps registered late refresh once less).
		refresh_calls_per_app_per_lifetime: round((tokenCalls - n) / n / lifetimes, 2),
		// The refreshes made beside those the plan calls for in the same window: goal 1.00 (above: extra calls).
		refreshes: { made: tokenCalls - n, planned, made_per_planned: planned ? round((tokenCalls - n) / planned, 3) : null },
		upstream_token_calls: tokenCalls,
		quiet: {
			seconds: quietS,
			alarms: quietAlarms,
			refreshes: quietRefreshes,
			alarms_per_refresh: alarmsPerRefresh === null ? null : round(alarmsPerRefresh, 3),
			watchdog_runs: quietRuns.length,
			object_requests_per_app_hour_at_bench_tokens: perAppHour === null ? null : round(perAppHour, 2),
			object_requests_per_app_hour_at_7200s_tokens: perAppHourAt7200 === null ? null : round(perAppHourAt7200, 3),
			// The design before this one: the cron called every app's object every minute, whatever the lifetime.
			poll_every_app_requests_per_app_hour: 60,
			fewer_by_at_7200s_tokens: perAppHourAt7200 ? round(60 / perAppHourAt7200, 0) : null,
		},
		watchdog: {
			runs: watchdogRuns.length,
			subrequests_max: watchdogRuns.length ? Math.max(...watchdogRuns.map((r) => r.subrequests)) : null,
			subrequests_median: watchdogRuns.length ? median(watchdogRuns.map((r) => r.subrequests)) : null,
			woken_total: watchdogRuns.reduce((sum, r) => sum + r.woken, 0),
		},
		workerd_rss_mib: { after_start: memoryIdle, after_traffic: memoryBusy },
		status: { summary, summary_ms_median: round(median(summaryTimes), 1), first_page_100_ms_median: round(median(pageTimes), 1) },
		// One run of the old cron on a sample, and what a run at N would take at that rate in this workerd.
		old_poll_sample: { objects: polled, seconds: round(pollS, 1), objects_per_s: round(polled / pollS, 0), one_run_at_n_s: round(n / (polled / pollS), 1) },
	};
}
