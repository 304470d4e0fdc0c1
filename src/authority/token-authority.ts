/**
 * TokenAuthority: one Durable Object per app (`idFromName(appid)`), the only code that asks WeChat or WeCom
 * for a credential. A thin shell that answers RPC: what the object is made of (the refresh engine, its alarm,
 * its entry's changes, its roles) and which app it serves are object-parts.ts; each method here hands a call
 * to the part that does it. Workers RPC reaches only this class's methods.
 */
import { DurableObject } from "cloudflare:workers";
import type { AppProfile, ComponentProfile, SuiteProfile } from "../config/config";
import type { CredentialType } from "../core/credentials";
import { log } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { GATEWAY_USAGE_KEY } from "../core/storage-keys";
import type { AppEnv } from "../env";
import type { SignedCallback } from "../wechat/callback-crypto";
import type { RingResult } from "./alarm-chain";
import type { ConfigureResult } from "./app-admin";
import type { ExchangeOutcome, SyncOutcome } from "./authorizations";
import type { ComponentSecrets, EventOutcome } from "./component";
import type { ConfigureComponentResult, PreAuthCodeResult } from "./component-role";
import type { TicketStatus } from "./component-token";
import { ObjectParts, type CronReport } from "./object-parts";
import { addGatewayUse, NO_GATEWAY_USE, type GatewayCounts, type StoredGatewayUsage } from "./gateway-usage";
import { appStatus, type AppStatus } from "./status-report";
import { grantParent, type GrantParent } from "./sealed-grant";
import { providerObjectName } from "./suite-token";
import type { SuiteSecrets, SuiteState, UrlCheckOutcome } from "./suite";
import type { InstallOutcome, InstallRecord, InstallSyncOutcome } from "./suite-installs";
import type { InstallCodeResult } from "./suite-role";

export type { RefreshTrigger } from "../engine/state";
export type { Failure, Outcome } from "../core/outcome";
export type { AppStatus, CredentialStatus } from "./status-report";

export interface InvalidateOptions {
	/**
	 * WeChat itself refused the token in an answer to a request the broker built (a ticket call: attempt.ts
	 * heals through the Refresher directly), as opposed to a report. The gateway never passes it: a forwarded
	 * answer's body is the client's to shape (gateway/forward.ts). Tests pass it to reach that path by RPC.
	 */
	readonly confirmedByWeChat?: boolean;
}

export type { ConfigureResult } from "./app-admin";

export type { CronReport } from "./object-parts";

