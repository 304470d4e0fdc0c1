/**
 * What a TokenAuthority keeps in storage (key "state", keys.ts), and the pure rules that change it when an
 * upstream call's fate is unknown. Kept apart from the Durable Object so the rules can be audited alone.
 */
import type { Alert } from "./alerts";
import { CLASSIC_PREVIOUS_VALID_S, type TokenRecord } from "./lifetime";
import { log, maskToken } from "./log";
import { emptyUsage, type CountedCall, type DailyUsage } from "./usage";
import type { UpstreamFailure } from "./wechat/client";

export type RefreshTrigger = "read" | "cron" | "invalidate" | "admin";

/** An upstream token call under way, persisted before it is sent (see `recoverInterruptedCall`). */
export interface InFlightCall {
	readonly call: Extract<CountedCall, "token" | "stable_token">;
	readonly force: boolean;
	/** ms; when the refresh's first attempt was sent. */
	readonly startedAt: number;
}

export interface AuthorityState {
	readonly current: TokenRecord | null;
	/** The token the current one replaced, and until when WeChat still accepts it. */
	readonly previous: { readonly accessToken: string; readonly acceptedUntil: number } | null;
	readonly usage: DailyUsage;
	readonly lastRefresh: { readonly at: number; readonly trigger: RefreshTrigger } | null;
	readonly lastError: { readonly at: number; readonly failure: UpstreamFailure } | null;
	readonly consecutiveFailures: number;
	/** ms; after a failure, no read- or cron-triggered upstream call before this. */
	readonly retryAt: number;
	/** ms; when the last forced call (classic invalidation or admin, stable force_refresh) was sent to WeChat. */
	readonly lastForcedAt: number;
	/** The open incident: an alert went (or is going) out for it, and a recovery alert will close it. */
	readonly incident: { readonly since: number; readonly reason: string } | null;
	/** Alerts not yet taken by the webhook, oldest first. */
	readonly alerts: readonly Alert[];
	/**
	 * The record KV is known to hold. When it differs from `current` (a failed write, or a write of an older
	 * record that finished after a newer one), the cron writes the edge copy again.
	 */
	readonly edgeRecord: TokenRecord | null;
	/** Set while WeChat is being asked; an instance that finds it at start-up died in the middle of the call. */
	readonly inFlight: InFlightCall | null;
}

export function initialState(now: number): AuthorityState {
	return {
		current: null,
		previous: null,
		usage: emptyUsage(now),
		lastRefresh: null,
		lastError: null,
		consecutiveFailures: 0,
		retryAt: 0,
		lastForcedAt: 0,
		incident: null,
		alerts: [],
		edgeRecord: null,
		inFlight: null,
	};
}

/** A stored state, from this version or an earlier one (fields added since take their defaults). */
export function restoreState(stored: Partial<AuthorityState> & { edgeWritten?: boolean }, now: number): AuthorityState {
	const { edgeWritten, ...rest } = stored;
	const state = { ...initialState(now), ...rest };
	// Before `edgeRecord`, a flag said whether KV held the current token.
	if (stored.edgeRecord === undefined && edgeWritten !== false) return { ...state, edgeRecord: state.current };
	return state;
}

export function sameRecord(a: TokenRecord | null, b: TokenRecord | null): boolean {
	return a === b || (a !== null && b !== null && a.accessToken === b.accessToken && a.expiresAt === b.expiresAt && a.refreshAt === b.refreshAt);
}

/**
 * The current token after a call whose answer never arrived, started at `startedAt`:
 * - classic: WeChat may have minted a token, which revokes the current one 300 s later. It is promised no
 *   longer than that, and is due at once so that the cron replaces it before then.
 * - stable force_refresh: WeChat may have revoked the current token at once. It is no longer handed out;
 *   the next read asks WeChat (a normal call) for the live token.
 * - a stable normal call revokes nothing.
 */
export function afterUnansweredCall(current: TokenRecord | null, call: InFlightCall): TokenRecord | null {
	if (!current) return null;
	if (call.call === "token") {
		return {
			...current,
			expiresAt: Math.min(current.expiresAt, call.startedAt + CLASSIC_PREVIOUS_VALID_S * 1_000),
			refreshAt: Math.min(current.refreshAt, call.startedAt),
		};
	}
	if (call.force) return { ...current, expiresAt: Math.min(current.expiresAt, call.startedAt), refreshAt: Math.min(current.refreshAt, call.startedAt) };
	return current;
}

/**
 * An instance that finds `inFlight` set was evicted or restarted while WeChat was being asked: the call was
 * counted when the marker was written; the promise of the current token is capped as for a lost answer.
 */
export function recoverInterruptedCall(state: AuthorityState, appid: string): AuthorityState {
	const call = state.inFlight;
	if (!call) return state;
	const current = afterUnansweredCall(state.current, call);
	log("warn", "upstream_call_interrupted", {
		appid, call: call.call, force: call.force, started_at: new Date(call.startedAt).toISOString(),
		token: current ? maskToken(current.accessToken) : null,
	});
	return { ...state, current, inFlight: null };
}

/** WeChat's rules for the token a refresh replaced (WECHAT-API.md), given when the refresh began. */
export function previousAcceptedUntil(old: TokenRecord, forced: boolean, startedAt: number, now: number): number {
	// Classic: the first attempt may already have minted a token, so the 300 s count from when it was sent.
	if (old.mode === "classic") return Math.min(old.expiresAt, startedAt + CLASSIC_PREVIOUS_VALID_S * 1_000);
	return forced ? now : old.expiresAt;
}
