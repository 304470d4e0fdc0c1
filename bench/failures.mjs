// @ts-check
/**
 * A measurement of failed requests is not a measurement: latencies of error answers, "calls per lifetime"
 * of a system that served nothing. Every scenario's rows pass through here before anything is printed or
 * written, and the bench stops with a message naming the rows instead of reporting figures made of errors.
 */

/**
 * Up to this share of a row's requests may fail (a timeout on a loaded 2-core machine) before its figures
 * stop meaning what they say. Anything systematic (a refused config, a broken upstream) fails far more.
 */
export const MAX_FAILED_SHARE = 0.01;

export class BenchFailure extends Error {}

/**
 * @typedef {object} RowOutcome
 * @property {string} label       which row, as the table names it
 * @property {number} requests    all requests of the row, failed ones included
 * @property {number} failed
 * @property {string} [firstError] what the first failure looked like (status and message, never a token)
 */

/**
 * @param {string} scenario
 * @param {RowOutcome[]} rows
 */
export function requireSuccess(scenario, rows) {
	const bad = rows.filter((row) => row.failed > 0 && (row.requests === 0 || row.failed / row.requests > MAX_FAILED_SHARE));
	if (bad.length === 0) return;
	const lines = bad.map((row) => `  ${row.label}: ${row.failed} of ${row.requests} requests failed${row.firstError ? `; first: ${row.firstError}` : ""}`);
	throw new BenchFailure([
		`${scenario}: requests failed, so its figures would describe errors (more than ${MAX_FAILED_SHARE * 100} % of a row's requests failed):`,
		...lines,
		"Fix the cause (the Worker's log lines are in bench/.tmp/worker-*.log) and run the bench again.",
	].join("\n"));
}
