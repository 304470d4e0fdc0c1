// @ts-check
/**
 * The arithmetic of the grant scenarios (scenarios/open-platform.mjs, scenarios/wecom-suite.mjs), pure so that
 * it is tested (test/bench/open-figures.test.js): their lifetimes, the parent token's calls (the component's,
 * the suite's) in each lifetime, and whether every answer of a burst of ticket pushes is the one the broker's
 * rule gives (component.ts: an older CreateTime than the one kept is refused with 409, anything else answered
 * `success`, the newest kept).
 */
import { plannedRefreshes } from "./refresh-run.mjs";
import { round } from "./stats.mjs";

/**
 * A grant's token (an authorizer's, an installed company's) lives so that granting every one ends before the
 * first of them refreshes (one local workerd holds the databases of a few thousand objects at once, README
 * "Scale"). A grant costs more than the scale scenario's PUT (the code's exchange, the grant's object
 * adopting it, the registry, its first token with the parent's token asked of the parent's object): on 2
 * shared cores ~6-20 a second, hence 300 s up to 3,000 grants (refreshed every 262.5 s) and 900 s above
 * (every 787.5 s). `override` (a BENCH_ variable) sets another; the run stops with that advice when granting
 * outlasts the first refresh interval.
 * @param {number} n @param {string | undefined} override
 */
export function grantLifetimeS(n, override) {
	return override ? Number(override) : n > 3_000 ? 900 : 300;
}

/**
 * The open platform's lifetimes: the authorizer token's (grantLifetimeS, BENCH_OPEN_LIFETIME_S), and the
 * component token's 60 s (the least the broker takes), so that a run holds many of its lifetimes whatever N
 * (BENCH_OPEN_COMPONENT_LIFETIME_S sets another).
 * @param {number} n
 * @param {Record<string, string | undefined>} env
 */
export function openLifetimes(n, env = process.env) {
	return {
		authorizerS: grantLifetimeS(n, env.BENCH_OPEN_LIFETIME_S),
		componentS: env.BENCH_OPEN_COMPONENT_LIFETIME_S ? Number(env.BENCH_OPEN_COMPONENT_LIFETIME_S) : 60,
	};
}

/**
 * A suite's lifetimes: the corp token's (grantLifetimeS, BENCH_WECOM_LIFETIME_S), and the suite token's 60 s
 * (the least the simulator takes; BENCH_WECOM_SUITE_LIFETIME_S sets another). WeCom hands the same suite
 * token out until it expires, so the broker plans its refresh for the expiry (engine/kinds.ts): a run of a
 * few corp-token intervals holds many suite-token lifetimes, and every corp refresh asks for the suite token.
 * @param {number} n
 * @param {Record<string, string | undefined>} env
 */
export function wecomLifetimes(n, env = process.env) {
	return {
		corpS: grantLifetimeS(n, env.BENCH_WECOM_LIFETIME_S),
		suiteS: env.BENCH_WECOM_SUITE_LIFETIME_S ? Number(env.BENCH_WECOM_SUITE_LIFETIME_S) : 60,
	};
}

/**
 * A parent token's calls (the component token's, the suite token's) over a run, from samples of the
 * simulator's counter: in each refresh interval (windows of `intervalMs` centred on the planned calls, so
 * that alarm delays, never half an interval, keep a call in its window), per lifetime, against its own plan
 * (one call, then one per interval) and beside the naive design where every grant's refresh (`naiveCalls`,
 * the grants' own token calls) fetches a parent token of its own.
 * @param {{ samples: readonly { at: number, count: number }[], calls: number, lifetimeS: number, intervalMs: number, endedAt: number, naiveCalls: number }} options
 */
