/**
 * Bounded retries of one refresh: transient failures (WeChat busy, 45011, timeouts, 5xx, garbage, a broken
 * connection) are tried again after an exponential, jittered pause; anything WeChat refused for a reason
 * that waiting cannot fix (wrong secret, IP not allowlisted, daily quota) is returned at once.
 * Longer outages are the caller's business: it keeps the current token and tries again later.
 */
import type { AppConfig } from "../config";
import { fetchAccessToken, type FetchOptions, type UpstreamResult } from "./client";

/** Three attempts cover a blip without holding a cold reader for long: worst case 3 timeouts + ~0.6 s. */
export const MAX_ATTEMPTS = 3;
/** Pauses of ~200 ms then ~400 ms, each between half and all of that (jitter keeps apps and isolates apart). */
const RETRY_BASE_MS = 200;

export async function fetchWithRetry(app: AppConfig, options: FetchOptions, onAttempt: () => void, maxAttempts = MAX_ATTEMPTS): Promise<UpstreamResult> {
	for (let attempt = 1; ; attempt++) {
		onAttempt();
		const result = await fetchAccessToken(app, options);
		if (result.ok || result.failure.class !== "retryable" || attempt >= maxAttempts) return result;
		const pauseMs = RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
		await new Promise((resolve) => setTimeout(resolve, pauseMs));
	}
}
