/**
 * TokenAuthority: one Durable Object per app (`idFromName(appid)`), the only code that asks WeChat for a token.
 *
 * Why one refresh at a time holds: an object runs one call at a time up to its first await, and every path
 * that calls WeChat goes through `#fly`, which installs `#flight` synchronously before its first await.
 * Any call that arrives while WeChat is being asked joins that flight instead of starting another, so N
 * concurrent readers of a cold or due app cause exactly one upstream call.
 *
 * What lives where: `#state` in memory is a copy of storage key "state" (keys.ts, authority-state.ts),
 * written after every change and read back in the constructor before any call is delivered, so an evicted
 * or restarted object serves the same token without asking WeChat. Before each upstream attempt the state
 * is written with an `inFlight` marker (and the call counted), so an instance that dies mid-call leaves a
 * trace its successor acts on. `#flight` and `#accepted` are memory only: losing them with the object is
 * fine, because nothing awaits the one and the other is only a shortcut.
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_ALERT_SENDS, sendAlert, type Alert } from "./alerts";
import {
	afterUnansweredCall, initialState, previousAcceptedUntil, recoverInterruptedCall, restoreState, sameRecord,
	type AuthorityState, type InFlightCall, type RefreshTrigger,
} from "./authority-state";
import { loadConfig, type AppConfig, type BrokerConfig } from "./config";
import { writeEdgeCopy } from "./edge-cache";
import type { AppEnv } from "./env";
import { healthProblem } from "./health";
import { addGatewayUse, NO_GATEWAY_USE, type GatewayCounts, type StoredGatewayUsage } from "./gateway/usage-store";
import { GATEWAY_USAGE_KEY, STATE_KEY } from "./keys";
import { expiresInS, isDue, isUsable, planToken, type TokenRecord } from "./lifetime";
import { log, maskToken } from "./log";
import { fail, ok, type Failure, type Outcome } from "./outcome";
import { forcedRefreshLimit, quotaGuard, stableForceLimit } from "./refresh-limits";
import { countCall, nextQuotaReset, usageToday, type DailyUsage } from "./usage";
import { endpointFor, fetchAccessToken, probeToken, type FetchedToken, type UpstreamFailure } from "./wechat/client";
import type { FailureClass } from "./wechat/errcodes";
import { withRetry, type RetriedResult } from "./wechat/retry";

export type { RefreshTrigger } from "./authority-state";
export type { Failure, Outcome } from "./outcome";

export interface InvalidateOptions {
	/** WeChat itself refused the token (the gateway's own call), as opposed to a client's say-so. */
	readonly confirmedByWeChat?: boolean;
}

export interface CronReport {
	readonly appid: string;
	readonly action: "fresh" | "refreshed" | "failed" | "backing_off";
}

export interface AppStatus {
	appid: string;
	mode: AppConfig["mode"];
	token: string | null;
	expires_in: number;
	next_refresh: string | null;
	last_refresh: { at: string; trigger: RefreshTrigger } | null;
	calls_today: DailyUsage["calls"];
	daily_quota: number;
	consecutive_failures: number;
	last_error: { at: string; message: string; wechat_errcode: number | null } | null;
	incident: { since: string; reason: string } | null;
}

/** Backoff after failed refreshes: 2 s, 4 s, 8 s … capped per failure class. */
const BACKOFF_BASE_S = 2;
const BACKOFF_CAP_S: Record<FailureClass, number> = { retryable: 60, quota: 300, fatal: 300 };
/** Past the quota guard's share: at most one attempt every 5 minutes, ~300 calls a day at worst. */
const CONSERVING_BACKOFF_S = 300;
/**
 * A token a probe found accepted is taken as accepted for this long: a client that retries its report at
 * once (or 100 of them) gets its answer without another probe, and a real revocation is believed 10 s later.
 */
const PROBE_TRUST_S = 10;

