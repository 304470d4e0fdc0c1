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
import { loadConfig, type AppConfig, type BrokerConfig } from "../config/config";
import { hasKind, kindFor, kindsOf } from "../engine/kinds";
import type { CredentialType } from "../core/credentials";
import { Incidents } from "../engine/incidents";
import { Refresher, type CronAction } from "../engine/refresher";
import { afterUnansweredCall, EMPTY_SLOT, initialState, restoreState, type AuthorityState, type RefreshTrigger, type SlotState } from "../engine/state";
import type { AppEnv } from "../env";
import { addGatewayUse, NO_GATEWAY_USE, type GatewayCounts, type StoredGatewayUsage } from "./gateway-usage";
import { healthProblem } from "../engine/health";
import { GATEWAY_USAGE_KEY, STATE_KEY } from "../core/storage-keys";
import { expiresInS, isUsable } from "../core/lifetime";
import { log, maskToken } from "../core/log";
import { fail, type Failure, type Outcome } from "../core/outcome";
import { usageNow, type CallCounts } from "../core/usage";
import { AlarmChain, type RingResult } from "./alarm-chain";
import { scheduleIndex } from "../schedule/client";

export type { RefreshTrigger } from "../engine/state";
export type { Failure, Outcome } from "../core/outcome";

export interface InvalidateOptions {
	/**
	 * WeChat itself refused the token in an answer to a request the broker built (a ticket call: attempt.ts
	 * heals through the Refresher directly), as opposed to a report. The gateway never passes it: a forwarded
	 * answer's body is the client's to shape (gateway/forward.ts). Tests pass it to reach that path by RPC.
	 */
	readonly confirmedByWeChat?: boolean;
}

export interface CronReport {
	readonly appid: string;
	readonly action: CronAction["action"];
}

export interface CredentialStatus {
	type: CredentialType;
	label: string;
	value: string | null;
	expires_in: number;
	next_refresh: string | null;
	last_refresh: { at: string; trigger: RefreshTrigger } | null;
	calls_today: number;
	daily_quota: number | null;
	consecutive_failures: number;
	last_error: { at: string; message: string; wechat_errcode: number | null } | null;
}

/** The access_token's fields at the top level (as before credential kinds), every kind under `credentials`. */
export interface AppStatus {
	appid: string;
	mode: AppConfig["mode"];
	token: string | null;
	expires_in: number;
	next_refresh: string | null;
	last_refresh: CredentialStatus["last_refresh"];
	calls_today: CallCounts;
	daily_quota: number;
	consecutive_failures: number;
	last_error: CredentialStatus["last_error"];
	incident: { since: string; reason: string } | null;
	credentials: CredentialStatus[];
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

export class TokenAuthority extends DurableObject<AppEnv> {
	#state: AuthorityState = initialState(Date.now());
	readonly #refreshers = new Map<CredentialType, Refresher>();
	readonly #incidents: Incidents;
	/** The object's alarm and its row in the schedule index (alarm-chain.ts). */
	readonly #chain: AlarmChain;
	/** The app's configuration when the object last looked: a new one (a fixed secret) ends any backoff. */
	#seenApp: AppConfig | undefined;

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
		this.#chain = new AlarmChain({
			storage: ctx.storage,
			index: () => scheduleIndex(this.env),
			waitUntil: (promise) => this.ctx.waitUntil(promise),
			appid: () => this.#state.appid,
			app: () => this.#seenApp,
			lookUp: (appid) => this.#app(appid),
			state: () => this.#state,
			config: () => this.#config(),
			work: (appid) => this.refreshIfDue(appid),
			idle: async () => {
				for (const refresher of this.#refreshers.values()) await refresher.idle();
			},
		});
		void ctx.blockConcurrencyWhile(async () => {
			const stored = await ctx.storage.get<Record<string, unknown>>(STATE_KEY);
			if (!stored) return;
			this.#state = restoreState(stored, Date.now());
			await this.#recover();
		});
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
		await this.#chain.settled();
	}

	/** Sends every queued alert now and waits for it. The alarm calls it; so do tests, to observe alerts. */
	flushAlerts(): Promise<void> {
		return this.#incidents.flush();
	}

	/** Gateway calls and heals the isolates counted (gateway/usage-counter.ts), added in; today's totals back. */
	async gatewayUsage(_appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<GatewayCounts> {
		const usage = addGatewayUse(await this.ctx.storage.get<StoredGatewayUsage>(GATEWAY_USAGE_KEY), add, Date.now());
		if (add.calls > 0 || add.heals > 0) await this.ctx.storage.put(GATEWAY_USAGE_KEY, usage);
		return { calls: usage.calls, heals: usage.heals };
	}

	/** For GET /status: masked values only, never a full token or secret. */
	async status(appid: string): Promise<AppStatus | null> {
		const app = this.#app(appid);
		if (!app) return null;
		const now = Date.now();
		const usage = usageNow(this.#state.usage, now);
		const credentials = kindsOf(app).map((type): CredentialStatus => {
			const kind = kindFor(app, type);
			const slot = this.#state.slots[type] ?? EMPTY_SLOT;
			const usable = isUsable(slot.current, now) ? slot.current : null;
			return {
				type, label: kind.label,
				value: usable ? maskToken(usable.value) : null,
				expires_in: usable ? expiresInS(usable, now) : 0,
				next_refresh: usable ? iso(Math.max(usable.refreshAt, slot.retryAt)) : null,
				last_refresh: slot.lastRefresh && { at: iso(slot.lastRefresh.at), trigger: slot.lastRefresh.trigger },
				calls_today: usage.calls[kind.call] ?? 0,
				daily_quota: kind.dailyQuota === Number.MAX_SAFE_INTEGER ? null : kind.dailyQuota,
				consecutive_failures: slot.consecutiveFailures,
				last_error: slot.lastError && { at: iso(slot.lastError.at), message: slot.lastError.failure.message, wechat_errcode: slot.lastError.failure.errcode ?? null },
			};
		});
		const token = credentials[0]!;
		const { incident } = this.#state;
		return {
			appid, mode: app.mode,
			token: token.value, expires_in: token.expires_in, next_refresh: token.next_refresh, last_refresh: token.last_refresh,
			calls_today: usage.calls, daily_quota: app.dailyQuota,
			consecutive_failures: token.consecutive_failures, last_error: token.last_error,
			incident: incident && { since: iso(incident.since), reason: incident.reason },
			credentials,
		};
	}

	/** GET /status's entry for one app in one call (a page of 100 apps is 100 subrequests, not 200). */
	async statusReport(appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<{ status: AppStatus | null; gateway: GatewayCounts }> {
		const [status, gateway] = await Promise.all([this.status(appid), this.gatewayUsage(appid, add)]);
		return { status, gateway };
	}

	#config(): BrokerConfig {
		return loadConfig(this.env);
	}

	/** The app, remembering which one this object serves; a changed configuration ends every backoff. */
	#app(appid: string): AppConfig | undefined {
		const app = this.#config().apps.get(appid);
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
		if (!app) return { failure: { code: "not_found", message: `App ${appid} is not configured; add it to WECHAT_APPS.` } };
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
		await this.#incidents.assess(app, healthProblem(slots, this.#state.usage, this.#config().quotaGuardShare, Date.now()), Date.now());
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
