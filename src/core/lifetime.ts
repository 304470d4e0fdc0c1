/**
 * The refresh policy: when a credential is due, and how long a client may rely on it.
 *
 * The promise to clients: `expires_in` is the number of seconds WeChat will still accept the credential,
 * given this server's own refresh plan. A client that caches it for `expires_in` never holds a revoked one,
 * unless something outside the broker revoked it (another server with the secret, or a forced refresh).
 */

/**
 * What a newly fetched value does to the previous one, and when a new value can be had:
 * - `classic` (/cgi-bin/token): every call mints a new token and revokes the previous one 300 s later.
 * - `stable` (/cgi-bin/stable_token, normal mode): the same token until WeChat's last-300-s rotation window;
 *   a rotation leaves the old token valid to its own expiry; force_refresh revokes it at once.
 * - `independent` (JS-SDK tickets, WeCom tokens): a new value leaves the old one valid to its own expiry,
 *   and a re-fetch may return the same value (WeChat does not say which; the broker is correct either way).
 * - `no_overlap` (the open platform's component token): every call mints a new token, and whether the old
 *   one stays valid for a while is not documented (only reported: OPEN-PLATFORM.md §4), so none is assumed:
 *   the old one may die the moment a new one is minted, and the promise ends at the planned refresh.
 */
export type LifetimePolicy = "classic" | "stable" | "independent" | "no_overlap";

/** Every call mints a new value that revokes the current one (at once, or 300 s later): never call early. */
export function mintsOnRefresh(policy: LifetimePolicy): boolean {
	return policy === "classic" || policy === "no_overlap";
}

/** /cgi-bin/token: after a new token is minted, the previous one stays valid for at most 5 more minutes. */
export const CLASSIC_PREVIOUS_VALID_S = 300;
/** /cgi-bin/stable_token (normal mode) hands out a new token only in the last 5 minutes of the current one. */
export const STABLE_ROTATION_WINDOW_S = 300;
/**
 * A stable refresh must land inside the rotation window, or WeChat returns the same token again. Aim this
 * far inside it, so that a clock skew between the broker and WeChat still lands inside.
 */
const STABLE_WINDOW_SAFETY_S = 30;
/** Refresh this share of the lifetime ahead of expiry: 900 s of a 7200 s token, 7.5 s of a 60 s one. */
const REFRESH_AHEAD_FRACTION = 1 / 8;
/**
 * Classic: 900 s ahead leaves 15 once-a-minute cron runs to succeed before clients must be told
 * anything, and the reported lifetime (refresh + 300 s) still ends 600 s before WeChat's expiry.
 */
const MAX_REFRESH_AHEAD_S = 900;
const MS_PER_S = 1_000;

/** A credential as the authority keeps it, in storage and in the KV edge copy. */
export interface CredentialRecord {
	/** The access_token or ticket itself. */
	readonly value: string;
	readonly policy: LifetimePolicy;
	/** ms since epoch, taken before the upstream request was sent (errs on the early side). */
	readonly obtainedAt: number;
	/** ms; when WeChat stops accepting it on its own. */
	readonly expiresAt: number;
	/** ms; when the broker plans to replace it. */
	readonly refreshAt: number;
}

export function refreshAheadS(policy: LifetimePolicy, expiresInS: number): number {
	const scaled = Math.min(expiresInS * REFRESH_AHEAD_FRACTION, MAX_REFRESH_AHEAD_S);
	return policy === "stable" ? Math.min(scaled, STABLE_ROTATION_WINDOW_S - STABLE_WINDOW_SAFETY_S) : scaled;
}

export function planRecord(value: string, policy: LifetimePolicy, obtainedAt: number, expiresInS: number): CredentialRecord {
	const expiresAt = obtainedAt + expiresInS * MS_PER_S;
	return { value, policy, obtainedAt, expiresAt, refreshAt: expiresAt - refreshAheadS(policy, expiresInS) * MS_PER_S };
}

/**
 * A value not usable (no whole second left) is asked for again this long after the answer that brought it,
 * not at once: WeCom's clock starts a token's life when the first request reached it, a moment after the
 * broker stamped it, so at the broker's deadline WeCom may still hand out the old token for that moment.
 */
export const UNUSABLE_RECHECK_MS = 1_000;

/**
 * A credential that cannot be renewed before it expires (WeCom: "a re-fetch inside the validity returns the
 * same token"): asking again sooner only spends calls. One that is already spent is asked for again after
 * UNUSABLE_RECHECK_MS, and readers are told to retry then (refresher.ts), never in a loop.
 */
export function notRenewableBeforeExpiry(record: CredentialRecord, now: number): CredentialRecord {
	return { ...record, refreshAt: Math.max(record.expiresAt, now + UNUSABLE_RECHECK_MS) };
}

/**
 * An `independent` value a refresh returned unchanged is still the value the first fetch got, and the
 * deadline that fetch set stands, whatever expires_in says now: WeCom may say 7200 again for a reused token
 * (unconfirmed, OPEN-PLATFORM.md §10; its ticket/get always does, WJ #3147), and a remaining time it says
 * cannot be later than the first deadline either. So the promise is the earlier of the two, never later.
 */
export function sameValueAgain(old: CredentialRecord, fresh: CredentialRecord, now: number): CredentialRecord {
	return notRenewableBeforeExpiry({ ...fresh, obtainedAt: old.obtainedAt, expiresAt: Math.min(old.expiresAt, fresh.expiresAt) }, now);
}

/** A credential planned but not usable, and not yet due again: WeCom handed back the one expiring now. */
export function awaitingRenewal(record: CredentialRecord | null | undefined, now: number): boolean {
	return record != null && expiresInS(record, now) === 0 && now < record.refreshAt;
}

/**
 * Until when WeChat is sure to accept the credential, given the broker's own plan.
 * - stable, independent: a refresh leaves the old value valid to its own expiry.
 * - classic: a refresh revokes the old token 300 s later; from the planned refresh on (or from now, once
 *   due, since a refresh may land any moment) the token is only sure for 300 more seconds.
 * - no_overlap: a refresh may revoke the old token at once, so it is sure only until the planned refresh
 *   (DESIGN.md, "The open platform"); once due, not at all. A failed refresh moves the plan to its retry
 *   (fetch-and-store.ts), so a value WeChat still accepts goes on being served meanwhile.
 */
export function acceptedUntil(record: CredentialRecord, now: number): number {
	if (record.policy === "no_overlap") return Math.min(record.expiresAt, record.refreshAt);
	if (record.policy !== "classic") return record.expiresAt;
	return Math.min(record.expiresAt, Math.max(now, record.refreshAt) + CLASSIC_PREVIOUS_VALID_S * MS_PER_S);
}

/** Whole seconds the client may use it; 0 when it must not be handed out. */
export function expiresInS(record: CredentialRecord, now: number): number {
	return Math.max(0, Math.floor((acceptedUntil(record, now) - now) / MS_PER_S));
}

export function isUsable(record: CredentialRecord | null | undefined, now: number): record is CredentialRecord {
	return record != null && expiresInS(record, now) > 0;
}

export function isDue(record: CredentialRecord, now: number): boolean {
	return now >= record.refreshAt;
}
