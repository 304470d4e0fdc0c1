/**
 * Authorisation codes, in the component's own object: each code WeChat issues (pushed as `authorized`,
 * `updateauthorized` or `notify_third_fasteregister`, or brought back by the browser to the vendor's redirect
 * page and POSTed to /open/{c}/authorizations) is exchanged with api_query_auth once, however many times and
 * by whichever path it arrives (codes are single use: a second exchange would only get 61009).
 *
 * - A push is answered `success` as soon as its code is stored (pending, under its digest); the exchange runs
 *   in the background (waitUntil). A pending code that an evicted instance never exchanged is exchanged by
 *   the next arrival of the same code, or by the redirect page's POST.
 * - Concurrent arrivals of one code join one flight (the object runs one call at a time between awaits).
 * - The exchange's refresh token goes straight to the authorizer's own object (adoptAuthorizer), which seals
 *   it; this object never stores it. What it keeps of an exchanged code is which authorizer it made, for a
 *   day (code-ledger.ts), pruned by the component's alarm.
 */
import type { AppProfile, BrokerConfig } from "../config/config";
import { tokenDigest } from "../edge/issued-index";
import { log } from "../core/log";
import { expiresInS } from "../core/lifetime";
import type { Failure, Outcome } from "../core/outcome";
import { AUTH_PENDING_PREFIX } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { createPreAuthCode, getAuthorizerList, MAX_AUTHORIZER_PAGE, queryAuth } from "../wechat/authorizer-client";
import { registry } from "../registry/registry";
import { authorizerProfile } from "./authorizer";
import { CodeLedger, type CodeEntry } from "./code-ledger";

export type ExchangeOutcome =
	| { readonly ok: true; readonly authorizerAppid: string; readonly funcInfo: readonly number[]; readonly expiresIn: number; readonly exchanged: boolean }
	| { readonly ok: false; readonly failure: ExchangeFailure };

/** A credential's Failure, or a client's mistake: a code WeChat says is unknown, used or expired (400). */
export type ExchangeFailure = Failure | { readonly code: "bad_request"; readonly message: string; readonly wechatErrcode?: number };

export type SyncOutcome =
	| { readonly ok: true; readonly total_count: number; readonly recovered: number; readonly already_serving: number; readonly without_refresh_token: number; readonly configured_otherwise: number }
	| { readonly ok: false; readonly failure: Failure };

/** 61009 (unknown or used) and 61010 (expired): the code is dead, and keeping it pending helps nobody. */
const DEAD_CODE_ERRCODES: ReadonlySet<number> = new Set([61009, 61010]);

export interface AuthorizationsHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	/** The component's own token (this object's `token` slot). */
	componentToken(componentAppid: string): Promise<Outcome>;
	waitUntil(promise: Promise<unknown>): void;
	/** The object's alarm follows what is pending now. */
	replan(): Promise<void>;
	/** A call is about to be sent: counted in the component's usage. */
	countCall(call: "api_query_auth" | "api_create_preauthcode" | "api_get_authorizer_list"): Promise<void>;
	/** The authorizers' own objects (their RPCs adoptAuthorizer, revokeAuthorizer, getToken). */
	readonly authorizers: AuthorizerObjects;
}

/** What this module asks of an authorizer's object, handed in by the object that holds it (no import of its class). */
export interface AuthorizerObjects {
	adopt(profile: AppProfile, refreshToken: string): Promise<unknown>;
	revoke(authorizerAppid: string, componentAppid: string): Promise<AppProfile | null>;
	token(authorizerAppid: string): Promise<Outcome>;
}

/** A pushed code whose exchange failed is tried again this soon by the component's alarm (codes live ~10 min). */
const PENDING_RETRY_MS = 30_000;
/** Pending codes older than this are dead at WeChat (61010): dropped rather than tried. */
const PENDING_MAX_AGE_MS = 15 * 60_000;

export class Authorizations {
	readonly #host: AuthorizationsHost;
	readonly #flights = new Map<string, Promise<ExchangeOutcome>>();
	/** Which authorizer each code made, kept a day for the code's late duplicates. */
	readonly #ledger: CodeLedger;
	/** Whether storage holds a pushed code not yet exchanged (memory copy, read in load()). */
	#pending = false;

