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
import { counterSampler, DUPLICATE_POSTS, grantAll, outboxRoom, POST_EVERY, refreshPhases, repostCodes, SAMPLE_MS, simControl, watchGrantLog } from "../grant-run.mjs";
import { openLifetimes, parentTokenFigures } from "../open-figures.mjs";
import { BURST_CONCURRENCY, ticketBurst } from "../ticket-burst.mjs";
import { alarmFigures, plannedRefreshes, REFRESH_AT, sleep, workerdRssMiB } from "../refresh-run.mjs";
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
const STATUS_SAMPLES = 5;
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
	const sim = simControl(`${world.url}/__sim/open/components`);
	const componentStats = async () => (await sim(`/${id}`)).stats;

	// An authorizer's first token is fetched before its exchange is logged.
	const log = watchGrantLog({ exchangedEvent: "authorization_code_exchanged", keyOf: (entry) => String(entry.authorizer_appid) });
	const { firstTokenAt, alarms, watchdogRuns, errcodes } = log;
	const persistTo = mkdtempSync(join(tmpdir(), `broker-open-${n}-`));
	const broker = await startBroker({
		name: `open-${n}`, apps: [], apiBase: world.url, persistTo, onLine: log.onLine,
		bindings: { REGISTRY_KEY: randomBytes(32).toString("base64"), WECHAT_COMPONENTS: JSON.stringify([COMPONENT]) },
	});
	const memoryIdle = workerdRssMiB();
	// The machine is shared: its load, beside the figures it slows.
	const loadAtStart = round(loadavg()[0] ?? 0, 1);

	// The component at WeChat, pushing to the broker: its first ticket goes out at once.
	await sim("", {
		...COMPONENT, event_url: `${broker.url}/open/${id}/events`, push_interval_s: PUSH_INTERVAL_S,
		token_lifetime_s: lifetimes.componentS, authorizer_token_lifetime_s: lifetimes.authorizerS,
	});
	const sampler = counterSampler(componentStats, SAMPLE_MS);
	const { sampleNow } = sampler;
	await sampleNow();
	const admin = async () => /** @type {any} */ (await (await fetch(`${broker.url}/admin/components/${id}`, { headers: AUTH_HEADERS })).json()).component;
	for (let waited = 0; !(await admin())?.verify_ticket; waited += 100) {
		if (waited > 15_000) throw new Error(`open N=${n}: the simulator's first ticket push did not reach ${broker.url}/open/${id}/events in 15 s`);
		await sleep(100);
	}

	step(`open platform N=${n}: authorising ${n} accounts (${n - Math.floor(n / POST_EVERY)} by push, ${Math.floor(n / POST_EVERY)} by POST /open/${id}/authorizations)…`);
	const appids = Array.from({ length: n }, (_, i) => `wxopen${String(i).padStart(10, "0")}`);
	/** @type {import("../grant-run.mjs").GrantChannels["post"]} */
	const post = async ({ key, code }) => {
		const res = await fetch(`${broker.url}/open/${id}/authorizations`, { method: "POST", headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify({ auth_code: code }) });
		const body = /** @type {any} */ (await res.json());
		return res.status === 200 && body.authorizer_appid === key ? null : `HTTP ${res.status} ${body.message}`;
	};
	const granted = await grantAll({
		label: `open platform N=${n}`, keys: appids, postEvery: POST_EVERY, log, logFile: `bench/.tmp/worker-open-${n}.log`, step,
		channels: {
			async grantMany(keys, push) {
				const { codes } = await sim(`/${id}/authorize-many`, { authorizer_appids: keys, push });
				return codes.map((/** @type {{ authorizer_appid: string, auth_code: string }} */ c) => ({ key: c.authorizer_appid, code: c.auth_code }));
			},
			outboxRoom: async () => outboxRoom(MAX_OUTBOX, (await componentStats()).pushes),
			post,
		},
	});
	const { posts, pushedCodes } = granted;
	const registerS = granted.seconds;
	if (registerS > interval) {
		throw new Error(`open N=${n}: authorising took ${round(registerS, 0)} s, longer than the first refresh interval (${interval} s), so alarms rang while authorisations arrived, which one local workerd does not hold at this N; run on a quieter machine or set BENCH_OPEN_LIFETIME_S above ${Math.ceil(registerS * 1.3 / REFRESH_AT)}`);
	}
	// The same code again by the other path: answered from the first exchange, never exchanged twice.
	const queryAuthBefore = (await componentStats()).api_query_auth;
	const duplicates = await repostCodes(pushedCodes, DUPLICATE_POSTS, post);
	const duplicateQueryAuth = (await componentStats()).api_query_auth - queryAuthBefore;
	const run = await refreshPhases({ label: `open platform N=${n}`, broker, world, appids, trafficS, quietS, sampleNow, step });
	const { reads, memoryBusy, endedAt } = run;
	const quietAlarms = alarms.filter((a) => a.at >= run.quietStartedAt && !a.parent).length;
	const quietRuns = watchdogRuns.filter((r) => r.at >= run.quietStartedAt);
	const quietHours = (endedAt - run.quietStartedAt) / 3_600_000;
	const quietRefreshes = run.quietAfter.api_authorizer_token - run.quietBefore.api_authorizer_token;
	const runS = (endedAt - run.startedAt) / 1000;
	sampler.stop();
	const stats = await sampleNow();

	step(`open platform N=${n}: a burst of ${burstSize} ticket pushes, ${BURST_CONCURRENCY} at a time…`);
	const burst = await ticketBurst({ brokerUrl: broker.url, componentAppid: COMPONENT.component_appid, sim, admin, size: burstSize });

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

	// The component token: its calls in each refresh interval (7/8 of a lifetime: 8/7 calls a lifetime by design).
	const componentToken = parentTokenFigures({
		samples: sampler.samples.filter((s) => s.at <= endedAt).map((s) => ({ at: s.at, count: s.stats.api_component_token })), calls: stats.api_component_token,
		lifetimeS: lifetimes.componentS, intervalMs: lifetimes.componentS * REFRESH_AT * 1000, endedAt, naiveCalls: stats.api_authorizer_token,
	});
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
			by_push: granted.byPush, by_post: granted.byPost, post_failures: posts.failed, first_post_error: posts.first_error,
			exchanged: firstTokenAt.size, per_s: round(n / registerS, 1),
			// Each code once: api_query_auth as often as accounts consented, and a pushed code POSTed again costs none.
			api_query_auth: stats.api_query_auth - duplicateQueryAuth, duplicate_posts: { ...duplicates, api_query_auth_calls: duplicateQueryAuth },
		},
		run_s: round(runS, 0),
		reads,
		alarms: { ...alarmFigures(delays), authorizer: alarms.filter((a) => !a.parent).length, component: alarms.filter((a) => a.parent).length },
		component_token: componentToken,
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

