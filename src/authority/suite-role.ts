/**
 * What a token authority does when it is a WeCom suite's object (suite:<suite_id>) or a service provider's
 * (provider:<corpid>): the suite's sealed configuration and instruction callbacks (suite.ts), its
 * suite_tickets' watch (pushed-ticket.ts), and which app the engine sees under the object's name
 * (suite-token.ts). The engine keeps the suite_access_token (the provider_access_token) itself in the
 * object's `token` slot; this role feeds it the newest ticket and tells it when a push should end a backoff.
 * The object's RPCs for suites and providers only call this.
 */
import type { AppConfig, BrokerConfig, SuiteProfile } from "../config/config";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { suiteObjectName } from "../core/storage-keys";
import { SUITE_TICKETED } from "../engine/kinds";
import type { AuthorityState } from "../engine/state";
import type { AppEnv } from "../env";
import type { SignedCallback } from "../wechat/callback-crypto";
import type { EventOutcome } from "./component";
import type { PushedTicket } from "./pushed-ticket";
import { SuiteDesk, type StoredSuiteTicket, type SuiteSecrets, type SuiteState, type UrlCheckOutcome } from "./suite";
import { providerAppOf, providerObjectName, suiteAppOf, suiteTickets } from "./suite-token";

export interface SuiteRoleHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	state(): AuthorityState;
	/** The object's state is saved and its alarm follows the new plan. */
	save(): Promise<void>;
	/** The app the object serves under `appid`, or undefined (the authority's own lookup, which remembers it). */
	app(appid: string): AppConfig | undefined;
	/** The object's own credential, through the engine. */
	credential(appid: string, type: "token"): Promise<Outcome>;
	/** The token's backoff ends: a ticket it wanted is here. */
	forgetTokenBackoff(): void;
	assessHealth(): Promise<void>;
}

export class SuiteRole {
	readonly #host: SuiteRoleHost;
	readonly #desk: SuiteDesk;
	readonly #tickets: PushedTicket<StoredSuiteTicket>;

	constructor(host: SuiteRoleHost) {
		this.#host = host;
		this.#desk = new SuiteDesk(host.storage, host.env, (suiteId) => host.config().suites.get(suiteId));
		this.#tickets = suiteTickets(host.storage);
	}

	/** In the object's constructor: the ticket's times, and a registry suite opened so its alarm can name it. */
	async load(): Promise<void> {
		await Promise.all([this.#tickets.load(), this.#desk.load()]);
	}

	/** The suite (suite:<id>) or provider (provider:<corpid>) this object serves as an app; undefined otherwise. */
	appOf(appid: string): AppConfig | undefined {
		const config = this.#host.config();
		return suiteAppOf(appid, config, this.#desk.opened()) ?? providerAppOf(appid, config);
	}

	/** PUT /admin/suites/{suite_id}: sealed and stored (suite.ts). */
	configure(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#desk.configure(profile, secrets);
	}

	/** A POST to the instruction URL; a newer suite_ticket ends the token's backoff when it wanted one. */
	async event(suiteId: string, signed: SignedCallback): Promise<EventOutcome> {
		const outcome = await this.#desk.callback(suiteId, signed, Date.now());
		if (outcome.ok && outcome.ticket) await this.#ticketArrived(suiteId, outcome.ticket);
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
		if (!providerAppOf(name, this.#host.config())) {
			return fail({ code: "not_found", message: `Provider ${corpid} is not configured: give a suite of WECOM_SUITES its provider_corpid ${corpid} and provider_secret (the ProviderSecret of 服务商管理后台 → 应用管理 → 通用开发参数).` });
		}
		return this.#host.credential(name, "token");
	}

	/** The newest ticket itself, for get_suite_token (the engine's attempt asks for it). */
	ticket(): Promise<string | null> {
		return this.#tickets.ticket();
	}

	/** When the alarm must ring for this role (the tickets' silence becoming news), or null. */
	wake(now: number): number | null {
		return this.#tickets.wake(now);
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
