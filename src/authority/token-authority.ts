/**
 * TokenAuthority: one Durable Object per app (`idFromName(appid)`), the only code that asks WeChat or WeCom
 * for a credential. A thin shell: the refresh engine as the object holds it (credential-engine.ts: the state,
 * one Refresher per credential kind, the incident) keeps the credentials; the object's roles (a component's,
 * a suite's, a granted app's) and its entry's changes (app-admin.ts) live in their own modules; this class
 * decides which app the object serves, wires them together, and answers RPC.
 */
import { DurableObject } from "cloudflare:workers";
import { loadConfig, type AppConfig, type AppProfile, type BrokerConfig, type ComponentProfile, type SuiteProfile } from "../config/config";
import type { CredentialType } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { GATEWAY_USAGE_KEY, REGISTERED_APP_KEY, STATE_KEY, suiteObjectName } from "../core/storage-keys";
import { hasKind, kindsOf } from "../engine/kinds";
import type { CronAction, Refresher } from "../engine/refresher";
import type { AuthorityState } from "../engine/state";
import type { AppEnv } from "../env";
import { registry } from "../registry/registry";
import { scheduleIndex } from "../schedule/client";
import type { SignedCallback } from "../wechat/callback-crypto";
import { AlarmChain, type RingResult } from "./alarm-chain";
import { AppAdmin, type ConfigureResult } from "./app-admin";
import type { ExchangeOutcome, SyncOutcome } from "./authorizations";
import type { ComponentSecrets, EventOutcome } from "./component";
import { ComponentRole, type ConfigureComponentResult, type PreAuthCodeResult } from "./component-role";
import type { TicketStatus } from "./component-token";
import { CredentialEngine } from "./credential-engine";
import { addGatewayUse, NO_GATEWAY_USE, type GatewayCounts, type StoredGatewayUsage } from "./gateway-usage";
import { isStoredRegisteredApp, openApp, type OpenedApp } from "./registered-app";
import { appStatus, type AppStatus } from "./status-report";
import { GrantDesk, grantParent, type GrantParent } from "./sealed-grant";
import { componentAuthority, suiteAuthority } from "./stub";
import { providerObjectName } from "./suite-token";
import type { SuiteSecrets, SuiteState, UrlCheckOutcome } from "./suite";
import type { InstallOutcome, InstallRecord, InstallSyncOutcome } from "./suite-installs";
import { SuiteRole, type InstallCodeResult } from "./suite-role";

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

export interface CronReport {
	readonly appid: string;
	readonly action: CronAction["action"];
}

