// @ts-check
/**
 * A WeCom suite at N installed companies (issue 19): the built broker in Miniflare with one suite in
 * WECOM_SUITES, the simulator pushing that suite's suite_ticket to /wecom-suite/{id}/events on a jittered
 * schedule, N companies installing it as fast as the broker takes them (most through WeCom's create_auth push,
 * every fifth through POST /wecom-suite/{id}/installs as a vendor's redirect page would; each its own
 * single-use auth code, exchanged once with get_permanent_code), each then an app `<corpid>-<agentid>` in its
 * own Durable Object whose corp token its alarm refreshes with get_corp_token and the suite token it asks the
 * suite's object for. Then, on workerd's real clock, as the open-platform scenario: readers (GET
 * /token?appid=<corp app>, each token checked with WeCom's getcallbackip) and a quiet phase with alarms only.
 * What is reported (README, "Deploying to Cloudflare", a WeCom suite at N companies): install time, reads
 * refused or 503, alarm delays, corp-token refreshes beside the plan, the suite-token calls in each of its
 * lifetimes (goal 1, whatever N) beside the computed naive design where every company's refresh fetches a
 * suite token, the errcodes the broker logged (40082/40084/42009/40014 would mean a suite token or permanent
 * code was used where WeCom refused it) and workerd's memory.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_SUITE_OUTBOX } from "../../sim/wecom-suite-pushes.js";
import { AUTH_HEADERS, startBroker } from "../broker.mjs";
import { counterSampler, DUPLICATE_POSTS, grantAll, outboxRoom, POST_EVERY, refreshPhases, repostCodes, SAMPLE_MS, simControl, watchGrantLog } from "../grant-run.mjs";
import { parentTokenFigures, wecomLifetimes } from "../open-figures.mjs";
import { alarmFigures, plannedRefreshes, REFRESH_AT, sleep, workerdRssMiB } from "../refresh-run.mjs";
import { round } from "../stats.mjs";
import { startWorld } from "../world.mjs";
import { defaultPhases } from "./scale.mjs";

const SUITE = {
	suite_id: "wwbenchsuite000001",
	secret: "bench-suite-secret-not-real",
	token: "benchSuiteToken",
	encoding_aes_key: "benchSuiteAESKeyNotReal0123456789abcdefghij",
};
/**
 * The simulator pushes a ticket every 50-70 s (WeCom: every 7-15 min; a ticket lives 30 min either way), so
 * that tickets arrive during the run and the suite's object takes them beside the installs.
 */
const PUSH_MIN_S = 50;
const PUSH_MAX_S = 70;
const FIRST_TICKET_WAIT_MS = 15_000;
/**
 * WeCom's errcodes that would mean the broker used a suite token or permanent code WeCom refused: 40082 an
 * invalid suite token, 42009 an expired one, 40084 an invalid permanent code, 40014 an invalid access_token.
 */
const REFUSAL_ERRCODES = [40082, 40084, 42009, 40014];

/**
 * @param {{ n: number, trafficS: number | null, quietS: number | null, step: (message: string) => void }} options
 */
