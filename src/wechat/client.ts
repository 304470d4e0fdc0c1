/**
 * The only code that calls WeChat's token endpoints. It turns every answer into a typed result: a token, or
 * a failure that says whether WeChat refused (with its errcode) or could not be reached. It never throws for
 * an upstream problem, and never logs or returns the request URL or body (they carry the AppSecret).
 */
import type { AppConfig } from "../config";
import { classifyErrcode, type FailureClass } from "./errcodes";

export type Endpoint = "token" | "stable_token";

export interface FetchedToken {
	readonly accessToken: string;
	/** As WeChat reported it: "a value within 7200 s" (classic), the remaining lifetime (stable). */
	readonly expiresInS: number;
}

export interface UpstreamFailure {
	/** `wechat`: WeChat answered with an errcode. `unreachable`: no usable answer (network, timeout, 5xx, garbage). */
	readonly kind: "wechat" | "unreachable";
	readonly class: FailureClass;
	readonly errcode?: number;
	readonly message: string;
}

export type UpstreamResult<T = FetchedToken> = { ok: true; value: T } | { ok: false; failure: UpstreamFailure };

/** WeChat answers in well under a second; a relay or the network that hangs must not hold readers for long. */
export const UPSTREAM_TIMEOUT_MS = 5_000;
/**
 * No WeChat token lives this briefly; a shorter expires_in means a broken relay, and storing it would make
 * every read refresh again at once (a success clears the backoff).
 */
const MIN_EXPIRES_IN_S = 60;
/** WeChat documents tokens up to 512 characters; anything longer is not a token. */
export const MAX_TOKEN_CHARS = 512;

export interface FetchOptions {
	readonly apiBase: string;
	/** Stable mode only: `force_refresh=true`, which revokes the previous stable token. */
	readonly force?: boolean;
	readonly timeoutMs?: number;
	/** WECHAT_RELAY_HEADERS: sent with every call, so a relay in front of WeChat can admit only the broker. */
	readonly relayHeaders?: Readonly<Record<string, string>>;
}

export function endpointFor(app: AppConfig): Endpoint {
	return app.mode === "classic" ? "token" : "stable_token";
}

export async function fetchAccessToken(app: AppConfig, { apiBase, force = false, timeoutMs = UPSTREAM_TIMEOUT_MS, relayHeaders = {} }: FetchOptions): Promise<UpstreamResult> {
	const signal = AbortSignal.timeout(timeoutMs);
	let response: Response;
	try {
		response = app.mode === "classic"
			? await fetch(classicUrl(apiBase, app), { headers: relayHeaders, signal })
			: await fetch(`${apiBase}/cgi-bin/stable_token`, {
				method: "POST",
				headers: { ...relayHeaders, "content-type": "application/json" },
				body: JSON.stringify({ grant_type: "client_credential", appid: app.appid, secret: app.secret, force_refresh: force }),
				signal,
			});
	} catch (error) {
		const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
		return unreachable(timedOut ? `WeChat did not answer within ${timeoutMs} ms` : "could not connect to WeChat (network error)");
	}
	if (response.status !== 200) {
		await response.body?.cancel();
		return unreachable(response.status === 401 || response.status === 403
			? `WeChat's address (WECHAT_API_BASE) answered HTTP ${response.status}: a relay there refused the broker; check that WECHAT_RELAY_HEADERS holds the header the relay expects`
			: `WeChat answered HTTP ${response.status}`);
	}
	let body: unknown;
	try {
		body = await response.json();
	} catch {
		return unreachable("WeChat's answer was not JSON (a relay or gateway error page?)");
	}
	return parseTokenBody(body);
}

/** What WeChat said of a token a client reported: it refuses it, accepts it, or could not be asked. */
export type ProbeVerdict = "refused" | "accepted" | "unknown";

/** WeChat's answers that mean the token itself is bad (WECHAT-API.md, "Token-invalid codes"). */
export const TOKEN_INVALID_ERRCODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);

/**
 * Asks WeChat whether it accepts `token`, with the cheapest call that needs one: getcallbackip. Spent only
 * where the answer decides something (before a refresh that would revoke tokens), never per read.
 */
export async function probeToken(apiBase: string, token: string, timeoutMs: number): Promise<ProbeVerdict> {
	try {
		const response = await fetch(`${apiBase}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`, {
			signal: AbortSignal.timeout(timeoutMs),
		});
		if (response.status !== 200) {
			await response.body?.cancel();
			return "unknown";
		}
		const body = (await response.json()) as { errcode?: unknown; ip_list?: unknown };
		if (body.errcode === undefined || body.errcode === 0) return Array.isArray(body.ip_list) ? "accepted" : "unknown";
		return typeof body.errcode === "number" && TOKEN_INVALID_ERRCODES.has(body.errcode) ? "refused" : "unknown";
	} catch {
		return "unknown";
	}
}

function classicUrl(apiBase: string, app: AppConfig): string {
	const query = new URLSearchParams({ grant_type: "client_credential", appid: app.appid, secret: app.secret });
	return `${apiBase}/cgi-bin/token?${query}`;
}

/** Token successes carry no errcode; errors carry a non-zero one (WECHAT-API.md, "Conventions"). */
export function parseTokenBody(body: unknown): UpstreamResult {
	if (typeof body !== "object" || body === null) return unreachable("WeChat's answer was not a JSON object");
	const { errcode, access_token, expires_in } = body as Record<string, unknown>;
	if (typeof errcode === "number" && errcode !== 0) {
		const info = classifyErrcode(errcode);
		return { ok: false, failure: { kind: "wechat", class: info.class, errcode, message: `WeChat errcode ${errcode}: ${info.advice}` } };
	}
	if (typeof access_token !== "string" || access_token.length === 0 || access_token.length > MAX_TOKEN_CHARS) {
		return unreachable("WeChat's answer had no usable access_token");
	}
	if (typeof expires_in !== "number" || !Number.isFinite(expires_in) || expires_in < MIN_EXPIRES_IN_S) {
		return unreachable(`WeChat's answer had no usable expires_in (at least ${MIN_EXPIRES_IN_S} s)`);
	}
	return { ok: true, value: { accessToken: access_token, expiresInS: Math.floor(expires_in) } };
}

function unreachable(message: string): { ok: false; failure: UpstreamFailure } {
	return { ok: false, failure: { kind: "unreachable", class: "retryable", message } };
}
