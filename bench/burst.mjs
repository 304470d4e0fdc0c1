// @ts-check
/**
 * N requests sent at once, the way N clients that all find the token missing (or all see it refused) in
 * the same instant would send them: every request is started before any answer is read, each on its own
 * connection (undici's default pool opens as many as are asked for).
 */
import { percentile } from "./stats.mjs";

/**
 * @typedef {object} BurstSpec
 * @property {string[]} urls  request i goes to urls[i % urls.length] (several instances: round-robin)
 * @property {number} n
 * @property {"GET" | "POST"} [method]
 * @property {Record<string, string>} [headers]
 * @property {string} [body]
 * @property {string} [valueKey]  the answer's field that carries the credential (default access_token; ticket for GET /ticket)
 */

/**
 * @typedef {object} BurstResult
 * @property {number} n
 * @property {number} ok        200 answers with a token
 * @property {Record<string, number>} failures  by HTTP status, or "network"
 * @property {string[]} tokens  the token of each 200 answer, in order
 * @property {number} p50Ms
 * @property {number} p99Ms
 * @property {number} maxMs
 */

/**
 * @param {BurstSpec} spec
 * @returns {Promise<BurstResult>}
 */
export async function burst({ urls, n, method = "GET", headers = {}, body, valueKey = "access_token" }) {
	/** @type {Record<string, number>} */
	const failures = {};
	/** @type {string[]} */
	const tokens = [];
	/** @type {number[]} */
	const latencies = [];
	await Promise.all(Array.from({ length: n }, async (_, i) => {
		const started = performance.now();
		let status = "network";
		try {
			const res = await fetch(/** @type {string} */ (urls[i % urls.length]), { method, headers, body });
			status = String(res.status);
			const json = /** @type {Record<string, unknown>} */ (await res.json().catch(() => ({})));
			latencies.push(performance.now() - started);
			const value = json[valueKey];
			if (res.status === 200 && typeof value === "string") {
				tokens.push(value);
				return;
			}
		} catch {}
		failures[status] = (failures[status] ?? 0) + 1;
	}));
	return {
		n,
		ok: tokens.length,
		failures,
		tokens,
		p50Ms: percentile(latencies, 50),
		p99Ms: percentile(latencies, 99),
		maxMs: percentile(latencies, 100),
	};
}
