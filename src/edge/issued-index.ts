/**
 * Which app issued a token: KV "issued:v1:<sha256 of the token>" → {appid, until}.
 *
 * The app's TokenAuthority writes an entry beside the edge copy every time it writes that copy (so for
 * every token it ever made current), and KV expires the entry with the token. The gateway reads it to
 * decide whether a request's access_token is one this broker issued — the current token or one it
 * replaced, for as long as that token itself lives — without asking any Durable Object.
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

/** The record for `token`, or null when there is none, it is malformed, or KV cannot be read. */
export async function readIssued(kv: KVNamespace, token: string): Promise<IssuedRecord | null> {
	let value: unknown;
	try {
		value = await kv.get(issuedKey(await tokenDigest(token)), { type: "json", cacheTtl: KV_READ_CACHE_TTL_S });
	} catch {
		// KV down or the value corrupt: the gateway falls back to the edge copies (ownership.ts).
		return null;
	}
	return isIssuedRecord(value) ? value : null;
}

function isIssuedRecord(value: unknown): value is IssuedRecord {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.appid === "string" && typeof v.until === "number";
}
