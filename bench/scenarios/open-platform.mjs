// @ts-check
/**
 * The open platform at N authorizers (issue 18): the built broker in Miniflare with one component in
 * WECHAT_COMPONENTS, its own simulator pushing that component's tickets to the broker's event URL every
 * minute, N accounts authorised as fast as the broker takes them (most through WeChat's `authorized` push,
 * every fifth through POST /open/{c}/authorizations as a vendor's redirect page would), each then its own
 * Durable Object whose authorizer token its alarm refreshes with api_authorizer_token and the component
 * token it asks the component's object for. Then, on workerd's real clock, as the scale scenario: readers
 * (GET /token?appid=<authorizer>, each token checked with WeChat), a quiet phase with alarms only, and last a
 * burst of ticket pushes.
 * What is reported (README, "Deploying to Cloudflare", the open platform at N authorizers): the scale scenario's figures, plus the
 * component-token calls in each component-token lifetime (goal 1 per refresh, whatever N; beside the
 * computed naive design where every authorizer refresh fetches a component token), api_authorizer_token
 * and api_query_auth calls beside the plan, the errcodes the broker logged, and the burst's pushes absorbed
 * per second, each answer checked against the broker's rule and the newest ticket kept.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_OUTBOX } from "../../sim/open-pushes.js";
import { AUTH_HEADERS, startBroker } from "../broker.mjs";
import { callsPerWindow, callTimes, openLifetimes } from "../open-figures.mjs";
import { BURST_CONCURRENCY, ticketBurst } from "../ticket-burst.mjs";
import { alarmFigures, CRON_INTERVAL_MS, logEntry, plannedRefreshes, readTokens, REFRESH_AT, sleep, workerdRssMiB } from "../refresh-run.mjs";
import { median, round } from "../stats.mjs";
import { startWorld } from "../world.mjs";
import { defaultPhases } from "./scale.mjs";

const COMPONENT = {
	component_appid: "wxbenchcomponent1",
	secret: "bench-component-secret-not-real",
	token: "benchMessageToken",
	encoding_aes_key: "benchEncodingAESKeyNotReal0123456789abcdefg",
};
/** The simulator pushes a ticket this often (WeChat: every 600 s), so that tickets arrive during the run. */
const PUSH_INTERVAL_S = 60;
/** Every this many-th account is authorised through the redirect page's POST; the others by push. */
const POST_EVERY = 5;
/** Accounts authorised (consented at the simulator) but not yet exchanged by the broker, at most. */
const MAX_PENDING = 200;
/** Redirect-page POSTs in flight. */
const POST_CONCURRENCY = 8;
/** Ticket pushes of the component's schedule that may arrive while authorisation pushes wait. */
const OUTBOX_MARGIN = 5;
/** Codes pushed and already exchanged that are POSTed again: the broker must not exchange them twice. */
const DUPLICATE_POSTS = 20;
/** Registering stops with an error when no account is exchanged for this long. */
const STALL_MS = 60_000;
/** How often the simulator's counters are sampled (the component-token calls' moments). */
const SAMPLE_MS = 1_000;
const STATUS_SAMPLES = 5;
const PROGRESS_MS = 15_000;
/** At WeChat's 7200 s an authorizer token (no overlap) is refreshed 900 s ahead: every 6300 s. */
const REFRESH_EVERY_AT_7200_S = 6300;

/**
 * @param {{ n: number, pushes: number, trafficS: number | null, quietS: number | null, step: (message: string) => void }} options
 */
