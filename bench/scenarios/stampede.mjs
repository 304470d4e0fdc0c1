// @ts-check
/**
 * Stampede: N clients ask for the token of an app nobody has fetched yet, all at once. The ideal is one
 * upstream call and one token for all N. Every extra call mints another token, and with
 * /cgi-bin/token each new token revokes the previous one 5 minutes later (40001 "not latest"): so the
 * measure is upstream calls, distinct tokens handed out, and how many of the N answers carried a token
 * WeChat rejects once that overlap has passed.
 */
import { burst } from "../burst.mjs";
import { median, round } from "../stats.mjs";
import { totalTokenCalls } from "./broker-paths.mjs";

/**
 * @typedef {object} StampedeRun
 * @property {number} n
 * @property {number} upstream_calls
 * @property {number} distinct_tokens
 * @property {number} rejected   answers whose token WeChat refused at the check
 * @property {number} failed     answers without a token
 * @property {number} p50_ms
 * @property {number} p99_ms
 * @property {number} max_ms
 */

/**
 * @param {{ world: import("../world.mjs").World, appid: string, urls: string[], n: number,
 *   headers?: Record<string, string>, checkAfterMs: number }} options
 * @returns {Promise<StampedeRun>}
 */
export async function stampede({ world, appid, urls, n, headers, checkAfterMs }) {
	const result = await burst({ urls: urls.map((u) => `${u}/token?appid=${appid}`), n, headers });
	// Counted at once: later calls (a baseline's timer) are not the stampede's.
	const upstream = totalTokenCalls(await world.calls(appid));
	await new Promise((resolve) => setTimeout(resolve, checkAfterMs));
	const distinct = [...new Set(result.tokens)];
	const verdicts = new Map(await Promise.all(distinct.map(async (token) => /** @type {const} */ ([token, await world.check(token)]))));
	return {
		n,
		upstream_calls: upstream,
		distinct_tokens: distinct.length,
		rejected: result.tokens.filter((token) => verdicts.get(token) !== 0).length,
		failed: n - result.ok,
		p50_ms: round(result.p50Ms, 1),
		p99_ms: round(result.p99Ms, 1),
		max_ms: round(result.maxMs, 1),
	};
}

/**
 * Medians of repeated runs of one size (each run on a fresh app).
 * @param {StampedeRun[]} runs
 */
export function summarizeRuns(runs) {
	/** @param {(run: StampedeRun) => number} pick */
	const med = (pick) => median(runs.map(pick));
	return {
		n: runs[0]?.n ?? 0,
		upstream_calls: med((r) => r.upstream_calls),
		distinct_tokens: med((r) => r.distinct_tokens),
		rejected: med((r) => r.rejected),
		failed: med((r) => r.failed),
		p50_ms: round(med((r) => r.p50_ms), 1),
		p99_ms: round(med((r) => r.p99_ms), 1),
		runs,
	};
}
