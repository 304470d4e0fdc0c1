/**
 * The refresh engine as one object holds it: the state its Refreshers share, one Refresher per credential
 * kind (engine/refresher.ts, engine/kinds.ts), the app's incident, and what an instance does when it finds
 * that its predecessor died while WeChat was being asked. TokenAuthority (token-authority.ts) decides which
 * app the object serves and answers RPC; this is what keeps that app's credentials.
 *
 * What lives where: the state in memory is a copy of storage key "state" (core/storage-keys.ts,
 * engine/state.ts), written after every change and read back in the object's constructor before any call is
 * delivered, so an evicted or restarted object serves the same credentials without asking WeChat. Before
 * each upstream attempt the state is written with an `inFlight` marker (and the call counted), so an instance
 * that dies mid-call leaves a trace its successor acts on (restore). The refreshers' flights are memory only:
 * losing them with the object is fine, because nothing awaits them any more.
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import type { CredentialType } from "../core/credentials";
import { log, maskToken } from "../core/log";
import { STATE_KEY } from "../core/storage-keys";
import type { AuthorizerLink } from "../engine/attempt";
import { healthProblem } from "../engine/health";
import { Incidents } from "../engine/incidents";
import { kindFor, kindsOf } from "../engine/kinds";
import { Refresher } from "../engine/refresher";
import { afterUnansweredCall, EMPTY_SLOT, initialState, restoreState, type AuthorityState, type SlotState } from "../engine/state";
import type { AppEnv } from "../env";
import { iso } from "./status-report";

export interface CredentialEngineHost {
	readonly storage: DurableObjectStorage;
	readonly env: AppEnv;
	config(): BrokerConfig;
	/** The app the object serves, as it last looked it up (undefined before the first call). */
	app(): AppConfig | undefined;
	waitUntil(promise: Promise<unknown>): void;
	/** After every save: the alarm and the app's schedule-index row follow the new plan (alarm-chain.ts). */
	planChanged(): Promise<void>;
	/** The alarm is armed for now (a recovered call's capped value is written by it). */
	wakeSoon(): Promise<void>;
	/** Ticketed kinds (a component's or a suite's token): the newest pushed ticket, or null before the first. */
	pushedTicket(): Promise<string | null>;
	/** A granted app (authorizer, installed company): what its token fetch needs; null for every other app. */
	grantLink(): AuthorizerLink | null;
	/** A problem of the object's role that the credentials do not show (no ticket pushed for too long), or null. */
	roleProblem(app: AppConfig, now: number): string | null;
	/** After each assessment, with the incident as it was before (a component asks for its tickets again). */
	afterAssess(app: AppConfig, before: AuthorityState["incident"], now: number): Promise<void>;
}

export class CredentialEngine {
	readonly #host: CredentialEngineHost;
	#state: AuthorityState = initialState(Date.now());
	readonly #refreshers = new Map<CredentialType, Refresher>();
	readonly #incidents: Incidents;

	constructor(host: CredentialEngineHost) {
		this.#host = host;
		this.#incidents = new Incidents({
			state: () => this.#state,
			setState: (next) => this.setState(next),
			save: () => this.save(),
			waitUntil: (promise) => host.waitUntil(promise),
			webhookUrl: () => host.config().alertWebhookUrl,
		});
	}

	state(): AuthorityState {
		return this.#state;
	}

	setState(next: AuthorityState): void {
		this.#state = next;
	}

	/** The app's entry was wiped: nothing of its credentials remains in memory either. */
	reset(): void {
		this.#state = initialState(Date.now());
		this.#refreshers.clear();
	}

	/**
	 * In the object's constructor, with what storage held: the state back in memory, and any call its
	 * predecessor left unanswered settled. The call was counted when its marker was written; the value held
	 * is capped as for a lost answer (engine/state.ts afterUnansweredCall).
	 */
	async restore(stored: Record<string, unknown>): Promise<void> {
		this.#state = restoreState(stored, Date.now());
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
			await this.save();
			await this.#host.wakeSoon();
		}
	}

	/** Every change is saved, and the alarm and the app's index row follow the plan the change makes. */
	async save(): Promise<void> {
		await this.#host.storage.put(STATE_KEY, this.#state);
		await this.#host.planChanged();
	}

	/** The Refresher of one credential kind of the app the object serves (made on first use). */
	refresher(type: CredentialType): Refresher {
		let refresher = this.#refreshers.get(type);
		if (!refresher) {
			const host = this.#host;
			refresher = new Refresher({
				app: () => host.app()!,
				config: () => host.config(),
				slot: (t) => this.#state.slots[t] ?? EMPTY_SLOT,
				setSlot: (t, slot) => {
					this.#state = { ...this.#state, slots: { ...this.#state.slots, [t]: slot } };
				},
				usage: () => this.#state.usage,
				setUsage: (usage) => {
					this.#state = { ...this.#state, usage };
				},
				save: () => this.save(),
				kv: () => host.env.TOKEN_CACHE,
				assessHealth: () => this.assessHealth(),
				waitUntil: (promise) => host.waitUntil(promise),
				token: () => this.refresher("token").get(),
				healToken: (used) => this.refresher("token").invalidate(used, "ticket", true),
				pushedTicket: () => host.pushedTicket(),
				authorizer: () => host.grantLink(),
			}, type);
			this.#refreshers.set(type, refresher);
		}
		return refresher;
	}

	/** The operator changed the app's configuration (a fixed secret): the next attempt may well succeed. */
	forgetBackoffs(): void {
		for (const refresher of this.#refreshers.values()) refresher.forgetBackoff();
	}

	/** Resolves when no refresh is under way (a read's background refresh included). */
	async idle(): Promise<void> {
		for (const refresher of this.#refreshers.values()) await refresher.idle();
	}

	/** Opens or closes the app's incident for what its credentials (and its role) show now. */
	async assessHealth(): Promise<void> {
		const app = this.#host.app();
		if (!app) return;
		const slots = kindsOf(app).flatMap((type) => {
			const slot = this.#state.slots[type];
			return slot ? [{ kind: kindFor(app, type), slot }] : [];
		});
		const now = Date.now();
		const before = this.#state.incident;
		const problem = healthProblem(slots, this.#state.usage, this.#host.config().quotaGuardShare, now) ?? this.#host.roleProblem(app, now);
		await this.#incidents.assess(app, problem, now);
		await this.#host.afterAssess(app, before, now);
	}

	/** Sends every queued alert now and waits for it. */
	flushAlerts(): Promise<void> {
		return this.#incidents.flush();
	}
}
