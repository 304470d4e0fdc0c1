/**
 * What a TokenAuthority keeps in storage (key "state", keys.ts): one slot per credential kind, and what the
 * app's kinds share (today's call counts, the open incident, queued alerts). Plus the pure rules that change
 * a slot when an upstream call's fate is unknown, kept apart so they can be audited alone.
 */
import type { Alert } from "./alerts";
import { CLASSIC_PREVIOUS_VALID_S, type CredentialRecord } from "../core/lifetime";
import { emptyUsage, type CountedCall, type Usage } from "../core/usage";
import type { UpstreamFailure } from "../wechat/client";
import type { CredentialType } from "../core/credentials";

/** `scheduled`: the object's alarm (or the watchdog's poke); `configure`: the admin API stored a new secret and checks it at once. */
export type RefreshTrigger = "read" | "scheduled" | "invalidate" | "admin" | "configure";

/** An upstream call under way, persisted before it is sent (see `recoverInterruptedCall`). */
export interface InFlightCall {
	readonly call: CountedCall;
	/** A stable force_refresh (revokes the current token at once). */
	readonly force: boolean;
	/** ms; when the refresh's first attempt was sent. */
	readonly startedAt: number;
}

export interface SlotState {
	readonly current: CredentialRecord | null;
	/**
	 * The value the current one replaced, until when WeChat still accepts it, and until when the gateway
	 * honours it (`issuedUntil`, issued-index.ts; older stored states lack it: then `acceptedUntil`).
	 */
	readonly previous: { readonly value: string; readonly acceptedUntil: number; readonly issuedUntil?: number } | null;
	readonly lastRefresh: { readonly at: number; readonly trigger: RefreshTrigger } | null;
	readonly lastError: { readonly at: number; readonly failure: UpstreamFailure } | null;
	readonly consecutiveFailures: number;
	/** ms; after a failure, no read- or cron-triggered upstream call before this. */
	readonly retryAt: number;
	/** ms; when the last forced call (classic invalidation or admin, stable force_refresh, admin ticket) was sent. */
	readonly lastForcedAt: number;
	/**
	 * The record KV is known to hold. When it differs from `current` (a failed write, or a write of an older
	 * record that finished after a newer one), the cron writes the edge copy again.
	 */
	readonly edgeRecord: CredentialRecord | null;
	/**
	 * ms; when KV last refused a write of the current record's copy (or its issued record), 0 when it took the
	 * last one. The next request a second later writes it again (KV takes one write a second per key).
	 * Older stored states lack it.
	 */
	readonly edgeFailedAt?: number;
	/** Set while WeChat is being asked, until its outcome is recorded; an instance that finds it at start-up died in the middle of the call. */
	readonly inFlight: InFlightCall | null;
}

export interface AuthorityState {
	/** The app this object serves, once known (a restart's recovery rewrites its edge copies). */
	readonly appid?: string;
	readonly slots: Readonly<Partial<Record<CredentialType, SlotState>>>;
	readonly usage: Usage;
	/** The open incident: an alert went (or is going) out for it, and a recovery alert will close it. */
	readonly incident: { readonly since: number; readonly reason: string } | null;
	/** Alerts not yet taken by the webhook, oldest first. */
	readonly alerts: readonly Alert[];
}

export const EMPTY_SLOT: SlotState = {
	current: null, previous: null, lastRefresh: null, lastError: null, consecutiveFailures: 0, retryAt: 0,
	lastForcedAt: 0, edgeRecord: null, inFlight: null,
};

export function initialState(now: number): AuthorityState {
	return { slots: {}, usage: emptyUsage(now), incident: null, alerts: [] };
}

/** A stored state, from this version or the single-token one before it. */
export function restoreState(stored: Record<string, any>, now: number): AuthorityState {
	if (stored.slots) return { ...initialState(now), ...stored } as AuthorityState;
	// Before credential kinds: the token's fields at the top level, `accessToken` for the value.
	const record = (r: any): CredentialRecord | null => r && {
		value: r.accessToken, policy: r.mode === "classic" ? "classic" : "stable",
		obtainedAt: r.obtainedAt, expiresAt: r.expiresAt, refreshAt: r.refreshAt,
	};
	const current = record(stored.current);
	const token: SlotState = {
		...EMPTY_SLOT,
		current,
		previous: stored.previous ? { value: stored.previous.accessToken, acceptedUntil: stored.previous.acceptedUntil } : null,
		lastRefresh: stored.lastRefresh ?? null,
		lastError: stored.lastError ?? null,
		consecutiveFailures: stored.consecutiveFailures ?? 0,
		retryAt: stored.retryAt ?? 0,
		lastForcedAt: stored.lastForcedAt ?? 0,
		// The edge copy's key changed with its shape: it must be written again.
		edgeRecord: null,
	};
	return {
		slots: { token },
		usage: { ...emptyUsage(now), day: stored.usage?.day ?? 0, calls: stored.usage?.calls ?? {} },
		incident: stored.incident ?? null,
		alerts: stored.alerts ?? [],
	};
}

export function sameRecord(a: CredentialRecord | null, b: CredentialRecord | null): boolean {
	return a === b || (a !== null && b !== null && a.value === b.value && a.expiresAt === b.expiresAt && a.refreshAt === b.refreshAt);
}

/**
 * The current value after a call whose answer never arrived, started at `startedAt`:
 * - classic: WeChat may have minted a token, which revokes the current one 300 s later. It is promised no
 *   longer than that, and is due at once so that the cron replaces it before then.
 * - stable force_refresh: WeChat may have revoked the current token at once. It is no longer handed out;
 *   the next read asks WeChat (a normal call) for the live token.
 * - no_overlap (a component token): WeChat may have minted a new token, which may have revoked the
 *   current one at once: like a stable force, it is no longer handed out.
 * - anything else (a stable normal call, tickets, WeCom) revokes nothing.
 */
export function afterUnansweredCall(current: CredentialRecord | null, call: InFlightCall): CredentialRecord | null {
	if (!current) return null;
	if (current.policy === "no_overlap") {
		return { ...current, expiresAt: Math.min(current.expiresAt, call.startedAt), refreshAt: Math.min(current.refreshAt, call.startedAt) };
	}
	if (current.policy === "classic") {
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
 * Until when the gateway honours the value a refresh replaced: as long as WeChat accepts it (classic: 300 s
 * after the new mint; stable force_refresh: not at all), and after an admin's refresh not at all, though
 * classic WeChat keeps it 300 s: an operator who force-refreshes a leaked token cuts it off everywhere,
 * gateway included (DESIGN.md). A classic report WeChat confirmed keeps its 300 s: an SDK that sends its
 * call again with the token it holds gets the new one swapped in.
 */
export function previousIssuedUntil(acceptedUntil: number, trigger: RefreshTrigger, now: number): number {
	return trigger === "admin" ? Math.min(acceptedUntil, now) : acceptedUntil;
}

/** WeChat's rules for the value a refresh replaced (WECHAT-API.md), given when the refresh began. */
export function previousAcceptedUntil(old: CredentialRecord, forced: boolean, startedAt: number, now: number): number {
	// Classic: the first attempt may already have minted a token, so the 300 s count from when it was sent.
	if (old.policy === "classic") return Math.min(old.expiresAt, startedAt + CLASSIC_PREVIOUS_VALID_S * 1_000);
	// No overlap assumed: the new token may have revoked it from the moment the call was sent.
	if (old.policy === "no_overlap") return Math.min(old.expiresAt, startedAt);
	return old.policy === "stable" && forced ? now : old.expiresAt;
}