	constructor(host: AuthorizationsHost) {
		this.#host = host;
		this.#ledger = new CodeLedger(host.storage);
	}

	/** In the object's constructor: whether a pushed code still waits for its exchange. */
	async load(): Promise<void> {
		this.#pending = await this.#anyPending();
	}

	async #anyPending(): Promise<boolean> {
		return (await this.#host.storage.list({ prefix: AUTH_PENDING_PREFIX, limit: 1 })).size > 0;
	}

	/**
	 * A push carried a code: stored (pending) before the push is answered, exchanged in the background; should
	 * that fail or the instance go, the component's alarm tries again (wake, resume).
	 */
	async received(componentAppid: string, code: string): Promise<void> {
		const digest = await tokenDigest(code);
		if (!(await this.#ledger.get(digest))?.authorizerAppid) {
			await this.#host.storage.put(`${AUTH_PENDING_PREFIX}${digest}`, { receivedAt: Date.now(), code } satisfies CodeEntry);
			this.#pending = true;
		}
		this.#host.waitUntil(this.exchange(componentAppid, code));
	}

	/** When the alarm should retry pending codes, or null when none waits. */
	wake(now: number): number | null {
		return this.#pending && this.#flights.size === 0 ? now + PENDING_RETRY_MS : null;
	}

	/**
	 * The alarm's part: codes exchanged more than a day ago leave the ledger, every pushed code not yet
	 * exchanged is tried again, and dead ones are dropped.
	 */
	async resume(componentAppid: string): Promise<void> {
		await this.#ledger.prune(componentAppid, Date.now());
		if (!this.#pending) return;
		const pending = await this.#host.storage.list<CodeEntry>({ prefix: AUTH_PENDING_PREFIX });
		const now = Date.now();
		for (const [key, entry] of pending) {
			if (!entry.code || now - entry.receivedAt > PENDING_MAX_AGE_MS) {
				log("warn", "authorization_code_dropped", { component_appid: componentAppid, age_s: Math.floor((now - entry.receivedAt) / 1_000) });
				await this.#host.storage.delete(key);
				continue;
			}
			await this.exchange(componentAppid, entry.code);
		}
		this.#pending = await this.#anyPending();
	}

	/** The code exchanged (or the earlier exchange's result): which authorizer it made. */
	async exchange(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		const digest = await tokenDigest(code);
		let flight = this.#flights.get(digest);
		if (!flight) {
			flight = this.#exchange(componentAppid, code, digest).finally(async () => {
				this.#flights.delete(digest);
				// A failed exchange leaves its code pending: the alarm is planned for its retry (wake).
				this.#pending = await this.#anyPending();
				await this.#host.replan();
			});
			this.#flights.set(digest, flight);
		}
		return flight;
	}

