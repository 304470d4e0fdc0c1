/**
 * TokenAuthority: one Durable Object per app (`idFromName(appid)`), the only code that asks WeChat for a token.
 *
 * Why one refresh at a time holds: an object runs one call at a time up to its first await, and every path
 * that calls WeChat goes through `#fly`, which installs `#flight` synchronously before its first await.
 * Any call that arrives while WeChat is being asked joins that flight instead of starting another, so N
 * concurrent readers of a cold or due app cause exactly one upstream call.
 *
 * What lives where: `#state` in memory is a copy of storage key "state" (keys.ts), written after every
 * change and read back in the constructor before any call is delivered, so an evicted or restarted object
 * serves the same token without asking WeChat. `#flight` is memory only: losing it with the object is fine,
 * because nothing awaits it any more.
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_ALERT_SENDS, sendAlert, type Alert } from "./alerts";
import { loadConfig, type AppConfig, type BrokerConfig } from "./config";
import { writeEdgeCopy } from "./edge-cache";
import type { AppEnv } from "./env";
import { healthProblem } from "./health";
import { STATE_KEY } from "./keys";
import { CLASSIC_PREVIOUS_VALID_S, expiresInS, isDue, isUsable, planToken, type TokenRecord } from "./lifetime";
import { log, maskToken } from "./log";
import { countCall, emptyUsage, nextQuotaReset, usageToday, type DailyUsage } from "./usage";
import { endpointFor, type UpstreamFailure } from "./wechat/client";
import type { FailureClass } from "./wechat/errcodes";
import { fetchWithRetry } from "./wechat/retry";

export type RefreshTrigger = "read" | "cron" | "invalidate" | "admin";

export interface Failure {
	readonly code: "wechat_error" | "wechat_unreachable" | "rate_limited" | "not_found";
	readonly message: string;
	readonly wechatErrcode?: number;
	readonly retryAfterS?: number;
}

/** What every token call returns over RPC: plain data, so nothing depends on errors crossing the RPC boundary. */
export type Outcome = { ok: true; token: TokenRecord } | { ok: false; failure: Failure };

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

interface AuthorityState {
	readonly current: TokenRecord | null;
	/** The token the current one replaced, and until when WeChat still accepts it. */
	readonly previous: { readonly accessToken: string; readonly acceptedUntil: number } | null;
	readonly usage: DailyUsage;
	readonly lastRefresh: { readonly at: number; readonly trigger: RefreshTrigger } | null;
	readonly lastError: { readonly at: number; readonly failure: UpstreamFailure } | null;
	readonly consecutiveFailures: number;
	/** ms; after a failure, no read- or cron-triggered upstream call before this. */
	readonly retryAt: number;
	/** ms; when the last forced refresh (invalidation or admin) started. */
	readonly lastForcedAt: number;
	/** The open incident: an alert went (or is going) out for it, and a recovery alert will close it. */
	readonly incident: { readonly since: number; readonly reason: string } | null;
	/** Alerts not yet taken by the webhook, oldest first. */
	readonly alerts: readonly Alert[];
	/** False when the last KV write of the current token failed: the cron writes it again. */
	readonly edgeWritten: boolean;
}

/**
 * Forced refreshes at most this often: WeChat's own rule for stable force_refresh ("30 s apart"), and in
 * classic mode the brake that stops a client looping on 40001 from burning the 2000-a-day quota.
 */
const FORCED_REFRESH_INTERVAL_S = 30;
/** WeChat allows 20 stable force_refresh calls a day per app. */
const STABLE_FORCE_DAILY_LIMIT = 20;
/** Backoff after failed refreshes: 2 s, 4 s, 8 s … capped per failure class. */
const BACKOFF_BASE_S = 2;
const BACKOFF_CAP_S: Record<FailureClass, number> = { retryable: 60, quota: 300, fatal: 300 };
/** Past the quota guard's share: at most one attempt every 5 minutes, ~300 calls a day at worst. */
const CONSERVING_BACKOFF_S = 300;

function ok(token: TokenRecord): Outcome {
	return { ok: true, token };
}

function fail(failure: Failure): Outcome {
	return { ok: false, failure };
}

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

