/**
 * An authorizer (an account that authorised a component) inside its own TokenAuthority, named by its appid
 * like any app's: an app everywhere (/token, /ticket, /jssdk/config, the gateway, /status), registered by
 * WeChat's authorisation push, never PUT by hand (DESIGN.md, "The open platform").
 *
 * - Its "secret" is its authorizer_refresh_token: sealed at rest as a registry app's secret is
 *   (registered-app.ts), opened only in this object, replaced (sealed again) before an answer that carries a
 *   new one is used (engine/attempt.ts), never returned by an RPC or logged.
 * - Its token (engine/kinds.ts, policy no_overlap) is fetched with the component's token, which this object
 *   asks the component's own object for (componentAccessToken), so one component flight serves every authorizer.
 * - 61023 / 61003 mean the account must authorise again: the mark is stored, and until a new authorisation
 *   arrives no call is sent (the engine's failure stays the same, so its incident opens once, with one alert);
 *   the token held is not served from then on, WeChat refusing it (engine/fetch-and-store.ts, endsHeldValue).
 * - `unauthorized`: its credentials go (storage, KV, alarm); the mark says when, so /token names the revocation.
 */
import type { AppConfig, AppProfile } from "../config/config";
import { DEFAULT_DAILY_QUOTA, DEFAULT_TICKET_DAILY_QUOTA } from "../config/apps";
import { log } from "../core/log";
import type { Failure, Outcome } from "../core/outcome";
import { AUTHORIZER_MARK_KEY, REGISTERED_APP_KEY } from "../core/storage-keys";
import type { AuthorizerLink } from "../engine/attempt";
import type { AppEnv } from "../env";
import type { UpstreamFailure } from "../wechat/upstream";
import { sealApp, type OpenedApp, type StoredRegisteredApp } from "./registered-app";

/** Why the authorizer cannot be served: it needs re-authorisation, or the account revoked it. */
export interface AuthorizerMark {
	readonly reauthorise?: { readonly since: number; readonly errcode: number; readonly message: string };
	readonly revoked?: { readonly at: number; readonly componentAppid: string };
}

export interface AuthorizerHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	/** The object's registry entry was replaced (a new refresh token). */
	setRegistered(opened: OpenedApp): void;
	/** The catalog's row changed (the mark shows in GET /open/{c}/authorizers and guides the sync). */
	putRow(profile: AppProfile): Promise<void>;
	/** The component's token, from the component's own object (its RPC componentAccessToken). */
	componentToken(componentAppid: string): Promise<Outcome>;
}

/** The profile of an authorizer of `componentAppid`: what every isolate knows of it. */
export function authorizerProfile(authorizerAppid: string, componentAppid: string): AppProfile {
	return {
		appid: authorizerAppid, source: "registry", platform: "wechat", mode: "authorizer",
		dailyQuota: DEFAULT_DAILY_QUOTA.authorizer, ticketDailyQuota: DEFAULT_TICKET_DAILY_QUOTA, componentAppid,
	};
}

export function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** The message an authorizer the account revoked answers with (404), naming what to do. */
export function revokedMessage(appid: string, revoked: { at: number; componentAppid: string }): string {
	return `Authorizer ${appid} revoked its authorisation of component ${revoked.componentAppid} at ${iso(revoked.at)}; its tokens were wiped. It must authorise again (POST /open/${revoked.componentAppid}/auth-url).`;
}

export class AuthorizerDesk {
	readonly #host: AuthorizerHost;
	#mark: AuthorizerMark = {};

	constructor(host: AuthorizerHost) {
		this.#host = host;
	}

	/** In the object's constructor, before any call is delivered. */
	async load(): Promise<void> {
		this.#mark = (await this.#host.storage.get<AuthorizerMark>(AUTHORIZER_MARK_KEY)) ?? {};
	}

	/** A new authorisation: its refresh token sealed and stored; any mark (re-authorise, revoked) ends. */
	async adopt(profile: AppProfile, refreshToken: string): Promise<StoredRegisteredApp> {
		const stored = await sealApp(this.#host.env, profile, refreshToken);
		await this.#host.storage.put(REGISTERED_APP_KEY, stored);
		await this.#host.storage.delete(AUTHORIZER_MARK_KEY);
		this.#mark = {};
		this.#host.setRegistered({ app: { ...profile, secret: refreshToken }, sealed: stored.sealed });
		log("info", "authorizer_adopted", { appid: profile.appid, component_appid: profile.componentAppid ?? null });
		return stored;
	}

	/** The account revoked the authorisation (its object's storage was just wiped): remembered for /token's 404. */
	async revoked(componentAppid: string, at: number): Promise<void> {
		this.#mark = { revoked: { at, componentAppid } };
		await this.#host.storage.put(AUTHORIZER_MARK_KEY, this.#mark);
	}

	/** A revoked authorizer's failure for every read (404 naming the revocation), or null. */
	revokedFailure(appid: string): Failure | null {
		const { revoked } = this.#mark;
		return revoked ? { code: "not_found", message: revokedMessage(appid, revoked) } : null;
	}

	/** Whether it needs re-authorisation, for /status. */
	needsReauthorisation(): AuthorizerMark["reauthorise"] | null {
		return this.#mark.reauthorise ?? null;
	}

	/** What the engine's token fetch needs of this object (engine/attempt.ts). */
	link(app: AppConfig): AuthorizerLink {
		const componentAppid = app.componentAppid!;
		return {
			componentToken: () => this.#host.componentToken(componentAppid),
			blocked: (): UpstreamFailure | null => {
				const mark = this.#mark.reauthorise;
				// The failure WeChat gave, unchanged: the incident it opened stays the one incident.
				return mark ? { kind: "wechat", class: "fatal", errcode: mark.errcode, message: mark.message } : null;
			},
			keepRefreshToken: async (token) => {
				const { secret: _replaced, ...profile } = app;
				const stored = await sealApp(this.#host.env, profile, token);
				await this.#host.storage.put(REGISTERED_APP_KEY, stored);
				this.#host.setRegistered({ app: { ...profile, secret: token }, sealed: stored.sealed });
				log("info", "authorizer_refresh_token_replaced", { appid: app.appid });
			},
			needsReauthorisation: async (failure) => {
				const since = Date.now();
				this.#mark = { reauthorise: { since, errcode: failure.errcode!, message: failure.message } };
				await this.#host.storage.put(AUTHORIZER_MARK_KEY, this.#mark);
				const { secret: _kept, ...profile } = app;
				await this.#host.putRow({ ...profile, reauthoriseSince: since });
				log("warn", "authorizer_needs_reauthorisation", { appid: app.appid, component_appid: componentAppid, errcode: failure.errcode ?? null });
			},
		};
	}
}
