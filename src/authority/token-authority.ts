/**
 * TokenAuthority: one Durable Object per app (`idFromName(appid)`), the only code that asks WeChat or WeCom
 * for a credential. A thin shell: the refresh engine (engine/refresher.ts) runs one Refresher per credential
 * kind (engine/kinds.ts); this class holds the state they share, loads and saves it, and answers RPC.
 *
 * What lives where: `#state` in memory is a copy of storage key "state" (keys.ts, engine/state.ts), written
 * after every change and read back in the constructor before any call is delivered, so an evicted or
 * restarted object serves the same credentials without asking WeChat. Before each upstream attempt the state
 * is written with an `inFlight` marker (and the call counted), so an instance that dies mid-call leaves a
 * trace its successor acts on (`#recover`). The refreshers' flights are memory only: losing them with the
 * object is fine, because nothing awaits them any more.
 */
import { DurableObject } from "cloudflare:workers";
import { appStatus, iso, type AppStatus } from "./status-report";
import { authority, componentAuthority, suiteAuthority } from "./stub";
import { loadConfig, type AppConfig, type AppProfile, type BrokerConfig, type ComponentConfig, type ComponentProfile } from "../config/config";
import { CREDENTIAL_TYPES } from "../core/credentials";
import { BrokerError } from "../core/errors";
import { tokenDigest } from "../edge/issued-index";
import { registry, type AppRow } from "../registry/registry";
import { isStoredRegisteredApp, openApp, resealApp, sealApp, type OpenedApp, type StoredRegisteredApp } from "./registered-app";
import { hasKind, kindFor, kindsOf } from "../engine/kinds";
import type { CredentialType } from "../core/credentials";
import { Incidents } from "../engine/incidents";
import { Refresher, type CronAction } from "../engine/refresher";
import { afterUnansweredCall, EMPTY_SLOT, initialState, restoreState, type AuthorityState, type SlotState } from "../engine/state";
import type { AppEnv } from "../env";
import { addGatewayUse, NO_GATEWAY_USE, type GatewayCounts, type StoredGatewayUsage } from "./gateway-usage";
import { healthProblem } from "../engine/health";
import { COMPONENT_KEY, COMPONENT_TICKET_KEY, edgeKey, GATEWAY_USAGE_KEY, issuedKey, REGISTERED_APP_KEY, STATE_KEY } from "../core/storage-keys";
import { isStoredComponent, openComponent, receiveEvent, sealComponent, type ComponentSecrets, type EventOutcome, type StoredTicket } from "./component";
import type { SignedCallback } from "../wechat/callback-crypto";
import { SuiteDesk, type SuiteSecrets, type SuiteState, type UrlCheckOutcome } from "./suite";
import type { SuiteProfile } from "../config/config";
import { log, maskToken } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { AlarmChain, type RingResult } from "./alarm-chain";
import { scheduleIndex } from "../schedule/client";
import { componentAppOf, TicketWatch, type TicketStatus } from "./component-token";
import { componentObjectName, suiteObjectName } from "../core/storage-keys";
import { GrantDesk, grantParent, type GrantParent } from "./sealed-grant";
import { SuiteInstalls, type InstallOutcome, type InstallRecord, type InstallSyncOutcome } from "./suite-installs";
import { providerAppOf, providerObjectName, suiteAppOf, suiteTickets } from "./suite-token";
import { SUITE_TICKETED } from "../engine/kinds";
import type { PushedTicket } from "./pushed-ticket";
import type { StoredSuiteTicket } from "./suite";
import { Authorizations, type ExchangeOutcome, type SyncOutcome } from "./authorizations";
import { countCall, type CountedCall } from "../core/usage";

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

/** What `configure` did: whether the app was stored, and the outcome of its first token fetch. */
export type ConfigureResult =
	| { readonly stored: true; readonly created: boolean; readonly row: AppRow; readonly token: Outcome }
	| { readonly stored: false; readonly failure: Failure };

export interface CronReport {
	readonly appid: string;
	readonly action: CronAction["action"];
}

