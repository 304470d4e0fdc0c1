/**
 * The KV edge copy of each app's current token.
 *
 * Only the app's TokenAuthority writes it, after every change; the read path never writes (a KV write per
 * read would cost more than the object call it saves). KV is eventually consistent: another location may
 * see the previous copy for ~30 s after a refresh (reads ask for KV's shortest cacheTtl, KV_READ_CACHE_TTL_S;
 * KV documents no hard bound). That is safe because a copy is served only until
 * its `refreshAt`, and until then the token in it is still accepted by WeChat: a scheduled classic refresh
 * leaves the old token valid 300 s, a stable rotation leaves it valid to its own expiry. A forced refresh
 * starts before `refreshAt`, so the object first replaces the copy with a capped one that no reader serves
 * (retractEdgeCopy, engine/fetch-and-store.ts); only another location, for KV's ~30 s, or another
 * isolate's memory, for 5 s, can still hand out the old token, and the client's report then costs nothing
 * upstream (compare-and-refresh sees a stale token).
 *
 * Staleness bound with the memory tier (memory-cache.ts) in front: an isolate may serve a copy up to
 * MEMORY_TTL_MS (5 s) after it read it from KV, so a refresh reaches every isolate within KV's ~30 s plus
 * 5 s, and never later than the served record's own `refreshAt` (the same limit KV copies obey). The
 * isolate that answered an invalidation or refresh serves the new record at once. This holds for every
 * credential kind kept this way: the bound depends only on `refreshAt`.
 */
import { KV_MIN_TTL_S, KV_READ_CACHE_TTL_S, writeIssued, writeReplaced } from "./issued-index";
import { edgeKey } from "../core/storage-keys";
import type { CredentialType } from "../core/credentials";
import { isDue, isUsable, type CredentialRecord } from "../core/lifetime";
import { log } from "../core/log";

/** KV takes one write a second per key: a second write to the same key sooner fails (429). */
export const KV_KEY_WRITE_INTERVAL_MS = 1_000;


/** The copy when it may still be served at `now`: present, well-formed, not yet due for refresh. */
export async function readEdgeCopy(kv: KVNamespace, appid: string, now: number, type: CredentialType = "token"): Promise<CredentialRecord | null> {
	const value = await readEdgeRecord(kv, appid, type);
	if (!value || !isUsable(value, now) || isDue(value, now)) return null;
	return value;
}

/** The copy as stored, whatever its age, or null when it is missing, malformed or unreadable. */
export async function readEdgeRecord(kv: KVNamespace, appid: string, type: CredentialType = "token"): Promise<CredentialRecord | null> {
	let value: unknown;
	try {
		value = await kv.get(edgeKey(appid, type), { type: "json", cacheTtl: KV_READ_CACHE_TTL_S });
	} catch (error) {
		// KV down or the value corrupt: the Durable Object still answers, so this is only slower.
		log("warn", "edge_read_failed", { appid, reason: error instanceof Error ? error.name : "unknown" });
		return null;
	}
	return isCredentialRecord(value) ? value : null;
}

export interface EdgeWriteOptions {
	/**
	 * The copy of a value about to be revoked, capped; who issued the value has not changed, and until the
	 * force lands the gateway goes on recognising it, so the issued records are left alone.
	 */
	readonly retraction?: boolean;
	/** The token's issued record is in KV already (written before the token became current): not again. */
	readonly indexed?: boolean;
	/** The token the current one replaced, and until when the gateway honours it (its record is rewritten). */
	readonly replaced?: { readonly value: string; readonly until: number } | null;
}

/**
 * True when KV took the copy and, for an access_token, the gateway's records of who issued it and of the
 * token it replaced (issued-index.ts); a failure of any is logged and left to the caller to retry. The
 * token's own record goes first, so KV never holds a copy of a token the gateway would refuse.
 */
export async function writeEdgeCopy(kv: KVNamespace, appid: string, type: CredentialType, record: CredentialRecord, now: number, { retraction = false, indexed = false, replaced = null }: EdgeWriteOptions = {}): Promise<boolean> {
	const ttlS = Math.max(KV_MIN_TTL_S, Math.ceil((record.expiresAt - now) / 1_000));
	const token = type === "token" && !retraction;
	try {
		if (token && !indexed) await writeIssued(kv, appid, record, ttlS);
		await Promise.all([
			kv.put(edgeKey(appid, type), JSON.stringify(record), { expirationTtl: ttlS }),
			...(token && replaced ? [writeReplaced(kv, appid, replaced.value, replaced.until, now)] : []),
		]);
		return true;
	} catch (error) {
		log("warn", "edge_write_failed", { appid, reason: error instanceof Error ? error.name : "unknown" });
		return false;
	}
}

function isCredentialRecord(value: unknown): value is CredentialRecord {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.value === "string" && (v.policy === "stable" || v.policy === "classic" || v.policy === "independent" || v.policy === "no_overlap")
		&& typeof v.obtainedAt === "number" && typeof v.expiresAt === "number" && typeof v.refreshAt === "number";
}
