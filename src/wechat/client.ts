/**
 * The only code that calls WeChat's and WeCom's credential endpoints: access_token (classic, stable, WeCom),
 * JS-SDK tickets, and the getcallbackip probe. Every answer becomes a typed result: a value with its
 * lifetime, or a failure that says whether WeChat refused (with its errcode, classified per platform) or
 * could not be reached. It never throws for an upstream problem, and never logs or returns a request URL or
 * body (they carry the AppSecret or a token).
 */
import type { AppConfig, BrokerConfig } from "../config/config";
import type { CountedCall } from "../core/usage";
import type { TicketType } from "../core/credentials";
import { classifyErrcode, TOKEN_INVALID } from "./errcodes";
import { unreachable, upstreamJson, type UpstreamOptions, type UpstreamResult } from "./upstream";

export type { UpstreamFailure, UpstreamResult } from "./upstream";

export interface Fetched {
	readonly value: string;
	/** As WeChat reported it: "a value within 7200 s" (classic), the remaining lifetime (stable, re-fetches). */
	readonly expiresInS: number;
	/** An authorizer's token answer: the authorizer_refresh_token it carries (it replaces the stored one). */
	readonly refreshToken?: string;
}


/**
 * No WeChat credential lives this briefly; a shorter expires_in means a broken relay, and storing it would
 * make every read refresh again at once (a success clears the backoff).
 */
const MIN_EXPIRES_IN_S = 60;
/**
 * A WeCom token handed back inside its validity (suite, provider and corp tokens) may say how little is left
 * of it: 0 s is an answer, not a broken relay (the engine caps a reused value at its first deadline and
 * rechecks it a second later: core/lifetime.ts sameValueAgain).
 */
export const REUSED_MIN_EXPIRES_IN_S = 0;
/** WeChat documents tokens up to 512 characters; anything longer is not a token (nor a ticket). */
export const MAX_TOKEN_CHARS = 512;

type Upstream = Pick<BrokerConfig, "apiBase" | "weComBase" | "upstreamTimeoutMs" | "relayHeaders">;

/** The counted call that fetches the app's access_token. */
export function endpointFor(app: AppConfig): CountedCall {
	return app.mode === "classic" ? "token" : app.mode === "wecom" ? "gettoken" : "stable_token";
}

export function ticketEndpointFor(app: AppConfig, type: TicketType): CountedCall {
	if (app.platform === "wechat") return "getticket";
	return type === "agent_config" ? "ticket_get" : "get_jsapi_ticket";
}

function options(app: AppConfig, config: Upstream): UpstreamOptions & { base: string } {
	const wecom = app.platform === "wecom";
	return {
		base: wecom ? config.weComBase : config.apiBase,
		baseName: wecom ? "WECOM_API_BASE" : "WECHAT_API_BASE",
		timeoutMs: config.upstreamTimeoutMs,
		relayHeaders: config.relayHeaders,
	};
}

/** The app's access_token. `force`: stable force_refresh, which revokes the previous stable token at once. */
export async function fetchToken(app: AppConfig, config: Upstream, force: boolean): Promise<UpstreamResult<Fetched>> {
	const { base, ...opts } = options(app, config);
	let answer: UpstreamResult<Record<string, unknown>>;
	if (app.mode === "stable") {
		answer = await upstreamJson(`${base}/cgi-bin/stable_token`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ grant_type: "client_credential", appid: app.appid, secret: app.secret, force_refresh: force }),
		}, opts);
	} else if (app.mode === "classic") {
		const query = new URLSearchParams({ grant_type: "client_credential", appid: app.appid, secret: app.secret });
		answer = await upstreamJson(`${base}/cgi-bin/token?${query}`, {}, opts);
	} else {
		const query = new URLSearchParams({ corpid: app.corpid!, corpsecret: app.secret });
		answer = await upstreamJson(`${base}/cgi-bin/gettoken?${query}`, {}, opts);
	}
	return answer.ok ? parseCredential(answer.value, "access_token", app.platform, false) : answer;
}