export class TokenAuthority extends DurableObject<AppEnv> {
	#state: AuthorityState = initialState(Date.now());
	readonly #refreshers = new Map<CredentialType, Refresher>();
	readonly #incidents: Incidents;
	/** The object's alarm and its row in the schedule index (alarm-chain.ts). */
	readonly #chain: AlarmChain;
	/** The app's configuration when the object last looked: a new one (a fixed secret) ends any backoff. */
	#seenApp: AppConfig | undefined;
	/** A registry app's entry, opened (registered-app.ts); undefined for an app of WECHAT_APPS. */
	#registered: OpenedApp | undefined;
	/** Set while `wipe` runs: the app no longer exists for any call that arrives meanwhile. */
	#deleting = false;
	/** The admin change under way (memory only: a lost one was never answered, and the operator retries). */
	#adminQueue: Promise<unknown> = Promise.resolve();
	/** In a component's object (authority/component.ts): the registry component, opened once. */
	#component: ComponentConfig | undefined;
	/** In a WeCom suite's object (authority/suite.ts). */
	readonly #suite: SuiteDesk;
	/** In a component's object: its tickets' arrival, for the stale-ticket incident (component-token.ts). */
	readonly #tickets: TicketWatch;
	/** In a suite's object: its suite_tickets' arrival, for the stale-ticket incident (suite-token.ts). */
	readonly #suiteTickets: PushedTicket<StoredSuiteTicket>;
	/** In an authorizer's or an installed company's object: its sealed grant and its marks (sealed-grant.ts). */
	readonly #authorizer: GrantDesk;
	/** In a WeCom suite's object: its installs, each code exchanged once (suite-installs.ts). */
	readonly #installs: SuiteInstalls;
	/** In a component's object: its authorization codes, each exchanged once (authorizations.ts). */
	readonly #authorizations: Authorizations;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		this.#incidents = new Incidents({
			state: () => this.#state,
			setState: (state) => {
				this.#state = state;
			},
			save: () => this.#save(),
			webhookUrl: () => this.#config().alertWebhookUrl,
			waitUntil: (promise) => this.ctx.waitUntil(promise),
		});
		this.#suite = new SuiteDesk(ctx.storage, env, (suiteId) => this.#config().suites.get(suiteId));
		this.#suiteTickets = suiteTickets(ctx.storage);
		this.#tickets = new TicketWatch({
			storage: ctx.storage,
			state: () => this.#state,
			setState: (state) => {
				this.#state = state;
			},
			save: () => this.#save(),
			config: () => this.#config(),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
		});
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
		});
		this.#authorizations = new Authorizations({
			storage: ctx.storage, env,
			config: () => this.#config(),
			componentToken: (componentAppid) => this.getCredential(componentObjectName(componentAppid), "token"),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			replan: () => this.#save(),
			authorizers: {
				adopt: (profile, refreshToken) => authority(this.env, profile.appid).adoptGrant(profile, refreshToken),
				revoke: (authorizerAppid, componentAppid) => authority(this.env, authorizerAppid).revokeGrant(authorizerAppid, { kind: "component", id: componentAppid }),
				token: (authorizerAppid) => authority(this.env, authorizerAppid).getToken(authorizerAppid),
			},
			countCall: (call) => this.#countCall(call),
		});
		this.#installs = new SuiteInstalls({
			storage: ctx.storage, env,
			config: () => this.#config(),
			suiteToken: (suiteId) => this.suiteAccessToken(suiteId),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			replan: () => this.#save(),
			countCall: (call) => this.#countCall(call),
			corps: {
				adopt: (profile, permanentCode) => authority(this.env, profile.appid).adoptGrant(profile, permanentCode),
				revoke: (appid, suiteId) => authority(this.env, appid).revokeGrant(appid, { kind: "suite", id: suiteId }),
				token: (appid) => authority(this.env, appid).getToken(appid),
				holdsGrant: (appid) => authority(this.env, appid).holdsGrant(appid),
			},
		});
		this.#chain = new AlarmChain({
			storage: ctx.storage,
			index: () => scheduleIndex(this.env),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			appid: () => this.#state.appid,
			app: () => this.#seenApp,
			lookUp: (appid) => {
				// A registry entry whose secret cannot be opened (REGISTRY_KEY lost its key) is not a deleted app:
				// the chain retries instead of disarming and leaving the schedule index (alarm-chain.ts).
				const app = this.#app(appid);
				if (!app && !this.#deleting && this.#registered && "failure" in this.#registered) throw new BrokerError("config_error", this.#registered.failure.message);
				return app;
			},
			state: () => this.#state,
			config: () => this.#config(),
			work: (appid) => this.refreshIfDue(appid),
			idle: async () => {
				for (const refresher of this.#refreshers.values()) await refresher.idle();
			},
			extraWake: (now) => (this.#seenApp?.mode === "component" ? earliestOf(this.#tickets.wake(now), this.#authorizations.wake(now))
				: this.#seenApp?.mode === "suite" ? earliestOf(this.#suiteTickets.wake(now), this.#installs.wake(now)) : null),
		});
		void ctx.blockConcurrencyWhile(async () => {
			const [stored, registered, component] = await Promise.all([
				ctx.storage.get<Record<string, unknown>>(STATE_KEY),
				ctx.storage.get<unknown>(REGISTERED_APP_KEY),
				ctx.storage.get<unknown>(COMPONENT_KEY),
				this.#tickets.load(),
				this.#authorizer.load(),
				this.#authorizations.load(),
				this.#installs.load(),
				this.#suiteTickets.load(),
				this.#suite.load(),
			]);
			if (isStoredRegisteredApp(registered)) this.#registered = await openApp(env, registered);
			// A component's alarm and the watchdog name it by its object's name: it must be known synchronously.
			if (isStoredComponent(component)) this.#component = await openComponent(env, component).catch(() => undefined);
			if (!stored) return;
			this.#state = restoreState(stored, Date.now());
			await this.#recover();
		});
	}

	/**
	 * Admin API (PUT /admin/apps/{appid}): stores the app's profile and its secret, sealed, records it in the
	 * Registry's catalog, and fetches its first token at once, so a wrong secret is reported to the operator
	 * who typed it. The app is stored either way. A replaced secret ends any backoff and is checked with a
	 * fresh normal refresh once any refresh under way (with the old secret) has landed (stable: returns the
	 * live token and revokes nothing; classic: one mint, the old token still accepted for 300 s).
	 * One admin change at a time (#adminChange): a DELETE arriving meanwhile runs after this PUT, whole.
	 */
	configure(profile: AppProfile, secret: string): Promise<ConfigureResult> {
		return this.#adminChange(async () => {
			let stored: StoredRegisteredApp;
			try {
				stored = await sealApp(this.env, profile, secret);
			} catch (error) {
				if (error instanceof BrokerError) return { stored: false, failure: { code: "config_error", message: error.message } };
				throw error;
			}
			await this.ctx.storage.put(REGISTERED_APP_KEY, stored);
			const before = this.#registered && "app" in this.#registered ? this.#registered.app : undefined;
			this.#registered = { app: { ...profile, secret }, sealed: stored.sealed };
			const secretChanged = before !== undefined && before.secret !== secret;
			log("info", "app_configured", { appid: profile.appid, replaced: before !== undefined, secret_changed: secretChanged });
			const { created, row, siblings } = await registry(this.env).putApp(profile, stored.sealed.kid, this.#secretEntriesOf(profile.corpid));
			// The Registry counts a corp's entries (their share of its ticket limit): its count is the one kept.
			if (row.profile.corpEntries !== profile.corpEntries) await this.updateProfile(row.profile);
			await this.#tellSiblings(siblings);
			const refresher = this.#refresherFor(profile.appid, "token");
			if ("failure" in refresher) return { stored: true, created, row, token: fail(refresher.failure) };
			// A refresh under way was sent with the old secret: its answer says nothing of the new one.
			await refresher.idle();
			const token = secretChanged ? await refresher.refreshNow("configure") : await refresher.get();
			return { stored: true, created, row, token };
		});
	}

	/**
	 * Admin API (DELETE /admin/apps/{appid}): everything this object holds goes: the sealed secret, every
	 * credential, counters and queued alerts, the alarm; the catalog row, and through the Registry's outbox
	 * (retried until KV takes them) the KV profile, edge copies and the gateway's records of the tokens it
	 * knows. A refresh under way lands first, so nothing is written after the wipe. `keepCredentials`: the
	 * app also lives in WECHAT_APPS, which goes on using this object: only the registry entry goes.
	 * `existed` is false when the catalog had no row; `kvPending`: KV writes the outbox still retries.
	 */
	wipe(appid: string, { keepCredentials = false } = {}): Promise<{ existed: boolean; kvPending: number }> {
		return this.#adminChange(async () => {
			const kvKeys: string[] = [];
			if (!keepCredentials) {
				this.#deleting = true;
				await this.idle();
				kvKeys.push(...await this.#credentialKeys(appid));
			}
			const registered = this.#registered && "app" in this.#registered ? this.#registered.app : undefined;
			const { existed, siblings, kvPending } = await registry(this.env).deleteApp(appid, kvKeys, this.#secretEntriesOf(registered?.corpid));
			await this.#tellSiblings(siblings);
			if (keepCredentials) {
				await this.ctx.storage.delete(REGISTERED_APP_KEY);
			} else {
				await this.#chain.disarm(appid); // the alarm, and the app's row in the schedule index
				await this.ctx.storage.deleteAll();
				this.#state = initialState(Date.now());
				this.#refreshers.clear();
				this.#seenApp = undefined;
				this.#deleting = false;
			}
			this.#registered = undefined;
			this.#component = undefined;
			log("info", "app_deleted", { appid, credentials_kept: keepCredentials, kv_writes_pending: kvPending });
			return { existed, kvPending };
		});
	}

	/** A sibling WeCom entry joined or left this app's corp: its share of the corp's ticket limit changes. */
	async updateProfile(profile: AppProfile): Promise<void> {
		const stored = await this.ctx.storage.get<unknown>(REGISTERED_APP_KEY);
		if (!isStoredRegisteredApp(stored) || stored.profile.appid !== profile.appid) return;
		await this.ctx.storage.put(REGISTERED_APP_KEY, { ...stored, profile });
		if (this.#registered && "app" in this.#registered) this.#registered = { ...this.#registered, app: { ...this.#registered.app, ...profile } };
	}

	/** The corp's entries in WECHAT_APPS, which the Registry does not see (for the corp's entry count). */
	#secretEntriesOf(corpid: string | undefined): number {
		return corpid === undefined ? 0 : [...this.#config().apps.values()].filter((app) => app.corpid === corpid).length;
	}

	async #tellSiblings(siblings: readonly AppProfile[]): Promise<void> {
		// stub.ts's authority(), spelled out: stub.ts imports this file's type, and this file does not import it back.
		const objects = this.env.TOKEN_AUTHORITY;
		await Promise.all(siblings.map((profile) => objects.get(objects.idFromName(profile.appid)).updateProfile(profile)));
	}

	/** Runs admin changes (configure, wipe) one after another, each whole, in the order they arrived. */
	#adminChange<T>(change: () => Promise<T>): Promise<T> {
		const run = this.#adminQueue.then(change, change);
		this.#adminQueue = run.catch(() => undefined);
		return run;
	}

	/** POST /admin/registry/reseal: the sealed secret again under the current REGISTRY_KEY; the key id it is under. */
	async reseal(): Promise<{ kid: string } | { failure: Failure } | null> {
		const stored = await this.ctx.storage.get<unknown>(REGISTERED_APP_KEY);
		if (!isStoredRegisteredApp(stored)) return null;
		try {
			const resealed = await resealApp(this.env, stored);
			if (!resealed) return { kid: stored.sealed.kid };
			await this.ctx.storage.put(REGISTERED_APP_KEY, resealed);
			if (this.#registered) this.#registered = { ...this.#registered, sealed: resealed.sealed };
			return { kid: resealed.sealed.kid };
		} catch (error) {
			if (error instanceof BrokerError) return { failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/**
	 * Admin API (PUT /admin/components/{id}), in the component's own object: its secret, message token and
	 * EncodingAESKey, sealed together before they are stored.
	 */
	async configureComponent(profile: ComponentProfile, secrets: ComponentSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		try {
			const stored = await sealComponent(this.env, profile, secrets);
			await this.ctx.storage.put(COMPONENT_KEY, stored);
			this.#component = { ...profile, ...secrets };
			log("info", "component_configured", { component_appid: profile.componentAppid });
			// The chain starts now: its token is fetched as soon as a ticket is there (and its absence is an incident).
			if (this.#app(componentObjectName(profile.componentAppid))) await this.#save();
			return { stored: true, kid: stored.sealed.kid };
		} catch (error) {
			if (error instanceof BrokerError) return { stored: false, failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/**
	 * A push to the component's event URL (routes/open-events.ts). Its check-and-store of the ticket holds
	 * against a concurrent push: between reading the stored ticket and writing the new one there is no await
	 * but storage's, and the input gate admits no other call while storage is read.
	 */
	async componentEvent(componentAppid: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return { ok: false, code: component.failure.code, message: component.failure.message };
		const outcome = await receiveEvent(component, signed, this.ctx.storage, Date.now());
		if (outcome.ok && outcome.ticket) await this.#ticketArrived(componentAppid, outcome.ticket);
		if (outcome.ok && outcome.authorizationCode) await this.#authorizations.received(componentAppid, outcome.authorizationCode);
		if (outcome.ok && outcome.revoked) return { ...outcome, revokedProfile: await this.#authorizations.revoke(componentAppid, outcome.revoked) };
		return outcome;
	}

	/** POST /open/{c}/authorizations: the code the vendor's redirect page received, exchanged once (authorizations.ts). */
	async exchangeAuthorization(componentAppid: string, code: string): Promise<ExchangeOutcome> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return { ok: false, failure: component.failure };
		return this.#authorizations.exchange(componentAppid, code);
	}

	/** POST /open/{c}/authorizers/sync (authorizations.ts). */
	async syncAuthorizers(componentAppid: string): Promise<SyncOutcome> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return { ok: false, failure: component.failure };
		return this.#authorizations.sync(componentAppid);
	}

	/** POST /open/{c}/auth-url: a fresh pre_auth_code for the authorisation link. */
	async preAuthCode(componentAppid: string): Promise<{ ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure }> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return { ok: false, failure: component.failure };
		return this.#authorizations.preAuthCode(componentAppid);
	}

	/**
	 * In an authorizer's object, from its component's (authorizations.ts), or in an installed company's, from
	 * its suite's (suite-installs.ts): a new grant (refresh token, permanent code), sealed here; the app
	 * registered (its entry records its parent) and its first token fetched, which arms its alarm.
	 */
	adoptGrant(profile: AppProfile, grant: string): Promise<Outcome> {
		return this.#adminChange(async () => {
			const existing = this.#registered && "app" in this.#registered ? this.#registered.app : undefined;
			if (this.#config().apps.has(profile.appid) || (existing && existing.mode !== profile.mode)) {
				// An account configured with its own secret keeps it: its entry is the operator's, not the platform's.
				log("warn", "grant_not_adopted", { appid: profile.appid, reason: "configured_with_secret" });
				return fail({ code: "config_error", message: `${profile.appid} is configured with its own secret on this broker; its grant from ${grantParent(profile)?.kind ?? "?"} ${grantParent(profile)?.id ?? "?"} does not replace that entry (use its own /token).` });
			}
			const stored = await this.#authorizer.adopt(profile, grant);
			await registry(this.env).putApp(profile, stored.sealed.kid);
			const refresher = this.#refresherFor(profile.appid, "token");
			if ("failure" in refresher) return fail(refresher.failure);
			refresher.forgetBackoff();
			await refresher.idle();
			// The api_query_auth that brought this refresh token minted a token too, which may have revoked the
			// one held (no overlap assumed): a held one is replaced now, its KV copy retracted first.
			return this.#state.slots.token?.current ? refresher.refreshNow("configure") : refresher.get();
		});
	}

	/**
	 * In an authorizer's or an installed company's object: the grant was revoked (`unauthorized`,
	 * `cancel_auth`). Its credentials go from storage and KV and its alarm is disarmed; its catalog entry
	 * stays, marked revoked, so /token names it.
	 */
	revokeGrant(appid: string, parent: GrantParent): Promise<AppProfile | null> {
		return this.#adminChange(async () => {
			const registered = this.#registered && "app" in this.#registered ? this.#registered.app : undefined;
			const held = registered && grantParent(registered);
			if (!held || held.kind !== parent.kind || held.id !== parent.id) return null;
			this.#deleting = true;
			await this.idle();
			const kvKeys = await this.#credentialKeys(appid);
			const { secret: _wiped, ...profile } = registered;
			const at = Date.now();
			const revoked: AppProfile = { ...profile, revokedAt: at };
			await registry(this.env).revokeApp(revoked, kvKeys);
			await this.#chain.disarm(appid);
			await this.ctx.storage.deleteAll();
			await this.#authorizer.revoked(parent, at);
			this.#state = initialState(Date.now());
			this.#refreshers.clear();
			this.#seenApp = undefined;
			this.#registered = undefined;
			this.#deleting = false;
			log("info", "grant_revoked", { appid, parent: parent.id });
			return revoked;
		});
	}

	/** The KV keys of the app's credentials: its edge copies and the gateway's records of its tokens. */
	async #credentialKeys(appid: string): Promise<string[]> {
		const tokens = [this.#state.slots.token?.current?.value, this.#state.slots.token?.previous?.value].filter((t): t is string => !!t);
		return [...CREDENTIAL_TYPES.map((type) => edgeKey(appid, type)), ...await Promise.all(tokens.map(async (token) => issuedKey(await tokenDigest(token))))];
	}

	/**
	 * A newer ticket is stored: a component with no usable token, or whose last refresh wanted a ticket, is
	 * fetched promptly (its backoff ends and the alarm is re-armed for now); a stale-ticket incident closes.
	 */
	async #ticketArrived(componentAppid: string, { createTime, receivedAt }: { createTime: number; receivedAt: number }): Promise<void> {
		this.#tickets.arrived(createTime, receivedAt);
		await this.#pushArrived(componentObjectName(componentAppid), (slot, now) => this.#tickets.unblocks(slot, now));
	}

	/** A newer pushed ticket (a component's, a suite's): the backoff ends when it unblocks the token; the alarm re-plans. */
	async #pushArrived(appid: string, unblocks: (slot: SlotState | undefined, now: number) => boolean): Promise<void> {
		if (!this.#app(appid)) return;
		if (unblocks(this.#state.slots.token, Date.now())) this.#refresher("token").forgetBackoff();
		await this.#save();
		await this.#assessHealth();
	}

	/**
	 * The component's current component_access_token (GET /component-token, the gateway; and the RPC an
	 * authorizer's object asks for the token it refreshes with): a value, or a Failure that says why not.
	 */
	async componentAccessToken(componentAppid: string): Promise<Outcome> {
		const component = await this.#componentFor(componentAppid);
		if ("failure" in component) return fail(component.failure);
		return this.getCredential(componentObjectName(componentAppid), "token");
	}

	/** When the component's newest ticket was pushed and stored, never the ticket itself; null before the first. */
	async componentTicket(_componentAppid: string): Promise<{ createTime: number; receivedAt: number } | null> {
		const stored = await this.ctx.storage.get<StoredTicket>(COMPONENT_TICKET_KEY);
		return stored ? { createTime: stored.createTime, receivedAt: stored.receivedAt } : null;
	}

	/** PUT /admin/suites/{suite_id}, in the suite's own object (authority/suite.ts). */
	configureSuite(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#suite.configure(profile, secrets);
	}

	/**
	 * A POST to the suite's instruction URL (routes/wecom-suite-events.ts): a newer suite_ticket may unblock its
	 * token; an install code is stored before
	 * `success` and exchanged in the background; an uninstall wipes the company's tokens before it.
	 */
	async suiteEvent(suiteId: string, signed: SignedCallback): Promise<EventOutcome & { revokedProfile?: AppProfile | null }> {
		const outcome = await this.#suite.callback(suiteId, signed, Date.now());
		if (outcome.ok && outcome.ticket) {
			this.#suiteTickets.arrived({ pushedAt: outcome.ticket.createTime, receivedAt: outcome.ticket.receivedAt });
			await this.#pushArrived(suiteObjectName(suiteId), (slot, now) => this.#suiteTickets.unblocks(SUITE_TICKETED, slot, now));
		}
		if (outcome.ok && outcome.authorizationCode) await this.#installs.received(suiteId, outcome.authorizationCode);
		if (outcome.ok && outcome.regranted) this.#installs.changed(suiteId, outcome.regranted);
		if (outcome.ok && outcome.revoked) return { ...outcome, revokedProfile: await this.#installs.cancel(suiteId, outcome.revoked) };
		return outcome;
	}

	/** POST /wecom-suite/{s}/install-url: a fresh pre_auth_code (suite-installs.ts). */
	async suiteInstallCode(suiteId: string, authType?: 0 | 1): Promise<{ ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure }> {
		const unconfigured = await this.#suite.configured(suiteId);
		return unconfigured ? { ok: false, failure: unconfigured } : this.#installs.preAuthCode(suiteId, authType);
	}

	/** POST /wecom-suite/{s}/installs: the redirect's auth code, exchanged once. */
	async exchangeInstall(suiteId: string, code: string): Promise<InstallOutcome> {
		const unconfigured = await this.#suite.configured(suiteId);
		return unconfigured ? { ok: false, failure: unconfigured } : this.#installs.exchange(suiteId, code);
	}

	/** GET /wecom-suite/{s}/installs: the suite's companies (never a permanent code). */
	async listInstalls(_suiteId: string, after: string | null, limit: number): Promise<Omit<InstallRecord, "sealed">[]> {
		return (await this.#installs.list(after, limit)).map(({ sealed: _sealed, ...record }) => record);
	}

	/** POST /wecom-suite/{s}/installs/sync (suite-installs.ts). */
	async syncInstalls(suiteId: string): Promise<InstallSyncOutcome> {
		const unconfigured = await this.#suite.configured(suiteId);
		return unconfigured ? { ok: false, failure: unconfigured } : this.#installs.sync(suiteId);
	}

	/** In a granted app's object: whether it holds its grant (a sync re-adopts one that lost its storage). */
	async holdsGrant(appid: string): Promise<boolean> {
		const app = this.#app(appid);
		return app !== undefined && grantParent(app) !== null;

	}

	/**
	 * The suite's current suite_access_token (GET /suite-token, the gateway; and the RPC the suite's installed
	 * companies' objects ask for the token get_corp_token takes): a value, or a Failure that says why not.
	 */
	async suiteAccessToken(suiteId: string): Promise<Outcome> {
		const suite = await this.#suite.resolve(suiteId);
		if ("failure" in suite) return fail(suite.failure);
		return this.getCredential(suiteObjectName(suiteId), "token");
	}

	/** In a provider's object (provider:<corpid>): the provider_access_token of WECOM_SUITES' provider corpid. */
	providerAccessToken(corpid: string): Promise<Outcome> {
		return this.getCredential(providerObjectName(corpid), "token");
	}

	/** WeCom's GET URL check of the suite's instruction URL: the echostr decrypted. */
	suiteUrlCheck(suiteId: string, signed: SignedCallback): Promise<UrlCheckOutcome> {
		return this.#suite.urlCheck(suiteId, signed);
	}

	/** GET /admin/suites/{suite_id}: the ticket's age and whether a provider secret is held. */
	suiteState(suiteId: string): Promise<SuiteState> {
		return this.#suite.state(suiteId);
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
		for (const type of kindsOf(app)) actions.push((await this.#refresher(type).refreshIfDue()).action);
		if (app.mode === "component" && app.componentAppid) await this.#authorizations.resume(app.componentAppid);
		if (app.mode === "suite" && app.suiteId) await this.#installs.resume(app.suiteId);
		await this.#assessHealth();
		await this.flushAlerts();
		return { appid, action: actions.includes("failed") ? "failed" : actions[0]! };
	}

	/** The object's own alarm: what is due is refreshed, and the next due moment armed (alarm-chain.ts). */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		if (info?.isRetry) log("warn", "alarm_retried", { appid: this.#state.appid ?? null, retry_count: info.retryCount });
		await this.#chain.ring(undefined, { platform: true });
	}

	/** The watchdog's poke (ops/scheduled.ts): what the alarm does, now; for an app never run, its chain starts. */
	wake(appid: string): Promise<RingResult> {
		return this.#chain.ring(appid, { platform: false });
	}

	/** Resolves when no refresh is under way (a read's background refresh included) and the index has the app's row. */
	async idle(): Promise<void> {
		for (const refresher of this.#refreshers.values()) await refresher.idle();
		await this.#authorizations.settled();
		await this.#installs.settled();
		await this.#chain.settled();
	}

	/** Sends every queued alert now and waits for it. The alarm calls it; so do tests, to observe alerts. */
	flushAlerts(): Promise<void> {
		return this.#incidents.flush();
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
		const status = appStatus(app, this.#state, now);
		if (app.mode === "authorizer") return { ...status, authorizer: { component_appid: app.componentAppid!, needs_reauthorisation: this.#authorizer.needsReauthorisation() } };
		if (app.mode === "suite_corp") return { ...status, suite_corp: { suite_id: app.suiteId!, needs_reinstall: this.#authorizer.needsReauthorisation() } };
		return app.componentAppid ? { ...status, component: this.#tickets.status(app.componentAppid, now) } : status;
	}

	/** GET /status's entry for one app in one call (a page of 100 apps is 100 subrequests, not 200). */
	async statusReport(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<{ status: AppStatus | null; gateway: GatewayCounts }> {
		const [status, gateway] = await Promise.all([this.status(appid), this.gatewayUsage(appid, add)]);
		return { status, gateway };
	}

	/** A call is about to be sent: counted in this object's usage. */
	async #countCall(call: CountedCall): Promise<void> {
		this.#state = { ...this.#state, usage: countCall(this.#state.usage, call, Date.now()) };
		await this.#save();
	}

	#config(): BrokerConfig {
		return loadConfig(this.env);
	}

	/** The component this object serves: WECHAT_COMPONENTS first, then its sealed registry entry. */
	async #componentFor(componentAppid: string): Promise<ComponentConfig | { failure: Failure }> {
		const fromSecret = this.#config().components.get(componentAppid);
		if (fromSecret) return fromSecret;
		if (this.#component?.componentAppid === componentAppid) return this.#component;
		const stored = await this.ctx.storage.get<unknown>(COMPONENT_KEY);
		if (!isStoredComponent(stored) || stored.profile.componentAppid !== componentAppid) {
			return { failure: { code: "not_found", message: `Component ${componentAppid} is not configured; add it to WECHAT_COMPONENTS or PUT /admin/components/${componentAppid}.` } };
		}
		try {
			this.#component = await openComponent(this.env, stored);
			return this.#component;
		} catch (error) {
			if (error instanceof BrokerError) return { failure: { code: "config_error", message: error.message } };
			throw error;
		}
	}

	/**
	 * The app, remembering which one this object serves; a changed configuration ends every backoff.
	 * WECHAT_APPS first, then this object's registry entry (an appid lives in one source only).
	 */
	#app(appid: string): AppConfig | undefined {
		const registered = this.#registered && "app" in this.#registered && this.#registered.app.appid === appid ? this.#registered.app : undefined;
		const config = this.#config();
		const app = this.#deleting ? undefined : config.apps.get(appid) ?? registered ?? componentAppOf(appid, config.components, this.#component)
			?? suiteAppOf(appid, config, this.#suite.opened()) ?? providerAppOf(appid, config);
		if (!app) return undefined;
		if (this.#state.appid !== appid) this.#state = { ...this.#state, appid };
		if (this.#seenApp && this.#seenApp !== app && this.#seenApp.secret !== app.secret) {
			// The operator fixed the secret (`wrangler secret put`): the next attempt may well succeed.
			log("info", "config_changed", { appid });
			for (const refresher of this.#refreshers.values()) refresher.forgetBackoff();
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
		return this.#refresher(type);
	}

	#refresher(type: CredentialType): Refresher {
		let refresher = this.#refreshers.get(type);
		if (!refresher) {
			refresher = new Refresher({
				app: () => this.#seenApp!,
				config: () => this.#config(),
				slot: (t) => this.#state.slots[t] ?? EMPTY_SLOT,
				setSlot: (t, slot) => {
					this.#state = { ...this.#state, slots: { ...this.#state.slots, [t]: slot } };
				},
				usage: () => this.#state.usage,
				setUsage: (usage) => {
					this.#state = { ...this.#state, usage };
				},
				save: () => this.#save(),
				kv: () => this.env.TOKEN_CACHE,
				assessHealth: () => this.#assessHealth(),
				waitUntil: (promise) => this.ctx.waitUntil(promise),
				token: () => this.#refresher("token").get(),
				healToken: (used) => this.#refresher("token").invalidate(used, "ticket", true),
				pushedTicket: () => (this.#seenApp?.mode === "suite" ? this.#suiteTickets.ticket() : this.#tickets.ticket()),
				authorizer: () => (this.#seenApp && grantParent(this.#seenApp) ? this.#authorizer.link(this.#seenApp) : null),
			}, type);
			this.#refreshers.set(type, refresher);
		}
		return refresher;
	}

	async #assessHealth(): Promise<void> {
		const app = this.#seenApp;
		if (!app) return;
		const slots = kindsOf(app).flatMap((type) => {
			const slot = this.#state.slots[type];
			return slot ? [{ kind: kindFor(app, type), slot }] : [];
		});
		const now = Date.now();
		const before = this.#state.incident;
		const problem = healthProblem(slots, this.#state.usage, this.#config().quotaGuardShare, now)
			?? (app.mode === "component" ? this.#tickets.problem(now) : app.mode === "suite" ? this.#suiteTickets.problem(now) : null);
		await this.#incidents.assess(app, problem, now);
		if (app.mode === "component") await this.#tickets.afterAssess(app, before, now);
	}

	/**
	 * An instance that finds an `inFlight` marker was evicted or restarted while WeChat was being asked: the
	 * call was counted when the marker was written; the current value is capped as for a lost answer.
	 */
	async #recover(): Promise<void> {
		const { appid } = this.#state;
		for (const [type, slot] of Object.entries(this.#state.slots) as [CredentialType, SlotState][]) {
			if (!slot.inFlight) continue;
			const current = afterUnansweredCall(slot.current, slot.inFlight);
			log("warn", "upstream_call_interrupted", {
				appid: appid ?? null, credential: type, call: slot.inFlight.call, force: slot.inFlight.force,
				started_at: iso(slot.inFlight.startedAt), value: current ? maskToken(current.value) : null,
			});
			// KV needs nothing now: a forced call retracted the edge copy before it was sent, and any other call
			// starts only once the copy is due and no longer served. The alarm, armed for now, writes the capped value.
			const recovered: SlotState = { ...slot, current, inFlight: null };
			this.#state = { ...this.#state, slots: { ...this.#state.slots, [type]: recovered } };
			await this.#save();
			await this.#chain.wakeSoon();
		}
	}

	/** Every change is saved, and the alarm and the app's index row follow the plan the change makes. */
	async #save(): Promise<void> {
		await this.ctx.storage.put(STATE_KEY, this.#state);
		await this.#chain.planChanged();
	}
}

function earliestOf(a: number | null, b: number | null): number | null {
	return a === null ? b : b === null ? a : Math.min(a, b);
}
