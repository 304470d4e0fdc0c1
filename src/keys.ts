/**
 * Every storage and KV key the broker uses, built in one place.
 *
 * Durable Object storage (one object per app, `idFromName(appid)`):
 *   "state" → AuthorityState (token-authority.ts): the current TokenRecord, the previous token and when
 *             it stops being accepted, today's upstream call counts, the last refresh and last error,
 *             the failure backoff and the forced-refresh rate limit.
 *
 * Workers KV (TOKEN_CACHE), written only by the app's TokenAuthority, read by every Worker isolate:
 *   "token:v1:<appid>" → TokenRecord as JSON, with a KV expiration no earlier than the token stops being
 *             served (and at least KV's 60 s minimum). Bump the version when the value's shape changes.
 *
 * Isolate memory (memory-cache.ts): the same "token:v1:<appid>" keys, for at most MEMORY_TTL_MS each.
 */
export const STATE_KEY = "state";

export function edgeKey(appid: string): string {
	return `token:v1:${appid}`;
}
