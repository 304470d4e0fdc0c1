/**
 * What a token authority does when it is a component's object (named component:<id>): its sealed
 * configuration, the pushes to its event URL, its tickets' watch and its authorisation codes. The engine
 * keeps the component token itself in the object's `token` slot (component-token.ts); this role feeds it
 * tickets and tells it when a push should end a backoff. The object's RPCs for components only call this.
 */
import type { AppConfig, AppProfile, BrokerConfig, ComponentConfig, ComponentProfile } from "../config/config";
import { BrokerError } from "../core/errors";
import { log } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { COMPONENT_KEY, COMPONENT_TICKET_KEY, componentObjectName } from "../core/storage-keys";
import { countCall } from "../core/usage";
import type { AuthorityState, SlotState } from "../engine/state";
import type { AppEnv } from "../env";
import type { SignedCallback } from "../wechat/callback-crypto";
import { Authorizations, type ExchangeOutcome, type SyncOutcome } from "./authorizations";
import { isStoredComponent, openComponent, receiveEvent, sealComponent, type ComponentSecrets, type EventOutcome, type StoredTicket } from "./component";
import { componentAppOf, TicketWatch, type TicketStatus } from "./component-token";
import { authority } from "./stub";

export interface ComponentRoleHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	state(): AuthorityState;
	setState(state: AuthorityState): void;
	/** The object's state is saved and its alarm follows the new plan. */
	save(): Promise<void>;
	waitUntil(promise: Promise<unknown>): void;
	/** The app the object serves under `appid`, or undefined (the authority's own lookup, which remembers it). */
	app(appid: string): AppConfig | undefined;
	/** The object's own credential, through the engine. */
	credential(appid: string, type: "token"): Promise<Outcome>;
	/** The token's backoff ends: a ticket it wanted is here. */
	forgetTokenBackoff(): void;
	assessHealth(): Promise<void>;
}

export type ConfigureComponentResult = { stored: true; kid: string } | { stored: false; failure: Failure };
export type PreAuthCodeResult = { ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure };

export class ComponentRole {
	readonly #host: ComponentRoleHost;
	/** The registry component, opened once (WECHAT_COMPONENTS ones come from the config). */
	#opened: ComponentConfig | undefined;
	/** Its tickets' arrival, for the stale-ticket incident (component-token.ts). */
	readonly #tickets: TicketWatch;
	/** Its authorization codes, each exchanged once (authorizations.ts). */
	readonly #authorizations: Authorizations;

