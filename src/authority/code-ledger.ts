/**
 * A ledger of single-use codes, in the object that exchanges them: the open platform's authorisation codes
 * (authorizations.ts, api_query_auth) and WeCom's install codes (suite-installs.ts, get_permanent_code). Each
 * code the platform issues arrives by push, by the vendor's redirect page, or both, and is exchanged once,
 * however many times and by whichever path it arrives (a second exchange would only get "code used").
 *
 * - A push is answered `success` as soon as its code is stored (pending, under its digest); the exchange runs
 *   in the background (waitUntil). A pending code that an evicted instance never exchanged is exchanged by
 *   the next arrival of the same code, by the redirect page's POST, or by the object's alarm (wake, resume).
 * - Concurrent arrivals of one code join one flight (the object runs one call at a time between awaits).
 * - What the ledger keeps of an exchanged code is what it made (which app), never the grant it brought: that
 *   goes straight to the new app's own object, which seals it. A late duplicate is answered from it.
 *
 * Retention: an exchanged code's answer is kept EXCHANGED_CODE_RETENTION_MS, then pruned by the object's
 * alarm, so storage holds about a day of codes, not every code ever. Why a day: a code dies at the platform
 * about 600 s after it is issued (OPEN-PLATFORM.md §5, §10; SDK fixtures hint at up to 7200 s, unconfirmed);
 * pushes are repeated within minutes and a browser re-posts a redirect within minutes. Past it a duplicate is
 * a code the platform refuses (61009 / 40078), whose exchange mints nothing: one refused call and a 400 that
 * says to start again. Layout (core/storage-keys.ts, LedgerKeys): `<entry><digest>` → LedgerEntry, looked up
 * by the code; `<time><ms, 13 digits>:<digest>`, in time order, so a prune reads only the keys it deletes.
 */
import { tokenDigest } from "../edge/issued-index";
import { log } from "../core/log";
import type { Failure } from "../core/outcome";
import { ledgerEntryKey, ledgerTimeKey, type LedgerKeys } from "../core/storage-keys";
import type { UpstreamFailure } from "../wechat/upstream";

/** A credential's Failure, or a client's mistake: a code the platform says is unknown, used or expired (400). */
export type ExchangeFailure = Failure | { readonly code: "bad_request"; readonly message: string; readonly wechatErrcode?: number };

