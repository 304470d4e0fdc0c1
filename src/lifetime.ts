/**
 * The refresh policy: when a token is due, and how long a client may rely on it.
 *
 * The promise to clients: `expires_in` is the number of seconds WeChat will still accept the token, given
 * this server's own refresh plan. A client that caches a token for `expires_in` never holds a revoked one,
 * unless something outside the broker revoked it (another server with the secret, or a forced refresh).
 */
import type { TokenMode } from "./config";

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

/** The current token as the authority keeps it, in storage and in the KV edge copy. */
export interface TokenRecord {
	readonly accessToken: string;
	readonly mode: TokenMode;
	/** ms since epoch, taken before the upstream request was sent (errs on the early side). */
	readonly obtainedAt: number;
	/** ms; when WeChat stops accepting the token on its own. */
	readonly expiresAt: number;
	/** ms; when the broker plans to replace it. */
	readonly refreshAt: number;
}

export function refreshAheadS(mode: TokenMode, expiresInS: number): number {
	const scaled = Math.min(expiresInS * REFRESH_AHEAD_FRACTION, MAX_REFRESH_AHEAD_S);
	return mode === "stable" ? Math.min(scaled, STABLE_ROTATION_WINDOW_S - STABLE_WINDOW_SAFETY_S) : scaled;
}

export function planToken(accessToken: string, mode: TokenMode, obtainedAt: number, expiresInS: number): TokenRecord {
	const expiresAt = obtainedAt + expiresInS * MS_PER_S;
	return { accessToken, mode, obtainedAt, expiresAt, refreshAt: expiresAt - refreshAheadS(mode, expiresInS) * MS_PER_S };
}

/**
 * Until when WeChat is sure to accept the token, given the broker's own plan.
 * - stable: a normal-mode rotation leaves the old token valid to its own expiry.
 * - classic: a refresh revokes the old token 300 s later; from the planned refresh on (or from now, once
 *   due, since a refresh may land any moment) the token is only sure for 300 more seconds.
 */
export function acceptedUntil(token: TokenRecord, now: number): number {
	if (token.mode === "stable") return token.expiresAt;
	return Math.min(token.expiresAt, Math.max(now, token.refreshAt) + CLASSIC_PREVIOUS_VALID_S * MS_PER_S);
}

/** Whole seconds the client may use the token; 0 when it must not be handed out. */
export function expiresInS(token: TokenRecord, now: number): number {
	return Math.max(0, Math.floor((acceptedUntil(token, now) - now) / MS_PER_S));
}

export function isUsable(token: TokenRecord | null | undefined, now: number): token is TokenRecord {
	return token != null && expiresInS(token, now) > 0;
}

export function isDue(token: TokenRecord, now: number): boolean {
	return now >= token.refreshAt;
}
