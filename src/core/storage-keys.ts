/**
 * Every storage and KV key the broker uses, built in one place.
 *
 * Durable Object storage (one object per app, `idFromName(appid)`):
 *   "state" → AuthorityState (engine/state.ts): per credential kind (token, jsapi, wx_card, agent_config)
 *             the current CredentialRecord, the previous value and when it stops being accepted (by WeChat,
 *             and by the gateway: issuedUntil), the last refresh and last error, the failure backoff, the
 *             forced-refresh stamp, the in-flight marker, the record KV holds and when KV last refused a
 *             write of it (edgeFailedAt); and for the app today's (and this hour's) upstream call counts, the incident and
 *             queued alerts.
 *   "gateway" → the app's gateway calls and heals today (gateway/usage-store.ts), added in batches.
 *
 * Workers KV (TOKEN_CACHE), written only by the app's TokenAuthority, read by every Worker isolate:
 *   "cred:v2:<appid>:<type>" → CredentialRecord as JSON (type: token, jsapi, wx_card, agent_config), with a
 *             KV expiration no earlier than the value stops being served (and at least KV's 60 s minimum).
 *             Bump the version when the value's shape changes (v1 was "token:v1:<appid>", a TokenRecord).
 *   "issued:v1:<sha256 hex of a token>" → IssuedRecord (edge/issued-index.ts): which app issued the token
 *             and until when the gateway honours it, written before the token becomes current and beside each
 *             edge copy, rewritten when it is replaced (deleted after an admin refresh or a stable force_refresh), so the gateway can
 *             tell a token this broker issued (current, or replaced and still honoured) from a forged one;
 *             KV expires it with its `until` (at least KV's 60 s).
 *
 * Isolate memory (memory-cache.ts): the same "cred:v2:<appid>:<type>" keys, for at most MEMORY_TTL_MS each.
 */
import type { CredentialType } from "./credentials";

export const STATE_KEY = "state";
export const GATEWAY_USAGE_KEY = "gateway";

export function edgeKey(appid: string, type: CredentialType = "token"): string {
	return `cred:v2:${appid}:${type}`;
}

/** The token's SHA-256 in hex, not the token: a KV listing must not hand out usable tokens. */
export function issuedKey(tokenSha256Hex: string): string {
	return `issued:v1:${tokenSha256Hex}`;
}
