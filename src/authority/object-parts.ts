/**
 * What one TokenAuthority object (token-authority.ts) is made of, wired together: the refresh engine as the
 * object holds it (credential-engine.ts), its alarm and schedule-index row (alarm-chain.ts), its entry's
 * changes (app-admin.ts), its roles (a component's, a suite's or provider's, a granted app's), and which app it
 * serves: WECHAT_APPS first, then its registry entry, then its role's (an appid lives in one source only).
 * A plain class, not the Durable Object: only the object's RPC methods are reachable from other code, so
 * nothing here (the configuration, a Refresher) can be asked for over RPC.
 */
import { loadConfig, type AppConfig, type BrokerConfig } from "../config/config";
import type { CredentialType } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { REGISTERED_APP_KEY, STATE_KEY, suiteObjectName } from "../core/storage-keys";
import { hasKind, kindsOf } from "../engine/kinds";
import type { CronAction, Refresher } from "../engine/refresher";
import type { AuthorityState } from "../engine/state";
import type { AppEnv } from "../env";
import { registry } from "../registry/registry";
import { scheduleIndex } from "../schedule/client";
import { AlarmChain } from "./alarm-chain";
import { AppAdmin } from "./app-admin";
import { ComponentRole } from "./component-role";
import { CredentialEngine } from "./credential-engine";
import { isStoredRegisteredApp, openApp, type OpenedApp } from "./registered-app";
import { GrantDesk, grantParent } from "./sealed-grant";
import { componentAuthority, suiteAuthority } from "./stub";
import { SuiteRole } from "./suite-role";

export interface ObjectPartsHost {
	readonly ctx: DurableObjectState;
	/** Read when used, as the object's own methods do (tests replace it to reach a misconfigured Worker). */
	readonly env: AppEnv;
	/** The alarm's work: the object's own refreshIfDue, so that what the object answers and what it rings are one. */
	work(appid: string): Promise<unknown>;
}

export interface CronReport {
	readonly appid: string;
	readonly action: CronAction["action"];
}

export class ObjectParts {
	readonly #host: ObjectPartsHost;
	/** The app's credentials: their state, refreshers and incident (credential-engine.ts). */
	readonly engine: CredentialEngine;
	/** The object's alarm and its row in the schedule index (alarm-chain.ts). */
	readonly chain: AlarmChain;
	/** The app's configuration when the object last looked: a new one (a fixed secret) ends any backoff. */
	#seenApp: AppConfig | undefined;
	/** A registry app's entry, opened (registered-app.ts); undefined for an app of WECHAT_APPS. */
	#registered: OpenedApp | undefined;
	/** Set while a wipe runs: the app no longer exists for any call that arrives meanwhile. */
	#deleting = false;
	/** Changes to the app's entry, one at a time (app-admin.ts). */
	readonly admin: AppAdmin;
	/** In a component's object: its configuration, pushes, tickets and authorisation codes (component-role.ts). */
	readonly component: ComponentRole;
	/** In a WeCom suite's object: its configuration, callbacks, tickets and installs (suite-role.ts). */
	readonly suite: SuiteRole;
	/** In an authorizer's or an installed company's object: its sealed grant and its marks (sealed-grant.ts). */
	readonly grant: GrantDesk;

