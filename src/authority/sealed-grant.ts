/**
 * A sealed long-lived grant, in the object of the app it makes: an authorizer's authorizer_refresh_token
 * (authorizer.ts, the open platform) or an installed company's permanent code (suite-corp.ts, WeCom). Both
 * are an app everywhere, registered by the platform (an authorisation, an install), never PUT by hand, and
 * fetch their token with their parent's token (the component's, the suite's), which this object asks the
 * parent's own object for, so one parent flight serves every child.
 *
 * - The grant is sealed at rest as a registry app's secret is (registered-app.ts), opened only in this
 *   object, replaced (sealed again) before an answer that carries a new one is used (engine/attempt.ts),
 *   never returned by an RPC or logged.
 * - A dead grant (61023 / 61003; 40084 / 40082) is marked and stored: until a new grant arrives no call is
 *   sent (the engine's failure stays the same, so its incident opens once, with one alert); an authorizer's
 *   held token is not served from then on, WeChat refusing it (engine/fetch-and-store.ts, endsHeldValue).
 * - Revoked (`unauthorized`, `cancel_auth`): its credentials go (storage, KV, alarm); the mark says when, so
 *   /token names the revocation.
 */
import type { AppConfig, AppProfile } from "../config/config";
import { log } from "../core/log";
import type { Failure, Outcome } from "../core/outcome";
import { AUTHORIZER_MARK_KEY, REGISTERED_APP_KEY } from "../core/storage-keys";
import type { AuthorizerLink } from "../engine/attempt";
import type { AppEnv } from "../env";
import type { UpstreamFailure } from "../wechat/upstream";
import { sealApp, type OpenedApp, type StoredRegisteredApp } from "./registered-app";

/** Who gave the grant: an open-platform component, or a WeCom suite. */
export interface GrantParent {
	readonly kind: "component" | "suite";
	readonly id: string;
}

/** Why the app cannot be served: its grant must be given again, or the parent's grant was revoked. */
export interface GrantMark {
	readonly reauthorise?: { readonly since: number; readonly errcode: number; readonly message: string };
	/** `componentAppid` for an authorizer (as stored before suites existed), `suiteId` for a company. */
	readonly revoked?: { readonly at: number; readonly componentAppid?: string; readonly suiteId?: string };
}

export interface GrantHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	/** The object's registry entry was replaced (a new grant). */
	setRegistered(opened: OpenedApp): void;
	/** The catalog's row changed (the mark shows in the parent's listing and guides its sync). */
	putRow(profile: AppProfile): Promise<void>;
	/** The parent's token, from the parent's own object. */
	parentToken(parent: GrantParent): Promise<Outcome>;
	/** Compare-and-refresh of the parent's token `used`, which the platform refused, in the parent's object. */
	healParentToken(parent: GrantParent, used: string): Promise<Outcome>;
}

/** The parent of a granted app, or null for any other app. */
export function grantParent(app: AppProfile): GrantParent | null {
	if (app.mode === "authorizer" && app.componentAppid) return { kind: "component", id: app.componentAppid };
	if (app.mode === "suite_corp" && app.suiteId) return { kind: "suite", id: app.suiteId };
	return null;
}

export function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** The message a revoked app answers with (404), naming what to do. */
export function revokedMessage(appid: string, revoked: NonNullable<GrantMark["revoked"]>): string {
	if (revoked.suiteId !== undefined) {
		return `App ${appid} was uninstalled from WeCom suite ${revoked.suiteId} (cancel_auth) at ${iso(revoked.at)}; its tokens were wiped. The company must install the app again (POST /wecom-suite/${revoked.suiteId}/install-url).`;
	}
	return `Authorizer ${appid} revoked its authorisation of component ${revoked.componentAppid ?? "?"} at ${iso(revoked.at)}; its tokens were wiped. It must authorise again (POST /open/${revoked.componentAppid ?? "<component_appid>"}/auth-url).`;
}

export class GrantDesk {
	readonly #host: GrantHost;
	#mark: GrantMark = {};

	constructor(host: GrantHost) {
		this.#host = host;
	}

	/** In the object's constructor, before any call is delivered. */
	async load(): Promise<void> {
		this.#mark = (await this.#host.storage.get<GrantMark>(AUTHORIZER_MARK_KEY)) ?? {};
	}

	/** A new grant: sealed and stored; any mark (grant again, revoked) ends. */
	async adopt(profile: AppProfile, grant: string): Promise<StoredRegisteredApp> {
		const stored = await this.#keep(profile, grant);
		await this.#host.storage.delete(AUTHORIZER_MARK_KEY);
		this.#mark = {};
		log("info", "grant_adopted", { appid: profile.appid, mode: profile.mode, parent: grantParent(profile)?.id ?? null });
		return stored;
	}

	/** The parent's grant was revoked (the object's storage was just wiped): remembered for /token's 404. */
	async revoked(parent: GrantParent, at: number): Promise<void> {
		this.#mark = { revoked: { at, ...(parent.kind === "component" ? { componentAppid: parent.id } : { suiteId: parent.id }) } };
		await this.#host.storage.put(AUTHORIZER_MARK_KEY, this.#mark);
	}

	/** A revoked app's failure for every read (404 naming the revocation), or null. */
	revokedFailure(appid: string): Failure | null {
		const { revoked } = this.#mark;
		return revoked ? { code: "not_found", message: revokedMessage(appid, revoked) } : null;
	}

	/** Whether its grant must be given again, for /status. */
	needsReauthorisation(): GrantMark["reauthorise"] | null {
		return this.#mark.reauthorise ?? null;
	}

	/** What the engine's token fetch needs of this object (engine/attempt.ts). */
	link(app: AppConfig): AuthorizerLink {
		const parent = grantParent(app)!;
		return {
			parentToken: () => this.#host.parentToken(parent),
			healParent: (used) => this.#host.healParentToken(parent, used),
			blocked: (): UpstreamFailure | null => {
				const mark = this.#mark.reauthorise;
				// The failure the platform gave, unchanged: the incident it opened stays the one incident.
				return mark ? { kind: "wechat", class: "fatal", errcode: mark.errcode, message: mark.message } : null;
			},
			keepRefreshToken: async (token) => {
				const { secret: _replaced, ...profile } = app;
				await this.#keep(profile, token);
				log("info", "grant_replaced", { appid: app.appid });
			},
			needsReauthorisation: async (failure) => {
				const since = Date.now();
				this.#mark = { reauthorise: { since, errcode: failure.errcode!, message: failure.message } };
				await this.#host.storage.put(AUTHORIZER_MARK_KEY, this.#mark);
				const { secret: _kept, ...profile } = app;
				await this.#host.putRow({ ...profile, reauthoriseSince: since });
				log("warn", "grant_needs_renewal", { appid: app.appid, parent: parent.id, errcode: failure.errcode ?? null });
			},
		};
	}

	/** The grant sealed and stored, and the object's entry replaced. */
	async #keep(profile: AppProfile, grant: string): Promise<StoredRegisteredApp> {
		const stored = await sealApp(this.#host.env, profile, grant);
		await this.#host.storage.put(REGISTERED_APP_KEY, stored);
		this.#host.setRegistered({ app: { ...profile, secret: grant }, sealed: stored.sealed });
		return stored;
	}
}
