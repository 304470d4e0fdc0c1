/**
 * Token ownership: did this broker issue the access_token a request carries, and for which app?
 *
 * The gateway forwards a call only when the answer is yes; anything else is refused before it reaches
 * WeChat, so the broker is never a proxy for tokens it did not mint. Lookups, cheapest first:
 *   1. this isolate's memory: tokens it recently recognised or served (no I/O on the hot path);
 *   2. KV "issued:v1:<sha256>" (issued-index.ts), written by each app's TokenAuthority for every token it
 *      makes current and kept until that token expires: covers the current token and the ones it replaced.
 * Nothing else: no lookup reads every app's copy, so the cost of a lookup does not grow with the number of
 * apps. A forged token costs one KV read. An index entry whose write failed is written again with the edge
 * copy by the object's next alarm (authority/alarm-chain.ts), and until then that token is refused (40001),
 * which an SDK answers by fetching the token again.
 */
import type { BrokerConfig } from "../config/config";
import { findApp } from "../registry/lookup";
import { readIssued, type IssuedRecord } from "../edge/issued-index";

/** Positive answers kept per isolate: far more than apps × (current + previous), small in memory (~200 KB). */
const MAX_REMEMBERED_TOKENS = 1_024;

/** Insertion-ordered: the oldest entry is the first to go. */
const remembered = new Map<string, IssuedRecord>();

/** The app that issued `token`, if it is still alive at `now` and the app still configured. */
export async function ownerOf(kv: KVNamespace, config: BrokerConfig, token: string, now: number): Promise<IssuedRecord | null> {
	const known = remembered.get(token);
	if (known && await usable(kv, known, config, now)) return known;
	if (known) remembered.delete(token);

	const indexed = await readIssued(kv, token);
	return indexed && await usable(kv, indexed, config, now) ? remember(token, indexed) : null;
}

/** Records a token the broker has just handed out, so the first business call with it needs no I/O. */
export function rememberIssued(token: string, appid: string, until: number): void {
	remember(token, { appid, until });
}

/** Alive, and its app still exists: a deleted app's tokens stop being gateway credentials with it. */
async function usable(kv: KVNamespace, record: IssuedRecord, config: BrokerConfig, now: number): Promise<boolean> {
	return record.until > now && (await findApp({ TOKEN_CACHE: kv }, config, record.appid)) !== undefined;
}

function remember(token: string, record: IssuedRecord): IssuedRecord {
	remembered.delete(token);
	remembered.set(token, record);
	if (remembered.size > MAX_REMEMBERED_TOKENS) remembered.delete(remembered.keys().next().value!);
	return record;
}