/** A JS-SDK ticket, fetched with `token`; a refusal of the token is marked `tokenRefused`. */
export async function fetchTicket(app: AppConfig, type: TicketType, token: string, config: Upstream): Promise<UpstreamResult<Fetched>> {
	const { base, ...opts } = options(app, config);
	const query = new URLSearchParams({ access_token: token });
	let path: string;
	if (app.platform === "wechat") {
		query.set("type", type);
		path = "/cgi-bin/ticket/getticket";
	} else if (type === "agent_config") {
		query.set("type", "agent_config");
		path = "/cgi-bin/ticket/get";
	} else {
		path = "/cgi-bin/get_jsapi_ticket";
	}
	const answer = await upstreamJson(`${base}${path}?${query}`, {}, opts);
	return answer.ok ? parseCredential(answer.value, "ticket", app.platform, true) : answer;
}

/** What WeChat said of a token a client reported: it refuses it, accepts it, or could not be asked. */
export type ProbeVerdict = "refused" | "accepted" | "unknown";

/**
 * Asks WeChat whether it accepts `token`, with the cheapest call that needs one: getcallbackip (WeCom has
 * it too). Spent only where the answer decides something (before a refresh that revokes), never per read.
 */
export async function probeToken(app: AppConfig, token: string, config: Upstream): Promise<ProbeVerdict> {
	const { base, ...opts } = options(app, config);
	const answer = await upstreamJson(`${base}/cgi-bin/getcallbackip?access_token=${encodeURIComponent(token)}`, {}, opts);
	if (!answer.ok) return "unknown";
	const { errcode, ip_list } = answer.value;
	if (errcode === undefined || errcode === 0) return Array.isArray(ip_list) ? "accepted" : "unknown";
	return typeof errcode === "number" && TOKEN_INVALID[app.platform].has(errcode) ? "refused" : "unknown";
}

/**
 * Token successes from api.weixin.qq.com carry no errcode; tickets and WeCom answers carry errcode 0;
 * errors a non-zero one (WECHAT-API.md, "Conventions").
 */
/**
 * `minExpiresInS`: WeCom's service-provider tokens come back unchanged inside their validity, perhaps with only
 * their remaining seconds (suite-client.ts): there a short expires_in is an answer, which the engine caps.
 */
export function parseCredential(
	body: Record<string, unknown>, field: "access_token" | "ticket" | "component_access_token" | "authorizer_access_token" | "suite_access_token" | "provider_access_token",
	platform: "wechat" | "wecom", withToken: boolean, minExpiresInS = MIN_EXPIRES_IN_S,
): UpstreamResult<Fetched> {
	const { errcode, expires_in } = body;
	const value = body[field];
	if (typeof errcode === "number" && errcode !== 0) {
		// A ticket call refused for its token: the token is bad, not the ticket (and not the secret).
		const tokenRefused = withToken && TOKEN_INVALID[platform].has(errcode);
		const info = classifyErrcode(errcode, platform);
		const message = tokenRefused
			? `${platform === "wecom" ? "WeCom" : "WeChat"} refused the access_token the ticket was asked with (errcode ${errcode})`
			: `${platform === "wecom" ? "WeCom" : "WeChat"} errcode ${errcode}: ${info.advice}`;
		return { ok: false, failure: { kind: "wechat", class: tokenRefused ? "retryable" : info.class, errcode, message, ...(tokenRefused && { tokenRefused }) } };
	}
	if (typeof value !== "string" || value.length === 0 || value.length > MAX_TOKEN_CHARS) {
		return unreachable(`WeChat's answer had no usable ${field}`);
	}
	if (typeof expires_in !== "number" || !Number.isFinite(expires_in) || expires_in < minExpiresInS) {
		return unreachable(`WeChat's answer had no usable expires_in (at least ${minExpiresInS} s)`);
	}
	return { ok: true, value: { value, expiresInS: Math.floor(expires_in) } };
}
