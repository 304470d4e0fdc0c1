/**
 * Where an app's business calls go, and which of the upstream's errcodes mean "this token is bad".
 * The gateway sends nothing anywhere else: the base comes from configuration, never from the request.
 */
import type { BrokerConfig } from "../config";

export interface Upstream {
	/** Without a trailing slash: WECHAT_API_BASE (a fixed-IP relay in production). */
	readonly base: string;
	/** Answers that compare-and-refresh heals, then one retry with the new token. */
	readonly tokenErrcodes: ReadonlySet<number>;
	/**
	 * WECHAT_RELAY_HEADERS, on every call the gateway sends, as on the broker's token calls: a relay that
	 * admits only the broker must admit its forwarded calls too. They are set after the client's headers, so
	 * a client cannot choose their values.
	 */
	readonly relayHeaders: Readonly<Record<string, string>>;
}

/** 40001 invalid credential / not latest, 40014 invalid access_token, 42001 expired (WECHAT-API.md). */
export const WECHAT_TOKEN_ERRCODES: ReadonlySet<number> = new Set([40001, 40014, 42001]);
/** In WeCom 40001 means a bad *secret*, not a bad token: only 40014 and 42001 are token errors there. */
export const WECOM_TOKEN_ERRCODES: ReadonlySet<number> = new Set([40014, 42001]);

/**
 * Every configured app is an official account or mini program today. WeCom apps, once WECHAT_APPS can
 * hold them, get one branch here: `{ base: config.wecomApiBase, tokenErrcodes: WECOM_TOKEN_ERRCODES, relayHeaders }`.
 */
export function upstreamFor(config: BrokerConfig, _appid: string): Upstream {
	return { base: config.apiBase, tokenErrcodes: WECHAT_TOKEN_ERRCODES, relayHeaders: config.relayHeaders };
}