export async function measureWecomSuite({ n, step, ...phases }) {
	const lifetimes = wecomLifetimes(n);
	const interval = lifetimes.corpS * REFRESH_AT;
	const { trafficS, quietS } = phases.trafficS !== null && phases.quietS !== null ? { trafficS: phases.trafficS, quietS: phases.quietS } : defaultPhases(lifetimes.corpS);
	const id = SUITE.suite_id;
	const label = `wecom suite N=${n}`;
	const world = await startWorld({ name: `wecom-${n}` });
	const sim = simControl(`${world.url}/__sim/wecom/suites`);
	const suiteStats = async () => (await sim(`/${id}`)).stats;
	/** WeCom's getcallbackip with a corp token: 0 when WeCom takes it. @param {string} token */
	const checkCorpToken = async (token) => /** @type {any} */ (await (await fetch(`${world.url}/qyapi/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`)).json()).errcode ?? 0;

	// A company's first corp token is fetched right after its exchange is logged (suite-installs.ts).
	const log = watchGrantLog({ exchangedEvent: "install_code_exchanged", keyOf: (entry) => String(entry.corpid) });
	const persistTo = mkdtempSync(join(tmpdir(), `broker-wecom-${n}-`));
	const broker = await startBroker({
		name: `wecom-${n}`, apps: [], apiBase: world.url, persistTo, onLine: log.onLine,
		bindings: { REGISTRY_KEY: randomBytes(32).toString("base64"), WECOM_API_BASE: `${world.url}/qyapi`, WECOM_SUITES: JSON.stringify([SUITE]) },
	});
	const memoryIdle = workerdRssMiB();
	// The machine is shared: its load, beside the figures it slows.
	const loadAtStart = round(loadavg()[0] ?? 0, 1);

	// The suite at WeCom, pushing to the broker's instruction URL: its first ticket goes out at once.
	await sim("", {
		...SUITE, callback_url: `${broker.url}/wecom-suite/${id}/events`, push_min_s: PUSH_MIN_S, push_max_s: PUSH_MAX_S,
		token_lifetime_s: lifetimes.suiteS, corp_token_lifetime_s: lifetimes.corpS,
	});
	const sampler = counterSampler(suiteStats, SAMPLE_MS);
	for (let waited = 0; (await sampler.sampleNow()).pushes.delivered === 0; waited += 100) {
		if (waited > FIRST_TICKET_WAIT_MS) throw new Error(`${label}: the simulator's first suite_ticket push was not answered \`success\` by ${broker.url}/wecom-suite/${id}/events in ${FIRST_TICKET_WAIT_MS / 1000} s; see bench/.tmp/worker-wecom-${n}.log`);
		await sleep(100);
	}

	step(`${label}: installing ${n} companies (${n - Math.floor(n / POST_EVERY)} by create_auth push, ${Math.floor(n / POST_EVERY)} by POST /wecom-suite/${id}/installs)…`);
	const corpids = Array.from({ length: n }, (_, i) => `wwcorp${String(i).padStart(12, "0")}`);
	/** @type {import("../grant-run.mjs").GrantChannels["post"]} */
	const post = async ({ key, code }) => {
		const res = await fetch(`${broker.url}/wecom-suite/${id}/installs`, { method: "POST", headers: { ...AUTH_HEADERS, "content-type": "application/json" }, body: JSON.stringify({ auth_code: code }) });
		const body = /** @type {any} */ (await res.json());
		return res.status === 200 && body.corpid === key ? null : `HTTP ${res.status} ${body.message}`;
	};
	const installed = await grantAll({
		label, keys: corpids, postEvery: POST_EVERY, log, logFile: `bench/.tmp/worker-wecom-${n}.log`, step,
		channels: {
			async grantMany(keys, push) {
				const { codes } = await sim(`/${id}/install-many`, { corpids: keys, push });
				return codes.map((/** @type {{ corpid: string, auth_code: string }} */ c) => ({ key: c.corpid, code: c.auth_code }));
			},
			outboxRoom: async () => outboxRoom(MAX_SUITE_OUTBOX, (await suiteStats()).pushes),
			post,
		},
	});
	if (installed.seconds > interval) {
		throw new Error(`${label}: installing took ${round(installed.seconds, 0)} s, longer than the first refresh interval (${interval} s), so alarms rang while installs arrived, which one local workerd does not hold at this N; run on a quieter machine or set BENCH_WECOM_LIFETIME_S above ${Math.ceil(installed.seconds * 1.3 / REFRESH_AT)}`);
	}
	// The same code again by the other path: answered from the first exchange, never exchanged twice.
	const exchangesBefore = (await suiteStats()).wecom_get_permanent_code;
	const duplicates = await repostCodes(installed.pushedCodes, DUPLICATE_POSTS, post);
	const afterInstalls = await suiteStats();
	const duplicateExchanges = afterInstalls.wecom_get_permanent_code - exchangesBefore;
	const appids = [...log.appidOf.values()];

	const run = await refreshPhases({ label, broker, world, appids, check: checkCorpToken, trafficS, quietS, sampleNow: sampler.sampleNow, step });
	const { endedAt } = run;
	sampler.stop();
	const stats = await sampler.sampleNow();
	await broker.dispose();
	await world.close();
	rmSync(persistTo, { recursive: true, force: true });

	const runS = (endedAt - run.startedAt) / 1000;
	// WeCom hands out the same suite token until it expires: the broker's plan is one call per lifetime.
	const suiteToken = parentTokenFigures({
		samples: sampler.samples.filter((s) => s.at <= endedAt).map((s) => ({ at: s.at, count: s.stats.wecom_get_suite_token })), calls: stats.wecom_get_suite_token,
		lifetimeS: lifetimes.suiteS, intervalMs: lifetimes.suiteS * 1000, endedAt, naiveCalls: stats.wecom_get_corp_token,
	});
	const corpRefreshes = stats.wecom_get_corp_token - n;
	const corpPlanned = plannedRefreshes(log.firstTokenAt.values(), endedAt, interval * 1000);
	const errcodes = Object.fromEntries([...log.errcodes].sort((a, b) => a[0] - b[0]));
	return {
		companies: n,
		token_lifetime_s: { corp: lifetimes.corpS, suite: lifetimes.suiteS },
		install_s: round(installed.seconds, 1),
		install: {
			by_push: installed.byPush, by_post: installed.byPost, post_failures: installed.posts.failed, first_post_error: installed.posts.first_error,
			exchanged: log.firstTokenAt.size, per_s: round(n / installed.seconds, 1),
			// Each code once: get_permanent_code as often as companies installed, and a pushed code POSTed again costs none.
			get_permanent_code: stats.wecom_get_permanent_code - duplicateExchanges, duplicate_posts: { ...duplicates, get_permanent_code_calls: duplicateExchanges },
			get_corp_token_by_end: afterInstalls.wecom_get_corp_token,
		},
		run_s: round(runS, 0),
		reads: run.reads,
		alarms: { ...alarmFigures(log.alarms.map((a) => a.delay)), corp: log.alarms.filter((a) => !a.parent).length, suite: log.alarms.filter((a) => a.parent).length, no_progress_retried_in_5_s: log.noProgress },
		suite_token: suiteToken,
		corp_token: {
			get_corp_token_calls: stats.wecom_get_corp_token,
			first: n,
			refreshes: { made: corpRefreshes, planned: corpPlanned, made_per_planned: corpPlanned ? round(corpRefreshes / corpPlanned, 3) : null },
			refreshes_per_company: round(corpRefreshes / n, 2),
			planned_per_company: round(corpPlanned / n, 2),
		},
		errcodes_logged: errcodes,
		errcodes_refusing: Object.fromEntries(REFUSAL_ERRCODES.map((code) => [code, log.errcodes.get(code) ?? 0])),
		pushes_from_simulator: stats.pushes,
		quiet: { seconds: quietS, corp_refreshes: run.quietAfter.wecom_get_corp_token - run.quietBefore.wecom_get_corp_token, watchdog_runs: log.watchdogRuns.filter((r) => r.at >= run.quietStartedAt).length },
		watchdog: { runs: log.watchdogRuns.length, subrequests_max: log.watchdogRuns.length ? Math.max(...log.watchdogRuns.map((r) => r.subrequests)) : null },
		workerd_rss_mib: { after_start: memoryIdle, after_traffic: run.memoryBusy },
		machine_load_1min: { at_start: loadAtStart, at_end: round(loadavg()[0] ?? 0, 1) },
	};
}