	/** The code's exchange is over for good (made, or dead at WeChat): it no longer waits. */
	async #settle(digest: string): Promise<void> {
		await this.#host.storage.delete(`${AUTH_PENDING_PREFIX}${digest}`);
	}

	/** A fresh pre_auth_code for the authorisation link (api_create_preauthcode, with the component's token). */
	async preAuthCode(componentAppid: string): Promise<{ ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure }> {
		const token = await this.#host.componentToken(componentAppid);
		if (!token.ok) return token;
		await this.#host.countCall("api_create_preauthcode");
		const answer = await createPreAuthCode(componentAppid, token.record.value, this.#host.config());
		if (!answer.ok) {
			const { failure } = answer;
			return { ok: false, failure: { code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable", message: failure.message, ...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }) } };
		}
		return { ok: true, code: answer.value.code, expiresIn: answer.value.expiresInS };
	}

	/**
	 * POST /open/{c}/authorizers/sync: pages through api_get_authorizer_list and gives each authorizer the
	 * broker lacks (never registered, revoked, or whose refresh token WeChat refused) the refresh token the list
	 * carries. Authorizers already serving, and accounts configured with their own AppSecret, are left alone.
	 */
	async sync(componentAppid: string): Promise<SyncOutcome> {
		const token = await this.#host.componentToken(componentAppid);
		if (!token.ok) return { ok: false, failure: token.failure };
		const counts = { total_count: 0, recovered: 0, already_serving: 0, without_refresh_token: 0, configured_otherwise: 0 };
		for (let offset = 0; ;) {
			await this.#host.countCall("api_get_authorizer_list");
			const page = await getAuthorizerList(componentAppid, token.record.value, offset, MAX_AUTHORIZER_PAGE, this.#host.config());
			if (!page.ok) return { ok: false, failure: { code: page.failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable", message: `${page.failure.message} (after ${offset} authorizers of the list)`, ...(page.failure.errcode !== undefined && { wechatErrcode: page.failure.errcode }) } };
			counts.total_count = page.value.totalCount;
			const known = await registry(this.#host.env).profilesOf(page.value.list.map((a) => a.appid));
			for (const { appid, refreshToken } of page.value.list) {
				const profile = known[appid];
				if (this.#host.config().apps.has(appid) || (profile && profile.mode !== "authorizer")) counts.configured_otherwise++;
				else if (profile && profile.revokedAt === undefined && profile.reauthoriseSince === undefined) counts.already_serving++;
				else if (!refreshToken) counts.without_refresh_token++;
				else {
					await this.#host.authorizers.adopt(authorizerProfile(appid, componentAppid), refreshToken);
					counts.recovered++;
				}
			}
			offset += page.value.list.length;
			if (page.value.list.length === 0 || offset >= page.value.totalCount) break;
		}
		log("info", "authorizers_synced", { component_appid: componentAppid, ...counts });
		return { ok: true, ...counts };
	}

	/** `unauthorized`: the authorizer's own object wipes it (authority/token-authority.ts revokeAuthorizer). */
	revoke(componentAppid: string, authorizerAppid: string): Promise<AppProfile | null> {
		return this.#host.authorizers.revoke(authorizerAppid, componentAppid);
	}

	/** Resolves when no exchange is under way (tests, and the object's idle()). */
	async settled(): Promise<void> {
		while (this.#flights.size > 0) await Promise.allSettled([...this.#flights.values()]);
	}

	async #exchange(componentAppid: string, code: string, digest: string): Promise<ExchangeOutcome> {
		const entry = await this.#ledger.get(digest);
		if (entry?.authorizerAppid) return this.#result(entry.authorizerAppid, entry.funcInfo ?? [], false);
		const token = await this.#host.componentToken(componentAppid);
		if (!token.ok) return { ok: false, failure: { ...token.failure, message: `The authorization code cannot be exchanged yet: ${token.failure.message}` } };
		await this.#host.countCall("api_query_auth");
		const answer = await queryAuth(componentAppid, token.record.value, code, this.#host.config());
		if (!answer.ok) {
			const { failure } = answer;
			log("warn", "authorization_code_refused", { component_appid: componentAppid, errcode: failure.errcode ?? null, message: failure.message });
			if (failure.errcode !== undefined && DEAD_CODE_ERRCODES.has(failure.errcode)) {
				await this.#settle(digest);
				return { ok: false, failure: { code: "bad_request", message: failure.message, wechatErrcode: failure.errcode } };
			}
			return { ok: false, failure: { code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable", message: failure.message, ...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }) } };
		}
		const { authorizerAppid, refreshToken, funcInfo } = answer.value;
		await this.#host.authorizers.adopt(authorizerProfile(authorizerAppid, componentAppid), refreshToken);
		await this.#ledger.exchanged(digest, authorizerAppid, funcInfo, Date.now());
		await this.#settle(digest);
		log("info", "authorization_code_exchanged", { component_appid: componentAppid, authorizer_appid: authorizerAppid });
		return this.#result(authorizerAppid, funcInfo, true);
	}

	/** The answer names the authorizer's token lifetime as a reader would be promised it now. */
	async #result(authorizerAppid: string, funcInfo: readonly number[], exchanged: boolean): Promise<ExchangeOutcome> {
		const token = await this.#host.authorizers.token(authorizerAppid);
		return { ok: true, authorizerAppid, funcInfo, expiresIn: token.ok ? expiresInS(token.record, Date.now()) : 0, exchanged };
	}
}
