/**
 * Token ownership: did this broker issue the access_token a request carries, and for which app?
 *
 * The gateway forwards a call only when the answer is yes; anything else is refused before it reaches
 * WeChat, so the broker is never a proxy for tokens it did not mint. A replaced token is honoured only as
 * long as its record says (issued-index.ts: while WeChat accepts it, not at all after a forced refresh), so
 * no answer is kept longer than REMEMBERED_MS, and the isolate that forces a refresh forgets the app's
 * other tokens at once. Lookups, cheapest first:
 *   1. this isolate's memory: tokens it recognised or handed out in the last REMEMBERED_MS (no I/O on the
 *      hot path), so another isolate's force reaches it within KV's staleness plus 5 s, like a token read;
 *   2. KV "issued:v1:<sha256>" (issued-index.ts), written by each app's TokenAuthority before a token
 *      becomes current, rewritten when it is replaced: covers the current token and the ones it replaced.
 * Nothing else: no lookup reads every app's copy, so the cost of a lookup does not grow with the number of
 * apps. A forged token costs one KV read. An index entry whose write KV refused is written again by the
 * object (the first request a second later, or its next alarm: authority/alarm-chain.ts); until then only
 * the isolate that handed the token out recognises it, and others answer 40001, which an SDK answers by
 * fetching the token again.
 */
import type { BrokerConfig } from "../config/config";
import { readIssued, type IssuedRecord } from "../edge/issued-index";
import { MEMORY_TTL_MS } from "../edge/memory-cache";

/** Positive answers kept per isolate: far more than apps × (current + previous), small in memory (~200 KB). */
const MAX_REMEMBERED_TOKENS = 1_024;
/**
 * How long a positive answer is reused before KV is asked again: the memory tier's bound (memory-cache.ts),
 * so a token another isolate forced out is refused here within the same staleness bound as a token read.
 */
export const REMEMBERED_MS = MEMORY_TTL_MS;

/** Insertion-ordered: the oldest entry is the first to go. `at`: when it was learnt (ms). */
const remembered = new Map<string, { readonly record: IssuedRecord; readonly at: number }>();

/** The app that issued `token`, if the token is still alive at `now`. */
export async function ownerOf(kv: KVNamespace, config: BrokerConfig, token: string, now: number): Promise<IssuedRecord | null> {
	const known = remembered.get(token);
	if (known && now - known.at < REMEMBERED_MS && now >= known.at && alive(known.record, now)) return known.record;
	if (known) remembered.delete(token);

	const indexed = await readIssued(kv, token);
	return indexed && alive(indexed, now) ? remember(token, indexed) : null;
}

/**
 * Records a token the broker has just handed out, so the first business call with it needs no I/O, and is
 * recognised here even before KV has its record (a refused write is retried a second later, fetch-and-store.ts).
 */
export function rememberIssued(token: string, appid: string, until: number): void {
	remember(token, { appid, until });
}

/**
 * This isolate learnt that `current` is the app's token now (a forced refresh, a report): the app's
 * other tokens are no longer taken from memory, so one forced out is refused here at once (its issued
 * record is gone), and one merely replaced is honoured for as long as its rewritten record says.
 */
export function replacedHere(appid: string, current: string, until: number): void {
	for (const [token, { record }] of remembered) if (record.appid === appid && token !== current) remembered.delete(token);
	rememberIssued(current, appid, until);
}

/** Whether its app still exists is the caller's question (forward.ts, requestOwner): it needs the app anyway. */
function alive(record: IssuedRecord, now: number): boolean {
	return record.until > now;
}

function remember(token: string, record: IssuedRecord): IssuedRecord {
	remembered.delete(token);
	remembered.set(token, { record, at: Date.now() });
	if (remembered.size > MAX_REMEMBERED_TOKENS) remembered.delete(remembered.keys().next().value!);
	return record;
}
