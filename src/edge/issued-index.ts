/**
 * Which app issued a token: KV "issued:v1:<sha256 of the token>" → {appid, until}.
 *
 * The app's TokenAuthority writes an entry for every token it makes current, before any reader can be
 * handed that token (engine/fetch-and-store.ts), and again beside each edge copy it writes; when a token is
 * replaced, its entry is rewritten to end when the gateway stops honouring it (while WeChat accepts it;
 * after an admin refresh or a stable force_refresh, at once: the entry is deleted). KV expires each entry with its `until`. The
 * gateway reads it to decide whether a request's access_token is one this broker issued — the current
 * token, or one it replaced while that one is still honoured — without asking any Durable Object.
 *
 * The key is the token's digest, never the token: listing the namespace must not hand out tokens.
 */
import { issuedKey } from "../core/storage-keys";
import type { CredentialRecord } from "../core/lifetime";

export interface IssuedRecord {
	readonly appid: string;
	/** ms since epoch: the token's own expiry; after it the token is nobody's. */
	readonly until: number;
}

/**
 * How long a location may answer a KV read from its own cache: KV's shortest (its default is 60 s). A
 * replaced edge copy or issued record is what another location goes on reading until then, so the broker's
 * reads of both ask for the shortest; the cost is one central read per key and location every 30 s, not 60.
 */
export const KV_READ_CACHE_TTL_S = 30;

/** KV rejects an expiration less than 60 s away. */
export const KV_MIN_TTL_S = 60;

const encoder = new TextEncoder();

export async function tokenDigest(token: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token)));
	return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Throws when KV refuses; the caller (edge-cache.ts) counts that as a failed edge write, which the cron repairs. */
export async function writeIssued(kv: KVNamespace, appid: string, token: CredentialRecord, ttlS: number): Promise<void> {
	const record: IssuedRecord = { appid, until: token.expiresAt };
	await kv.put(issuedKey(await tokenDigest(token.value)), JSON.stringify(record), { expirationTtl: ttlS });
}

/**
 * Rewrites the record of a token the current one replaced: honoured until `until` (issuedUntil,
 * engine/state.ts), and gone at once when that is now or past. Throws when KV refuses, like writeIssued.
 */
export async function writeReplaced(kv: KVNamespace, appid: string, token: string, until: number, now: number): Promise<void> {
	const key = issuedKey(await tokenDigest(token));
	if (until <= now) return kv.delete(key);
	const record: IssuedRecord = { appid, until };
	await kv.put(key, JSON.stringify(record), { expirationTtl: Math.max(KV_MIN_TTL_S, Math.ceil((until - now) / 1_000)) });
}

/** The record for `token`, or null when there is none, it is malformed, or KV cannot be read. */
export async function readIssued(kv: KVNamespace, token: string): Promise<IssuedRecord | null> {
	let value: unknown;
	try {
		value = await kv.get(issuedKey(await tokenDigest(token)), { type: "json", cacheTtl: KV_READ_CACHE_TTL_S });
	} catch {
		// KV down or the value corrupt: the gateway refuses the token (ownership.ts); the SDK fetches another.
		return null;
	}
	return isIssuedRecord(value) ? value : null;
}

function isIssuedRecord(value: unknown): value is IssuedRecord {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.appid === "string" && typeof v.until === "number";
}
