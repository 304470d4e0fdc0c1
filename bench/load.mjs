// @ts-check
/**
 * Closed-loop HTTP load at a fixed concurrency for a bounded time (autocannon 8, in this process).
 *
 * Latencies come from autocannon's per-response event (process.hrtime, fractional ms) rather than from its
 * result histogram, which keeps whole milliseconds: a hot token read takes well under one, and p50 would
 * read 0 or 1. Throughput counts only 2xx answers, so a path that fails fast cannot look fast.
 */
import autocannon from "autocannon";
import { percentile } from "./stats.mjs";

/**
 * @typedef {object} LoadSpec
 * @property {string | string[]} url   several URLs: autocannon spreads the connections over them round-robin
 * @property {number} connections
 * @property {number} durationS
 * @property {"GET" | "POST"} [method]
 * @property {Record<string, string>} [headers]
 * @property {string} [body]
 */

/**
 * @typedef {object} LoadResult
 * @property {number} rps     2xx responses per second
 * @property {number} p50Ms
 * @property {number} p99Ms
 * @property {number} ok      2xx responses
 * @property {number} failed  non-2xx responses, errors and timeouts
 */

/** A request still unanswered after this long is a failure, not a latency. */
const REQUEST_TIMEOUT_S = 10;

/**
 * @param {LoadSpec} spec
 * @returns {Promise<LoadResult>}
 */
export async function runLoad({ url, connections, durationS, method = "GET", headers = {}, body }) {
	/** @type {number[]} */
	const latencies = [];
	const instance = autocannon({
		url,
		connections,
		duration: durationS,
		method,
		headers,
		body,
		pipelining: 1,
		timeout: REQUEST_TIMEOUT_S,
	});
	instance.on("response", (_client, statusCode, _bytes, responseTimeMs) => {
		if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
	});
	const result = await instance;
	const failed = result.non2xx + result.errors + result.timeouts;
	return {
		rps: latencies.length / result.duration,
		p50Ms: percentile(latencies, 50),
		p99Ms: percentile(latencies, 99),
		ok: latencies.length,
		failed,
	};
}