	constructor(host: ObjectPartsHost) {
		this.#host = host;
		const { ctx } = host;
		this.engine = new CredentialEngine({
			storage: ctx.storage,
			get env() {
				return host.env;
			},
			config: () => this.config(),
			app: () => this.#seenApp,
			waitUntil: (promise) => host.ctx.waitUntil(promise),
			planChanged: () => this.chain.planChanged(),
			wakeSoon: () => this.chain.wakeSoon(),
			pushedTicket: () => (this.#seenApp?.mode === "suite" ? this.suite.ticket() : this.component.ticket()),
			grantLink: () => (this.#seenApp && grantParent(this.#seenApp) ? this.grant.link(this.#seenApp) : null),
			roleProblem: (app, now) => (app.mode === "component" ? this.component.problem(now) : app.mode === "suite" ? this.suite.problem(now) : null),
			afterAssess: async (app, before, now) => {
				if (app.mode === "component") await this.component.afterAssess(app, before, now);
			},
		});
		const state = {
			state: () => this.engine.state(),
			setState: (next: AuthorityState) => this.engine.setState(next),
			save: () => this.engine.save(),
			waitUntil: (promise: Promise<unknown>) => host.ctx.waitUntil(promise),
		};
		const role = {
			...state, storage: ctx.storage,
			get env() {
				return host.env;
			},
			config: () => this.config(),
			app: (appid: string) => this.app(appid),
			credential: (appid: string, type: CredentialType) => this.credential(appid, type),
			forgetTokenBackoff: () => this.engine.refresher("token").forgetBackoff(),
			assessHealth: () => this.engine.assessHealth(),
			healToken: (used: string) => this.engine.refresher("token").invalidate(used, "suite_call", true),
		};
		this.component = new ComponentRole(role);
		this.suite = new SuiteRole(role);
		this.grant = new GrantDesk({
			storage: ctx.storage,
			get env() {
				return host.env;
			},
			setRegistered: (opened) => {
				this.#registered = opened;
			},
			putRow: async (profile) => {
				if (this.#registered) await registry(host.env).putApp(profile, this.#registered.sealed.kid);
			},
			parentToken: ({ kind, id }) => (kind === "component"
				? componentAuthority(host.env, id).componentAccessToken(id)
				: suiteAuthority(host.env, id).suiteAccessToken(id)),
			// Only a suite's token is healed for its companies (kinds.ts parentRefused): a component token's
			// refresh mints, which may revoke the one every other authorizer holds, so it is only read again.
			healParentToken: ({ kind, id }, used) => (kind === "component"
				? componentAuthority(host.env, id).componentAccessToken(id)
				: suiteAuthority(host.env, id).invalidate(suiteObjectName(id), used, "suite_corp", { confirmedByWeChat: true })),
		});
		this.admin = new AppAdmin({
			storage: ctx.storage,
			get env() {
				return host.env;
			},
			config: () => this.config(),
			state: () => this.engine.state(),
			registered: () => this.#registered,
			setRegistered: (opened) => {
				this.#registered = opened;
			},
			refresherFor: (appid, type) => this.refresherFor(appid, type),
			idle: () => this.idle(),
			startDeleting: () => {
				this.#deleting = true;
			},
			disarm: (appid) => this.chain.disarm(appid),
			reset: () => {
				this.engine.reset();
				this.#seenApp = undefined;
				this.#deleting = false;
			},
			forgetEntry: () => this.component.forget(),
			authorizer: this.grant,
		});
		this.chain = new AlarmChain({
			storage: ctx.storage,
			index: () => scheduleIndex(host.env),
			waitUntil: (promise) => host.ctx.waitUntil(promise),
			appid: () => this.engine.state().appid,
			app: () => this.#seenApp,
			lookUp: (appid) => {
				// A registry entry whose secret cannot be opened (REGISTRY_KEY lost its key) is not a deleted app:
				// the chain retries instead of disarming and leaving the schedule index (alarm-chain.ts).
				const app = this.app(appid);
				if (!app && !this.#deleting && this.#registered && "failure" in this.#registered) throw new BrokerError("config_error", this.#registered.failure.message);
				return app;
			},
			state: () => this.engine.state(),
			config: () => this.config(),
			work: (appid) => host.work(appid),
			idle: () => this.engine.idle(),
			extraWake: (now) => (this.#seenApp?.mode === "component" ? this.component.wake(now) : this.#seenApp?.mode === "suite" ? this.suite.wake(now) : null),
		});
	}

	/** In the object's constructor, inside blockConcurrencyWhile: its state and its roles back from storage. */
	async load(): Promise<void> {
		const [stored, registered] = await Promise.all([
			this.#host.ctx.storage.get<Record<string, unknown>>(STATE_KEY),
			this.#host.ctx.storage.get<unknown>(REGISTERED_APP_KEY),
			this.component.load(),
			this.suite.load(),
			this.grant.load(),
		]);
		if (isStoredRegisteredApp(registered)) this.#registered = await openApp(this.#host.env, registered);
		if (stored) await this.engine.restore(stored);
	}

	config(): BrokerConfig {
		return loadConfig(this.#host.env);
	}

	/**
	 * The app, remembering which one this object serves; a changed configuration ends every backoff.
	 * WECHAT_APPS first, then this object's registry entry (an appid lives in one source only).
	 */
	app(appid: string): AppConfig | undefined {
		const registered = this.#registered && "app" in this.#registered && this.#registered.app.appid === appid ? this.#registered.app : undefined;
		const app = this.#deleting ? undefined : this.config().apps.get(appid) ?? registered ?? this.component.appOf(appid) ?? this.suite.appOf(appid);
		if (!app) return undefined;
		const state = this.engine.state();
		if (state.appid !== appid) this.engine.setState({ ...state, appid });
		if (this.#seenApp && this.#seenApp !== app && this.#seenApp.secret !== app.secret) {
			// The operator fixed the secret (`wrangler secret put`): the next attempt may well succeed.
			log("info", "config_changed", { appid });
			this.engine.forgetBackoffs();
		}
		this.#seenApp = app;
		return app;
	}

	refresherFor(appid: string, type: CredentialType): Refresher | { failure: Failure } {
		const app = this.app(appid);
		if (!app && this.#registered && "failure" in this.#registered) return { failure: this.#registered.failure };
		const revoked = app ? null : this.grant.revokedFailure(appid);
		if (revoked) return { failure: revoked };
		if (!app) return { failure: { code: "not_found", message: `App ${appid} is not configured; add it to WECHAT_APPS or PUT /admin/apps/${appid}.` } };
		if (!hasKind(app, type)) {
			return { failure: { code: "not_found", message: `App ${appid} has no ${type} credential (${kindsOf(app).join(", ")} only).` } };
		}
		return this.engine.refresher(type);
	}

	/** Any credential of the app; a ticket is fetched on its first request and kept fresh by the alarm after. */
	async credential(appid: string, type: CredentialType): Promise<Outcome> {
		const refresher = this.refresherFor(appid, type);
		return "failure" in refresher ? fail(refresher.failure) : refresher.get();
	}
	/**
	 * The alarm's work: every credential the app uses is refreshed when due, and only then; failed edge writes
	 * are repaired, a quota incident closes when the WeChat day turns, and unsent alerts are tried again.
	 * The report is the access_token's (the one every app has), or "failed" when any kind failed.
	 */
	async refreshIfDue(appid: string): Promise<CronReport> {
		const app = this.app(appid);
		if (!app) return { appid, action: "failed" };
		const actions: CronAction["action"][] = [];
		for (const type of kindsOf(app)) actions.push((await this.engine.refresher(type).refreshIfDue()).action);
		if (app.mode === "component" && app.componentAppid) await this.component.resume(app.componentAppid);
		if (app.mode === "suite" && app.suiteId) await this.suite.resume(app.suiteId);
		await this.engine.assessHealth();
		await this.engine.flushAlerts();
		return { appid, action: actions.includes("failed") ? "failed" : actions[0]! };
	}
	/** Resolves when no refresh is under way (a read's background refresh included) and the index has the app's row. */
	async idle(): Promise<void> {
		await this.engine.idle();
		await this.component.settled();
		await this.suite.settled();
		await this.chain.settled();
	}
}
