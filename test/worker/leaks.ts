/** What a leak looks like: an AppSecret, or a run of token characters long enough to be a usable token. */

/** Simulator (and WeChat) tokens are 100+ characters; masked tokens show 8. Nothing else we log is this long. */
const TOKEN_LIKE = /[A-Za-z0-9_-]{40,}/g;

export function findLeaks(text: string, secrets: readonly string[], allowedTokens: readonly string[] = []): string[] {
	const leaks = secrets.filter((s) => text.includes(s)).map((s) => `secret ${s.slice(0, 12)}…`);
	for (const match of text.match(TOKEN_LIKE) ?? []) {
		// An allowed value may appear URL-encoded (a pre_auth_code inside the link it was asked for).
		if (!allowedTokens.some((t) => t === match || encodeURIComponent(t).includes(match))) leaks.push(`token-like string ${match.slice(0, 12)}…`);
	}
	return leaks;
}
