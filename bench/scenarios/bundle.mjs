// @ts-check
/**
 * The size of what `wrangler deploy` uploads, beside Cloudflare's Worker size limits, which apply to the
 * compressed script: 3 MiB on the Free plan, 10 MiB on Paid.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const MIB = 1024 * 1024;
export const WORKER_LIMIT_FREE_BYTES = 3 * MIB;
export const WORKER_LIMIT_PAID_BYTES = 10 * MIB;

/** @param {string} path */
export function measureBundle(path) {
	const raw = readFileSync(path);
	const gzip = gzipSync(raw, { level: 9 }).length;
	return {
		path,
		raw_bytes: raw.length,
		gzip_bytes: gzip,
		limit_free_bytes: WORKER_LIMIT_FREE_BYTES,
		limit_paid_bytes: WORKER_LIMIT_PAID_BYTES,
		share_of_free_limit: gzip / WORKER_LIMIT_FREE_BYTES,
	};
}
