// @ts-check
/** Order statistics for latencies and repeated timings. */

/**
 * Nearest-rank percentile of unsorted values; NaN for none.
 * @param {ArrayLike<number>} values
 * @param {number} p  0–100
 */
export function percentile(values, p) {
	if (values.length === 0) return Number.NaN;
	const sorted = Float64Array.from(values).sort();
	const rank = Math.ceil((p / 100) * sorted.length);
	return /** @type {number} */ (sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]);
}

/** @param {ArrayLike<number>} values */
export function median(values) {
	return percentile(values, 50);
}

/**
 * @param {number} value
 * @param {number} [digits]
 */
export function round(value, digits = 2) {
	if (!Number.isFinite(value)) return value;
	const scale = 10 ** digits;
	return Math.round(value * scale) / scale;
}
