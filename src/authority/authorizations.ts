/**
 * Authorisation codes, in the component's own object: each code WeChat issues (pushed as `authorized`,
 * `updateauthorized` or `notify_third_fasteregister`, or brought back by the browser to the vendor's redirect
 * page and POSTed to /open/{c}/authorizations) is exchanged with api_query_auth once, however many times and
 * by whichever path it arrives (codes are single use: a second exchange would only get 61009). The ledger
 * (pending codes, one flight per code, the alarm's retry) is code-ledger.ts, shared with WeCom's installs.
 *
 * The exchange's refresh token goes straight to the authorizer's own object (adoptGrant), which seals it;
 * this object never stores it. What it keeps of an exchanged code is which authorizer it made, for a day
 * (code-ledger.ts), pruned by the component's alarm.
 */
import type { AppProfile, BrokerConfig } from "../config/config";
import { log } from "../core/log";
import { expiresInS } from "../core/lifetime";
import type { Failure, Outcome } from "../core/outcome";
import { AUTH_CODE_LEDGER } from "../core/storage-keys";
import type { AppEnv } from "../env";
import { createPreAuthCode, getAuthorizerList, MAX_AUTHORIZER_PAGE, queryAuth } from "../wechat/authorizer-client";
import { registry } from "../registry/registry";
import { authorizerProfile } from "./authorizer";
import { CodeLedger, refusal, type Exchanged, type LedgerOutcome } from "./code-ledger";

export type { ExchangeFailure } from "./code-ledger";

/** What an exchanged code made: which authorizer, with which permission sets. */
interface MadeAuthorizer {
	readonly authorizerAppid: string;
	readonly funcInfo: readonly number[];
}

export type ExchangeOutcome = LedgerOutcome<{ readonly ok: true; readonly authorizerAppid: string; readonly funcInfo: readonly number[]; readonly expiresIn: number; readonly exchanged: boolean }>;

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

export class Authorizations {
	readonly #host: AuthorizationsHost;
	readonly #ledger: CodeLedger<MadeAuthorizer, ExchangeOutcome & { ok: true }>;

	constructor(host: AuthorizationsHost) {
		this.#host = host;
		this.#ledger = new CodeLedger({
			storage: host.storage, keys: AUTH_CODE_LEDGER, label: "authorization_code",
			waitUntil: (promise) => host.waitUntil(promise),
			replan: () => host.replan(),
			exchange: (componentAppid, code) => this.#exchange(componentAppid, code),
			result: (made, exchanged) => this.#result(made.authorizerAppid, made.funcInfo ?? [], exchanged),
		});
	}

	/** In the object's constructor: whether a pushed code still waits for its exchange. */
	load(): Promise<void> {
		return this.#ledger.load();
	}

	/** A push carried a code: stored before the push is answered, exchanged in the background (code-ledger.ts). */
	received(componentAppid: string, code: string): Promise<void> {
		return this.#ledger.received(componentAppid, code);
	}

	/** When the alarm should retry pending codes, or null when none waits. */
	wake(now: number): number | null {
		return this.#ledger.wake(now);
	}

	/** The alarm's part: codes exchanged a day ago are pruned, every pushed code not yet exchanged is tried again. */
	resume(componentAppid: string): Promise<void> {
		return this.#ledger.resume(componentAppid);
	}

	/** The code exchanged (or the earlier exchange's result): which authorizer it made. */
	exchange(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		return this.#ledger.exchange(componentAppid, code);
	}

	/** A fresh pre_auth_code for the authorisation link (api_create_preauthcode, with the component's token). */
	async preAuthCode(componentAppid: string): Promise<{ ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure }> {
		const token = await this.#host.componentToken(componentAppid);
		if (!token.ok) return token;
		await this.#host.countCall("api_create_preauthcode");
		const answer = await createPreAuthCode(componentAppid, token.record.value, this.#host.config());
		if (!answer.ok) {
			const { failure } = answer;
			return { ok: false, failure: refusal(failure) };
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
			if (!page.ok) return { ok: false, failure: refusal(page.failure, `${page.failure.message} (after ${offset} authorizers of the list)`) };
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
	settled(): Promise<void> {
		return this.#ledger.settled();
	}

	/** api_query_auth: the code exchanged; the refresh token straight to the authorizer's own object. */
	async #exchange(componentAppid: string, code: string): Promise<Exchanged<MadeAuthorizer>> {
		const token = await this.#host.componentToken(componentAppid);
		if (!token.ok) return { ok: false, dead: false, failure: { ...token.failure, message: `The authorization code cannot be exchanged yet: ${token.failure.message}` } };
		await this.#host.countCall("api_query_auth");
		const answer = await queryAuth(componentAppid, token.record.value, code, this.#host.config());
		if (!answer.ok) {
			const { failure } = answer;
			log("warn", "authorization_code_refused", { component_appid: componentAppid, errcode: failure.errcode ?? null, message: failure.message });
			if (failure.errcode !== undefined && DEAD_CODE_ERRCODES.has(failure.errcode)) {
				return { ok: false, dead: true, failure: { code: "bad_request", message: failure.message, wechatErrcode: failure.errcode } };
			}
			return { ok: false, dead: false, failure: refusal(failure) };
		}
		const { authorizerAppid, refreshToken, funcInfo } = answer.value;
		await this.#host.authorizers.adopt(authorizerProfile(authorizerAppid, componentAppid), refreshToken);
		log("info", "authorization_code_exchanged", { component_appid: componentAppid, authorizer_appid: authorizerAppid });
		return { ok: true, made: { authorizerAppid, funcInfo } };
	}

	/** The answer names the authorizer's token lifetime as a reader would be promised it now. */
	async #result(authorizerAppid: string, funcInfo: readonly number[], exchanged: boolean): Promise<ExchangeOutcome & { ok: true }> {
		const token = await this.#host.authorizers.token(authorizerAppid);
		return { ok: true, authorizerAppid, funcInfo, expiresIn: token.ok ? expiresInS(token.record, Date.now()) : 0, exchanged };
	}
}
