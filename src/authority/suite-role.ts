/**
 * What a token authority does when it is a WeCom suite's object (named suite:<suite_id>), as component-role.ts
 * for a component: its sealed configuration and callbacks (suite.ts), its suite_tickets' watch (suite-token.ts;
 * the engine keeps the suite_access_token itself in the object's `token` slot) and its installs, each code
 * exchanged once (suite-installs.ts). The object's RPCs for suites only call this.
 */
import type { AppConfig, AppProfile, SuiteProfile } from "../config/config";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { suiteObjectName } from "../core/storage-keys";
import { countCall } from "../core/usage";
import { SUITE_TICKETED } from "../engine/kinds";
import type { SlotState } from "../engine/state";
import type { SignedCallback } from "../wechat/callback-crypto";
import type { EventOutcome } from "./component";
import type { ComponentRoleHost } from "./component-role";
import type { PushedTicket } from "./pushed-ticket";
import { authority } from "./stub";
import { SuiteDesk, type StoredSuiteTicket, type SuiteSecrets, type SuiteState, type UrlCheckOutcome } from "./suite";
import { SuiteInstalls, type InstallOutcome, type InstallRecord, type InstallSyncOutcome } from "./suite-installs";
import { suiteAppOf, suiteTickets } from "./suite-token";

/** What the object hands its roles: the same for a suite's as for a component's. */
export type SuiteRoleHost = ComponentRoleHost;

export type InstallCodeResult = { ok: true; code: string; expiresIn: number } | { ok: false; failure: Failure };

export class SuiteRole {
	readonly #host: SuiteRoleHost;
	readonly #desk: SuiteDesk;
	/** Its suite_tickets' arrival, for the stale-ticket incident (suite-token.ts). */
	readonly #tickets: PushedTicket<StoredSuiteTicket>;
	readonly #installs: SuiteInstalls;

	constructor(host: SuiteRoleHost) {
		this.#host = host;
		this.#desk = new SuiteDesk(host.storage, host.env, (suiteId) => host.config().suites.get(suiteId));
		this.#tickets = suiteTickets(host.storage);
		this.#installs = new SuiteInstalls({
			storage: host.storage, env: host.env,
			config: () => host.config(),
			suiteToken: (suiteId) => this.accessToken(suiteId),
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

	/** In the object's constructor, before any call is delivered (the alarm names the suite by its object's name). */
	async load(): Promise<void> {
		await Promise.all([this.#desk.load(), this.#tickets.load(), this.#installs.load()]);
	}

	/** The suite this object serves as an app named suite:<id>; undefined for any other appid. */
	appOf(appid: string): AppConfig | undefined {
		return suiteAppOf(appid, this.#host.config(), this.#desk.opened());
	}

	/** PUT /admin/suites/{suite_id} (suite.ts). */
	configure(profile: SuiteProfile, secrets: SuiteSecrets): Promise<{ stored: true; kid: string } | { stored: false; failure: Failure }> {
		return this.#desk.configure(profile, secrets);
	}

	/**
	 * A POST to the instruction URL: a newer suite_ticket may unblock the token; an install code is stored
	 * before `success` and exchanged in the background; an uninstall wipes the company's tokens before it.
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

	/** The suite's current suite_access_token, or a Failure that says why not. */
	async accessToken(suiteId: string): Promise<Outcome> {
		const suite = await this.#desk.resolve(suiteId);
		return "failure" in suite ? fail(suite.failure) : this.#host.credential(suiteObjectName(suiteId), "token");
	}

	/** The newest suite_ticket, for get_suite_token (the engine's attempt asks for it). */
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

	/** The alarm's extra work: pending install codes whose exchange failed are tried again. */
	resume(suiteId: string): Promise<void> {
		return this.#installs.resume(suiteId);
	}

	/** When the alarm must ring for this role (stale tickets, pending codes), or null. */
	wake(now: number): number | null {
		const a = this.#tickets.wake(now);
		const b = this.#installs.wake(now);
		return a === null ? b : b === null ? a : Math.min(a, b);
	}

	problem(now: number): string | null {
		return this.#tickets.problem(now);
	}

	settled(): Promise<void> {
		return this.#installs.settled();
	}

	async #ticketArrived(suiteId: string, ticket: { createTime: number; receivedAt: number }): Promise<void> {
		this.#tickets.arrived({ pushedAt: ticket.createTime, receivedAt: ticket.receivedAt });
		if (!this.#host.app(suiteObjectName(suiteId))) return;
		const slot: SlotState | undefined = this.#host.state().slots.token;
		if (this.#tickets.unblocks(SUITE_TICKETED, slot, Date.now())) this.#host.forgetTokenBackoff();
		await this.#host.save();
		await this.#host.assessHealth();
	}
}
