/**
 * The component's ledger of exchanged authorization codes (authorizations.ts): which authorizer each code
 * made, so that a late duplicate of a code (WeChat repeating its push, the vendor's redirect page posting it
 * again) gets the same answer without a second api_query_auth. Entries are kept EXCHANGED_CODE_RETENTION_MS
 * and then pruned by the component's alarm, so storage holds about a day of codes, not every code ever.
 *
 * Why a day: a code dies at WeChat about 600 s after it is issued (OPEN-PLATFORM.md §5; SDK fixtures hint at
 * up to 7200 s, unconfirmed); WeChat repeats a push within minutes and a browser re-posts a redirect within
 * minutes. A day is twelve times the longest lifetime reported. Past it a duplicate is a code WeChat refuses
 * (61009 / 61010), whose exchange mints nothing: one refused call and a 400 that says to start again, with no
 * token at risk. The alarm fires at least once per component token lifetime (~6300 s), so an entry lives a
 * day and at most that much more.
 *
 * Layout: `auth_code:<digest>` → CodeEntry, looked up by the code; `auth_code_at:<ms, 13 digits>:<digest>`,
 * in time order, so a prune reads only the keys it deletes.
 */
import { authCodeKey, authCodeTimeKey, AUTH_CODE_PREFIX, AUTH_CODE_TIME_PREFIX, CODE_LEDGER_INDEXED_KEY } from "../core/storage-keys";
import { log } from "../core/log";

/** A code's entry: pending (the code itself, until exchanged) or exchanged (which authorizer it made). */
export interface CodeEntry {
	readonly receivedAt: number;
	readonly code?: string;
	readonly authorizerAppid?: string;
	readonly funcInfo?: readonly number[];
	readonly exchangedAt?: number;
}

/** How long an exchanged code's answer is kept for its duplicates (see above). */
export const EXCHANGED_CODE_RETENTION_MS = 24 * 3_600_000;
/** storage.delete takes at most 128 keys: a code's entry and its time key, 64 codes a batch. */
const PRUNE_BATCH_CODES = 64;

export class CodeLedger {
	readonly #storage: DurableObjectStorage;
	/** Whether entries written before the time keys existed have been given theirs (memory copy). */
	#indexed = false;

	constructor(storage: DurableObjectStorage) {
		this.#storage = storage;
	}

	get(digest: string): Promise<CodeEntry | undefined> {
		return this.#storage.get<CodeEntry>(authCodeKey(digest));
	}

	/** The code made `authorizerAppid`: its answer, and its time key for the prune. */
	async exchanged(digest: string, authorizerAppid: string, funcInfo: readonly number[], at: number): Promise<void> {
		await this.#storage.put({
			[authCodeKey(digest)]: { receivedAt: at, authorizerAppid, funcInfo, exchangedAt: at } satisfies CodeEntry,
			[authCodeTimeKey(at, digest)]: digest,
		});
	}

	/** The component's alarm: every code exchanged more than the retention ago goes; the count dropped. */
	async prune(componentAppid: string, now: number): Promise<number> {
		await this.#indexOlderEntries();
		const end = authCodeTimeKey(now - EXCHANGED_CODE_RETENTION_MS, "");
		let dropped = 0;
		for (;;) {
			const batch = await this.#storage.list<string>({ prefix: AUTH_CODE_TIME_PREFIX, end, limit: PRUNE_BATCH_CODES });
			if (batch.size === 0) break;
			await this.#storage.delete([...batch].flatMap(([timeKey, digest]) => [timeKey, authCodeKey(digest)]));
			dropped += batch.size;
			if (batch.size < PRUNE_BATCH_CODES) break;
		}
		if (dropped > 0) log("info", "authorization_codes_pruned", { component_appid: componentAppid, dropped });
		return dropped;
	}

	/**
	 * Entries stored before the ledger had time keys get theirs once (by when they were exchanged, or
	 * received), so they are pruned like the rest; a marker says it is done.
	 */
	async #indexOlderEntries(): Promise<void> {
		if (this.#indexed) return;
		if (!(await this.#storage.get(CODE_LEDGER_INDEXED_KEY))) {
			const entries = await this.#storage.list<CodeEntry>({ prefix: AUTH_CODE_PREFIX });
			const timeKeys: Record<string, string> = {};
			for (const [key, entry] of entries) {
				const digest = key.slice(AUTH_CODE_PREFIX.length);
				timeKeys[authCodeTimeKey(entry.exchangedAt ?? entry.receivedAt, digest)] = digest;
			}
			const keys = Object.entries(timeKeys);
			// storage.put takes at most 128 entries at once.
			for (let i = 0; i < keys.length; i += 128) await this.#storage.put(Object.fromEntries(keys.slice(i, i + 128)));
			await this.#storage.put(CODE_LEDGER_INDEXED_KEY, true);
		}
		this.#indexed = true;
	}
}