/** An upstream refusal as a route answers it (502 with the errcode, or 503), with `message` where given. */
export function refusal(failure: UpstreamFailure, message = failure.message): Failure {
	return { code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable", message, ...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }) };
}

/** A code's entry: pending (the code itself, until exchanged) or exchanged (what it made, and when). */
export type LedgerEntry<M extends object> = { readonly receivedAt: number; readonly code?: string; readonly exchangedAt?: number } & Partial<M>;

/** One exchange upstream: what it made, or why not (`dead`: the code is gone for good at the platform). */
export type Exchanged<M> = { readonly ok: true; readonly made: M } | { readonly ok: false; readonly failure: ExchangeFailure; readonly dead: boolean };

export type LedgerOutcome<R> = R | { readonly ok: false; readonly failure: ExchangeFailure };

export interface CodeLedgerHost<M extends object, R> {
	readonly storage: DurableObjectStorage;
	/** Where its entries live (core/storage-keys.ts). */
	readonly keys: LedgerKeys;
	/** For logs: "authorization_code", "install_code". */
	readonly label: string;
	waitUntil(promise: Promise<unknown>): void;
	/** The object's alarm follows what is pending now. */
	replan(): Promise<void>;
	/** The exchange itself (the platform's call, and handing the grant to the app it makes). */
	exchange(owner: string, code: string): Promise<Exchanged<M>>;
	/** The answer for what a code made; `exchanged` is false when an earlier exchange made it. */
	result(made: M, exchanged: boolean): Promise<R>;
}

/** How long an exchanged code's answer is kept for its duplicates (see above). */
export const EXCHANGED_CODE_RETENTION_MS = 24 * 3_600_000;
/** storage.delete takes at most 128 keys: a code's entry and its time key, 64 codes a batch. */
const PRUNE_BATCH_CODES = 64;
/** A pushed code whose exchange failed is tried again this soon by the object's alarm (codes live ~10 min). */
const PENDING_RETRY_MS = 30_000;
/** Pending codes older than this are dead at the platform: dropped rather than tried. */
const PENDING_MAX_AGE_MS = 15 * 60_000;

export class CodeLedger<M extends object, R> {
	readonly #host: CodeLedgerHost<M, R>;
	readonly #flights = new Map<string, Promise<LedgerOutcome<R>>>();
	/** Whether storage holds a pushed code not yet exchanged (memory copy, read in load()). */
	#pending = false;
	/** Whether entries written before the time keys existed have been given theirs (memory copy). */
	#indexed = false;
	/**
	 * When the alarm retries the pending codes (ms): set when an exchange leaves one pending, and at load.
	 * Kept, not computed from the plan's `now`: the object plans after every save, and a retry always 30 s
	 * after the latest plan would never come while saves come more often (install links asked for, say).
	 */
	#retryAt = 0;

	constructor(host: CodeLedgerHost<M, R>) {
		this.#host = host;
	}

	/** In the object's constructor: whether a pushed code still waits for its exchange. */
	async load(): Promise<void> {
		this.#pending = await this.#anyPending();
		this.#retryAt = Date.now() + PENDING_RETRY_MS;
	}

	async #anyPending(): Promise<boolean> {
		return (await this.#host.storage.list({ prefix: this.#host.keys.pendingPrefix, limit: 1 })).size > 0;
	}

	/**
	 * A push carried a code: stored (pending) before the push is answered, exchanged in the background; should
	 * that fail or the instance go, the alarm tries again (wake, resume).
	 */
	async received(owner: string, code: string): Promise<void> {
		const digest = await tokenDigest(code);
		if ((await this.#host.storage.get<LedgerEntry<M>>(ledgerEntryKey(this.#host.keys, digest)))?.exchangedAt === undefined) {
			await this.#host.storage.put(`${this.#host.keys.pendingPrefix}${digest}`, { receivedAt: Date.now(), code });
			this.#pending = true;
		}
		this.#host.waitUntil(this.exchange(owner, code));
	}

	/** When the alarm should retry pending codes, or null when none waits. */
	wake(now: number): number | null {
		return this.#pending && this.#flights.size === 0 ? Math.max(this.#retryAt, now) : null;
	}

	/**
	 * The alarm's part: codes exchanged more than a day ago leave the ledger, every pushed code not yet
	 * exchanged is tried again, and dead ones are dropped.
	 */
	async resume(owner: string): Promise<void> {
		await this.prune(owner, Date.now());
		if (!this.#pending) return;
		const pending = await this.#host.storage.list<LedgerEntry<M>>({ prefix: this.#host.keys.pendingPrefix });
		const now = Date.now();
		for (const [key, entry] of pending) {
			if (!entry.code || now - entry.receivedAt > PENDING_MAX_AGE_MS) {
				log("warn", `${this.#host.label}_dropped`, { owner, age_s: Math.floor((now - entry.receivedAt) / 1_000) });
				await this.#host.storage.delete(key);
				continue;
			}
			await this.exchange(owner, entry.code);
		}
		this.#pending = await this.#anyPending();
	}

	/** The code exchanged (or the earlier exchange's result). */
	async exchange(owner: string, code: string): Promise<LedgerOutcome<R>> {
		const digest = await tokenDigest(code);
		let flight = this.#flights.get(digest);
		if (!flight) {
			flight = this.#exchange(owner, code, digest).finally(async () => {
				this.#flights.delete(digest);
				// A failed exchange leaves its code pending: the alarm is planned for its retry (wake).
				this.#pending = await this.#anyPending();
				this.#retryAt = Date.now() + PENDING_RETRY_MS;
				await this.#host.replan();
			});
			this.#flights.set(digest, flight);
		}
		return flight;
	}

	/** Resolves when no exchange is under way (tests, and the object's idle()). */
	async settled(): Promise<void> {
		while (this.#flights.size > 0) await Promise.allSettled([...this.#flights.values()]);
	}

	/** Every code exchanged more than the retention ago goes; the count dropped. */
	async prune(owner: string, now: number): Promise<number> {
		await this.#indexOlderEntries();
		const { keys } = this.#host;
		const end = ledgerTimeKey(keys, now - EXCHANGED_CODE_RETENTION_MS, "");
		let dropped = 0;
		for (;;) {
			const batch = await this.#host.storage.list<string>({ prefix: keys.timePrefix, end, limit: PRUNE_BATCH_CODES });
			if (batch.size === 0) break;
			await this.#host.storage.delete([...batch].flatMap(([timeKey, digest]) => [timeKey, ledgerEntryKey(keys, digest)]));
			dropped += batch.size;
			if (batch.size < PRUNE_BATCH_CODES) break;
		}
		if (dropped > 0) log("info", `${this.#host.label}s_pruned`, { owner, dropped });
		return dropped;
	}

	async #exchange(owner: string, code: string, digest: string): Promise<LedgerOutcome<R>> {
		const { keys } = this.#host;
		const entry = await this.#host.storage.get<LedgerEntry<M>>(ledgerEntryKey(keys, digest));
		if (entry?.exchangedAt !== undefined) return this.#host.result(entry as unknown as M, false);
		const outcome = await this.#host.exchange(owner, code);
		if (!outcome.ok) {
			// The code's exchange is over for good (dead at the platform): it no longer waits.
			if (outcome.dead) await this.#host.storage.delete(`${keys.pendingPrefix}${digest}`);
			return { ok: false, failure: outcome.failure };
		}
		const at = Date.now();
		await this.#host.storage.put({
			[ledgerEntryKey(keys, digest)]: { receivedAt: at, exchangedAt: at, ...outcome.made },
			[ledgerTimeKey(keys, at, digest)]: digest,
		});
		await this.#host.storage.delete(`${keys.pendingPrefix}${digest}`);
		return this.#host.result(outcome.made, true);
	}

	/**
	 * Entries stored before the ledger had time keys get theirs once (by when they were exchanged, or
	 * received), so they are pruned like the rest; a marker says it is done.
	 */
	async #indexOlderEntries(): Promise<void> {
		if (this.#indexed) return;
		const { keys, storage } = this.#host;
		if (!(await storage.get(keys.indexedKey))) {
			const entries = await storage.list<LedgerEntry<M>>({ prefix: keys.entryPrefix });
			const timeKeys: Record<string, string> = {};
			for (const [key, entry] of entries) {
				const digest = key.slice(keys.entryPrefix.length);
				timeKeys[ledgerTimeKey(keys, entry.exchangedAt ?? entry.receivedAt, digest)] = digest;
			}
			const pairs = Object.entries(timeKeys);
			// storage.put takes at most 128 entries at once.
			for (let i = 0; i < pairs.length; i += 128) await storage.put(Object.fromEntries(pairs.slice(i, i + 128)));
			await storage.put(keys.indexedKey, true);
		}
		this.#indexed = true;
	}
}