function upstreamFailure(failure: UpstreamFailure, retryAt: number, now: number): Failure {
	return {
		code: failure.kind === "wechat" ? "wechat_error" : "wechat_unreachable",
		message: failure.message,
		...(failure.errcode !== undefined && { wechatErrcode: failure.errcode }),
		retryAfterS: Math.max(1, Math.ceil((retryAt - now) / 1_000)),
	};
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

function duration(ms: number): string {
	const s = Math.round(ms / 1_000);
	return s < 120 ? `${s} s` : s < 7_200 ? `${Math.round(s / 60)} min` : `${(s / 3_600).toFixed(1)} h`;
}

/** One token call (with its retries) and when its first attempt went out. */
interface TokenCall {
	readonly result: RetriedResult<FetchedToken>;
	readonly call: InFlightCall;
}

export class TokenAuthority extends DurableObject<AppEnv> {
	#state: AuthorityState = initialState(Date.now());
	#flight: { readonly promise: Promise<Outcome>; readonly reported: string | null; readonly forced: boolean } | null = null;
	/** The last token a probe found accepted, and when (memory only: losing it costs one more probe). */
	#accepted: { readonly token: string; readonly at: number } | null = null;
	/** The background send of queued alerts, if one is running (memory only: the queue itself is stored). */
	#sending: Promise<void> | null = null;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		void ctx.blockConcurrencyWhile(async () => {
			const stored = await ctx.storage.get<AuthorityState>(STATE_KEY);
			if (!stored) return;
			this.#state = restoreState(stored, Date.now());
			if (this.#state.inFlight) {
				this.#state = recoverInterruptedCall(this.#state, ctx.id.name ?? "unknown");
				await this.#save();
			}
		});
	}

	/**
	 * The current token. A due token that WeChat still accepts is answered at once and replaced in the
	 * background; only a reader with no usable token waits for WeChat (and all such readers share one flight).
	 */
	async getToken(appid: string): Promise<Outcome> {
		const app = this.#app(appid);
		if (!app) return fail(this.#unknownApp(appid));
		// A forced refresh under way may revoke the current token the moment it lands: wait for its result.
		if (this.#flight?.forced) {
			const outcome = await this.#flight.promise;
			if (outcome.ok) return outcome;
		}
		// Taken after any wait: a token that expired meanwhile must not be answered.
		const now = Date.now();
		const { current, retryAt, lastError } = this.#state;
		if (isUsable(current, now)) {
			if (isDue(current, now) && now >= retryAt) {
				this.ctx.waitUntil(this.#fly(app, "read", null, () => this.#fetchAndStore(app, "read", false)));
			}
			return ok(current);
		}
		if (now < retryAt && lastError) return fail(upstreamFailure(lastError.failure, retryAt, now));
		const outcome = await this.#fly(app, "read", null, () => this.#fetchAndStore(app, "read", false));
		if (outcome.ok) return outcome;
		const still = this.#state.current;
		return isUsable(still, Date.now()) ? ok(still) : outcome;
	}

	/**
	 * Compare-and-refresh: a client reports the token WeChat refused (40001, 40014, 42001). Only a report
	 * of the current token can cause a refresh; a report of any other token is stale and answered with the
	 * current one at no upstream cost. Concurrent reports of the same token share one refresh. A report is
	 * evidence, not proof (any reader can send one): see `#replace`. `reporter` names the key, for the logs.
	 * `confirmedByWeChat`: the gateway saw WeChat refuse the token itself, so the report is proof and needs
	 * no probe.
	 */
	async invalidate(appid: string, reported: string, reporter = "unknown", { confirmedByWeChat = false }: InvalidateOptions = {}): Promise<Outcome> {
		const app = this.#app(appid);
		if (!app) return fail(this.#unknownApp(appid));
		// Let a refresh already under way land first; the report may be of the token it replaces.
		while (this.#flight) {
			const flight = this.#flight;
			const outcome = await flight.promise;
			if (flight.reported === reported) return outcome;
		}
		const now = Date.now();
		const { current, previous } = this.#state;
		if (!isUsable(current, now)) return this.getToken(appid);
		if (reported !== current.accessToken) {
			log("info", "invalidation_stale", { appid, key: reporter, reported: maskToken(reported), was: previous?.accessToken === reported ? "previous" : "unknown" });
			return ok(current);
		}
		// A probe's "accepted" is older news than WeChat refusing the token to the gateway just now.
		if (!confirmedByWeChat && this.#accepted?.token === reported && now - this.#accepted.at < PROBE_TRUST_S * 1_000) {
			log("warn", "invalidation_refuted", { appid, key: reporter, reported: maskToken(reported), probe: "recent" });
			return ok(current);
		}
		const limited = forcedRefreshLimit(this.#state.lastForcedAt, now) ?? this.#quotaGuard(app, now);
		if (limited) return fail(limited);
		log("info", "invalidation_accepted", { appid, key: reporter, reported: maskToken(reported), confirmed_by_wechat: confirmedByWeChat });
		return this.#fly(app, "invalidate", reported, () => this.#replace(app, reported, reporter, confirmedByWeChat));
	}

	/** Admin: a new token now, whatever the current one's age (stable mode: force_refresh). */
	async forceRefresh(appid: string): Promise<Outcome> {
		const app = this.#app(appid);
		if (!app) return fail(this.#unknownApp(appid));
		while (this.#flight) await this.#flight.promise;
		const now = Date.now();
		const limited = forcedRefreshLimit(this.#state.lastForcedAt, now)
			?? stableForceLimit(app, this.#state.usage, now) ?? this.#quotaGuard(app, now);
		if (limited) return fail(limited);
		return this.#fly(app, "admin", null, () => this.#fetchAndStore(app, "admin", true));
	}

	/**
	 * Cron: refresh when due, and only then (a refresh on every run would burn quota and revoke tokens in
	 * use). Also where a failed edge write is repaired, a quota incident closes when the WeChat day turns,
	 * and alerts that could not be sent before are tried again.
	 */
	async refreshIfDue(appid: string): Promise<CronReport> {
		const app = this.#app(appid);
		if (!app) return { appid, action: "failed" };
		const report = await this.#refreshIfDue(app);
		const { current, edgeRecord } = this.#state;
		if (!sameRecord(current, edgeRecord) && isUsable(current, Date.now())) await this.#writeEdge(app, current, Date.now());
		await this.#assessHealth(app);
		await this.flushAlerts();
		return report;
	}

	/** Resolves when no refresh is under way (a read's background refresh included): for the cron and tests. */
	async idle(): Promise<void> {
		while (this.#flight) await this.#flight.promise;
	}

	/** Sends every queued alert now and waits for it. The cron calls it; so do tests, to observe alerts. */
	async flushAlerts(): Promise<void> {
		while (this.#sending) await this.#sending;
		if (this.#state.alerts.length > 0) await this.#startSending();
	}

	/** Gateway calls and heals the isolates counted (gateway/usage-counter.ts), added in; today's totals back. */
	async gatewayUsage(_appid: string, add: GatewayCounts = NO_GATEWAY_USE): Promise<GatewayCounts> {
		const usage = addGatewayUse(await this.ctx.storage.get<StoredGatewayUsage>(GATEWAY_USAGE_KEY), add, Date.now());
		if (add.calls > 0 || add.heals > 0) await this.ctx.storage.put(GATEWAY_USAGE_KEY, usage);
		return { calls: usage.calls, heals: usage.heals };
	}

	/** For GET /status: no full token, no secret. */
	async status(appid: string): Promise<AppStatus | null> {
		const app = this.#app(appid);
		if (!app) return null;
		const now = Date.now();
		const { current, lastRefresh, lastError, usage, consecutiveFailures, incident } = this.#state;
		const usable = isUsable(current, now) ? current : null;
		return {
			appid,
			mode: app.mode,
			token: usable ? maskToken(usable.accessToken) : null,
			expires_in: usable ? expiresInS(usable, now) : 0,
			next_refresh: usable ? iso(Math.max(usable.refreshAt, this.#state.retryAt)) : null,
			last_refresh: lastRefresh && { at: iso(lastRefresh.at), trigger: lastRefresh.trigger },
			calls_today: usageToday(usage, now).calls,
			daily_quota: app.dailyQuota,
			consecutive_failures: consecutiveFailures,
			last_error: lastError && { at: iso(lastError.at), message: lastError.failure.message, wechat_errcode: lastError.failure.errcode ?? null },
			incident: incident && { since: iso(incident.since), reason: incident.reason },
		};
	}

	async #refreshIfDue(app: AppConfig): Promise<CronReport> {
		const now = Date.now();
		const { current, retryAt } = this.#state;
		if (isUsable(current, now) && !isDue(current, now)) return { appid: app.appid, action: "fresh" };
		if (now < retryAt) return { appid: app.appid, action: "backing_off" };
		const outcome = await this.#fly(app, "cron", null, () => this.#fetchAndStore(app, "cron", false));
		return { appid: app.appid, action: outcome.ok ? "refreshed" : "failed" };
	}

	#config(): BrokerConfig {
		return loadConfig(this.env);
	}

	#app(appid: string): AppConfig | undefined {
		return this.#config().apps.get(appid);
	}

	#unknownApp(appid: string): Failure {
		return { code: "not_found", message: `App ${appid} is not configured; add it to WECHAT_APPS.` };
	}

	#quotaGuard(app: AppConfig, now: number): Failure | null {
		return quotaGuard(app, this.#state.usage, this.#config().quotaGuardShare, now);
	}

	#save(): Promise<void> {
		return this.ctx.storage.put(STATE_KEY, this.#state);
	}

	/** Single flight: join the refresh under way, or start `run` as the one every later caller joins. */
	#fly(app: AppConfig, trigger: RefreshTrigger, reported: string | null, run: () => Promise<Outcome>): Promise<Outcome> {
		if (this.#flight) return this.#flight.promise;
		const promise = run().finally(() => {
			this.#flight = null;
		});
		this.#flight = { promise, reported, forced: trigger === "invalidate" || trigger === "admin" };
		log("info", "refresh_started", { appid: app.appid, trigger, mode: app.mode });
		return promise;
	}

	/**
	 * Replaces a token a client reported dead. Stable mode tries a normal call first: if something else
	 * already rotated the stable token, it returns the new one without spending one of the 20 daily forces.
	 * Before a call that revokes tokens (classic; stable force), one getcallbackip made with the reported
	 * token asks WeChat whether it really refuses it: a token WeChat accepts is answered as it is. When the
	 * probe cannot tell (WeChat unreachable, an errcode that is not about the token), the report is believed:
	 * a client with a truly dead token must not be stuck because getcallbackip is down, and the 30 s spacing,
	 * the daily force limit and the quota guard still bound what believing it can cost.
	 */
	async #replace(app: AppConfig, reported: string, reporter: string, confirmedByWeChat: boolean): Promise<Outcome> {
		if (app.mode === "stable") {
			const normal = await this.#fetchAndStore(app, "invalidate", false, { unlessToken: reported });
			if (!normal.ok || normal.token.accessToken !== reported) return normal;
		}
		const verdict = confirmedByWeChat ? "refused" : await this.#probe(app, reported);
		const { current } = this.#state;
		if (verdict === "accepted" && isUsable(current, Date.now())) {
			log("warn", "invalidation_refuted", { appid: app.appid, key: reporter, reported: maskToken(reported), probe: "getcallbackip" });
			return ok(current);
		}
		if (verdict === "unknown") log("warn", "probe_inconclusive", { appid: app.appid, key: reporter, reported: maskToken(reported) });
		const limited = stableForceLimit(app, this.#state.usage, Date.now());
		if (limited) return fail(limited);
		return this.#fetchAndStore(app, "invalidate", true);
	}

	async #probe(app: AppConfig, token: string): Promise<"accepted" | "refused" | "unknown"> {
		const { apiBase, upstreamTimeoutMs } = this.#config();
		this.#state = { ...this.#state, usage: countCall(this.#state.usage, "getcallbackip", Date.now()) };
		await this.#save();
		const verdict = await probeToken(apiBase, token, upstreamTimeoutMs);
		if (verdict === "accepted") this.#accepted = { token, at: Date.now() };
		return verdict;
	}

	/**
	 * One token call with its retries. Before each attempt the call is counted, a forced one is stamped (the
	 * 30 s spacing counts from when a force reaches WeChat), and the `inFlight` marker is persisted.
	 */
	async #call(app: AppConfig, force: boolean, maxAttempts: number | undefined): Promise<TokenCall> {
		const { apiBase, upstreamTimeoutMs, relayHeaders } = this.#config();
		const forcing = force && app.mode === "stable";
		const call: InFlightCall = { call: endpointFor(app), force: forcing, startedAt: Date.now() };
		const result = await withRetry(() => fetchAccessToken(app, { apiBase, force: forcing, timeoutMs: upstreamTimeoutMs, relayHeaders }), async () => {
			const now = Date.now();
			let usage = countCall(this.#state.usage, call.call, now);
			if (forcing) usage = countCall(usage, "stable_token_force", now);
			this.#state = { ...this.#state, usage, inFlight: call, ...(force && { lastForcedAt: now }) };
			await this.#save();
		}, maxAttempts);
		this.#state = { ...this.#state, inFlight: null };
		return { result, call };
	}

	/** One refresh; on success the new token replaces the current one in storage and KV, on failure nothing valid is lost. */
	async #fetchAndStore(app: AppConfig, trigger: RefreshTrigger, force: boolean, { unlessToken }: { unlessToken?: string } = {}): Promise<Outcome> {
		// Past the guard's share of the daily quota, a long outage must not spend the rest: one attempt a
		// refresh, and long pauses between refreshes.
		const conserving = this.#quotaGuard(app, Date.now()) !== null;
		const maxAttempts = conserving ? 1 : undefined;
		let { result, call } = await this.#call(app, force, maxAttempts);
		let forcedAway = call.force;
		if (!result.ok && result.unanswered && call.force) {
			// WeChat may have carried out the force and revoked the current token: a normal call (which
			// revokes nothing) returns whatever token WeChat now considers live.
			log("warn", "force_unanswered", { appid: app.appid, trigger });
			const followUp = await this.#call(app, false, maxAttempts);
			if (followUp.result.ok) ({ result } = followUp);
			else forcedAway = true;
		}
		if (!result.ok) return this.#failed(app, trigger, result, call, conserving);

		const now = Date.now();
		const token = planToken(result.value.accessToken, app.mode, call.startedAt, result.value.expiresInS);
		if (token.accessToken === unlessToken) {
			// The caller may replace this token at once: storing it (and writing KV twice within a second,
			// more than KV allows per key) would only race the replacement.
			await this.#save();
			return ok(token);
		}
		const old = this.#state.current;
		const rotated = old !== null && old.accessToken !== token.accessToken;
		this.#state = {
			...this.#state,
			current: token,
			previous: rotated ? { accessToken: old.accessToken, acceptedUntil: previousAcceptedUntil(old, forcedAway, call.startedAt, now) } : this.#state.previous,
			lastRefresh: { at: now, trigger },
			consecutiveFailures: 0,
			retryAt: 0,
		};
		await this.#save();
		await this.#writeEdge(app, token, now);
		log("info", "refreshed", {
			appid: app.appid, trigger, token: maskToken(token.accessToken), wechat_expires_in: result.value.expiresInS,
			expires_in: expiresInS(token, now), same_token: old?.accessToken === token.accessToken,
		});
		await this.#assessHealth(app);
		return ok(token);
	}

	async #failed(app: AppConfig, trigger: RefreshTrigger, result: RetriedResult<FetchedToken> & { ok: false }, call: InFlightCall, conserving: boolean): Promise<Outcome> {
		const now = Date.now();
		const failure = result.failure.class === "quota"
			? { ...result.failure, message: `${result.failure.message} (next reset ${iso(nextQuotaReset(now))})` }
			: result.failure;
		const failures = this.#state.consecutiveFailures + 1;
		const backoffS = conserving ? CONSERVING_BACKOFF_S : Math.min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CAP_S[failure.class]);
		const retryAt = now + backoffS * 1_000;
		const before = this.#state.current;
		const current = result.unanswered ? afterUnansweredCall(before, call) : before;
		this.#state = { ...this.#state, current, consecutiveFailures: failures, retryAt, lastError: { at: now, failure } };
		await this.#save();
		// The edge copy must not go on promising the longer lifetime.
		if (current && !sameRecord(current, before)) await this.#writeEdge(app, current, now);
		log("error", "refresh_failed", {
			appid: app.appid, trigger, errcode: failure.errcode ?? null, message: failure.message,
			consecutive_failures: failures, retry_in_s: backoffS, unanswered: result.unanswered,
		});
		await this.#assessHealth(app);
		return fail(upstreamFailure(failure, retryAt, now));
	}

	/**
	 * Writes the edge copy and remembers which record KV holds. Another change may land while KV is being
	 * written, and KV keeps whichever write finishes last, so only a write of the record that is still
	 * current counts; a write of an older one that succeeded may have overwritten the newer copy.
	 */
	async #writeEdge(app: AppConfig, token: TokenRecord, now: number): Promise<void> {
		const written = await writeEdgeCopy(this.env.TOKEN_CACHE, app.appid, token, now);
		const isCurrent = sameRecord(this.#state.current, token);
		const edgeRecord = isCurrent ? (written ? token : null) : written ? null : this.#state.edgeRecord;
		if (sameRecord(edgeRecord, this.#state.edgeRecord)) return;
		this.#state = { ...this.#state, edgeRecord };
		await this.#save();
	}

	/**
	 * Opens an incident (one "unhealthy" alert) when a problem appears and closes it (one "recovered" alert)
	 * when it is gone: once per incident, however many failures happen in between.
	 */
	async #assessHealth(app: AppConfig): Promise<void> {
		const now = Date.now();
		const { incident } = this.#state;
		const problem = healthProblem(app, this.#state, this.#config().quotaGuardShare, now);
		if ((problem === null) === (incident === null)) return;
		const alert: Alert = problem
			? { appid: app.appid, kind: "unhealthy", at: now, failures: 0, text: `[wx-token-broker] ${app.appid} (${app.mode}) is unhealthy: ${problem}` }
			: {
				appid: app.appid, kind: "recovered", at: now, failures: 0,
				text: `[wx-token-broker] ${app.appid} (${app.mode}) recovered after ${duration(now - incident!.since)} (was: ${incident!.reason})`,
			};
		this.#state = { ...this.#state, incident: problem ? { since: now, reason: problem } : null, alerts: [...this.#state.alerts, alert] };
		await this.#save();
		log(problem ? "error" : "info", `app_${alert.kind}`, { appid: app.appid, reason: problem ?? incident!.reason });
		// In the background: a slow or broken webhook must never hold up a token.
		this.ctx.waitUntil(this.#startSending());
	}

	#startSending(): Promise<void> {
		this.#sending ??= this.#sendQueued().finally(() => {
			this.#sending = null;
		});
		return this.#sending;
	}

	async #sendQueued(): Promise<void> {
		const url = this.#config().alertWebhookUrl;
		if (!url) {
			this.#state = { ...this.#state, alerts: [] };
			return;
		}
		while (this.#state.alerts.length > 0) {
			const [alert] = this.#state.alerts;
			const sent = await sendAlert(url, alert!);
			if (!sent && alert!.failures + 1 < MAX_ALERT_SENDS) {
				// Keep it for the next cron run; the newer ones wait behind it, in order.
				this.#state = { ...this.#state, alerts: [{ ...alert!, failures: alert!.failures + 1 }, ...this.#state.alerts.slice(1)] };
				await this.#save();
				return;
			}
			if (!sent) log("error", "alert_dropped", { appid: alert!.appid, kind: alert!.kind, attempts: MAX_ALERT_SENDS });
			this.#state = { ...this.#state, alerts: this.#state.alerts.slice(1) };
			await this.#save();
		}
	}
}
