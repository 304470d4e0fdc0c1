/**
 * What a token authority does when it is a WeCom suite's object (suite:<suite_id>) or a service provider's
 * (provider:<corpid>): the suite's sealed configuration and instruction callbacks (suite.ts), its
 * suite_tickets' watch (pushed-ticket.ts), and which app the engine sees under the object's name
 * (suite-token.ts), and the suite's installs, each code exchanged once (suite-installs.ts). The engine keeps
 * the suite_access_token (the provider_access_token) itself in the object's `token` slot; this role feeds it
 * the newest ticket and tells it when a push should end a backoff. The object's RPCs for suites and
 * providers only call this.
 */
import type { AppConfig, AppProfile, SuiteProfile } from "../config/config";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { suiteObjectName } from "../core/storage-keys";
import { countCall } from "../core/usage";
import { SUITE_TICKETED } from "../engine/kinds";
import type { SignedCallback } from "../wechat/callback-crypto";
import type { EventOutcome } from "./component";
import type { ComponentRoleHost } from "./component-role";
import type { PushedTicket } from "./pushed-ticket";
import { authority } from "./stub";
import { SuiteDesk, type StoredSuiteTicket, type SuiteSecrets, type SuiteState, type UrlCheckOutcome } from "./suite";
import { SuiteInstalls, type InstallOutcome, type InstallRecord, type InstallSyncOutcome } from "./suite-installs";
import { RegistryProvider } from "./registry-provider";
import { providerAppOf, providerObjectName, suiteAppOf, suiteTickets } from "./suite-token";

/** What the object hands its roles: the same for a suite's as for a component's. */
export interface SuiteRoleHost extends ComponentRoleHost {
	/** Compare-and-refresh of the object's own token (the suite token), which WeCom refused to one of its calls. */
	healToken(used: string): Promise<Outcome>;
}

export type InstallCodeResult = { ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure };

export class SuiteRole {
	readonly #host: SuiteRoleHost;
	readonly #desk: SuiteDesk;
	readonly #tickets: PushedTicket<StoredSuiteTicket>;
	readonly #installs: SuiteInstalls;
	/** In a provider's object: the ProviderSecret a registry suite brought (registry-provider.ts). */
	readonly #provider: RegistryProvider;