export class TokenAuthority extends DurableObject<AppEnv> {
	#state: AuthorityState = {
		current: null,
		previous: null,
		usage: emptyUsage(Date.now()),
		lastRefresh: null,
		lastError: null,
		consecutiveFailures: 0,
		retryAt: 0,
		lastForcedAt: 0,
		incident: null,
		alerts: [],
		edgeWritten: true,
	};
	#flight: { readonly promise: Promise<Outcome>; readonly reported: string | null; readonly forced: boolean } | null = null;
	/** The background send of queued alerts, if one is running (memory only: the queue itself is stored). */
	#sending: Promise<void> | null = null;

	constructor(ctx: DurableObjectState, env: AppEnv) {
		super(ctx, env);
		void ctx.blockConcurrencyWhile(async () => {
			const stored = await ctx.storage.get<AuthorityState>(STATE_KEY);
			// Fields added since a state was stored take their defaults.
			if (stored) this.#state = { ...this.#state, ...stored };
		});
	}

	/** The current token; fetches one when there is none or it is due (single flight). */
	async getToken(appid: string): Promise<Outcome> {
		const app = this.#app(appid);
		if (!app) return fail(this.#unknownApp(appid));
		const now = Date.now();
		// A forced refresh under way may revoke the current token the moment it lands: wait for its result.
		if (this.#flight?.forced) {
			const outcome = await this.#flight.promise;
			if (outcome.ok) return outcome;
		}
		const { current, retryAt, lastError } = this.#state;
		if (isUsable(current, now) && (!isDue(current, now) || now < retryAt)) return ok(current);
		if (!isUsable(current, now) && now < retryAt && lastError) {
			return fail(upstreamFailure(lastError.failure, retryAt, now));
		}
		const outcome = await this.#fly(app, "read", null, () => this.#fetchAndStore(app, "read", false));
		if (outcome.ok) return outcome;
		// A failed refresh never disturbs readers while the current token is still accepted.
		const still = this.#state.current;
		return isUsable(still, Date.now()) ? ok(still) : outcome;
	}

	/**
	 * Compare-and-refresh: a client reports the token WeChat refused (40001, 40014, 42001). Only a report
	 * of the current token causes a refresh; a report of any other token is stale and answered with the
	 * current one at no upstream cost. Concurrent reports of the same token share one refresh.
	 */
	async invalidate(appid: string, reported: string): Promise<Outcome> {
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
			log("info", "invalidation_stale", { appid, reported: maskToken(reported), was: previous?.accessToken === reported ? "previous" : "unknown" });
			return ok(current);
		}
		const limited = this.#forcedRefreshLimit(now) ?? this.#quotaGuard(app, now);
		if (limited) return fail(limited);
		log("info", "invalidation_accepted", { appid, reported: maskToken(reported) });
		return this.#fly(app, "invalidate", reported, () => this.#replace(app, reported));
	}

	/** Admin: a new token now, whatever the current one's age (stable mode: force_refresh). */
	async forceRefresh(appid: string): Promise<Outcome> {
		const app = this.#app(appid);
		if (!app) return fail(this.#unknownApp(appid));
		while (this.#flight) await this.#flight.promise;
		const now = Date.now();
		const limited = this.#forcedRefreshLimit(now) ?? this.#stableForceLimit(app, now) ?? this.#quotaGuard(app, now);
		if (limited) return fail(limited);
		return this.#fly(app, "admin", null, () => this.#fetchAndStore(app, "admin", true));
	}

	/**
	 * Cron: refresh when due, and only then (a refresh on every run would burn quota and revoke tokens in
	 * use). Also where a quota incident closes when the WeChat day turns, and where alerts that could not
	 * be sent before are tried again.
	 */
	async refreshIfDue(appid: string): Promise<CronReport> {
		const app = this.#app(appid);
		if (!app) return { appid, action: "failed" };
		const report = await this.#refreshIfDue(app);
		const { current } = this.#state;
		if (!this.#state.edgeWritten && isUsable(current, Date.now())) await this.#writeEdge(app, current, Date.now());
		await this.#assessHealth(app);
		await this.flushAlerts();
		return report;
	}

	/**
	 * Writes the edge copy, remembering a failure: after a forced refresh the old copy would otherwise keep
	 * serving a revoked token until its refreshAt. The cron retries (KV also refuses a second write to a key
	 * within a second, which a forced refresh right after a scheduled one can hit).
	 */
	async #writeEdge(app: AppConfig, token: TokenRecord, now: number): Promise<void> {
		const written = await writeEdgeCopy(this.env.TOKEN_CACHE, app.appid, token, now);
		if (written === this.#state.edgeWritten) return;
		this.#state = { ...this.#state, edgeWritten: written };
		await this.ctx.storage.put(STATE_KEY, this.#state);
	}

	/** Sends every queued alert now and waits for it. The cron calls it; so do tests, to observe alerts. */
	async flushAlerts(): Promise<void> {
		while (this.#sending) await this.#sending;
		if (this.#state.alerts.length > 0) await this.#startSending();
	}

	async #refreshIfDue(app: AppConfig): Promise<CronReport> {
		const now = Date.now();
		const { current, retryAt } = this.#state;
		if (isUsable(current, now) && !isDue(current, now)) return { appid: app.appid, action: "fresh" };
		if (now < retryAt) return { appid: app.appid, action: "backing_off" };
		const outcome = await this.#fly(app, "cron", null, () => this.#fetchAndStore(app, "cron", false));
		return { appid: app.appid, action: outcome.ok ? "refreshed" : "failed" };
	}

	/** For GET /status: no full token, no secret. */
	async status(appid: string): Promise<AppStatus | null> {
		const app = this.#app(appid);
		if (!app) return null;
		const now = Date.now();
		const { current, lastRefresh, lastError, usage, consecutiveFailures } = this.#state;
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
			last_error: lastError && {
				at: iso(lastError.at),
				message: lastError.failure.message,
				wechat_errcode: lastError.failure.errcode ?? null,
			},
			incident: this.#state.incident && { since: iso(this.#state.incident.since), reason: this.#state.incident.reason },
		};
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

	/** Single flight: join the refresh under way, or start `run` as the one every later caller joins. */
	#fly(app: AppConfig, trigger: RefreshTrigger, reported: string | null, run: () => Promise<Outcome>): Promise<Outcome> {
		if (this.#flight) return this.#flight.promise;
		const forced = trigger === "invalidate" || trigger === "admin";
		if (forced) this.#state = { ...this.#state, lastForcedAt: Date.now() };
		const promise = (async () => {
			// A forced call may revoke tokens: its rate limit must survive a restart in the middle of it.
			if (forced) await this.ctx.storage.put(STATE_KEY, this.#state);
			return run();
		})().finally(() => {
			this.#flight = null;
		});
		this.#flight = { promise, reported, forced };
		log("info", "refresh_started", { appid: app.appid, trigger, mode: app.mode });
		return promise;
	}

	/**
	 * Replace a token a client reported dead. In stable mode a normal call comes first: if something else
	 * already rotated the stable token, that call returns the new one without spending one of the 20 daily
	 * force refreshes, which are reserved for a token WeChat still calls current.
	 */
	async #replace(app: AppConfig, reported: string): Promise<Outcome> {
		if (app.mode === "stable") {
			const normal = await this.#fetchAndStore(app, "invalidate", false, { unlessToken: reported });
			if (!normal.ok || normal.token.accessToken !== reported) return normal;
			const limited = this.#stableForceLimit(app, Date.now());
			if (limited) return fail(limited);
		}
		return this.#fetchAndStore(app, "invalidate", true);
	}

	#forcedRefreshLimit(now: number): Failure | null {
		const waitMs = this.#state.lastForcedAt + FORCED_REFRESH_INTERVAL_S * 1_000 - now;
		if (waitMs <= 0) return null;
		return {
			code: "rate_limited",
			message: `The token was force-refreshed less than ${FORCED_REFRESH_INTERVAL_S} s ago. If the new token fails too, another server holding the AppSecret may be fetching tokens: stop it, then retry.`,
			retryAfterS: Math.ceil(waitMs / 1_000),
		};
	}

	#stableForceLimit(app: AppConfig, now: number): Failure | null {
		if (app.mode !== "stable" || usageToday(this.#state.usage, now).calls.stable_token_force < STABLE_FORCE_DAILY_LIMIT) return null;
		return {
			code: "rate_limited",
			message: `WeChat allows ${STABLE_FORCE_DAILY_LIMIT} forced stable-token refreshes a day and all are spent; they reset at 00:00 China time.`,
			retryAfterS: Math.ceil((nextQuotaReset(now) - now) / 1_000),
		};
	}

	/**
	 * Refreshes that correctness does not need (invalidations, admin) stop once a share of the daily quota
	 * is spent, so that whatever clients do, the scheduled refreshes of the day still have quota left.
	 */
	#quotaGuard(app: AppConfig, now: number): Failure | null {
		const endpoint = endpointFor(app);
		const used = usageToday(this.#state.usage, now).calls[endpoint];
		const limit = Math.floor(app.dailyQuota * this.#config().quotaGuardShare);
		if (used < limit) return null;
		return {
			code: "rate_limited",
			message: `${used} of the app's ${app.dailyQuota} daily ${endpoint} calls are spent; forced refreshes are refused to keep the rest for scheduled ones until 00:00 China time. Look for what keeps reporting tokens as invalid (another server holding the AppSecret?).`,
			retryAfterS: Math.ceil((nextQuotaReset(now) - now) / 1_000),
		};
	}

	/** One refresh (up to MAX_ATTEMPTS upstream calls); on success the new token replaces the current one in storage and KV, on failure nothing valid is lost. */
	async #fetchAndStore(app: AppConfig, trigger: RefreshTrigger, force: boolean, { unlessToken }: { unlessToken?: string } = {}): Promise<Outcome> {
		const startedAt = Date.now();
		const forcing = force && app.mode === "stable";
		const { apiBase, upstreamTimeoutMs, relayHeaders } = this.#config();
		// Past the guard's share of the daily quota, a long outage must not spend the rest: one attempt a
		// refresh, and long pauses between refreshes.
		const conserving = this.#quotaGuard(app, startedAt) !== null;
		const result = await fetchWithRetry(app, { apiBase, force: forcing, timeoutMs: upstreamTimeoutMs, relayHeaders }, () => {
			let usage = countCall(this.#state.usage, endpointFor(app), Date.now());
			if (forcing) usage = countCall(usage, "stable_token_force", Date.now());
			this.#state = { ...this.#state, usage };
		}, conserving ? 1 : undefined);
		const now = Date.now();
		if (!result.ok) {
			const failure = result.failure.class === "quota"
				? { ...result.failure, message: `${result.failure.message} (next reset ${iso(nextQuotaReset(now))})` }
				: result.failure;
			const failures = this.#state.consecutiveFailures + 1;
			const backoffS = conserving
				? CONSERVING_BACKOFF_S
				: Math.min(BACKOFF_BASE_S * 2 ** (failures - 1), BACKOFF_CAP_S[failure.class]);
			const retryAt = now + backoffS * 1_000;
			const before = this.#state.current;
			const current = this.#afterUnansweredCall(app, failure, startedAt);
			this.#state = { ...this.#state, current, consecutiveFailures: failures, retryAt, lastError: { at: now, failure } };
			await this.ctx.storage.put(STATE_KEY, this.#state);
			// The edge copy must not go on promising the longer lifetime.
			if (current && current !== before) await this.#writeEdge(app, current, now);
			log("error", "refresh_failed", {
				appid: app.appid, trigger, errcode: failure.errcode ?? null, message: failure.message,
				consecutive_failures: failures, retry_in_s: backoffS,
			});
			await this.#assessHealth(app);
			return fail(upstreamFailure(failure, retryAt, now));
		}

		const token = planToken(result.token.accessToken, app.mode, startedAt, result.token.expiresInS);
		if (token.accessToken === unlessToken) {
			// The caller replaces this token at once: storing it (and writing KV twice within a second,
			// more than KV allows per key) would only race the replacement.
			return ok(token);
		}
		const old = this.#state.current;
		const rotated = old !== null && old.accessToken !== token.accessToken;
		this.#state = {
			...this.#state,
			current: token,
			previous: rotated ? { accessToken: old.accessToken, acceptedUntil: this.#previousAcceptedUntil(old, forcing, now) } : this.#state.previous,
			lastRefresh: { at: now, trigger },
			consecutiveFailures: 0,
			retryAt: 0,
		};
		await this.ctx.storage.put(STATE_KEY, this.#state);
		await this.#writeEdge(app, token, now);
		log("info", "refreshed", {
			appid: app.appid, trigger, token: maskToken(token.accessToken), wechat_expires_in: result.token.expiresInS,
			expires_in: expiresInS(token, now), same_token: old?.accessToken === token.accessToken,
		});
		await this.#assessHealth(app);
		return ok(token);
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
		await this.ctx.storage.put(STATE_KEY, this.#state);
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
				await this.ctx.storage.put(STATE_KEY, this.#state);
				return;
			}
			if (!sent) log("error", "alert_dropped", { appid: alert!.appid, kind: alert!.kind, attempts: MAX_ALERT_SENDS });
			this.#state = { ...this.#state, alerts: this.#state.alerts.slice(1) };
			await this.ctx.storage.put(STATE_KEY, this.#state);
		}
	}

	/**
	 * A classic call that got no usable answer may still have reached WeChat and minted a token, which
	 * revokes the current one 300 s later: from then on the current token is only sure until that moment.
	 * (An errcode answer minted nothing; stable normal calls never revoke.)
	 */
	#afterUnansweredCall(app: AppConfig, failure: UpstreamFailure, startedAt: number): TokenRecord | null {
		const { current } = this.#state;
		if (!current || app.mode !== "classic" || failure.kind !== "unreachable") return current;
		return { ...current, expiresAt: Math.min(current.expiresAt, startedAt + CLASSIC_PREVIOUS_VALID_S * 1_000) };
	}

	/** WeChat's rules for the token a refresh replaced (WECHAT-API.md). */
	#previousAcceptedUntil(old: TokenRecord, forced: boolean, now: number): number {
		if (old.mode === "classic") return Math.min(old.expiresAt, now + CLASSIC_PREVIOUS_VALID_S * 1_000);
		return forced ? now : old.expiresAt;
	}
}
