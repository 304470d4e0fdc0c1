// @ts-check
/**
 * A compressed day: every system serves steady client traffic for the same window while its tokens live
 * only 60 real seconds, so a 150 s run spans 2.5 token lifetimes. Two numbers per system:
 * - quota efficiency: token-endpoint calls per token lifetime (ideal: one; the broker refreshes 1/8 of a
 *   lifetime early, so its floor is 8/7 ≈ 1.14 plus the first fetch);
 * - correctness: a sample of the tokens each system hands out is checked with WeChat's getcallbackip at a
 *   random moment within the expires_in the system promised with it (and within the run). A rejected one
 *   is a token a client would have used and had refused: 40001 revoked, 42001 expired.
 * All systems run at once, so they share the machine's load alike.
 */
import { median, percentile, round } from "../stats.mjs";

/**
 * WeChat's 7200 s, compressed: the broker's world gets lifetime_s 60, the fast world runs 120× (world.mjs).
 * 60 s is as short as it goes: the broker refuses a shorter expires_in as a broken upstream, and workerd's
 * clock cannot be sped up instead.
 */
export const DAY_TOKEN_LIFETIME_S = 60;
/** Per system: services polling their token server, each pausing between reads like a real caller. */
const CLIENTS_PER_SYSTEM = 8;
const CLIENT_PAUSE_MS = 50;
/** Share of served tokens checked with WeChat: ~750 checks per system in 150 s, few enough not to load it. */
const CHECK_SHARE = 0.05;
/**
 * Cloudflare fires the cron once a minute for 7200 s tokens; a tenth of the compressed lifetime keeps the
 * ratio sane and still lands several runs inside the broker's refresh-ahead window (1/8 of a lifetime).
 */
export const CRON_INTERVAL_MS = (DAY_TOKEN_LIFETIME_S / 10) * 1000;

/**
 * @typedef {object} DaySystem
 * @property {string} id
 * @property {string} label
 * @property {import("../world.mjs").World} world
 * @property {string} appid
 * @property {string[]} urls          base URLs; clients go round-robin
 * @property {Record<string, string>} [headers]
 */

/**
 * @param {{ systems: DaySystem[], seconds: number, crons: (() => Promise<void>)[] }} options
 */
export async function compressedDay({ systems, seconds, crons }) {
	const startedAt = performance.now();
	const endAt = startedAt + seconds * 1000;
	const cronTimer = setInterval(() => {
		for (const fire of crons) void fire().catch((error) => console.error(`bench: cron failed: ${error}`));
	}, CRON_INTERVAL_MS);
	try {
		const results = await Promise.all(systems.map((system) => runSystem(system, endAt)));
		const elapsedS = (performance.now() - startedAt) / 1000;
		return Promise.all(systems.map(async (system, i) => summarize(system, /** @type {SystemLog} */ (results[i]), elapsedS)));
	} finally {
		clearInterval(cronTimer);
	}
}

/**
 * @typedef {object} SystemLog
 * @property {number} attempted  reads sent, answered or not
 * @property {number[]} latencies
 * @property {number} failed
 * @property {string} [firstError]  status and message of the first failed read (never a token)
 * @property {number} checked
 * @property {Record<string, number>} rejected   by errcode
 * @property {number[]} rejectedAgeShare  how far into its promised life each rejected token was checked (0–1)
 */

/**
 * @param {DaySystem} system
 * @param {number} endAt  performance.now() ms
 * @returns {Promise<SystemLog>}
 */
async function runSystem(system, endAt) {
	/** @type {SystemLog} */
	const log = { attempted: 0, latencies: [], failed: 0, checked: 0, rejected: {}, rejectedAgeShare: [] };
	/** @type {Promise<void>[]} */
	const checks = [];
	let next = 0;

	/** @param {string} token @param {number} promisedMs */
	function scheduleCheck(token, promisedMs) {
		const delayMs = Math.random() * Math.max(0, Math.min(promisedMs, endAt - performance.now()));
		checks.push(new Promise((resolve) => setTimeout(resolve, delayMs)).then(async () => {
			const errcode = await system.world.check(token);
			log.checked++;
			if (errcode !== 0) {
				log.rejected[errcode] = (log.rejected[errcode] ?? 0) + 1;
				log.rejectedAgeShare.push(promisedMs > 0 ? delayMs / promisedMs : 1);
			}
		}));
	}

	async function client() {
		while (performance.now() < endAt) {
			const base = /** @type {string} */ (system.urls[next++ % system.urls.length]);
			const started = performance.now();
			log.attempted++;
			try {
				const res = await fetch(`${base}/token?appid=${system.appid}`, { headers: system.headers ?? {} });
				const body = /** @type {{ access_token?: string, expires_in?: number } & Record<string, unknown>} */ (await res.json());
				log.latencies.push(performance.now() - started);
				if (res.status !== 200 || typeof body.access_token !== "string") fail(log, `HTTP ${res.status} ${describe(body)}`);
				else if (Math.random() < CHECK_SHARE) scheduleCheck(body.access_token, (body.expires_in ?? 0) * 1000);
			} catch (error) {
				fail(log, error instanceof Error ? error.message : String(error));
			}
			await new Promise((resolve) => setTimeout(resolve, CLIENT_PAUSE_MS));
		}
	}

	await Promise.all(Array.from({ length: CLIENTS_PER_SYSTEM }, client));
	await Promise.all(checks);
	return log;
}

/** @param {SystemLog} log @param {string} what */
function fail(log, what) {
	log.failed++;
	log.firstError ??= what;
}

/** An error answer's own words, without anything that could be a token. @param {Record<string, unknown>} body */
function describe(body) {
	const { error, message, errcode, errmsg } = body;
	return JSON.stringify({ error, message, errcode, errmsg });
}

/**
 * @param {DaySystem} system
 * @param {SystemLog} log
 * @param {number} elapsedS
 */
async function summarize(system, log, elapsedS) {
	const calls = await system.world.calls(system.appid);
	const tokenCalls = calls.token + calls.stable_token;
	const lifetimes = elapsedS / DAY_TOKEN_LIFETIME_S;
	const rejected = Object.values(log.rejected).reduce((a, b) => a + b, 0);
	return {
		id: system.id,
		label: system.label,
		elapsed_s: round(elapsedS, 1),
		token_lifetimes: round(lifetimes, 2),
		attempted: log.attempted,
		requests: log.latencies.length,
		rps: round(log.latencies.length / elapsedS, 0),
		failed: log.failed,
		first_error: log.firstError ?? null,
		p50_ms: round(percentile(log.latencies, 50), 2),
		p99_ms: round(percentile(log.latencies, 99), 2),
		upstream_token_calls: tokenCalls,
		forced_calls: calls.stable_token_force,
		// The bench's own checks also go to getcallbackip; what is left is the system's probing.
		probe_calls: calls.getcallbackip - log.checked,
		calls_per_lifetime: round(tokenCalls / lifetimes, 2),
		ideal_calls: Math.ceil(lifetimes),
		checked: log.checked,
		rejected,
		rejected_by_errcode: log.rejected,
		rejected_median_age_share: rejected ? round(median(log.rejectedAgeShare), 2) : null,
	};
}
