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
 *   goes straight to the new app's own object, which seals it. A later arrival is answered from it.
 */
import { tokenDigest } from "../edge/issued-index";
import { log } from "../core/log";
import type { Failure } from "../core/outcome";
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
	/** Where its entries live: pending ones under `pendingPrefix`, every code's outcome under `entryKey`. */
	readonly pendingPrefix: string;
	entryKey(digest: string): string;
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

/** A pushed code whose exchange failed is tried again this soon by the object's alarm (codes live ~10 min). */
const PENDING_RETRY_MS = 30_000;
/** Pending codes older than this are dead at the platform: dropped rather than tried. */
const PENDING_MAX_AGE_MS = 15 * 60_000;

export class CodeLedger<M extends object, R> {
	readonly #host: CodeLedgerHost<M, R>;
	readonly #flights = new Map<string, Promise<LedgerOutcome<R>>>();
	/** Whether storage holds a pushed code not yet exchanged (memory copy, read in load()). */
	#pending = false;

	constructor(host: CodeLedgerHost<M, R>) {
		this.#host = host;
	}

	/** In the object's constructor: whether a pushed code still waits for its exchange. */
	async load(): Promise<void> {
		this.#pending = await this.#anyPending();
	}

	async #anyPending(): Promise<boolean> {
		return (await this.#host.storage.list({ prefix: this.#host.pendingPrefix, limit: 1 })).size > 0;
	}

	/**
	 * A push carried a code: stored (pending) before the push is answered, exchanged in the background; should
	 * that fail or the instance go, the alarm tries again (wake, resume).
	 */
	async received(owner: string, code: string): Promise<void> {
		const digest = await tokenDigest(code);
		if ((await this.#host.storage.get<LedgerEntry<M>>(this.#host.entryKey(digest)))?.exchangedAt === undefined) {
			await this.#host.storage.put(`${this.#host.pendingPrefix}${digest}`, { receivedAt: Date.now(), code });
			this.#pending = true;
		}
		this.#host.waitUntil(this.exchange(owner, code));
	}

	/** When the alarm should retry pending codes, or null when none waits. */
	wake(now: number): number | null {
		return this.#pending && this.#flights.size === 0 ? now + PENDING_RETRY_MS : null;
	}

	/** The alarm's part: every pushed code not yet exchanged is tried again; dead ones are dropped. */
	async resume(owner: string): Promise<void> {
		if (!this.#pending) return;
		const pending = await this.#host.storage.list<LedgerEntry<M>>({ prefix: this.#host.pendingPrefix });
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

	async #exchange(owner: string, code: string, digest: string): Promise<LedgerOutcome<R>> {
		const key = this.#host.entryKey(digest);
		const entry = await this.#host.storage.get<LedgerEntry<M>>(key);
		if (entry?.exchangedAt !== undefined) return this.#host.result(entry as unknown as M, false);
		const outcome = await this.#host.exchange(owner, code);
		if (!outcome.ok) {
			// The code's exchange is over for good (dead at the platform): it no longer waits.
			if (outcome.dead) await this.#host.storage.delete(`${this.#host.pendingPrefix}${digest}`);
			return { ok: false, failure: outcome.failure };
		}
		await this.#host.storage.put(key, { receivedAt: Date.now(), exchangedAt: Date.now(), ...outcome.made });
		await this.#host.storage.delete(`${this.#host.pendingPrefix}${digest}`);
		return this.#host.result(outcome.made, true);
	}
}
