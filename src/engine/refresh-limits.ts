/**
 * The brakes on refreshes that correctness does not need (a client's report, an admin's force): pure rules
 * over the object's state, so each can be read and tested apart from the Durable Object. Each returns the
 * 429 to answer, or null when the refresh may go ahead.
 */
import type { AppConfig } from "../config/config";
import type { Failure } from "../core/outcome";
import type { CredentialKind } from "./kinds";
import { callsThisHour, callsToday, nextHour, nextQuotaReset, type Usage } from "../core/usage";

/**
 * Forced refreshes at most this often: WeChat's own rule for stable force_refresh ("30 s apart"), and in
 * classic mode the brake that stops a client looping on 40001 from burning the 2000-a-day quota.
 */
export const FORCED_REFRESH_INTERVAL_S = 30;
/** WeChat allows 20 stable force_refresh calls a day per app. */
export const STABLE_FORCE_DAILY_LIMIT = 20;

/** `lastForcedAt`: when the last forced call was sent to WeChat (not when its refresh began). */
export function forcedRefreshLimit(lastForcedAt: number, now: number): Failure | null {
	const waitMs = lastForcedAt + FORCED_REFRESH_INTERVAL_S * 1_000 - now;
	if (waitMs <= 0) return null;
	return {
		code: "rate_limited",
		message: `The token was force-refreshed less than ${FORCED_REFRESH_INTERVAL_S} s ago. If the new token fails too, another server holding the AppSecret may be fetching tokens: stop it, then retry.`,
		retryAfterS: Math.ceil(waitMs / 1_000),
	};
}

export function stableForceLimit(app: AppConfig, usage: Usage, now: number): Failure | null {
	if (app.mode !== "stable" || callsToday(usage, "stable_token_force", now) < STABLE_FORCE_DAILY_LIMIT) return null;
	return {
		code: "rate_limited",
		message: `WeChat allows ${STABLE_FORCE_DAILY_LIMIT} forced stable-token refreshes a day and all are spent; they reset at 00:00 China time.`,
		retryAfterS: Math.ceil((nextQuotaReset(now) - now) / 1_000),
	};
}

/** The part of a credential kind the quota rules need. */
export type Quota = Pick<CredentialKind, "call" | "dailyQuota" | "hourlyLimit">;

/** Calls of the kind's endpoint after which forced refreshes stop (config refuses a guard under 1). */
export function quotaGuardLimit(quota: Quota, quotaGuardShare: number): number {
	return Math.floor(quota.dailyQuota * quotaGuardShare);
}

/**
 * Once a share of the daily quota is spent, forced refreshes are refused, so that whatever clients do,
 * the scheduled refreshes of the day still have quota left.
 */
export function quotaGuard(quota: Quota, usage: Usage, quotaGuardShare: number, now: number): Failure | null {
	const used = callsToday(usage, quota.call, now);
	if (used < quotaGuardLimit(quota, quotaGuardShare)) return null;
	return {
		code: "rate_limited",
		message: `${used} of the app's ${quota.dailyQuota} daily ${quota.call} calls are spent; forced refreshes are refused to keep the rest for scheduled ones until 00:00 China time. Look for what keeps reporting tokens as invalid (another server holding the AppSecret?).`,
		retryAfterS: Math.ceil((nextQuotaReset(now) - now) / 1_000),
	};
}

/** WeCom's hourly ticket limits are never exceeded: past them WeChat would answer 45009 for the hour anyway. */
export function hourlyLimit(quota: Quota, usage: Usage, now: number): Failure | null {
	if (quota.hourlyLimit === null || callsThisHour(usage, quota.call, now) < quota.hourlyLimit) return null;
	return {
		code: "rate_limited",
		message: `WeCom allows ${quota.hourlyLimit} ${quota.call} calls an hour for this app and all are spent; the next hour starts at ${new Date(nextHour(now)).toISOString()}.`,
		retryAfterS: Math.ceil((nextHour(now) - now) / 1_000),
	};
}
