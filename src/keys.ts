/**
 * Every storage and KV key the broker uses, built in one place.
 *
 * Durable Object storage (one object per app, `idFromName(appid)`):
 *   "state" → AuthorityState (token-authority.ts): the current TokenRecord, the previous token and when
 *             it stops being accepted, today's upstream call counts, the last refresh and last error,
 *             the failure backoff and the forced-refresh rate limit.
 *   "gateway" → the app's gateway calls and heals today (gateway/usage-store.ts), added in batches.
 *
 * Workers KV (TOKEN_CACHE), written only by the app's TokenAuthority, read by every Worker isolate:
 *   "token:v1:<appid>" → TokenRecord as JSON, with a KV expiration no earlier than the token stops being
 *             served (and at least KV's 60 s minimum). Bump the version when the value's shape changes.
 *   "issued:v1:<sha256 hex of a token>" → IssuedRecord (gateway/issued-index.ts): which app issued the token
 *             and until when it lives, written beside the edge copy so the gateway can tell a token this
 *             broker issued (current or replaced) from a forged one; KV expires it with the token.
 *
 * Isolate memory (memory-cache.ts): the same "token:v1:<appid>" keys, for at most MEMORY_TTL_MS each.
 */
export const STATE_KEY = "state";
export const GATEWAY_USAGE_KEY = "gateway";

export function edgeKey(appid: string): string {
	return `token:v1:${appid}`;
}

/** The token's SHA-256 in hex, not the token: a KV listing must not hand out usable tokens. */
export function issuedKey(tokenSha256Hex: string): string {
	return `issued:v1:${tokenSha256Hex}`;
}
