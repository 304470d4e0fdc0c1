/**
 * Token ownership: did this broker issue the access_token a request carries, and for which app?
 *
 * The gateway forwards a call only when the answer is yes; anything else is refused before it reaches
 * WeChat, so the broker is never a proxy for tokens it did not mint. Lookups, cheapest first:
 *   1. this isolate's memory: tokens it recently recognised or served (no I/O on the hot path);
 *   2. KV "issued:v1:<sha256>" (issued-index.ts), written by each app's TokenAuthority for every token it
 *      makes current and kept until that token expires: covers the current token and the ones it replaced;
 *   3. a bounded fallback: the apps' edge copies (KV "token:v1:<appid>"), read at most every
 *      FALLBACK_TABLE_TTL_MS per isolate. It covers a current token whose index entry is missing: tokens
 *      issued before the gateway was deployed, or an index write that failed (the cron repairs those).
 * A forged token costs one KV read (2.), plus the shared fallback table read at most every 10 s.
 */
import type { BrokerConfig } from "../config/config";
import { readEdgeRecord } from "../edge/edge-cache";
import { readIssued, type IssuedRecord } from "../edge/issued-index";

/** Positive answers kept per isolate: far more than apps × (current + previous), small in memory (~200 KB). */
const MAX_REMEMBERED_TOKENS = 1_024;
/** How long the edge-copy fallback table is reused: a flood of forged tokens reads it at most this often. */
export const FALLBACK_TABLE_TTL_MS = 10_000;
/**
 * Above this many apps the fallback is skipped: a Worker invocation may make at most 1,000 KV operations,
 * and the request itself needs a few. Such a broker recognises its pre-gateway tokens once they are
 * refreshed (every refresh writes an index entry), within one token lifetime.
 */
export const MAX_FALLBACK_APPS = 500;

/** Insertion-ordered: the oldest entry is the first to go. */
const remembered = new Map<string, IssuedRecord>();
let fallbackTable: { readonly builtAt: number; readonly owners: ReadonlyMap<string, IssuedRecord> } | null = null;

/** The app that issued `token`, if the token is still alive at `now`. */
export async function ownerOf(kv: KVNamespace, config: BrokerConfig, token: string, now: number): Promise<IssuedRecord | null> {
	const known = remembered.get(token);
	if (known && alive(known, now)) return known;
	if (known) remembered.delete(token);

	const indexed = await readIssued(kv, token);
	if (indexed && alive(indexed, now)) return remember(token, indexed);

	const table = await fallback(kv, config, now);
	const found = table.get(token);
	return found && alive(found, now) ? remember(token, found) : null;
}

/** Records a token the broker has just handed out, so the first business call with it needs no I/O. */
export function rememberIssued(token: string, appid: string, until: number): void {
	remember(token, { appid, until });
}

/** Whether its app still exists is the caller's question (forward.ts, requestOwner): it needs the app anyway. */
function alive(record: IssuedRecord, now: number): boolean {
	return record.until > now;
}

function remember(token: string, record: IssuedRecord): IssuedRecord {
	remembered.delete(token);
	remembered.set(token, record);
	if (remembered.size > MAX_REMEMBERED_TOKENS) remembered.delete(remembered.keys().next().value!);
	return record;
}

async function fallback(kv: KVNamespace, config: BrokerConfig, now: number): Promise<ReadonlyMap<string, IssuedRecord>> {
	if (fallbackTable && now - fallbackTable.builtAt < FALLBACK_TABLE_TTL_MS && now >= fallbackTable.builtAt) return fallbackTable.owners;
	const owners = new Map<string, IssuedRecord>();
	const appids = [...config.apps.keys()];
	if (appids.length <= MAX_FALLBACK_APPS) {
		const copies = await Promise.all(appids.map((appid) => readEdgeRecord(kv, appid)));
		copies.forEach((copy, i) => {
			if (copy) owners.set(copy.value, { appid: appids[i]!, until: copy.expiresAt });
		});
	}
	fallbackTable = { builtAt: now, owners };
	return owners;
}
