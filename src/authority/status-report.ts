/**
 * What GET /status shows of one app, read off its object's state: masked values only, never a full token
 * or secret. Pure, so the object only hands over its state (token-authority.ts `status`).
 */
import type { AppConfig } from "../config/config";
import { expiresInS, isUsable } from "../core/lifetime";
import { maskToken } from "../core/log";
import { usageNow, type CallCounts } from "../core/usage";
import type { CredentialType } from "../core/credentials";
import { kindFor, kindsOf } from "../engine/kinds";
import { EMPTY_SLOT, type AuthorityState, type RefreshTrigger } from "../engine/state";

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

export function iso(ms: number): string {
	return new Date(ms).toISOString();
}

/** The app's status at `now`: the access_token's fields at the top level, every kind under `credentials`. */
export function appStatus(app: AppConfig, state: AuthorityState, now: number): AppStatus {
	const usage = usageNow(state.usage, now);
	const credentials = kindsOf(app).map((type): CredentialStatus => {
		const kind = kindFor(app, type);
		const slot = state.slots[type] ?? EMPTY_SLOT;
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
	const { incident } = state;
	return {
		appid: app.appid, mode: app.mode,
		token: token.value, expires_in: token.expires_in, next_refresh: token.next_refresh, last_refresh: token.last_refresh,
		calls_today: usage.calls, daily_quota: app.dailyQuota,
		consecutive_failures: token.consecutive_failures, last_error: token.last_error,
		incident: incident && { since: iso(incident.since), reason: incident.reason },
		credentials,
	};
}