	constructor(host: SuiteRoleHost) {
		this.#host = host;
		this.#desk = new SuiteDesk(host.storage, host.env, (suiteId) => host.config().suites.get(suiteId));
		this.#tickets = suiteTickets(host.storage);
		this.#provider = new RegistryProvider(host);
		this.#installs = new SuiteInstalls({
			storage: host.storage, env: host.env,
			config: () => host.config(),
			suiteToken: (suiteId) => this.accessToken(suiteId),
			healSuiteToken: (_suiteId, used) => host.healToken(used),
			waitUntil: (promise) => host.waitUntil(promise),
			replan: () => host.save(),
			countCall: async (call) => {
				host.setState({ ...host.state(), usage: countCall(host.state().usage, call, Date.now()) });
				await host.save();
			},
			corps: {
				adopt: (profile, permanentCode) => authority(host.env, profile.appid).adoptGrant(profile, permanentCode),
				revoke: (appid, suiteId) => authority(host.env, appid).revokeGrant(appid, { kind: "suite", id: suiteId }),
				token: (appid) => authority(host.env, appid).getToken(appid),
				holdsGrant: (appid) => authority(host.env, appid).holdsGrant(appid),
			},
		});
	}

	/** In the object's constructor: the ticket's times, pending install codes, and a registry suite opened so its alarm can name it. */
	async load(): Promise<void> {
		await Promise.all([this.#tickets.load(), this.#desk.load(), this.#installs.load(), this.#provider.load()]);
	}

	/** The suite (suite:<id>) or provider (provider:<corpid>) this object serves as an app; undefined otherwise. */
	appOf(appid: string): AppConfig | undefined {
		const config = this.#host.config();
		return suiteAppOf(appid, config, this.#desk.opened()) ?? providerAppOf(appid, config) ?? this.#provider.appOf(appid);
	}

	/** In a provider's object: the ProviderSecret a registry suite brought, sealed here (registry-provider.ts). */
	configureProvider(corpid: string, secret: string): Promise<{ ok: true } | { ok: false; failure: Failure }> {
		return this.#provider.configure(corpid, secret);
	}

	/** PUT /admin/suites/{suite_id}: sealed and stored (suite.ts). */
	configure(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#desk.configure(profile, secrets);
	}

	/**
	 * A POST to the instruction URL: a newer suite_ticket ends the token's backoff when it wanted one; an
	 * install code is stored before `success` and exchanged in the background; an uninstall wipes the
	 * company's tokens before it.
	 */
	async event(suiteId: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		const outcome = await this.#desk.callback(suiteId, signed, Date.now());
		if (!outcome.ok) return outcome;
		if (outcome.ticket) await this.#ticketArrived(suiteId, outcome.ticket);
		if (outcome.authorizationCode) await this.#installs.received(suiteId, outcome.authorizationCode);
		if (outcome.regranted) this.#installs.changed(suiteId, outcome.regranted);
		if (outcome.revoked) return { ...outcome, revokedProfile: await this.#installs.cancel(suiteId, outcome.revoked) };
		return outcome;
	}

	urlCheck(suiteId: string, signed: SignedCallback): Promise<UrlCheckOutcome> {
		return this.#desk.urlCheck(suiteId, signed);
	}

	state(suiteId: string): Promise<SuiteState> {
		return this.#desk.state(suiteId);
	}

	/** The suite's current suite_access_token, or a Failure that says why not (not configured, unreadable). */
	async accessToken(suiteId: string): Promise<Outcome> {
		const suite = await this.#desk.resolve(suiteId);
		return "failure" in suite ? fail(suite.failure) : this.#host.credential(suiteObjectName(suiteId), "token");
	}

	/** The provider's current provider_access_token (WECOM_SUITES' provider corpid and secret). */
	async providerToken(corpid: string): Promise<Outcome> {
		const name = providerObjectName(corpid);
		if (!this.appOf(name)) {
			return fail({ code: "not_found", message: `Provider ${corpid} is not configured: give a suite its provider_corpid ${corpid} and provider_secret (the ProviderSecret of 服务商管理后台 → 应用管理 → 通用开发参数), in WECOM_SUITES or with PUT /admin/suites/<suite_id>.` });
		}
		return this.#host.credential(name, "token");
	}

	/** The newest ticket itself, for get_suite_token (the engine's attempt asks for it). */
	ticket(): Promise<string | null> {
		return this.#tickets.ticket();
	}

	/** POST /wecom-suite/{s}/install-url: a fresh pre_auth_code. */
	async installCode(suiteId: string, authType: 0 | 1 | undefined): Promise<InstallCodeResult> {
		const suite = await this.#desk.resolve(suiteId);
		return "failure" in suite ? { ok: false, failure: suite.failure } : this.#installs.preAuthCode(suiteId, authType);
	}

	/** POST /wecom-suite/{s}/installs: the redirect's auth code, exchanged once. */
	async exchange(suiteId: string, code: string): Promise<InstallOutcome> {
		const suite = await this.#desk.resolve(suiteId);
		return "failure" in suite ? { ok: false, failure: suite.failure } : this.#installs.exchange(suiteId, code);
	}

	/** GET /wecom-suite/{s}/installs: the companies, never a permanent code. */
	async list(after: string | null, limit: number): Promise<Omit<InstallRecord, "sealed">[]> {
		return (await this.#installs.list(after, limit)).map(({ sealed: _sealed, ...record }) => record);
	}

	async sync(suiteId: string): Promise<InstallSyncOutcome> {
		const suite = await this.#desk.resolve(suiteId);
		return "failure" in suite ? { ok: false, failure: suite.failure } : this.#installs.sync(suiteId);
	}

	/** The alarm's extra work: install codes a day old are pruned, pending ones whose exchange failed tried again. */
	resume(suiteId: string): Promise<void> {
		return this.#installs.resume(suiteId);
	}

	settled(): Promise<void> {
		return this.#installs.settled();
	}

	/** When the alarm must ring for this role (the tickets' silence becoming news, pending codes), or null. */
	wake(now: number): number | null {
		const a = this.#tickets.wake(now);
		const b = this.#installs.wake(now);
		return a === null ? b : b === null ? a : Math.min(a, b);
	}

	/** A problem the engine cannot see (no push for too long), for the incident. */
	problem(now: number): string | null {
		return this.#tickets.problem(now);
	}

	/**
	 * A newer ticket is stored: a suite with no usable token, or whose last refresh wanted a ticket, is fetched
	 * promptly (its backoff ends and the alarm is re-armed for now); a stale-ticket incident closes.
	 */
	async #ticketArrived(suiteId: string, { createTime, receivedAt }: { createTime: number; receivedAt: number }): Promise<void> {
		this.#tickets.arrived({ pushedAt: createTime, receivedAt });
		if (!this.#host.app(suiteObjectName(suiteId))) return;
		if (this.#tickets.unblocks(SUITE_TICKETED, this.#host.state().slots.token, Date.now())) this.#host.forgetTokenBackoff();
		await this.#host.save();
		await this.#host.assessHealth();
	}
}