export async function measureOpenPlatform({ n, pushes: burstSize, step, ...phases }) {
	const lifetimes = openLifetimes(n);
	const interval = lifetimes.authorizerS * REFRESH_AT;
	const { trafficS, quietS } = phases.trafficS !== null && phases.quietS !== null ? { trafficS: phases.trafficS, quietS: phases.quietS } : defaultPhases(lifetimes.authorizerS);
	const id = COMPONENT.component_appid;
	const world = await startWorld({ name: `open-${n}` });
	/** @param {string} path @param {unknown} [body] */
	async function sim(path, body) {
		const res = await fetch(`${world.url}/__sim/open/components${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
		const json = /** @type {any} */ (await res.json());
		if (!res.ok) throw new Error(`simulator: ${path}: ${json.error ?? res.status}`);
		return json;
	}
	const componentStats = async () => (await sim(`/${id}`)).stats;

	/** ms at which each authorizer got its first token (the broker logs the exchange once it has). */
	const firstTokenAt = new Map();
	/** @type {{ at: number, delay: number, component: boolean }[]} */
	const alarms = [];
	/** @type {{ at: number, subrequests: number }[]} */
	const watchdogRuns = [];
	/** @type {Map<number, number>} */
	const errcodes = new Map();
	const persistTo = mkdtempSync(join(tmpdir(), `broker-open-${n}-`));
	const broker = await startBroker({
		name: `open-${n}`, apps: [], apiBase: world.url, persistTo,
		bindings: { REGISTRY_KEY: randomBytes(32).toString("base64"), WECHAT_COMPONENTS: JSON.stringify([COMPONENT]) },
		onLine(line) {
			for (const match of line.matchAll(/"errcode":(\d+)/g)) {
				const code = Number(match[1]);
				if (code !== 0) errcodes.set(code, (errcodes.get(code) ?? 0) + 1);
			}
			if (!line.includes('"event":"alarm_rang"') && !line.includes('"event":"watchdog_run"') && !line.includes('"event":"authorization_code_exchanged"')) return;
			const entry = logEntry(line);
			if (!entry) return;
			if (entry.event === "alarm_rang" && typeof entry.delay_ms === "number") alarms.push({ at: Date.now(), delay: entry.delay_ms, component: String(entry.appid).startsWith("component:") });
			if (entry.event === "watchdog_run") watchdogRuns.push({ at: Date.now(), subrequests: entry.subrequests });
			if (entry.event === "authorization_code_exchanged" && !firstTokenAt.has(entry.authorizer_appid)) firstTokenAt.set(entry.authorizer_appid, Date.now());
		},
	});
	const memoryIdle = workerdRssMiB();
	// The machine is shared: its load, beside the figures it slows.
	const loadAtStart = round(loadavg()[0] ?? 0, 1);

	// The component at WeChat, pushing to the broker: its first ticket goes out at once.
	await sim("", {
		...COMPONENT, event_url: `${broker.url}/open/${id}/events`, push_interval_s: PUSH_INTERVAL_S,
		token_lifetime_s: lifetimes.componentS, authorizer_token_lifetime_s: lifetimes.authorizerS,
	});
	/** @type {{ at: number, component: number, authorizer: number }[]} */
	const samples = [];
	const sampleNow = async () => {
		const stats = await componentStats();
		samples.push({ at: Date.now(), component: stats.api_component_token, authorizer: stats.api_authorizer_token });
		return stats;
	};
	await sampleNow();
	const sampler = setInterval(() => void sampleNow().catch(() => {}), SAMPLE_MS);
	const admin = async () => /** @type {any} */ (await (await fetch(`${broker.url}/admin/components/${id}`, { headers: AUTH_HEADERS })).json()).component;
	for (let waited = 0; !(await admin())?.verify_ticket; waited += 100) {
		if (waited > 15_000) throw new Error(`open N=${n}: the simulator's first ticket push did not reach ${broker.url}/open/${id}/events in 15 s`);
		await sleep(100);
	}

	step(`open platform N=${n}: authorising ${n} accounts (${n - Math.floor(n / POST_EVERY)} by push, ${Math.floor(n / POST_EVERY)} by POST /open/${id}/authorizations)…`);
	const appids = Array.from({ length: n }, (_, i) => `wxopen${String(i).padStart(10, "0")}`);
	const byPost = appids.filter((_, i) => i % POST_EVERY === POST_EVERY - 1);
	const byPush = appids.filter((_, i) => i % POST_EVERY !== POST_EVERY - 1);
	/** Codes of pushed authorisations, some POSTed again once exchanged. */
	const pushedCodes = new Map();
	let consented = 0;
	const posts = { ok: 0, failed: 0, first_error: /** @type {string | null} */ (null) };
	const registerStarted = performance.now();
	let lastProgress = { at: Date.now(), exchanged: 0 };
	const progress = setInterval(() => step(`open platform N=${n}: ${firstTokenAt.size} of ${n} authorisations exchanged (${round(firstTokenAt.size / ((performance.now() - registerStarted) / 1000), 1)}/s)`), PROGRESS_MS);
	const waitForRoom = async (/** @type {number} */ wanted) => {
		while (consented - firstTokenAt.size + wanted > MAX_PENDING) {
			if (firstTokenAt.size !== lastProgress.exchanged) lastProgress = { at: Date.now(), exchanged: firstTokenAt.size };
			if (Date.now() - lastProgress.at > STALL_MS) throw new Error(`open N=${n}: no authorisation exchanged for ${STALL_MS / 1000} s (${firstTokenAt.size} of ${consented} consented); see bench/.tmp/worker-open-${n}.log`);
			await sleep(20);
		}
	};
	const pushLane = async () => {
		for (let i = 0; i < byPush.length;) {
			const p = (await componentStats()).pushes;
			const room = Math.min(MAX_OUTBOX - (p.made - p.dropped - p.delivered - p.failed) - OUTBOX_MARGIN, byPush.length - i, MAX_PENDING / 2);
			if (room < Math.min(10, byPush.length - i)) {
				await sleep(20);
				continue;
			}
			await waitForRoom(room);
			const batch = byPush.slice(i, i + room);
			consented += batch.length;
			for (const c of (await sim(`/${id}/authorize-many`, { authorizer_appids: batch, push: true })).codes) pushedCodes.set(c.authorizer_appid, c.auth_code);
			i += batch.length;
		}
	};
	const postLane = async () => {
		for (let i = 0; i < byPost.length; i += 100) {
			const batch = byPost.slice(i, i + 100);
			await waitForRoom(batch.length);
			consented += batch.length;
			const codes = (await sim(`/${id}/authorize-many`, { authorizer_appids: batch, push: false })).codes;
			for (let j = 0; j < codes.length; j += POST_CONCURRENCY) {
				await Promise.all(codes.slice(j, j + POST_CONCURRENCY).map(async (/** @type {{ authorizer_appid: string, auth_code: string }} */ c) => {
					const res = await fetch(`${broker.url}/open/${id}/authorizations`, { method: "POST", headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify({ auth_code: c.auth_code }) });
					const body = /** @type {any} */ (await res.json());
					if (res.status === 200 && body.authorizer_appid === c.authorizer_appid) posts.ok++;
					else {
						posts.failed++;
						posts.first_error ??= `${c.authorizer_appid}: HTTP ${res.status} ${body.message}`;
					}
				}));
			}
		}
	};
	await Promise.all([pushLane(), postLane()]);
	while (firstTokenAt.size < n) {
		if (firstTokenAt.size !== lastProgress.exchanged) lastProgress = { at: Date.now(), exchanged: firstTokenAt.size };
		if (Date.now() - lastProgress.at > STALL_MS) throw new Error(`open N=${n}: ${n - firstTokenAt.size} authorisations never exchanged (${posts.failed} POSTs failed, first: ${posts.first_error}); see bench/.tmp/worker-open-${n}.log`);
		await sleep(50);
	}
	clearInterval(progress);
	const registerS = (performance.now() - registerStarted) / 1000;
	if (registerS > interval) {
		throw new Error(`open N=${n}: authorising took ${round(registerS, 0)} s, longer than the first refresh interval (${interval} s), so alarms rang while authorisations arrived, which one local workerd does not hold at this N; run on a quieter machine or set BENCH_OPEN_LIFETIME_S above ${Math.ceil(registerS * 1.3 / REFRESH_AT)}`);
	}
	// The same code again by the other path: answered from the first exchange, never exchanged twice.
	const queryAuthBefore = (await componentStats()).api_query_auth;
	const duplicates = { sent: 0, ok: 0 };
	for (const [appid, code] of [...pushedCodes].slice(0, DUPLICATE_POSTS)) {
		duplicates.sent++;
		const res = await fetch(`${broker.url}/open/${id}/authorizations`, { method: "POST", headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify({ auth_code: code }) });
		if (res.status === 200 && (/** @type {any} */ (await res.json())).authorizer_appid === appid) duplicates.ok++;
	}
	const duplicateQueryAuth = (await componentStats()).api_query_auth - queryAuthBefore;
	const runStarted = Date.now();
	const cron = setInterval(() => void broker.fireCron().catch(() => {}), CRON_INTERVAL_MS);

	step(`open platform N=${n}: ${trafficS} s of readers sampling authorizer tokens, alarms refreshing…`);
	const reads = await readTokens({ brokerUrl: broker.url, world, appids, seconds: trafficS });
	const memoryBusy = workerdRssMiB();

	step(`open platform N=${n}: ${quietS} s with no client traffic (alarms and the watchdog only)…`);
	const quietBefore = await sampleNow();
	const quietStarted = Date.now();
	const alarmsBeforeQuiet = alarms.length;
	const runsBeforeQuiet = watchdogRuns.length;
	await sleep(quietS * 1000);
	const quietAlarms = alarms.slice(alarmsBeforeQuiet).filter((a) => !a.component).length;
	const quietRuns = watchdogRuns.slice(runsBeforeQuiet);
	const quietHours = (Date.now() - quietStarted) / 3_600_000;
	const quietRefreshes = (await sampleNow()).api_authorizer_token - quietBefore.api_authorizer_token;
	clearInterval(cron);
	const endedAt = Date.now();
	const runS = (endedAt - runStarted) / 1000;
	clearInterval(sampler);
	const stats = await sampleNow();

	step(`open platform N=${n}: a burst of ${burstSize} ticket pushes, ${BURST_CONCURRENCY} at a time…`);
	const burst = await ticketBurst({ brokerUrl: broker.url, componentAppid: id, sim, admin, size: burstSize });

	const summaryTimes = [];
	let summary = null;
	for (let i = 0; i < STATUS_SAMPLES; i++) {
		const started = performance.now();
		summary = /** @type {any} */ (await (await fetch(`${broker.url}/status?limit=1`, { headers: AUTH_HEADERS })).json()).summary;
		summaryTimes.push(performance.now() - started);
	}
	const pushStats = (await componentStats()).pushes;
	await broker.dispose();
	await world.close();
	rmSync(persistTo, { recursive: true, force: true });

	// The component token: its calls in each whole lifetime from its first, and beside its own plan.
	const componentCalls = callTimes(samples.map((s) => ({ at: s.at, count: s.component })));
	const componentFirstAt = componentCalls[0] ?? endedAt;
	// Windows of one refresh interval, each centred on a planned call (alarm delays push calls later, never
	// by half an interval): one call in each is the plan, whatever N.
	const componentIntervalMs = lifetimes.componentS * REFRESH_AT * 1000;
	const perInterval = callsPerWindow(componentCalls, componentFirstAt - componentIntervalMs / 2, endedAt, componentIntervalMs);
	const componentLifetimesRun = (endedAt - componentFirstAt) / (lifetimes.componentS * 1000);
	const componentPlanned = 1 + plannedRefreshes([componentFirstAt], endedAt, componentIntervalMs);
	const authorizerRefreshes = stats.api_authorizer_token - n;
	const authorizerPlanned = plannedRefreshes(firstTokenAt.values(), endedAt, interval * 1000);
	// Object requests with no client, per authorizer: its alarm's run, its index upsert and its ask of the
	// component's object, per refresh; the watchdog's subrequests shared by all (estimated, as scale's).
	const alarmsPerRefresh = quietRefreshes > 0 ? quietAlarms / quietRefreshes : null;
	const watchdogPerRun = quietRuns.length ? quietRuns.reduce((sum, r) => sum + r.subrequests, 0) / quietRuns.length : 1;
	const perAppHour = quietHours > 0 ? (quietAlarms * 3 + quietRuns.reduce((sum, r) => sum + r.subrequests, 0)) / n / quietHours : null;
	const perAppHourAt7200 = alarmsPerRefresh === null ? null : alarmsPerRefresh * 3 * (3600 / REFRESH_EVERY_AT_7200_S) + 60 * watchdogPerRun / n;
	const delays = alarms.map((a) => a.delay);
	return {
		authorizers: n,
		token_lifetime_s: { authorizer: lifetimes.authorizerS, component: lifetimes.componentS },
		register_s: round(registerS, 1),
		register: {
			by_push: byPush.length, by_post: byPost.length, post_failures: posts.failed, first_post_error: posts.first_error,
			exchanged: firstTokenAt.size, per_s: round(n / registerS, 1),
			// Each code once: api_query_auth as often as accounts consented, and a pushed code POSTed again costs none.
			api_query_auth: stats.api_query_auth - duplicateQueryAuth, duplicate_posts: { ...duplicates, api_query_auth_calls: duplicateQueryAuth },
		},
		run_s: round(runS, 0),
		reads,
		alarms: { ...alarmFigures(delays), authorizer: alarms.filter((a) => !a.component).length, component: alarms.filter((a) => a.component).length },
		component_token: {
			calls: stats.api_component_token,
			planned: componentPlanned,
			lifetimes: round(componentLifetimesRun, 2),
			// 8/7 by design: a refresh every 7/8 of a lifetime.
			calls_per_lifetime: round(stats.api_component_token / componentLifetimesRun, 2),
			per_refresh_interval: perInterval,
			intervals_with_one_call: perInterval.filter((c) => c === 1).length,
			per_refresh_interval_max: perInterval.length ? Math.max(...perInterval) : null,
			// The design the broker replaces, computed: every authorizer's refresh fetching a component token of its own.
			naive_calls: stats.api_authorizer_token,
			naive_calls_per_lifetime: round(stats.api_authorizer_token / componentLifetimesRun, 0),
		},
		authorizer_token: {
			calls: stats.api_authorizer_token,
			first: n,
			refreshes: { made: authorizerRefreshes, planned: authorizerPlanned, made_per_planned: authorizerPlanned ? round(authorizerRefreshes / authorizerPlanned, 3) : null },
			refreshes_per_authorizer_per_lifetime: round(authorizerRefreshes / n / (runS / lifetimes.authorizerS), 2),
		},
		errcodes_logged: Object.fromEntries([...errcodes].sort((a, b) => a[0] - b[0])),
		errcodes_61023_40001: (errcodes.get(61023) ?? 0) + (errcodes.get(40001) ?? 0),
		pushes_from_simulator: pushStats,
		quiet: {
			seconds: quietS,
			authorizer_alarms: quietAlarms,
			refreshes: quietRefreshes,
			alarms_per_refresh: alarmsPerRefresh === null ? null : round(alarmsPerRefresh, 3),
			component_object_asks_per_s: round(quietRefreshes / quietS, 1),
			watchdog_runs: quietRuns.length,
			object_requests_per_app_hour_at_bench_tokens: perAppHour === null ? null : round(perAppHour, 2),
			object_requests_per_app_hour_at_7200s_tokens: perAppHourAt7200 === null ? null : round(perAppHourAt7200, 3),
			poll_every_app_requests_per_app_hour: 60,
		},
		watchdog: { runs: watchdogRuns.length, subrequests_max: watchdogRuns.length ? Math.max(...watchdogRuns.map((r) => r.subrequests)) : null },
		workerd_rss_mib: { after_start: memoryIdle, after_traffic: memoryBusy },
		machine_load_1min: { at_start: loadAtStart, at_end: round(loadavg()[0] ?? 0, 1) },
		status: { summary, summary_ms_median: round(median(summaryTimes), 1) },
		ticket_burst: burst,
	};
}