export class TokenAuthority extends DurableObject<AppEnv> {
	/** Its engine, alarm, entry's changes and roles, and which app it serves (object-parts.ts). */
	readonly #parts: ObjectParts;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		const self = this;
		this.#parts = new ObjectParts({
			ctx,
			get env() {
				return self.env;
			},
			work: (appid) => this.refreshIfDue(appid),
		});
		void ctx.blockConcurrencyWhile(() => this.#parts.load());
	}

	/**
	 * Admin API (PUT /admin/apps/{appid}): the app stored, sealed, and its first token fetched at once, so a
	 * wrong secret is reported to the operator who typed it (app-admin.ts).
	 */
	configure(profile: AppProfile, secret: string): Promise<ConfigureResult> {
		return this.#parts.admin.configure(profile, secret);
	}

	/** Admin API (DELETE /admin/apps/{appid}): everything this object holds goes (app-admin.ts). */
	wipe(appid: string, options: { keepCredentials?: boolean } = {}): Promise<{ existed: boolean; kvPending: number }> {
		return this.#parts.admin.wipe(appid, options);
	}

	/** A sibling WeCom entry joined or left this app's corp: its share of the corp's ticket limit changes. */
	updateProfile(profile: AppProfile): Promise<void> {
		return this.#parts.admin.updateProfile(profile);
	}

	/** POST /admin/registry/reseal: the sealed secret again under the current REGISTRY_KEY. */
	reseal(): Promise<{ kid: string } | { failure: Failure } | null> {
		return this.#parts.admin.reseal();
	}

	/** Admin API (PUT /admin/components/{id}), in the component's own object (component-role.ts). */
	configureComponent(profile: ComponentProfile, secrets: ComponentSecrets): Promise<ConfigureComponentResult> {
		return this.#parts.component.configure(profile, secrets);
	}

	/** A push to the component's event URL (routes/open-events.ts). */
	componentEvent(componentAppid: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		return this.#parts.component.event(componentAppid, signed);
	}

	/** POST /open/{c}/authorizations: the code the vendor's redirect page received, exchanged once. */
	exchangeAuthorization(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		return this.#parts.component.exchange(componentAppid, code);
	}

	/** POST /open/{c}/authorizers/sync. */
	syncAuthorizers(componentAppid: string): Promise<SyncOutcome> {
		return this.#parts.component.sync(componentAppid);
	}

	/** POST /open/{c}/auth-url: a fresh pre_auth_code for the authorisation link. */
	preAuthCode(componentAppid: string): Promise<PreAuthCodeResult> {
		return this.#parts.component.preAuthCode(componentAppid);
	}

	/**
	 * The component's current component_access_token (GET /component-token, the gateway; and the RPC an
	 * authorizer's object asks for the token it refreshes with): a value, or a Failure that says why not.
	 */
	componentAccessToken(componentAppid: string): Promise<Outcome> {
		return this.#parts.component.accessToken(componentAppid);
	}

	/** When the component's newest ticket was pushed and stored, never the ticket itself; null before the first. */
	componentTicket(_componentAppid: string): Promise<{ createTime: number; receivedAt: number } | null> {
		return this.#parts.component.ticketTimes();
	}

	/**
	 * In an authorizer's object, from its component's, or an installed company's, from its suite's: a new
	 * grant (refresh token, permanent code), sealed here (app-admin.ts).
	 */
	adoptGrant(profile: AppProfile, grant: string): Promise<Outcome> {
		return this.#parts.admin.adoptGrant(profile, grant);
	}

	/** In a granted app's object: the grant was revoked (`unauthorized`, `cancel_auth`; app-admin.ts). */
	revokeGrant(appid: string, parent: GrantParent): Promise<AppProfile | null> {
		return this.#parts.admin.revokeGrant(appid, parent);
	}

	/** In a granted app's object: whether it holds its grant (a sync re-adopts one that lost its storage). */
	async holdsGrant(appid: string): Promise<boolean> {
		const app = this.#parts.app(appid);
		return app !== undefined && grantParent(app) !== null;
	}

	/** PUT /admin/suites/{suite_id}, in the suite's own object (authority/suite.ts). */
	configureSuite(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#parts.suite.configure(profile, secrets);
	}

	/** A POST to the suite's instruction URL (routes/wecom-suite-events.ts; suite-role.ts). */
	suiteEvent(suiteId: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		return this.#parts.suite.event(suiteId, signed);
	}

	/** POST /wecom-suite/{s}/install-url: a fresh pre_auth_code (suite-installs.ts). */
	suiteInstallCode(suiteId: string, authType?: 0 | 1): Promise<InstallCodeResult> {
		return this.#parts.suite.installCode(suiteId, authType);
	}

	/** POST /wecom-suite/{s}/installs: the redirect's auth code, exchanged once. */
	exchangeInstall(suiteId: string, code: string): Promise<InstallOutcome> {
		return this.#parts.suite.exchange(suiteId, code);
	}

	/** GET /wecom-suite/{s}/installs: the suite's companies (never a permanent code). */
	listInstalls(_suiteId: string, after: string | null, limit: number): Promise<Omit<InstallRecord, "sealed">[]> {
		return this.#parts.suite.list(after, limit);
	}

	/** POST /wecom-suite/{s}/installs/sync (suite-installs.ts). */
	syncInstalls(suiteId: string): Promise<InstallSyncOutcome> {
		return this.#parts.suite.sync(suiteId);
	}

	/** WeCom's GET URL check of the suite's instruction URL: the echostr decrypted. */
	suiteUrlCheck(suiteId: string, signed: SignedCallback): Promise<UrlCheckOutcome> {
		return this.#parts.suite.urlCheck(suiteId, signed);
	}

	/** GET /admin/suites/{suite_id}: the ticket's age and whether a provider secret is held. */
	suiteState(suiteId: string): Promise<SuiteState> {
		return this.#parts.suite.state(suiteId);
	}

	/**
	 * The suite's current suite_access_token (GET /suite-token, the gateway; and the RPC the suite's installed
	 * companies' objects ask for the token get_corp_token takes): a value, or a Failure that says why not.
	 */
	suiteAccessToken(suiteId: string): Promise<Outcome> {
		return this.#parts.suite.accessToken(suiteId);
	}

	/** In a provider's object (provider:<corpid>): the provider_access_token of WECOM_SUITES' provider corpid. */
	providerAccessToken(corpid: string): Promise<Outcome> {
		return this.#parts.suite.providerToken(corpid);
	}

	/**
	 * In a provider's object (provider:<corpid>), from PUT /admin/suites: the ProviderSecret a registry suite
	 * brought, sealed here, and the provider token fetched at once (with the new secret, if one is held), so
	 * that a wrong secret is reported to the operator who typed it.
	 */
	async configureProvider(corpid: string, secret: string): Promise<Outcome> {
		const stored = await this.#parts.suite.configureProvider(corpid, secret);
		if (!stored.ok) return fail(stored.failure);
		const refresher = this.#parts.refresherFor(providerObjectName(corpid), "token");
		if ("failure" in refresher) return fail(refresher.failure);
		return this.#parts.engine.state().slots.token?.current ? refresher.refreshNow("configure") : refresher.get();
	}

	/** The app's access_token. */
	getToken(appid: string): Promise<Outcome> {
		return this.getCredential(appid, "token");
	}

	/** Any credential of the app; a ticket is fetched on its first request and kept fresh by the alarm after. */
	getCredential(appid: string, type: CredentialType): Promise<Outcome> {
		return this.#parts.credential(appid, type);
	}

	/**
	 * Compare-and-refresh of the access_token a client reported (see Refresher.invalidate). `reporter`
	 * names the key, for the logs.
	 */
	async invalidate(appid: string, reported: string, reporter = "unknown", { confirmedByWeChat = false }: InvalidateOptions = {}): Promise<Outcome> {
		const refresher = this.#parts.refresherFor(appid, "token");
		return "failure" in refresher ? fail(refresher.failure) : refresher.invalidate(reported, reporter, confirmedByWeChat);
	}

	/** Admin: a new value now (stable token: force_refresh). */
	async forceRefresh(appid: string, type: CredentialType = "token"): Promise<Outcome> {
		const refresher = this.#parts.refresherFor(appid, type);
		return "failure" in refresher ? fail(refresher.failure) : refresher.force();
	}

	/**
	 * The alarm's work: every credential the app uses is refreshed when due, and only then; failed edge writes
	 * are repaired, a quota incident closes when the WeChat day turns, and unsent alerts are tried again.
	 * The report is the access_token's (the one every app has), or "failed" when any kind failed.
	 */
	refreshIfDue(appid: string): Promise<CronReport> {
		return this.#parts.refreshIfDue(appid);
	}

	/** The object's own alarm: what is due is refreshed, and the next due moment armed (alarm-chain.ts). */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		if (info?.isRetry) log("warn", "alarm_retried", { appid: this.#parts.engine.state().appid ?? null, retry_count: info.retryCount });
		await this.#parts.chain.ring(undefined, { platform: true });
	}

	/** The watchdog's poke (ops/scheduled.ts): what the alarm does, now; for an app never run, its chain starts. */
	wake(appid: string): Promise<RingResult> {
		return this.#parts.chain.ring(appid, { platform: false });
	}

	/** Resolves when no refresh is under way (a read's background refresh included) and the index has the app's row. */
	idle(): Promise<void> {
		return this.#parts.idle();
	}

	/** Sends every queued alert now and waits for it. The alarm calls it; so do tests, to observe alerts. */
	flushAlerts(): Promise<void> {
		return this.#parts.engine.flushAlerts();
	}

	/** Gateway calls and heals the isolates counted (gateway/usage-counter.ts), added in; today's totals back. */
	async gatewayUsage(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<GatewayCounts> {
		const usage = addGatewayUse(await this.ctx.storage.get<StoredGatewayUsage>(GATEWAY_USAGE_KEY), add, Date.now());
		// Counts that arrive for an app deleted meanwhile are dropped, not written into its wiped storage.
		if ((add.calls > 0 || add.heals > 0) && this.#parts.app(appid)) await this.ctx.storage.put(GATEWAY_USAGE_KEY, usage);
		return { calls: usage.calls, heals: usage.heals };
	}

	/** For GET /status: masked values only, never a full token or secret. */
	async status(appid: string): Promise<(AppStatus & { component?: TicketStatus; authorizer?: unknown; suite_corp?: unknown }) | null> {
		const app = this.#parts.app(appid);
		if (!app) return null;
		const now = Date.now();
		const status = appStatus(app, this.#parts.engine.state(), now);
		if (app.mode === "authorizer") return { ...status, authorizer: { component_appid: app.componentAppid!, needs_reauthorisation: this.#parts.grant.needsReauthorisation() } };
		if (app.mode === "suite_corp") return { ...status, suite_corp: { suite_id: app.suiteId!, needs_reinstall: this.#parts.grant.needsReauthorisation() } };
		return app.componentAppid ? { ...status, component: this.#parts.component.status(app.componentAppid, now) } : status;
	}

	/** GET /status's entry for one app in one call (a page of 100 apps is 100 subrequests, not 200). */
	async statusReport(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<{ status: AppStatus | null; gateway: GatewayCounts }> {
		const [status, gateway] = await Promise.all([this.status(appid), this.gatewayUsage(appid, add)]);
		return { status, gateway };
	}



}
