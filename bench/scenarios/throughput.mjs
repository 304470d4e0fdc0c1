// @ts-check
/**
 * Throughput and latency of several targets at fixed concurrencies. Points are interleaved (round 1 of every
 * target and concurrency, then round 2, …) so that a slow drift of the machine (another process, thermal
 * throttling, GC of a growing heap) spreads over every target instead of landing on one; each point's
 * figures are the medians of its rounds.
 */
import { runLoad } from "../load.mjs";
import { median, round } from "../stats.mjs";

/**
 * @typedef {object} Target
 * @property {string} id
 * @property {string} label
 * @property {(connections: number) => Omit<import("../load.mjs").LoadSpec, "connections" | "durationS">} spec
 */

/**
 * @typedef {object} Point
 * @property {string} target
 * @property {string} label
 * @property {number} concurrency
 * @property {number} rps       median over rounds
 * @property {number} p50_ms    median over rounds
 * @property {number} p99_ms    median over rounds
 * @property {number} requests  all responses, errors and timeouts, all rounds
 * @property {number} failed    non-2xx, errors and timeouts, all rounds
 * @property {number[]} rounds_rps
 */

/**
 * @param {{ targets: Target[], concurrencies: number[], pointS: number, warmupS: number, repeats: number, tag: string }} options
 * @returns {Promise<Point[]>}
 */
export async function measureThroughput({ targets, concurrencies, pointS, warmupS, repeats, tag }) {
	const warmConnections = Math.max(...concurrencies);
	for (const target of targets) {
		await runLoad({ ...target.spec(warmConnections), connections: warmConnections, durationS: warmupS });
	}
	/** @type {Map<string, import("../load.mjs").LoadResult[]>} */
	const runs = new Map();
	for (let r = 1; r <= repeats; r++) {
		for (const concurrency of concurrencies) {
			for (const target of targets) {
				const result = await runLoad({ ...target.spec(concurrency), connections: concurrency, durationS: pointS });
				const key = `${target.id}@${concurrency}`;
				runs.set(key, [...(runs.get(key) ?? []), result]);
				console.error(`  ${tag} round ${r}/${repeats} c=${concurrency} ${target.label}: ${Math.round(result.rps)} req/s, p50 ${result.p50Ms.toFixed(2)} ms${result.failed ? `, ${result.failed} failed` : ""}`);
			}
		}
	}
	return targets.flatMap((target) => concurrencies.map((concurrency) => {
		const results = runs.get(`${target.id}@${concurrency}`) ?? [];
		return {
			target: target.id,
			label: target.label,
			concurrency,
			rps: round(median(results.map((x) => x.rps)), 0),
			p50_ms: round(median(results.map((x) => x.p50Ms)), 3),
			p99_ms: round(median(results.map((x) => x.p99Ms)), 3),
			requests: results.reduce((sum, x) => sum + x.ok + x.failed, 0),
			failed: results.reduce((sum, x) => sum + x.failed, 0),
			rounds_rps: results.map((x) => round(x.rps, 0)),
		};
	}));
}