export function parentTokenFigures({ samples, calls, lifetimeS, intervalMs, endedAt, naiveCalls }) {
	const times = callTimes(samples);
	const firstAt = times[0] ?? endedAt;
	const perInterval = callsPerWindow(times, firstAt - intervalMs / 2, endedAt, intervalMs);
	const lifetimes = (endedAt - firstAt) / (lifetimeS * 1000);
	return {
		calls,
		planned: 1 + plannedRefreshes([firstAt], endedAt, intervalMs),
		lifetimes: round(lifetimes, 2),
		calls_per_lifetime: lifetimes > 0 ? round(calls / lifetimes, 2) : null,
		per_refresh_interval: perInterval,
		intervals_with_one_call: perInterval.filter((c) => c === 1).length,
		per_refresh_interval_max: perInterval.length ? Math.max(...perInterval) : null,
		naive_calls: naiveCalls,
		naive_calls_per_lifetime: lifetimes > 0 ? round(naiveCalls / lifetimes, 0) : null,
	};
}

/**
 * The moments of the calls a counter made, from samples of it (each rise of k is k calls at that sample).
 * @param {readonly { at: number, count: number }[]} samples  in time order
 * @returns {number[]}
 */
export function callTimes(samples) {
	/** @type {number[]} */
	const times = [];
	let last = samples[0]?.count ?? 0;
	for (const { at, count } of samples.slice(1)) {
		for (let i = last; i < count; i++) times.push(at);
		last = Math.max(last, count);
	}
	return times;
}

/**
 * Calls in each whole window of `windowMs` from `startMs` (a window cut short by `endMs` is left out: it
 * would read as fewer calls than a lifetime holds).
 * @param {readonly number[]} times @param {number} startMs @param {number} endMs @param {number} windowMs
 * @returns {number[]}
 */
export function callsPerWindow(times, startMs, endMs, windowMs) {
	const windows = Math.max(0, Math.floor((endMs - startMs) / windowMs));
	const counts = new Array(windows).fill(0);
	for (const at of times) {
		const i = Math.floor((at - startMs) / windowMs);
		if (i >= 0 && i < windows) counts[i]++;
	}
	return counts;
}

/**
 * @typedef {object} TicketAnswer
 * @property {number} createTime  the push's CreateTime, s
 * @property {number} sentAt      ms, when the push left
 * @property {number} answeredAt  ms, when its answer came back
 * @property {number} status      HTTP status of the answer
 * @property {string} body        its text (`success` or a JSON error)
 */

/**
 * Whether each answer of a concurrent burst is one the rule allows, given the CreateTime kept before it
 * (null: none). The object sees one push at a time, so when it judged a push it held the newest of the
 * earlier ticket and of some pushes in flight: at least every push answered `success` before this one
 * left, at most every push that left before this one's answer came back. `success` is right when the push
 * is not older than the least it can have held; 409 when it is older than the most. Anything else is wrong.
 * @param {number | null} priorCreateTime
 * @param {readonly TicketAnswer[]} answers
 */
export function checkTicketAnswers(priorCreateTime, answers) {
	const prior = priorCreateTime ?? Number.NEGATIVE_INFINITY;
	let accepted = 0;
	let refusedOlder = 0;
	/** @type {TicketAnswer[]} */
	const wrong = [];
	for (const answer of answers) {
		let least = prior;
		let most = prior;
		for (const other of answers) {
			if (other === answer) continue;
			if (other.status === 200 && other.answeredAt <= answer.sentAt) least = Math.max(least, other.createTime);
			if (other.sentAt <= answer.answeredAt) most = Math.max(most, other.createTime);
		}
		if (answer.status === 200 && answer.body === "success" && answer.createTime >= least) accepted++;
		else if (answer.status === 409 && answer.createTime < most) refusedOlder++;
		else wrong.push(answer);
	}
	const newest = answers.reduce((max, a) => Math.max(max, a.createTime), prior);
	return { accepted, refused_older: refusedOlder, wrong: wrong.length, first_wrong: wrong[0] ?? null, newest_create_time: Number.isFinite(newest) ? newest : null };
}
