/**
 * Bounded retries of one refresh: transient failures (WeChat busy, 45011, timeouts, 5xx, garbage, a broken
 * connection) are tried again after an exponential, jittered pause; anything WeChat refused for a reason
 * that waiting cannot fix (wrong secret, IP not allowlisted, daily quota) is returned at once.
 * Longer outages are the caller's business: it keeps the current token and tries again later.
 */
import type { UpstreamFailure, UpstreamResult } from "./upstream";

/** Three attempts cover a blip without holding a cold reader for long: worst case 3 timeouts + ~0.6 s. */
export const MAX_ATTEMPTS = 3;
/** Pauses of ~200 ms then ~400 ms, each between half and all of that (jitter keeps apps and isolates apart). */
const RETRY_BASE_MS = 200;

/**
 * How the pause between attempts is taken. Tests replace `sleep` (the Durable Object shares their isolate)
 * so that they neither wait for real nor depend on how long a pause happens to take.
 */
export const retryPauses = {
	sleep(ms: number): Promise<void> {
		return new Promise((resolve) => setTimeout(resolve, ms));
	},
};

export type RetriedResult<T> = (
	| { ok: true; value: T }
	| { ok: false; failure: UpstreamFailure }
) & {
	/**
	 * Some attempt got no usable answer (timeout, reset, 5xx, garbage): WeChat may have acted on it. Kept
	 * across the retries, because a later attempt that fails differently does not undo what WeChat did.
	 */
	readonly unanswered: boolean;
};

/**
 * Runs `attempt` up to `maxAttempts` times. `beforeAttempt` runs (and is awaited) before each one: the
 * caller counts the call and persists a marker there, so a restart in the middle leaves a trace.
 */
export async function withRetry<T>(
	attempt: () => Promise<UpstreamResult<T>>,
	beforeAttempt: () => Promise<void>,
	maxAttempts = MAX_ATTEMPTS,
): Promise<RetriedResult<T>> {
	let unanswered = false;
	for (let n = 1; ; n++) {
		await beforeAttempt();
		const result = await attempt();
		if (!result.ok && result.failure.kind === "unreachable") unanswered = true;
		// A refused token is the caller's to heal: asking again with the same token cannot help.
		if (result.ok || result.failure.class !== "retryable" || result.failure.tokenRefused || n >= maxAttempts) return { ...result, unanswered };
		await retryPauses.sleep(RETRY_BASE_MS * 2 ** (n - 1) * (0.5 + Math.random() / 2));
	}
}