export class TokenAuthority extends DurableObject<AppEnv> {
	/** The app's credentials: their state, refreshers and incident (credential-engine.ts). */
	readonly #engine: CredentialEngine;
	/** The object's alarm and its row in the schedule index (alarm-chain.ts). */
	readonly #chain: AlarmChain;
	/** The app's configuration when the object last looked: a new one (a fixed secret) ends any backoff. */
	#seenApp: AppConfig | undefined;
	/** A registry app's entry, opened (registered-app.ts); undefined for an app of WECHAT_APPS. */
	#registered: OpenedApp | undefined;
	/** Set while a wipe runs: the app no longer exists for any call that arrives meanwhile. */
	#deleting = false;
	/** Changes to the app's entry, one at a time (app-admin.ts). */
	readonly #admin: AppAdmin;
	/** In a component's object: its configuration, pushes, tickets and authorisation codes (component-role.ts). */
	readonly #component: ComponentRole;
	/** In a WeCom suite's object: its configuration, callbacks, tickets and installs (suite-role.ts). */
	readonly #suite: SuiteRole;
	/** In an authorizer's or an installed company's object: its sealed grant and its marks (sealed-grant.ts). */
	readonly #authorizer: GrantDesk;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		// The parts read `this.env` when they run, as the object's own methods do (tests replace it to reach
		// a misconfigured Worker).
		const self = this;
		this.#engine = new CredentialEngine({
			storage: ctx.storage,
			get env() {
				return self.env;
			},
			config: () => this.#config(),
			app: () => this.#seenApp,
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			planChanged: () => this.#chain.planChanged(),
			wakeSoon: () => this.#chain.wakeSoon(),
			pushedTicket: () => (this.#seenApp?.mode === "suite" ? this.#suite.ticket() : this.#component.ticket()),
			grantLink: () => (this.#seenApp && grantParent(this.#seenApp) ? this.#authorizer.link(this.#seenApp) : null),
			roleProblem: (app, now) => (app.mode === "component" ? this.#component.problem(now) : app.mode === "suite" ? this.#suite.problem(now) : null),
			afterAssess: async (app, before, now) => {
				if (app.mode === "component") await this.#component.afterAssess(app, before, now);
			},
		});
		const state = {
			state: () => this.#engine.state(),
			setState: (next: AuthorityState) => this.#engine.setState(next),
			save: () => this.#engine.save(),
			waitUntil: (promise: Promise<unknown>) => this.ctx.waitUntil(promise),
		};
		const role = {
			...state, storage: ctx.storage,
			get env() {
				return self.env;
			},
			config: () => this.#config(),
			app: (appid: string) => this.#app(appid),
			credential: (appid: string, type: CredentialType) => this.getCredential(appid, type),
			forgetTokenBackoff: () => this.#engine.refresher("token").forgetBackoff(),
			assessHealth: () => this.#engine.assessHealth(),
			healToken: (used: string) => this.#engine.refresher("token").invalidate(used, "suite_call", true),
		};
		this.#component = new ComponentRole(role);
		this.#suite = new SuiteRole(role);
		this.#authorizer = new GrantDesk({
			storage: ctx.storage, env,
			setRegistered: (opened) => {
				this.#registered = opened;
			},
			putRow: async (profile) => {
				if (this.#registered) await registry(this.env).putApp(profile, this.#registered.sealed.kid);
			},
			parentToken: ({ kind, id }) => (kind === "component"
				? componentAuthority(this.env, id).componentAccessToken(id)
				: suiteAuthority(this.env, id).suiteAccessToken(id)),
			// Only a suite's token is healed for its companies (kinds.ts parentRefused): a component token's
			// refresh mints, which may revoke the one every other authorizer holds, so it is only read again.
			healParentToken: ({ kind, id }, used) => (kind === "component"
				? componentAuthority(this.env, id).componentAccessToken(id)
				: suiteAuthority(this.env, id).invalidate(suiteObjectName(id), used, "suite_corp", { confirmedByWeChat: true })),
		});
		this.#admin = new AppAdmin({
			storage: ctx.storage,
			get env() {
				return self.env;
			},
			config: () => this.#config(),
			state: () => this.#engine.state(),
			registered: () => this.#registered,
			setRegistered: (opened) => {
				this.#registered = opened;
			},
			refresherFor: (appid, type) => this.#refresherFor(appid, type),
			idle: () => this.idle(),
			startDeleting: () => {
				this.#deleting = true;
			},
			disarm: (appid) => this.#chain.disarm(appid),
			reset: () => {
				this.#engine.reset();
				this.#seenApp = undefined;
				this.#deleting = false;
			},
			forgetEntry: () => this.#component.forget(),
			authorizer: this.#authorizer,
		});
		this.#chain = new AlarmChain({
			storage: ctx.storage,
			index: () => scheduleIndex(this.env),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			appid: () => this.#engine.state().appid,
			app: () => this.#seenApp,
			lookUp: (appid) => {
				// A registry entry whose secret cannot be opened (REGISTRY_KEY lost its key) is not a deleted app:
				// the chain retries instead of disarming and leaving the schedule index (alarm-chain.ts).
				const app = this.#app(appid);
				if (!app && !this.#deleting && this.#registered && "failure" in this.#registered) throw new BrokerError("config_error", this.#registered.failure.message);
				return app;
			},
			state: () => this.#engine.state(),
			config: () => this.#config(),
			work: (appid) => this.refreshIfDue(appid),
			idle: () => this.#engine.idle(),
			extraWake: (now) => (this.#seenApp?.mode === "component" ? this.#component.wake(now) : this.#seenApp?.mode === "suite" ? this.#suite.wake(now) : null),
		});
		void ctx.blockConcurrencyWhile(async () => {
			const [stored, registered] = await Promise.all([
				ctx.storage.get<Record<string, unknown>>(STATE_KEY),
				ctx.storage.get<unknown>(REGISTERED_APP_KEY),
				this.#component.load(),
				this.#suite.load(),
				this.#authorizer.load(),
			]);
			if (isStoredRegisteredApp(registered)) this.#registered = await openApp(env, registered);
			if (stored) await this.#engine.restore(stored);
		});
	}

	/**
	 * Admin API (PUT /admin/apps/{appid}): the app stored, sealed, and its first token fetched at once, so a
	 * wrong secret is reported to the operator who typed it (app-admin.ts).
	 */
	configure(profile: AppProfile, secret: string): Promise<ConfigureResult> {
		return this.#admin.configure(profile, secret);
	}

	/** Admin API (DELETE /admin/apps/{appid}): everything this object holds goes (app-admin.ts). */
	wipe(appid: string, options: { keepCredentials?: boolean } = {}): Promise<{ existed: boolean; kvPending: number }> {
		return this.#admin.wipe(appid, options);
	}

	/** A sibling WeCom entry joined or left this app's corp: its share of the corp's ticket limit changes. */
	updateProfile(profile: AppProfile): Promise<void> {
		return this.#admin.updateProfile(profile);
	}

	/** POST /admin/registry/reseal: the sealed secret again under the current REGISTRY_KEY. */
	reseal(): Promise<{ kid: string } | { failure: Failure } | null> {
		return this.#admin.reseal();
	}

	/** Admin API (PUT /admin/components/{id}), in the component's own object (component-role.ts). */
	configureComponent(profile: ComponentProfile, secrets: ComponentSecrets): Promise<ConfigureComponentResult> {
		return this.#component.configure(profile, secrets);
	}

	/** A push to the component's event URL (routes/open-events.ts). */
	componentEvent(componentAppid: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		return this.#component.event(componentAppid, signed);
	}

	/** POST /open/{c}/authorizations: the code the vendor's redirect page received, exchanged once. */
	exchangeAuthorization(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		return this.#component.exchange(componentAppid, code);
	}

	/** POST /open/{c}/authorizers/sync. */
	syncAuthorizers(componentAppid: string): Promise<SyncOutcome> {
		return this.#component.sync(componentAppid);
	}

	/** POST /open/{c}/auth-url: a fresh pre_auth_code for the authorisation link. */
	preAuthCode(componentAppid: string): Promise<PreAuthCodeResult> {
		return this.#component.preAuthCode(componentAppid);
	}

	/**
	 * The component's current component_access_token (GET /component-token, the gateway; and the RPC an
	 * authorizer's object asks for the token it refreshes with): a value, or a Failure that says why not.
	 */
	componentAccessToken(componentAppid: string): Promise<Outcome> {
		return this.#component.accessToken(componentAppid);
	}

	/** When the component's newest ticket was pushed and stored, never the ticket itself; null before the first. */
	componentTicket(_componentAppid: string): Promise<{ createTime: number; receivedAt: number } | null> {
		return this.#component.ticketTimes();
	}

	/**
	 * In an authorizer's object, from its component's, or an installed company's, from its suite's: a new
	 * grant (refresh token, permanent code), sealed here (app-admin.ts).
	 */
	adoptGrant(profile: AppProfile, grant: string): Promise<Outcome> {
		return this.#admin.adoptGrant(profile, grant);
	}

	/** In a granted app's object: the grant was revoked (`unauthorized`, `cancel_auth`; app-admin.ts). */
	revokeGrant(appid: string, parent: GrantParent): Promise<AppProfile | null> {
		return this.#admin.revokeGrant(appid, parent);
	}

	/** In a granted app's object: whether it holds its grant (a sync re-adopts one that lost its storage). */
	async holdsGrant(appid: string): Promise<boolean> {
		const app = this.#app(appid);
		return app !== undefined && grantParent(app) !== null;
	}

	/** PUT /admin/suites/{suite_id}, in the suite's own object (authority/suite.ts). */
	configureSuite(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#suite.configure(profile, secrets);
	}

	/** A POST to the suite's instruction URL (routes/wecom-suite-events.ts; suite-role.ts). */
	suiteEvent(suiteId: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		return this.#suite.event(suiteId, signed);
	}

	/** POST /wecom-suite/{s}/install-url: a fresh pre_auth_code (suite-installs.ts). */
	suiteInstallCode(suiteId: string, authType?: 0 | 1): Promise<InstallCodeResult> {
		return this.#suite.installCode(suiteId, authType);
	}

	/** POST /wecom-suite/{s}/installs: the redirect's auth code, exchanged once. */
	exchangeInstall(suiteId: string, code: string): Promise<InstallOutcome> {
		return this.#suite.exchange(suiteId, code);
	}

	/** GET /wecom-suite/{s}/installs: the suite's companies (never a permanent code). */
	listInstalls(_suiteId: string, after: string | null, limit: number): Promise<Omit<InstallRecord, "sealed">[]> {
		return this.#suite.list(after, limit);
	}

	/** POST /wecom-suite/{s}/installs/sync (suite-installs.ts). */
	syncInstalls(suiteId: string): Promise<InstallSyncOutcome> {
		return this.#suite.sync(suiteId);
	}

	/** WeCom's GET URL check of the suite's instruction URL: the echostr decrypted. */
	suiteUrlCheck(suiteId: string, signed: SignedCallback): Promise<UrlCheckOutcome> {
		return this.#suite.urlCheck(suiteId, signed);
	}

	/** GET /admin/suites/{suite_id}: the ticket's age and whether a provider secret is held. */
	suiteState(suiteId: string): Promise<SuiteState> {
		return this.#suite.state(suiteId);
	}

	/**
	 * The suite's current suite_access_token (GET /suite-token, the gateway; and the RPC the suite's installed
	 * companies' objects ask for the token get_corp_token takes): a value, or a Failure that says why not.
	 */
	suiteAccessToken(suiteId: string): Promise<Outcome> {
		return this.#suite.accessToken(suiteId);
	}

	/** In a provider's object (provider:<corpid>): the provider_access_token of WECOM_SUITES' provider corpid. */
	providerAccessToken(corpid: string): Promise<Outcome> {
		return this.#suite.providerToken(corpid);
	}

	/**
	 * In a provider's object (provider:<corpid>), from PUT /admin/suites: the ProviderSecret a registry suite
	 * brought, sealed here, and the provider token fetched at once (with the new secret, if one is held), so
	 * that a wrong secret is reported to the operator who typed it.
	 */
	async configureProvider(corpid: string, secret: string): Promise<Outcome> {
		const stored = await this.#suite.configureProvider(corpid, secret);
		if (!stored.ok) return fail(stored.failure);
		const refresher = this.#refresherFor(providerObjectName(corpid), "token");
		if ("failure" in refresher) return fail(refresher.failure);
		return this.#engine.state().slots.token?.current ? refresher.refreshNow("configure") : refresher.get();
	}

	/** The app's access_token. */
	getToken(appid: string): Promise<Outcome> {
		return this.getCredential(appid, "token");
	}

	/** Any credential of the app; a ticket is fetched on its first request and kept fresh by the alarm after. */
	async getCredential(appid: string, type: CredentialType): Promise<Outcome> {
		const refresher = this.#refresherFor(appid, type);
		return "failure" in refresher ? fail(refresher.failure) : refresher.get();
	}

	/**
	 * Compare-and-refresh of the access_token a client reported (see Refresher.invalidate). `reporter`
	 * names the key, for the logs.
	 */
	async invalidate(appid: string, reported: string, reporter = "unknown", { confirmedByWeChat = false }: InvalidateOptions = {}): Promise<Outcome> {
		const refresher = this.#refresherFor(appid, "token");
		return "failure" in refresher ? fail(refresher.failure) : refresher.invalidate(reported, reporter, confirmedByWeChat);
	}

	/** Admin: a new value now (stable token: force_refresh). */
	async forceRefresh(appid: string, type: CredentialType = "token"): Promise<Outcome> {
		const refresher = this.#refresherFor(appid, type);
		return "failure" in refresher ? fail(refresher.failure) : refresher.force();
	}

	/**
	 * The alarm's work: every credential the app uses is refreshed when due, and only then; failed edge writes
	 * are repaired, a quota incident closes when the WeChat day turns, and unsent alerts are tried again.
	 * The report is the access_token's (the one every app has), or "failed" when any kind failed.
	 */
	async refreshIfDue(appid: string): Promise<CronReport> {
		const app = this.#app(appid);
		if (!app) return { appid, action: "failed" };
		const actions: CronAction["action"][] = [];
		for (const type of kindsOf(app)) actions.push((await this.#engine.refresher(type).refreshIfDue()).action);
		if (app.mode === "component" && app.componentAppid) await this.#component.resume(app.componentAppid);
		if (app.mode === "suite" && app.suiteId) await this.#suite.resume(app.suiteId);
		await this.#engine.assessHealth();
		await this.flushAlerts();
		return { appid, action: actions.includes("failed") ? "failed" : actions[0]! };
	}

	/** The object's own alarm: what is due is refreshed, and the next due moment armed (alarm-chain.ts). */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		if (info?.isRetry) log("warn", "alarm_retried", { appid: this.#engine.state().appid ?? null, retry_count: info.retryCount });
		await this.#chain.ring(undefined, { platform: true });
	}

	/** The watchdog's poke (ops/scheduled.ts): what the alarm does, now; for an app never run, its chain starts. */
	wake(appid: string): Promise<RingResult> {
		return this.#chain.ring(appid, { platform: false });
	}

	/** Resolves when no refresh is under way (a read's background refresh included) and the index has the app's row. */
	async idle(): Promise<void> {
		await this.#engine.idle();
		await this.#component.settled();
		await this.#suite.settled();
		await this.#chain.settled();
	}

	/** Sends every queued alert now and waits for it. The alarm calls it; so do tests, to observe alerts. */
	flushAlerts(): Promise<void> {
		return this.#engine.flushAlerts();
	}

	/** Gateway calls and heals the isolates counted (gateway/usage-counter.ts), added in; today's totals back. */
	async gatewayUsage(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<GatewayCounts> {
		const usage = addGatewayUse(await this.ctx.storage.get<StoredGatewayUsage>(GATEWAY_USAGE_KEY), add, Date.now());
		// Counts that arrive for an app deleted meanwhile are dropped, not written into its wiped storage.
		if ((add.calls > 0 || add.heals > 0) && this.#app(appid)) await this.ctx.storage.put(GATEWAY_USAGE_KEY, usage);
		return { calls: usage.calls, heals: usage.heals };
	}

	/** For GET /status: masked values only, never a full token or secret. */
	async status(appid: string): Promise<(AppStatus & { component?: TicketStatus; authorizer?: unknown; suite_corp?: unknown }) | null> {
		const app = this.#app(appid);
		if (!app) return null;
		const now = Date.now();
		const status = appStatus(app, this.#engine.state(), now);
		if (app.mode === "authorizer") return { ...status, authorizer: { component_appid: app.componentAppid!, needs_reauthorisation: this.#authorizer.needsReauthorisation() } };
		if (app.mode === "suite_corp") return { ...status, suite_corp: { suite_id: app.suiteId!, needs_reinstall: this.#authorizer.needsReauthorisation() } };
		return app.componentAppid ? { ...status, component: this.#component.status(app.componentAppid, now) } : status;
	}

	/** GET /status's entry for one app in one call (a page of 100 apps is 100 subrequests, not 200). */
	async statusReport(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<{ status: AppStatus | null; gateway: GatewayCounts }> {
		const [status, gateway] = await Promise.all([this.status(appid), this.gatewayUsage(appid, add)]);
		return { status, gateway };
	}

	#config(): BrokerConfig {
		return loadConfig(this.env);
	}

	/**
	 * The app, remembering which one this object serves; a changed configuration ends every backoff.
	 * WECHAT_APPS first, then this object's registry entry (an appid lives in one source only).
	 */
	#app(appid: string): AppConfig | undefined {
		const registered = this.#registered && "app" in this.#registered && this.#registered.app.appid === appid ? this.#registered.app : undefined;
		const app = this.#deleting ? undefined : this.#config().apps.get(appid) ?? registered ?? this.#component.appOf(appid) ?? this.#suite.appOf(appid);
		if (!app) return undefined;
		const state = this.#engine.state();
		if (state.appid !== appid) this.#engine.setState({ ...state, appid });
		if (this.#seenApp && this.#seenApp !== app && this.#seenApp.secret !== app.secret) {
			// The operator fixed the secret (`wrangler secret put`): the next attempt may well succeed.
			log("info", "config_changed", { appid });
			this.#engine.forgetBackoffs();
		}
		this.#seenApp = app;
		return app;
	}

	#refresherFor(appid: string, type: CredentialType): Refresher | { failure: Failure } {
		const app = this.#app(appid);
		if (!app && this.#registered && "failure" in this.#registered) return { failure: this.#registered.failure };
		const revoked = app ? null : this.#authorizer.revokedFailure(appid);
		if (revoked) return { failure: revoked };
		if (!app) return { failure: { code: "not_found", message: `App ${appid} is not configured; add it to WECHAT_APPS or PUT /admin/apps/${appid}.` } };
		if (!hasKind(app, type)) {
			return { failure: { code: "not_found", message: `App ${appid} has no ${type} credential (${kindsOf(app).join(", ")} only).` } };
		}
		return this.#engine.refresher(type);
	}
}