	constructor(host: ComponentRoleHost) {
		this.#host = host;
		this.#tickets = new TicketWatch(host);
		this.#authorizations = new Authorizations({
			storage: host.storage, env: host.env,
			config: () => host.config(),
			componentToken: (componentAppid) => host.credential(componentObjectName(componentAppid), "token"),
			waitUntil: (promise) => host.waitUntil(promise),
			replan: () => host.save(),
			authorizers: {
				adopt: (profile, refreshToken) => authority(host.env, profile.appid).adoptGrant(profile, refreshToken),
				revoke: (authorizerAppid, componentAppid) => authority(host.env, authorizerAppid).revokeGrant(authorizerAppid, { kind: "component", id: componentAppid }),
				token: (authorizerAppid) => authority(host.env, authorizerAppid).getToken(authorizerAppid),
			},
			countCall: async (call) => {
				host.setState({ ...host.state(), usage: countCall(host.state().usage, call, Date.now()) });
				await host.save();
			},
		});
	}

	/**
	 * In the object's constructor, before any call is delivered. A component's alarm and the watchdog name it
	 * by its object's name, so its registry entry must be open before the first call.
	 */
	async load(): Promise<void> {
		const [stored] = await Promise.all([this.#host.storage.get<unknown>(COMPONENT_KEY), this.#tickets.load(), this.#authorizations.load()]);
		if (isStoredComponent(stored)) this.#opened = await openComponent(this.#host.env, stored).catch(() => undefined);
	}

	/** The component this object serves as an app named component:<id>; undefined for any other appid. */
	appOf(appid: string): AppConfig | undefined {
		return componentAppOf(appid, this.#host.config().components, this.#opened);
	}

	/** The object's entry was deleted. */
	forget(): void {
		this.#opened = undefined;
	}

	/** PUT /admin/components/{id}: its secret, message token and EncodingAESKey, sealed together before they are stored. */
	async configure(profile: ComponentProfile, secrets: ComponentSecrets): Promise<ConfigureComponentResult> {
		try {
			const stored = await sealComponent(this.#host.env, profile, secrets);
			await this.#host.storage.put(COMPONENT_KEY, stored);
			this.#opened = { ...profile, ...secrets };
			log("info", "component_configured", { component_appid: profile.componentAppid });
			// The chain starts now: its token is fetched as soon as a ticket is there (and its absence is an incident).
			if (this.#host.app(componentObjectName(profile.componentAppid))) await this.#host.save();
			return { stored: true, kid: stored.sealed.kid };
		} catch (error) {
			if (error instanceof BrokerError) return { stored: false, failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/**
	 * A push to the event URL. Its check-and-store of the ticket holds against a concurrent push: between
	 * reading the stored ticket and writing the new one there is no await but storage's, and the input gate
	 * admits no other call while storage is read.
	 */
	async event(componentAppid: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return { ok: false, code: component.failure.code, message: component.failure.message };
		const outcome = await receiveEvent(component, signed, this.#host.storage, Date.now());
		if (outcome.ok && outcome.ticket) await this.#ticketArrived(componentAppid, outcome.ticket);
		if (outcome.ok && outcome.authorizationCode) await this.#authorizations.received(componentAppid, outcome.authorizationCode);
		if (outcome.ok && outcome.revoked) return { ...outcome, revokedProfile: await this.#authorizations.revoke(componentAppid, outcome.revoked) };
		return outcome;
	}

	/** The code the vendor's redirect page received, exchanged once (authorizations.ts). */
	async exchange(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		const component = await this.#componentFor(componentAppid);
		return "failure" in component ? { ok: false, failure: component.failure } : this.#authorizations.exchange(componentAppid, code);
	}

	/** Refresh tokens recovered from api_get_authorizer_list (authorizations.ts). */
	async sync(componentAppid: string): Promise<SyncOutcome> {
		const component = await this.#componentFor(componentAppid);
		return "failure" in component ? { ok: false, failure: component.failure } : this.#authorizations.sync(componentAppid);
	}

	/** A fresh pre_auth_code for the authorisation link. */
	async preAuthCode(componentAppid: string): Promise<PreAuthCodeResult> {
		const component = await this.#componentFor(componentAppid);
		return "failure" in component ? { ok: false, failure: component.failure } : this.#authorizations.preAuthCode(componentAppid);
	}

	/** The current component_access_token, or a Failure that says why not. */
	async accessToken(componentAppid: string): Promise<Outcome> {
		const component = await this.#componentFor(componentAppid);
		return "failure" in component ? fail(component.failure) : this.#host.credential(componentObjectName(componentAppid), "token");
	}

	/** When the newest ticket was pushed and stored, never the ticket itself; null before the first. */
	async ticketTimes(): Promise<{ createTime: number; receivedAt: number } | null> {
		const stored = await this.#host.storage.get<StoredTicket>(COMPONENT_TICKET_KEY);
		return stored ? { createTime: stored.createTime, receivedAt: stored.receivedAt } : null;
	}

	/** The ticket itself, for api_component_token (the engine's attempt asks for it). */
	ticket(): Promise<string | null> {
		return this.#tickets.ticket();
	}

	/** The alarm's extra work: pending codes whose exchange failed are tried again. */
	resume(componentAppid: string): Promise<void> {
		return this.#authorizations.resume(componentAppid);
	}

	/** When the alarm must ring for this role (stale tickets, pending codes), or null. */
	wake(now: number): number | null {
		return earliestOf(this.#tickets.wake(now), this.#authorizations.wake(now));
	}

	/** A problem the engine cannot see (no push for too long), for the incident. */
	problem(now: number): string | null {
		return this.#tickets.problem(now);
	}

	/** After an assessment (component-token.ts: one api_start_push_ticket per ticket incident). */
	afterAssess(app: AppConfig, before: AuthorityState["incident"], now: number): Promise<void> {
		return this.#tickets.afterAssess(app, before, now);
	}

	/** Resolves when no exchange is under way. */
	settled(): Promise<void> {
		return this.#authorizations.settled();
	}

	status(componentAppid: string, now: number): TicketStatus {
		return this.#tickets.status(componentAppid, now);
	}

	/**
	 * A newer ticket is stored: a component with no usable token, or whose last refresh wanted a ticket, is
	 * fetched promptly (its backoff ends and the alarm is re-armed for now); a stale-ticket incident closes.
	 */
	async #ticketArrived(componentAppid: string, { createTime, receivedAt }: { createTime: number; receivedAt: number }): Promise<void> {
		this.#tickets.arrived(createTime, receivedAt);
		if (!this.#host.app(componentObjectName(componentAppid))) return;
		const slot: SlotState | undefined = this.#host.state().slots.token;
		if (this.#tickets.unblocks(slot, Date.now())) this.#host.forgetTokenBackoff();
		await this.#host.save();
		await this.#host.assessHealth();
	}

	/** The component this object serves: WECHAT_COMPONENTS first, then its sealed registry entry. */
	async #componentFor(componentAppid: string): Promise<ComponentConfig | { failure: Failure }> {
		const fromSecret = this.#host.config().components.get(componentAppid);
		if (fromSecret) return fromSecret;
		if (this.#opened?.componentAppid === componentAppid) return this.#opened;
		const stored = await this.#host.storage.get<unknown>(COMPONENT_KEY);
		if (!isStoredComponent(stored) || stored.profile.componentAppid !== componentAppid) {
			return { failure: { code: "not_found", message: `Component ${componentAppid} is not configured; add it to WECHAT_COMPONENTS or PUT /admin/components/${componentAppid}.` } };
		}
		try {
			this.#opened = await openComponent(this.#host.env, stored);
			return this.#opened;
		} catch (error) {
			if (error instanceof BrokerError) return { failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}
}

function earliestOf(a: number | null, b: number | null): number | null {
	return a === null ? b : b === null ? a : Math.min(a, b);
}
